package proxy

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/poll"
)

func TestProxyCarriesBytesBothWaysAndCountsThem(t *testing.T) {
	be := startBackend(t, echoServer)
	m, _ := newTestMetrics(t)
	r := startFrontend(t, testFrontend(be.Addr), Options{Metrics: m})

	for _, size := range []int{5, 100 << 10, 3 << 20} {
		t.Run(fmt.Sprintf("%d bytes come back unchanged", size), func(t *testing.T) {
			c := dialTCP(t, r.addr, 0)
			want := make([]byte, size)
			for i := range want {
				want[i] = byte(i * 7)
			}
			go func() {
				c.Write(want)
				c.CloseWrite()
			}()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("got %d bytes back, want the %d sent", len(got), size)
			}
		})
	}
	total := float64(5 + 100<<10 + 3<<20)
	for _, dir := range []string{DirectionToBackend, DirectionToClient} {
		c := m.backendBytes.WithLabelValues("test", be.Addr, dir)
		waitFor(t, dir+" bytes are counted", func() bool { return testutil.ToFloat64(c) == total })
	}
	if got := testutil.ToFloat64(m.connections.WithLabelValues("test")); got != 3 {
		t.Errorf("%s = %v, want 3", MetricFrontendConnections, got)
	}
	waitFor(t, "no connection is active", func() bool {
		return testutil.ToFloat64(m.active.WithLabelValues("test")) == 0 &&
			testutil.ToFloat64(m.backendActive.WithLabelValues("test", be.Addr)) == 0
	})
}

func TestMetricNamesAreTheDesignedOnes(t *testing.T) {
	m, reg := newTestMetrics(t)
	fm := m.frontend("fe")
	fm.connections.Inc()
	fm.active.Set(0)
	fm.reject(ReasonMaxConnections)
	bm := fm.backend("10.0.0.1:6443")
	bm.active.Set(0)
	bm.connections.Inc()
	bm.connectErrors.Inc()
	bm.bytesToBackend.Add(1)
	bm.bytesToClient.Add(1)
	for name, want := range map[string]int{
		"vrrplb_frontend_connections_total":   1,
		"vrrplb_frontend_active_connections":  1,
		"vrrplb_frontend_rejected_total":      4, // every reason, from the start
		"vrrplb_backend_active_connections":   1,
		"vrrplb_backend_connections_total":    1,
		"vrrplb_backend_connect_errors_total": 1,
		"vrrplb_backend_bytes_total":          2,
		"vrrplb_frontend_fail_open":           1, // at 0 from the start
		"vrrplb_backend_draining":             1, // at 0 from the start
	} {
		if got, err := testutil.GatherAndCount(reg, name); err != nil || got != want {
			t.Errorf("%s: %d series (err %v), want %d", name, got, err, want)
		}
	}
	fm.deleteBackend("10.0.0.1:6443")
	if got, _ := testutil.GatherAndCount(reg, MetricBackendBytes, MetricBackendActive, MetricBackendDraining); got != 0 {
		t.Errorf("%d series of a removed backend left, want 0", got)
	}
}

func TestKilledBackendCostsNoClientConnection(t *testing.T) {
	bes := []*testBackend{startBackend(t, nil), startBackend(t, nil), startBackend(t, nil)}
	h := newFakeHealth() // health has not noticed the kill: only retries save the client
	m, _ := newTestMetrics(t)
	r := startFrontend(t, testFrontend(bes[0].Addr, bes[1].Addr, bes[2].Addr), Options{Health: h, Metrics: m})

	const conns = 300
	failed := 0
	for i := range conns {
		if i == conns/3 {
			bes[1].Kill()
		}
		lc := dialLine(t, r.addr)
		name, err := lc.ask(fmt.Sprint("req", i))
		if err != nil {
			failed++
			t.Logf("connection %d: %v", i, err)
		} else if i > conns/3 && name == bes[1].Addr {
			t.Fatalf("connection %d answered by the killed backend", i)
		}
		lc.c.Close()
	}
	if failed != 0 {
		t.Errorf("%d of %d client connections failed, want 0", failed, conns)
	}
	if h.Faults(bes[1].Addr) == 0 {
		t.Error("no passive fault reported for the killed backend")
	}
	if got := testutil.ToFloat64(m.backendErrors.WithLabelValues("test", bes[1].Addr)); got == 0 {
		t.Errorf("%s of the killed backend = 0, want > 0", MetricBackendConnectErrors)
	}
}

func TestUnhealthyBackendGetsNoConnection(t *testing.T) {
	a, b := startBackend(t, nil), startBackend(t, nil)
	h := newFakeHealth(a.Addr)
	r := startFrontend(t, testFrontend(a.Addr, b.Addr), Options{Health: h})
	for i := range 10 {
		name, err := dialLine(t, r.addr).ask("hi")
		if err != nil {
			t.Fatal(err)
		}
		if name != b.Addr {
			t.Fatalf("connection %d went to %s, want the healthy %s", i, name, b.Addr)
		}
	}
}

func TestNoHealthyBackendRefusesAndCounts(t *testing.T) {
	a := startBackend(t, nil)
	h := newFakeHealth(a.Addr)
	m, _ := newTestMetrics(t)
	r := startFrontend(t, testFrontend(a.Addr), Options{Health: h, Metrics: m})
	c := dialLine(t, r.addr)
	if !closedByPeer(c.c, 5*time.Second) {
		t.Fatal("connection without a healthy backend stayed open")
	}
	if got := testutil.ToFloat64(m.rejected.WithLabelValues("test", ReasonNoBackend)); got != 1 {
		t.Errorf("rejected{reason=no_backend} = %v, want 1", got)
	}
}

func TestHealthNoneIgnoresTheChecker(t *testing.T) {
	a := startBackend(t, nil)
	h := newFakeHealth(a.Addr)
	fe := testFrontend(a.Addr)
	fe.Health.Type = config.CheckNone
	r := startFrontend(t, fe, Options{Health: h})
	if _, err := dialLine(t, r.addr).ask("hi"); err != nil {
		t.Fatalf("health type none: %v", err)
	}
}

func TestHalfCloseIsPassedThrough(t *testing.T) {
	t.Run("client finishes first and still reads the answer", func(t *testing.T) {
		be := startBackend(t, func(c *net.TCPConn, _ string) {
			req, _ := io.ReadAll(c) // until the client's FIN
			fmt.Fprintf(c, "got %q", req)
			c.CloseWrite()
		})
		r := startFrontend(t, testFrontend(be.Addr), Options{})
		c := dialTCP(t, r.addr, 5*time.Second)
		io.WriteString(c, "hello")
		c.CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if want := `got "hello"`; string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("backend finishes first and still reads the client", func(t *testing.T) {
		got := make(chan string, 1)
		be := startBackend(t, func(c *net.TCPConn, _ string) {
			io.WriteString(c, "banner")
			c.CloseWrite()
			req, _ := io.ReadAll(c)
			got <- string(req)
		})
		r := startFrontend(t, testFrontend(be.Addr), Options{})
		c := dialTCP(t, r.addr, 5*time.Second)
		banner, err := io.ReadAll(c) // ends at the backend's FIN
		if err != nil || string(banner) != "banner" {
			t.Fatalf("read %q, %v; want banner then EOF", banner, err)
		}
		io.WriteString(c, "after")
		c.CloseWrite()
		if s := poll.Receive(t, got, 5*time.Second, "the backend to read the client's bytes and FIN"); s != "after" {
			t.Errorf("backend read %q, want %q", s, "after")
		}
	})
}

func TestIdleConnectionStaysOpenWithoutIdleTimeout(t *testing.T) {
	be := startBackend(t, nil)
	fe := testFrontend(be.Addr)
	fe.ConnectTimeout = 50 * time.Millisecond
	fe.TCPKeepAlive = time.Second // probes are answered by a live peer
	fe.DrainTimeout = 50 * time.Millisecond
	fe.IdleTimeout = 0
	r := startFrontend(t, fe, Options{})
	c := dialLine(t, r.addr)
	if _, err := c.ask("before"); err != nil {
		t.Fatal(err)
	}
	// Idle for longer than every other timeout of the frontend.
	if closedByPeer(c.c, 1200*time.Millisecond) {
		t.Fatal("idle connection closed with idle_timeout = 0")
	}
	if _, err := c.ask("after"); err != nil {
		t.Fatalf("after idling: %v", err)
	}
}

func TestIdleTimeoutClosesOnlyIdleConnections(t *testing.T) {
	be := startBackend(t, nil)
	fe := testFrontend(be.Addr)
	fe.IdleTimeout = 150 * time.Millisecond
	r := startFrontend(t, fe, Options{})

	idle := dialLine(t, r.addr)
	busy := dialLine(t, r.addr)
	if _, err := idle.ask("x"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < 600*time.Millisecond {
		if _, err := busy.ask("tick"); err != nil {
			t.Fatalf("busy connection after %v: %v", time.Since(start), err)
		}
		time.Sleep(30 * time.Millisecond) // the traffic pattern under test
	}
	if !closedByPeer(idle.c, 5*time.Second) {
		t.Error("idle connection still open after idle_timeout")
	}
}

func TestMaxConnectionsRefusesTheExtraClient(t *testing.T) {
	be := startBackend(t, nil)
	fe := testFrontend(be.Addr)
	fe.MaxConnections = 2
	m, _ := newTestMetrics(t)
	r := startFrontend(t, fe, Options{Metrics: m})
	first, second := dialLine(t, r.addr), dialLine(t, r.addr)
	for _, c := range []*lineClient{first, second} {
		if _, err := c.ask("in"); err != nil {
			t.Fatal(err)
		}
	}
	third := dialLine(t, r.addr)
	if !closedByPeer(third.c, 5*time.Second) {
		t.Fatal("third connection stayed open with max_connections = 2")
	}
	if got := testutil.ToFloat64(m.rejected.WithLabelValues("test", ReasonMaxConnections)); got != 1 {
		t.Errorf("rejected{reason=max_connections} = %v, want 1", got)
	}
	first.c.Close()
	waitFor(t, "a slot frees up", func() bool {
		_, err := dialLine(t, r.addr).ask("again")
		return err == nil
	})
}

func TestStopDrainsLiveConnections(t *testing.T) {
	// stopWithALiveConnection runs a frontend with drainTimeout, carries a
	// line over a connection through it and, the connection still open,
	// stops the frontend.
	stopWithALiveConnection := func(t *testing.T, drainTimeout time.Duration) (*running, *lineClient) {
		be := startBackend(t, nil)
		fe := testFrontend(be.Addr)
		fe.DrainTimeout = drainTimeout
		r := startFrontend(t, fe, Options{})
		c := dialLine(t, r.addr)
		if _, err := c.ask("before"); err != nil {
			t.Fatal(err)
		}
		r.cancel()
		return r, c
	}
	t.Run("a connection that ends within drain_timeout ends on its own", func(t *testing.T) {
		r, c := stopWithALiveConnection(t, 10*time.Second)
		waitFor(t, "the listener closes", func() bool {
			nc, err := net.Dial("tcp", r.addr)
			if err == nil {
				nc.Close()
			}
			return err != nil
		})
		if _, err := c.ask("during drain"); err != nil {
			t.Fatalf("live connection during drain: %v", err)
		}
		select {
		case <-r.done:
			t.Fatal("Run returned while a connection was live")
		default:
		}
		c.c.Close()
		r.done <- poll.Receive(t, r.done, 5*time.Second, "Run to return after the last connection ended")
	})
	t.Run("a connection still open at drain_timeout is closed", func(t *testing.T) {
		_, c := stopWithALiveConnection(t, 100*time.Millisecond)
		if !closedByPeer(c.c, 5*time.Second) {
			t.Fatal("connection still open after drain_timeout")
		}
	})
}

func TestReloadRemovingABackendDrainsItsConnections(t *testing.T) {
	a, b := startBackend(t, nil), startBackend(t, nil)
	fe := testFrontend(a.Addr, b.Addr)
	fe.DrainTimeout = 300 * time.Millisecond
	m, reg := newTestMetrics(t)
	r := startFrontend(t, fe, Options{Metrics: m})
	on := oneToEach(t, r.addr, 2)

	fe = r.f.state.Load().cfg
	fe.Backends = []string{b.Addr}
	if err := r.f.Update(fe); err != nil {
		t.Fatal(err)
	}
	if _, err := on[a.Addr].ask("right after reload"); err != nil {
		t.Fatalf("connection to the removed backend, before drain_timeout: %v", err)
	}
	for range 5 {
		c := dialLine(t, r.addr)
		name, err := c.ask("new")
		c.c.Close()
		if err != nil || name != b.Addr {
			t.Fatalf("new connection after reload: %q, %v; want %s", name, err, b.Addr)
		}
	}
	if !closedByPeer(on[a.Addr].c, 5*time.Second) {
		t.Fatal("connection to the removed backend still open after drain_timeout")
	}
	if _, err := on[b.Addr].ask("still here"); err != nil {
		t.Fatalf("connection to the kept backend: %v", err)
	}
	if n, _ := testutil.GatherAndCount(reg, MetricBackendConnections); n != 1 {
		t.Errorf("%s has %d series, want 1 (the removed backend's deleted)", MetricBackendConnections, n)
	}
	want := []BackendStatus{{Address: b.Addr, Healthy: true, ActiveConnections: 1}}
	waitFor(t, "status shows the new set", func() bool {
		got := r.f.Status().Backends
		return len(got) == 1 && got[0] == want[0]
	})
}

func TestBackendGoingDownCutsItsConnections(t *testing.T) {
	for _, cut := range []bool{true, false} {
		t.Run(fmt.Sprintf("close_on_backend_down = %v", cut), func(t *testing.T) {
			a, b := startBackend(t, nil), startBackend(t, nil)
			fe := testFrontend(a.Addr, b.Addr)
			fe.CloseOnBackendDown = cut
			h := newFakeHealth()
			r := startFrontend(t, fe, Options{Health: h})
			on := oneToEach(t, r.addr, 2)
			h.Set(a.Addr, false)
			if cut {
				if !closedByPeer(on[a.Addr].c, 5*time.Second) {
					t.Fatal("connection to the down backend still open")
				}
			} else if _, err := on[a.Addr].ask("still"); err != nil {
				t.Fatalf("connection to the down backend was cut: %v", err)
			}
			if _, err := on[b.Addr].ask("still"); err != nil {
				t.Fatalf("connection to the healthy backend: %v", err)
			}
		})
	}
}

func TestStatusReportsBackends(t *testing.T) {
	a, b := startBackend(t, nil), startBackend(t, nil)
	h := newFakeHealth(b.Addr)
	r := startFrontend(t, testFrontend(a.Addr, b.Addr), Options{Health: h})
	c := dialLine(t, r.addr)
	if _, err := c.ask("hi"); err != nil {
		t.Fatal(err)
	}
	got := r.f.Status()
	want := Status{Name: "test", Listen: "127.0.0.1:0", Backends: []BackendStatus{
		{Address: a.Addr, Healthy: true, ActiveConnections: 1},
		{Address: b.Addr, Healthy: false, ActiveConnections: 0},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Status() (-want +got):\n%s", diff)
	}
	if !r.f.anyHealthy(r.f.state.Load()) {
		t.Error("anyHealthy = false with one healthy backend")
	}
}

func TestSourceBalanceKeepsAClientOnOneBackend(t *testing.T) {
	a, b, c := startBackend(t, nil), startBackend(t, nil), startBackend(t, nil)
	fe := testFrontend(a.Addr, b.Addr, c.Addr)
	fe.Balance = config.Source
	r := startFrontend(t, fe, Options{})
	seen := map[string]int{}
	for range 10 {
		lc := dialLine(t, r.addr)
		name, err := lc.ask("hi")
		if err != nil {
			t.Fatal(err)
		}
		lc.c.Close()
		seen[name]++
	}
	if len(seen) != 1 {
		t.Errorf("connections from 127.0.0.1 went to %v, want one backend", seen)
	}
}
