package proxy

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/health"
)

func TestDerivedMaxConnectionsKeepsAReserve(t *testing.T) {
	for _, tt := range []struct {
		nofile      uint64
		wantConns   int64
		wantReserve uint64
	}{
		{nofile: 120, wantConns: 27, wantReserve: 66},
		{nofile: 1024, wantConns: 416, wantReserve: 192},
		{nofile: 1 << 20, wantConns: 491424, wantReserve: 65728},
		{nofile: 8, wantConns: 1, wantReserve: 6},
		{nofile: 0, wantConns: 0, wantReserve: 0},
		{nofile: unix.RLIM_INFINITY, wantConns: 0, wantReserve: 0},
	} {
		t.Run(fmt.Sprintf("an open-file limit of %d", tt.nofile), func(t *testing.T) {
			conns, reserve := derivedMaxConnections(tt.nofile)
			if conns != tt.wantConns || reserve != tt.wantReserve {
				t.Errorf("derivedMaxConnections(%d) = %d, %d; want %d, %d", tt.nofile, conns, reserve, tt.wantConns, tt.wantReserve)
			}
			if tt.wantConns > 1 && uint64(2*conns)+reserve > tt.nofile {
				t.Errorf("%d connections and %d reserved descriptors exceed the limit %d", conns, reserve, tt.nofile)
			}
		})
	}
}

// The max_connections = 0 test runs the frontend and a real health checker
// in a child process (this test binary again) started with a low
// RLIMIT_NOFILE, as `ulimit -n 120` does. The parent holds idle clients
// beyond what the child has descriptors for. Measured before the derived
// limit: at ulimit -n 120, 150 idle clients made the checks fail with
// EMFILE, the backend went down and 28 connections were cut.
const lowNofileChildEnv = "VRRPLB_PROXY_LOW_NOFILE_CHILD"

const lowNofile = 120

func TestLowNofileChild(t *testing.T) {
	backendAddr := os.Getenv(lowNofileChildEnv)
	if backendAddr == "" {
		t.Skip("runs only as the child of TestMaxConnectionsZeroStaysBelowTheOpenFileLimit")
	}
	rl := unix.Rlimit{Cur: lowNofile, Max: lowNofile}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	fe := testFrontend(backendAddr)
	fe.CloseOnBackendDown = true
	fe.MaxConnections = 0
	fe.Health = config.Health{Type: config.CheckTCP, Interval: 50 * time.Millisecond, Timeout: time.Second, Rise: 1, Fall: 1}
	checker, err := health.New(fe.Name, fe.Health, fe.Backends, health.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go checker.Run(ctx)
	var downs atomic.Int64
	checker.Subscribe(func(_ string, healthy bool) {
		if !healthy {
			downs.Add(1)
		}
	})
	waitFor(t, "the backend is up", func() bool { return checker.Healthy(backendAddr) })
	m, _ := newTestMetrics(t)
	r := startFrontend(t, fe, Options{Metrics: m, Health: checker})
	fmt.Printf("listening %s %d\n", r.addr, r.f.autoMax.Load())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "stats":
			fmt.Printf("stats %v %v %v %v\n",
				testutil.ToFloat64(m.rejected.WithLabelValues("test", ReasonMaxConnections)),
				testutil.ToFloat64(m.rejected.WithLabelValues("test", ReasonFDLimit)),
				downs.Load(), checker.Healthy(backendAddr))
		case "quit":
			return
		}
	}
}

func TestMaxConnectionsZeroStaysBelowTheOpenFileLimit(t *testing.T) {
	const clients = 150
	be := startBackend(t, nil)
	_, stdin, stdout := startChildTest(t, "TestLowNofileChild", lowNofileChildEnv+"="+be.Addr)
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		out := bufio.NewScanner(stdout)
		for out.Scan() {
			lines <- out.Text()
		}
	}()
	readLine := func(prefix string) []string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("child exited before printing %q", prefix)
				}
				if v, ok := strings.CutPrefix(l, prefix+" "); ok {
					return strings.Fields(v)
				}
			case <-deadline:
				t.Fatalf("child printed no %q line in 30s", prefix)
			}
		}
	}
	f := readLine("listening")
	addr := f[0]
	limit, _ := strconv.Atoi(f[1])
	wantLimit, _ := derivedMaxConnections(lowNofile)
	if int64(limit) != wantLimit {
		t.Fatalf("the child's derived max_connections is %d, want %d (open-file limit %d)", limit, wantLimit, lowNofile)
	}

	var served []*lineClient
	refused := 0
	for i := range clients {
		c := dialLine(t, addr)
		if _, err := c.ask(fmt.Sprint("c", i)); err != nil {
			refused++
			c.c.Close()
			continue
		}
		served = append(served, c)
	}
	t.Logf("open-file limit %d: %d idle clients, %d served, %d refused", lowNofile, clients, len(served), refused)
	if len(served) != limit || refused != clients-limit {
		t.Errorf("%d served and %d refused, want %d and %d", len(served), refused, limit, clients-limit)
	}
	// Twenty check intervals with the proxy full: the checks still run.
	time.Sleep(time.Second)
	for i, c := range served {
		if _, err := c.ask("still"); err != nil {
			t.Fatalf("served client %d was cut: %v", i, err)
		}
	}
	fmt.Fprintln(stdin, "stats")
	s := readLine("stats")
	if s[0] != fmt.Sprint(clients-limit) {
		t.Errorf("rejected{reason=max_connections} = %s, want %d", s[0], clients-limit)
	}
	if s[1] != "0" {
		t.Errorf("rejected{reason=fd_limit} = %s, want 0: the proxy reached the open-file limit", s[1])
	}
	if s[2] != "0" || s[3] != "true" {
		t.Errorf("the backend went down %s times (healthy now: %s), want never", s[2], s[3])
	}
	fmt.Fprintln(stdin, "quit")
}
