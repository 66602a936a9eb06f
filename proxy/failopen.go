package proxy

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

// checkFailOpen notes whether fail_open applies now (it is on and no
// backend is healthy), and on a change sets the metric and logs it once.
// It runs on every health change, on reload and at start and stop.
func (f *Frontend) checkFailOpen(stopping bool) {
	f.foMu.Lock()
	st := f.state.Load()
	on := !stopping && st.cfg.FailOpen && !f.anyHealthy(st)
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
