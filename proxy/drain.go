package proxy

import (
	"errors"
	"fmt"
	"slices"
)

// The runtime drain of a backend (`vrrplb backend drain|enable`).

// Errors of Drain.
var (
	// ErrUnknownBackend: the frontend has no backend of that address.
	ErrUnknownBackend = errors.New("no such backend")
	// ErrLastBackend: draining it would leave no backend for new
	// connections; Drain with force does it anyway.
	ErrLastBackend = errors.New("it is the last backend taking new connections (force drains it anyway)")
)

// Drain stops new connections to the backend addr (as configured):
// connections live on it go on, its health checks go on, and balancing
// and fail_open leave it out. Draining the last backend that takes new
// connections fails with ErrLastBackend unless force is set. It reports
// whether anything changed. A drain lasts until Enable, across reloads
// that keep the backend; a backend removed and added again starts enabled.
func (f *Frontend) Drain(addr string, force bool) (changed bool, err error) {
	f.mu.Lock()
	st := f.state.Load()
	b, err := f.lookupBackend(st, addr)
	if err != nil {
		f.mu.Unlock()
		return false, err
	}
	if b.draining.Load() {
		f.mu.Unlock()
		return false, nil
	}
	enabled := 0
	for _, o := range st.backends {
		if !o.draining.Load() {
			enabled++
		}
	}
	if enabled == 1 && !force {
		f.mu.Unlock()
		return false, fmt.Errorf("frontend %q: backend %s: %w", f.name, addr, ErrLastBackend)
	}
	b.draining.Store(true)
	b.metrics.draining.Set(1)
	f.mu.Unlock()
	f.log.Info("backend draining: no new connections", "backend", addr, "connections", b.active.Load())
	f.checkFailOpen(false)
	return true, nil
}

// Enable undoes Drain: the backend takes new connections again when
// healthy. It reports whether anything changed.
func (f *Frontend) Enable(addr string) (changed bool, err error) {
	f.mu.Lock()
	b, err := f.lookupBackend(f.state.Load(), addr)
	if err != nil {
		f.mu.Unlock()
		return false, err
	}
	changed = b.draining.Swap(false)
	if changed {
		b.metrics.draining.Set(0)
	}
	f.mu.Unlock()
	if changed {
		f.log.Info("backend enabled: takes new connections again", "backend", addr)
		f.checkFailOpen(false)
	}
	return changed, nil
}

// lookupBackend is the backend addr of st, or ErrUnknownBackend with the
// frontend and the address.
func (f *Frontend) lookupBackend(st *state, addr string) (*backend, error) {
	i := slices.IndexFunc(st.backends, func(b *backend) bool { return b.addr == addr })
	if i < 0 {
		return nil, fmt.Errorf("frontend %q: backend %s: %w", f.name, addr, ErrUnknownBackend)
	}
	return st.backends[i], nil
}

// HasBackend reports whether addr is one of the frontend's backends.
func (f *Frontend) HasBackend(addr string) bool {
	return slices.ContainsFunc(f.state.Load().backends, func(b *backend) bool { return b.addr == addr })
}

// KeepDrainsOf drains in f the backends drained in old that f has too: a
// frontend that replaces old (a reload that moves its listener) keeps the
// operator's drains, as an update in place does.
func (f *Frontend) KeepDrainsOf(old *Frontend) {
	for _, b := range old.state.Load().backends {
		if b.draining.Load() && f.HasBackend(b.addr) {
			_, _ = f.Drain(b.addr, true)
		}
	}
}
