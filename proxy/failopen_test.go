package proxy

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vrrplb/vrrplb/internal/syncbuf"
)

// syncBuffer is a log sink that tests read while the frontend writes.
type syncBuffer struct{ syncbuf.Buffer }

// count returns how many log lines contain msg.
func (s *syncBuffer) count(msg string) int {
	return strings.Count(s.String(), msg)
}

func testLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// While no backend is healthy, fail_open sends new connections to every
// backend in balance order, and a backend that refuses the connect passes
// the client on to the next one. It starts and ends with one log line each
// and shows in the metric and the status.
func TestFailOpenSendsConnectionsToEveryBackendWhileNoneIsHealthy(t *testing.T) {
	a, b, dead := startBackend(t, nil), startBackend(t, nil), startBackend(t, nil)
	dead.Kill() // its address now refuses connects
	h := newFakeHealth(a.Addr, b.Addr, dead.Addr)
	fe := testFrontend(a.Addr, dead.Addr, b.Addr)
	fe.FailOpen = true
	m, _ := newTestMetrics(t)
	var logs syncBuffer
	r := startFrontend(t, fe, Options{Health: h, Metrics: m, Logger: testLogger(&logs)})

	waitFor(t, "the frontend fails open", func() bool { return r.f.Status().FailOpen })
	if got := testutil.ToFloat64(m.failOpen.WithLabelValues("test")); got != 1 {
		t.Errorf("%s = %v while no backend is healthy, want 1", MetricFrontendFailOpen, got)
	}
	served := map[string]int{}
	for range 12 {
		name, err := dialLine(t, r.addr).ask("hi")
		if err != nil {
			t.Fatalf("a client while failing open: %v", err)
		}
		served[name]++
	}
	if served[a.Addr] == 0 || served[b.Addr] == 0 || len(served) != 2 {
		t.Errorf("served %v while failing open; want both live backends, whatever their health", served)
	}
	if h.Faults(dead.Addr) == 0 {
		t.Errorf("the refusing backend was never tried (no passive fault reported)")
	}

	h.Set(b.Addr, true)
	waitFor(t, "fail open ends", func() bool { return !r.f.Status().FailOpen })
	if got := testutil.ToFloat64(m.failOpen.WithLabelValues("test")); got != 0 {
		t.Errorf("%s = %v with a healthy backend, want 0", MetricFrontendFailOpen, got)
	}
	for range 6 {
		name, err := dialLine(t, r.addr).ask("hi")
		if err != nil {
			t.Fatal(err)
		}
		if name != b.Addr {
			t.Fatalf("served by %s with %s healthy: fail open is over, only healthy backends serve", name, b.Addr)
		}
	}
	h.Set(a.Addr, false) // a change that moves nothing: no log line
	if n := logs.count(logFailOpenBegins); n != 1 {
		t.Errorf("%d log lines %q, want 1:\n%s", n, logFailOpenBegins, logs.String())
	}
	if n := logs.count(logFailOpenEnds); n != 1 {
		t.Errorf("%d log lines %q, want 1:\n%s", n, logFailOpenEnds, logs.String())
	}
}

// With fail_open off, a frontend without a healthy backend refuses, and
// says in its metric and status that it does not fail open.
func TestFailOpenOffRefusesWhileNoneIsHealthy(t *testing.T) {
	a := startBackend(t, nil)
	h := newFakeHealth(a.Addr)
	fe := testFrontend(a.Addr)
	fe.FailOpen = false
	m, _ := newTestMetrics(t)
	r := startFrontend(t, fe, Options{Health: h, Metrics: m})
	c := dialLine(t, r.addr)
	if _, err := c.ask("hi"); err == nil {
		t.Fatal("a client was served with no healthy backend and fail_open off")
	}
	if r.f.Status().FailOpen {
		t.Error("status says fail_open applies with fail_open off")
	}
	if got := testutil.ToFloat64(m.failOpen.WithLabelValues("test")); got != 0 {
		t.Errorf("%s = %v, want 0", MetricFrontendFailOpen, got)
	}
}

// A reload that turns fail_open on while no backend is healthy starts
// failing open at once.
func TestReloadTurningFailOpenOnAppliesAtOnce(t *testing.T) {
	a := startBackend(t, nil)
	h := newFakeHealth(a.Addr)
	fe := testFrontend(a.Addr)
	r := startFrontend(t, fe, Options{Health: h})
	if r.f.Status().FailOpen {
		t.Fatal("fails open with fail_open off")
	}
	fe.FailOpen = true
	if err := r.f.Update(fe); err != nil {
		t.Fatal(err)
	}
	if !r.f.Status().FailOpen {
		t.Fatal("status does not say fail_open applies after the reload")
	}
	if _, err := dialLine(t, r.addr).ask("hi"); err != nil {
		t.Fatalf("a client after the reload: %v", err)
	}
}

// While the frontend fails open, close_on_backend_down cuts nothing: the
// clients would only come back to the same down backends.
func TestFailOpenCutsNoConnection(t *testing.T) {
	a := startBackend(t, nil)
	h := newFakeHealth()
	fe := testFrontend(a.Addr)
	fe.FailOpen = true
	fe.CloseOnBackendDown = true
	r := startFrontend(t, fe, Options{Health: h})
	c := dialLine(t, r.addr)
	if _, err := c.ask("hi"); err != nil {
		t.Fatal(err)
	}
	h.Set(a.Addr, false)
	if !r.f.Status().FailOpen {
		t.Fatal("does not fail open with its only backend down")
	}
	if closedByPeer(c.c, quietCut+time.Second) {
		t.Fatal("a connection was cut while the frontend fails open")
	}
	if _, err := c.ask("still"); err != nil {
		t.Fatal(err)
	}
}

// settlingHealth is a fakeHealth that has no first verdict until settle.
type settlingHealth struct {
	*fakeHealth
	settled chan struct{}
}

func (h settlingHealth) Settled() bool {
	select {
	case <-h.settled:
		return true
	default:
		return false
	}
}

// A starting frontend whose checks have no verdict yet does not announce
// fail_open (its connections fail open all the same); once every backend
// has a verdict and none is healthy, it does.
func TestFailOpenIsAnnouncedOnlyOnceHealthHasVerdicts(t *testing.T) {
	a := startBackend(t, nil)
	h := settlingHealth{newFakeHealth(), make(chan struct{})}
	h.Set(a.Addr, false)
	fe := testFrontend(a.Addr)
	fe.FailOpen = true
	var logs syncBuffer
	r := startFrontend(t, fe, Options{Health: h, Logger: testLogger(&logs)})
	if _, err := dialLine(t, r.addr).ask("hi"); err != nil {
		t.Fatalf("a client before the first verdicts: %v", err)
	}
	if r.f.Status().FailOpen || logs.count(logFailOpenBegins) != 0 {
		t.Fatalf("fail_open announced before health had verdicts:\n%s", logs.String())
	}
	close(h.settled)
	waitFor(t, "fail_open is announced", func() bool { return r.f.Status().FailOpen })
	// The state is set before the line is written: wait for the line too.
	waitFor(t, "fail_open is logged", func() bool { return logs.count(logFailOpenBegins) > 0 })
	if n := logs.count(logFailOpenBegins); n != 1 {
		t.Errorf("%d log lines %q, want 1", n, logFailOpenBegins)
	}
}
