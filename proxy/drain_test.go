package proxy

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A drained backend gets no new connection; the connections it has go on;
// /status and the metric say it drains; enable gives it new ones again.
func TestDrainedBackendGetsNoNewConnectionsAndKeepsItsLiveOnes(t *testing.T) {
	a, b := startBackend(t, nil), startBackend(t, nil)
	m, _ := newTestMetrics(t)
	r := startFrontend(t, testFrontend(a.Addr, b.Addr), Options{Metrics: m})
	var onA *lineClient
	for onA == nil {
		c := dialLine(t, r.addr)
		if name, err := c.ask("hi"); err != nil {
			t.Fatal(err)
		} else if name == a.Addr {
			onA = c
		}
	}

	if changed, err := r.f.Drain(a.Addr, false); err != nil || !changed {
		t.Fatalf("Drain(%s) = %v, %v; want true, nil", a.Addr, changed, err)
	}
	if changed, err := r.f.Drain(a.Addr, false); err != nil || changed {
		t.Errorf("Drain of a drained backend = %v, %v; want false, nil", changed, err)
	}
	for range 10 {
		name, err := dialLine(t, r.addr).ask("hi")
		if err != nil {
			t.Fatal(err)
		}
		if name == a.Addr {
			t.Fatal("a new connection went to the drained backend")
		}
	}
	if _, err := onA.ask("still there"); err != nil {
		t.Fatalf("the drained backend's live connection: %v", err)
	}
	st := r.f.Status()
	if !st.Backends[0].Draining || st.Backends[1].Draining {
		t.Errorf("status %+v; want only %s draining", st.Backends, a.Addr)
	}
	if st.Backends[0].ActiveConnections != 1 {
		t.Errorf("drained backend has %d live connections in status, want 1", st.Backends[0].ActiveConnections)
	}
	if got := testutil.ToFloat64(m.draining.WithLabelValues("test", a.Addr)); got != 1 {
		t.Errorf("%s{backend=%s} = %v, want 1", MetricBackendDraining, a.Addr, got)
	}

	if changed, err := r.f.Enable(a.Addr); err != nil || !changed {
		t.Fatalf("Enable = %v, %v; want true, nil", changed, err)
	}
	if got := testutil.ToFloat64(m.draining.WithLabelValues("test", a.Addr)); got != 0 {
		t.Errorf("%s after enable = %v, want 0", MetricBackendDraining, got)
	}
	served := map[string]bool{}
	for range 6 {
		name, err := dialLine(t, r.addr).ask("hi")
		if err != nil {
			t.Fatal(err)
		}
		served[name] = true
	}
	if !served[a.Addr] {
		t.Error("the enabled backend got no new connection")
	}
}

// Draining the last backend that takes new connections is refused unless
// forced; forced, new clients are refused and counted.
func TestDrainOfTheLastEnabledBackendIsRefusedUnlessForced(t *testing.T) {
	a, b := startBackend(t, nil), startBackend(t, nil)
	m, _ := newTestMetrics(t)
	fe := testFrontend(a.Addr, b.Addr)
	fe.FailOpen = true // a drain is the operator's word: fail_open does not undo it
	r := startFrontend(t, fe, Options{Metrics: m})
	if _, err := r.f.Drain(a.Addr, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.f.Drain(b.Addr, false); !errors.Is(err, ErrLastBackend) {
		t.Fatalf("Drain of the last enabled backend: %v, want ErrLastBackend", err)
	}
	if r.f.Status().Backends[1].Draining {
		t.Fatal("the refused drain drained")
	}
	if _, err := dialLine(t, r.addr).ask("hi"); err != nil {
		t.Fatalf("after the refused drain: %v", err)
	}
	if changed, err := r.f.Drain(b.Addr, true); err != nil || !changed {
		t.Fatalf("forced Drain = %v, %v; want true, nil", changed, err)
	}
	if _, err := dialLine(t, r.addr).ask("hi"); err == nil {
		t.Fatal("a client was served with every backend drained")
	}
	if got := testutil.ToFloat64(m.rejected.WithLabelValues("test", ReasonNoBackend)); got != 1 {
		t.Errorf("rejected{reason=no_backend} = %v, want 1", got)
	}
	if _, err := r.f.Drain("192.0.2.1:6443", true); !errors.Is(err, ErrUnknownBackend) {
		t.Errorf("Drain of an unknown address: %v, want ErrUnknownBackend", err)
	}
	if _, err := r.f.Enable("192.0.2.1:6443"); !errors.Is(err, ErrUnknownBackend) {
		t.Errorf("Enable of an unknown address: %v, want ErrUnknownBackend", err)
	}
}

// A drain outlives a reload that keeps the backend, and a frontend that
// replaces another (a moved listener) keeps its drains; a backend removed
// and added again comes back enabled.
func TestDrainSurvivesAReloadThatKeepsTheBackend(t *testing.T) {
	a, b, c := startBackend(t, nil), startBackend(t, nil), startBackend(t, nil)
	fe := testFrontend(a.Addr, b.Addr)
	r := startFrontend(t, fe, Options{})
	if _, err := r.f.Drain(a.Addr, false); err != nil {
		t.Fatal(err)
	}
	fe.Backends = []string{a.Addr, b.Addr, c.Addr}
	fe.IdleTimeout = 0
	if err := r.f.Update(fe); err != nil {
		t.Fatal(err)
	}
	if !r.f.Status().Backends[0].Draining {
		t.Fatal("the reload enabled the drained backend")
	}
	for range 6 {
		if name, err := dialLine(t, r.addr).ask("hi"); err != nil || name == a.Addr {
			t.Fatalf("after the reload: served by %s (%v), want never the drained %s", name, err, a.Addr)
		}
	}

	moved := fe
	moved.Listen = "127.0.0.1:0"
	f2, err := New(moved, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f2.KeepDrainsOf(r.f)
	if st := f2.Status(); !st.Backends[0].Draining || st.Backends[1].Draining || st.Backends[2].Draining {
		t.Errorf("replacing frontend: %+v; want only %s draining", st.Backends, a.Addr)
	}

	fe.Backends = []string{b.Addr, c.Addr}
	if err := r.f.Update(fe); err != nil {
		t.Fatal(err)
	}
	fe.Backends = []string{a.Addr, b.Addr, c.Addr}
	if err := r.f.Update(fe); err != nil {
		t.Fatal(err)
	}
	if r.f.Status().Backends[0].Draining {
		t.Error("a backend removed and added again is still draining")
	}
}

// While the only healthy backend is drained, the frontend fails open to
// the others (fail_open on): drained is not "may take connections".
func TestDrainingTheOnlyHealthyBackendFailsOpenToTheOthers(t *testing.T) {
	a, b := startBackend(t, nil), startBackend(t, nil)
	h := newFakeHealth(b.Addr)
	fe := testFrontend(a.Addr, b.Addr)
	fe.FailOpen = true
	r := startFrontend(t, fe, Options{Health: h})
	if r.f.Status().FailOpen {
		t.Fatal("fails open with a healthy backend")
	}
	if _, err := r.f.Drain(a.Addr, false); err != nil {
		t.Fatal(err)
	}
	if !r.f.Status().FailOpen {
		t.Error("does not fail open with its only healthy backend drained")
	}
	if name, err := dialLine(t, r.addr).ask("hi"); err != nil || name != b.Addr {
		t.Errorf("served by %s (%v), want %s", name, err, b.Addr)
	}
}
