package engine

import (
	"context"
	"sync"

	"github.com/vrrplb/vrrplb/vrrp"
)

// verdictHub holds the frontend verdicts the daemon forwards, for the
// engine's track_frontend trackers.
type verdictHub struct {
	mu       sync.Mutex
	verdicts map[string]bool
	watchers map[chan struct{}]struct{}
}

func newVerdictHub() *verdictHub {
	return &verdictHub{verdicts: map[string]bool{}, watchers: map[chan struct{}]struct{}{}}
}

func (h *verdictHub) set(name string, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.verdicts[name] = up
	for w := range h.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

func (h *verdictHub) tracker(name string) (vrrp.Tracker, error) {
	return frontendVerdicts{hub: h, name: name}, nil
}

// frontendVerdicts is track_frontend in the engine: like the health
// checker's own tracker it first reports once the frontend has a verdict,
// then on every change.
type frontendVerdicts struct {
	hub  *verdictHub
	name string
}

func (t frontendVerdicts) Name() string { return "frontend " + t.name }

func (t frontendVerdicts) Run(ctx context.Context, report func(ok bool)) error {
	h := t.hub
	wake := make(chan struct{}, 1)
	h.mu.Lock()
	h.watchers[wake] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.watchers, wake)
		h.mu.Unlock()
	}()
	reported, last := false, false
	for {
		h.mu.Lock()
		up, known := h.verdicts[t.name]
		h.mu.Unlock()
		if known && (!reported || up != last) {
			report(up)
			reported, last = true, up
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}
