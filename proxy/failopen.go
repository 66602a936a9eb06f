package proxy

import (
	"context"
	"time"
)

// fail_open: while no backend may take connections, new connections go to
// every backend instead of being refused (the candidates are chosen in
// connect_linux.go); this file keeps the frontend's view of it.

// anyHealthy reports whether one of st's backends may take connections:
// healthy and not draining.
func (f *Frontend) anyHealthy(st *state) bool {
	for _, b := range st.backends {
		if !b.draining.Load() && f.health.Healthy(b.addr) {
			return true
		}
	}
	return false
}

// Log lines of fail_open (tests look for them).
const (
	logFailOpenBegins = "no healthy backend: failing open, new connections go to every backend"
	logFailOpenEnds   = "fail open over"
)

// settler is a Health that can say whether it has a first verdict on every
// backend (*health.Checker).
type settler interface{ Settled() bool }

// healthSettled reports whether health has a first verdict on every
// backend; a Health that cannot say always has.
func (f *Frontend) healthSettled() bool {
	s, ok := f.health.(settler)
	return !ok || s.Settled()
}

// settleEvery is how often a starting frontend looks whether its health
// checks have their first verdicts: until then fail_open is not announced
// (connections fail open all the same), and a change from no verdict to
// down is not a change that Health reports.
const settleEvery = 100 * time.Millisecond

// watchSettle re-evaluates fail_open once health has settled, or ctx ends.
func (f *Frontend) watchSettle(ctx context.Context) {
	t := f.clock.NewTimer(settleEvery)
	defer t.Stop()
	for !f.healthSettled() {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			t.Reset(settleEvery)
		}
	}
	f.checkFailOpen(false)
}

// checkFailOpen notes whether fail_open applies now (it is on and no
// backend is healthy), and on a change sets the metric and logs it once.
// It runs on every health change, on reload, on a drain, at start, once
// health has settled, and at stop. Before health has a first verdict on
// every backend it does not apply.
func (f *Frontend) checkFailOpen(stopping bool) {
	f.foMu.Lock()
	st := f.state.Load()
	on := !stopping && st.cfg.FailOpen && !f.anyHealthy(st) && f.healthSettled()
	changed := on != f.failOpen.Load()
	if changed {
		f.failOpen.Store(on)
		f.metrics.setFailOpen(on)
	}
	f.foMu.Unlock()
	switch {
	case !changed || stopping:
	case on:
		f.log.Warn(logFailOpenBegins, "backends", len(st.backends))
	case !st.cfg.FailOpen:
		f.log.Info(logFailOpenEnds, "reason", "fail_open is off")
	default:
		f.log.Info(logFailOpenEnds, "reason", "a backend is healthy")
	}
}
