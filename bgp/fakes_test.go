package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/internal/clock/clocktest"
	"github.com/vrrplb/vrrplb/internal/poll"
)

// fakeSpeaker records what the announcer asks of it.
type fakeSpeaker struct {
	mu      sync.Mutex
	global  Global
	started bool
	stopped bool
	peers   map[netip.Addr]Peer
	routes  map[netip.Prefix]Route
	log     []string // "start", "stop", "add-peer A", "del-peer A", "announce P", "withdraw P"
}

func newFakeSpeaker() *fakeSpeaker {
	return &fakeSpeaker{peers: map[netip.Addr]Peer{}, routes: map[netip.Prefix]Route{}}
}

func (f *fakeSpeaker) record(s string) { f.log = append(f.log, s) }

func (f *fakeSpeaker) Start(_ context.Context, g Global) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.global, f.started = g, true
	f.record("start")
	return nil
}

func (f *fakeSpeaker) AddPeer(_ context.Context, p Peer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.peers[p.Address]; ok {
		return fmt.Errorf("peer %v exists", p.Address)
	}
	f.peers[p.Address] = p
	f.record("add-peer " + p.Address.String())
	return nil
}

func (f *fakeSpeaker) DeletePeer(_ context.Context, a netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.peers, a)
	f.record("del-peer " + a.String())
	return nil
}

func (f *fakeSpeaker) Announce(_ context.Context, r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[r.Prefix] = r
	f.record("announce " + r.Prefix.String())
	return nil
}

func (f *fakeSpeaker) Withdraw(_ context.Context, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.routes, p)
	f.record("withdraw " + p.String())
	return nil
}

func (f *fakeSpeaker) Peers(context.Context) ([]PeerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []PeerStatus
	for _, p := range f.peers {
		out = append(out, PeerStatus{Address: p.Address, ASN: p.ASN, State: Established, UpdatesSent: uint64(len(f.log))})
	}
	return out, nil
}

func (f *fakeSpeaker) Stop(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	f.record("stop")
	return nil
}

func (f *fakeSpeaker) route(p netip.Prefix) (Route, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.routes[p]
	return r, ok
}

func (f *fakeSpeaker) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// fakeAddresses is the host's loopback.
type fakeAddresses struct {
	mu sync.Mutex
	on map[netip.Prefix]bool
}

func (f *fakeAddresses) Add(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on[p] = true
	return nil
}

func (f *fakeAddresses) Remove(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.on, p)
	return nil
}

func (f *fakeAddresses) has(p netip.Prefix) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.on[p]
}

// fakeTracker is a frontend whose verdict the test sets.
type fakeTracker struct {
	ch chan verdict
}

type verdict struct {
	ok   bool
	done chan struct{} // closed once report has returned
}

func (f *fakeTracker) Run(ctx context.Context, report func(bool)) error {
	for {
		select {
		case v := <-f.ch:
			report(v.ok)
			close(v.done)
		case <-ctx.Done():
			return nil
		}
	}
}

// harness runs an Announcer with fakes.
type harness struct {
	t        *testing.T
	a        *Announcer
	speakers []*fakeSpeaker
	addrs    *fakeAddresses
	trackers map[string]*fakeTracker
	clock    *clocktest.Clock
	cancel   context.CancelFunc
	runErr   chan error
	mu       sync.Mutex
}

func newHarness(t *testing.T, cfg Config, frontends ...string) *harness {
	t.Helper()
	h := &harness{t: t, addrs: &fakeAddresses{on: map[netip.Prefix]bool{}}, trackers: map[string]*fakeTracker{},
		clock: clocktest.New(time.Now()), runErr: make(chan error, 1)}
	for _, name := range frontends {
		h.trackers[name] = &fakeTracker{ch: make(chan verdict)}
	}
	a, err := New(cfg, Options{
		NewSpeaker: func(*slog.Logger) Speaker {
			s := newFakeSpeaker()
			h.mu.Lock()
			h.speakers = append(h.speakers, s)
			h.mu.Unlock()
			return s
		},
		Addresses: h.addrs,
		Tracker: func(name string) (Tracker, error) {
			tr, ok := h.trackers[name]
			if !ok {
				return nil, fmt.Errorf("no frontend %q", name)
			}
			return tr, nil
		},
		Clock: h.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.a = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runErr <- a.Run(ctx) }()
	select {
	case <-a.running:
	case err := <-h.runErr:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	if err := poll.Receive(h.t, h.runErr, 5*time.Second, "Run to return after its context ended"); err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.runErr <- nil
}

// speaker is the newest speaker the announcer made.
func (h *harness) speaker() *fakeSpeaker {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.speakers[len(h.speakers)-1]
}

// verdict reports a frontend's health and waits until the announcer has
// acted on it.
func (h *harness) verdict(frontend string, ok bool) {
	h.t.Helper()
	v := verdict{ok: ok, done: make(chan struct{})}
	h.trackers[frontend].ch <- v
	<-v.done
}
