package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// openFDs counts the process's open descriptors; with kind, only those
// whose link begins with it ("pipe:").
func openFDs(t *testing.T, kind string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	if kind == "" {
		return len(ents)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, kind) {
			n++
		}
	}
	return n
}

func TestTenThousandConnectionsLeaveNoDescriptorOrGoroutine(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 connections")
	}
	be := startBackend(t, func(c *net.TCPConn, name string) {
		// A line server that also answers "bulk" with 256 KiB, to take the splice path.
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line == "bulk\n" {
				c.Write(make([]byte, 256<<10))
				continue
			}
			fmt.Fprintf(c, "%s %s", name, line)
		}
	})
	fe := testFrontend(be.Addr)
	fe.ConnectTimeout = 5 * time.Second // a loaded CI machine is slow, not broken
	m, reg := newTestMetrics(t)
	r := startFrontend(t, fe, Options{Metrics: m})
	for range 5 { // warm up pools and the runtime
		c := dialLine(t, r.addr)
		c.ask("warm")
		c.c.Close()
	}
	waitFor(t, "warm-up connections close", func() bool { return r.f.active.Load() == 0 })
	closeIdlePipes()
	baseFDs, baseG := openFDs(t, ""), runtime.NumGoroutine()

	const total, workers = 10000, 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for w := range workers {
		wg.Go(func() {
			for i := w; i < total; i += workers {
				c, err := net.Dial("tcp", r.addr)
				if err == nil {
					c.SetDeadline(time.Now().Add(10 * time.Second))
					if i%100 == 0 {
						_, err = io.WriteString(c, "bulk\n")
						if err == nil {
							_, err = io.ReadFull(c, make([]byte, 256<<10))
						}
					} else {
						_, err = fmt.Fprintf(c, "n%d\n", i)
						if err == nil {
							_, err = bufio.NewReader(c).ReadString('\n')
						}
					}
					c.Close()
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		mfs, _ := reg.Gather()
		var counts []string
		for _, mf := range mfs {
			if mf.GetName() == MetricFrontendRejected || mf.GetName() == MetricBackendConnectErrors {
				for _, mm := range mf.GetMetric() {
					counts = append(counts, fmt.Sprint(mf.GetName(), mm.GetLabel(), mm.GetCounter().GetValue()))
				}
			}
		}
		t.Fatalf("%d of %d connections failed, first: %v; counters: %v", len(failures), total, failures[0], counts)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		closeIdlePipes()
		fds, g := openFDs(t, ""), runtime.NumGoroutine()
		if fds <= baseFDs && g <= baseG {
			t.Logf("after %d connections: %d fds (baseline %d), %d goroutines (baseline %d)", total, fds, baseFDs, g, baseG)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d connections: %d fds (baseline %d), %d goroutines (baseline %d)", total, fds, baseFDs, g, baseG)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The EMFILE test runs the frontend in a child process (this test binary
// again) whose RLIMIT_NOFILE is low, so running out of descriptors hurts
// nothing else. The parent is the clients and the backend; it talks to the
// child over stdin/stdout.
const emfileChildEnv = "VRRPLB_PROXY_EMFILE_CHILD"

func TestEMFILEChild(t *testing.T) {
	backendAddr := os.Getenv(emfileChildEnv)
	if backendAddr == "" {
		t.Skip("runs only as the child of TestAcceptSurvivesRunningOutOfDescriptors")
	}
	m, _ := newTestMetrics(t)
	r := startFrontend(t, testFrontend(backendAddr), Options{Metrics: m})
	// Room for the runtime's own needs and about ten proxied connections
	// (two descriptors each).
	limit := uint64(openFDs(t, "") + 20)
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = limit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("listening %s\n", r.addr)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "rejected":
			fmt.Printf("rejected %v\n", testutil.ToFloat64(m.rejected.WithLabelValues("test", ReasonFDLimit)))
		case "quit":
			return
		}
	}
}

func TestAcceptSurvivesRunningOutOfDescriptors(t *testing.T) {
	be := startBackend(t, nil)
	cmd, stdin, stdout := startChildTest(t, "TestEMFILEChild", emfileChildEnv+"="+be.Addr)
	out := bufio.NewScanner(stdout)
	// readLine returns the value after prefix on the child's next such line.
	readLine := func(prefix string) string {
		t.Helper()
		got := make(chan string, 1)
		go func() {
			for out.Scan() {
				if v, ok := strings.CutPrefix(out.Text(), prefix+" "); ok {
					got <- v
					return
				}
			}
			close(got)
		}()
		select {
		case v, ok := <-got:
			if !ok {
				t.Fatalf("child exited before printing %q", prefix)
			}
			return v
		case <-time.After(20 * time.Second):
			t.Fatalf("child printed no %q line in 20s", prefix)
		}
		return ""
	}
	addr := readLine("listening")
	rejected := func() float64 {
		t.Helper()
		fmt.Fprintln(stdin, "rejected")
		v, err := strconv.ParseFloat(readLine("rejected"), 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// Far more connections than the child has descriptors for.
	var held []*lineClient
	ok, refused := 0, 0
	cpuBefore := childCPU(t, cmd.Process.Pid)
	start := time.Now()
	for i := range 40 {
		c := dialLine(t, addr)
		if _, err := c.ask(fmt.Sprint("c", i)); err != nil {
			refused++
			c.c.Close()
			continue
		}
		ok++
		held = append(held, c)
	}
	// Keep clients knocking, 50 a second, while the child is full: refusing
	// them costs little; an accept loop spinning on EMFILE would burn a core.
	knock := time.NewTicker(20 * time.Millisecond)
	defer knock.Stop()
	for time.Since(start) < 1500*time.Millisecond {
		<-knock.C
		c, err := net.Dial("tcp", addr)
		if err == nil {
			closedByPeer(c, 200*time.Millisecond)
			c.Close()
		}
	}
	cpu := childCPU(t, cmd.Process.Pid) - cpuBefore
	wall := time.Since(start)
	t.Logf("%d proxied, %d refused; child used %v CPU in %v", ok, refused, cpu, wall)
	if ok == 0 || refused == 0 {
		t.Fatalf("%d proxied and %d refused, want some of both", ok, refused)
	}
	if got := rejected(); got == 0 {
		t.Errorf("rejected{reason=fd_limit} = 0, want > 0")
	}
	if cpu > wall/4 {
		t.Errorf("child used %v CPU in %v of descriptor shortage: accept is spinning", cpu, wall)
	}

	for _, c := range held {
		c.c.Close()
	}
	waitFor(t, "a new connection is proxied once descriptors are free", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		lc := &lineClient{c: c, r: bufio.NewReader(c)}
		_, err = lc.ask("recovered")
		return err == nil
	})
	fmt.Fprintln(stdin, "quit")
}

// childCPU is the user+system CPU time of process pid so far.
func childCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}
