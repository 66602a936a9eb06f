package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vrrplb/vrrplb/internal/clock"
)

// Speaker is the BGP speaker as the announcer uses it. NewGoBGP is the real
// one; tests use a fake.
type Speaker interface {
	// Start brings the speaker up with no peers and no routes.
	Start(ctx context.Context, g Global) error
	AddPeer(ctx context.Context, p Peer) error
	DeletePeer(ctx context.Context, addr netip.Addr) error
	// Announce adds r, replacing what was announced for r.Prefix.
	Announce(ctx context.Context, r Route) error
	Withdraw(ctx context.Context, prefix netip.Prefix) error
	Peers(ctx context.Context) ([]PeerStatus, error)
	// Stop closes every session (with a Cease NOTIFICATION) and the speaker.
	Stop(ctx context.Context) error
}

// PeerStatus is one session as status and metrics show it.
type PeerStatus struct {
	Address netip.Addr
	ASN     uint32
	// State is the FSM state in lower case: idle, connect, active,
	// opensent, openconfirm, established (RFC 4271 §8.2.2).
	State string
	// Since is when the session was established; zero unless established.
	Since time.Time
	// UpdatesSent counts UPDATE messages sent in this peer's life.
	UpdatesSent uint64
}

// Established is the FSM state of a session that carries routes.
const Established = "established"

// Addresses holds the announced prefixes on the host so that the proxy
// answers on them (the loopback interface on Linux).
type Addresses interface {
	Add(p netip.Prefix) error
	Remove(p netip.Prefix) error
}

// Tracker reports whether a frontend has a healthy backend: the first call
// once known, then on every change, until ctx ends (health.Checker.Track).
type Tracker interface {
	Run(ctx context.Context, report func(ok bool)) error
}

// Options are an Announcer's collaborators; zero fields get the real thing.
type Options struct {
	Logger *slog.Logger
	// NewSpeaker makes a speaker; default NewGoBGP.
	NewSpeaker func(log *slog.Logger) Speaker
	// Addresses keeps the prefixes on the host; default the loopback
	// interface (Linux only).
	Addresses Addresses
	// Tracker returns the verdicts of the frontend called name.
	Tracker func(name string) (Tracker, error)
	// Clock times the graceful_shutdown wait; nil is clock.System.
	Clock clock.Clock
}

// AnnouncementStatus is one [[announce]] as status shows it.
type AnnouncementStatus struct {
	Name     string
	Prefixes []netip.Prefix
	State    State
	Why      Why
}

// Status is the announcer's part of /status.
type Status struct {
	Peers         []PeerStatus
	Announcements []AnnouncementStatus
	Maintenance   bool
}

// Announcer keeps the configured announcements on the host and at the
// peers, with the path that health, maintenance and the stop phase ask
// for. Every change goes through its Run goroutine, which alone calls the
// speaker.
type Announcer struct {
	log  *slog.Logger
	opts Options

	events  chan func()
	running chan struct{} // closed when Run's loop starts
	done    chan struct{} // closed when Run returns

	// Owned by the Run goroutine.
	cfg         Config
	speaker     Speaker // nil while no local ASN is configured
	verdicts    map[string]bool
	trackers    map[string]context.CancelFunc
	current     map[netip.Prefix]Route // what the speaker has; absent: withdrawn
	onHost      map[netip.Prefix]bool
	maintenance bool
	phase       Phase
	runCtx      context.Context

	// mu guards the copies that Status, Maintenance and the metrics read.
	mu        sync.Mutex
	snapshot  []AnnouncementStatus
	snapSpeak Speaker
	snapMaint bool
}

// New returns an announcer for cfg; Run starts it.
func New(cfg Config, opts Options) (*Announcer, error) {
	if cfg.Global.ASN != 0 {
		if err := cfg.check(); err != nil {
			return nil, err
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.NewSpeaker == nil {
		opts.NewSpeaker = NewGoBGP
	}
	if opts.Addresses == nil {
		opts.Addresses = loopback{}
	}
	opts.Clock = clock.Or(opts.Clock)
	if opts.Tracker == nil {
		opts.Tracker = func(name string) (Tracker, error) { return nil, fmt.Errorf("no frontend %q", name) }
	}
	a := &Announcer{
		log:      opts.Logger,
		opts:     opts,
		events:   make(chan func()),
		running:  make(chan struct{}),
		done:     make(chan struct{}),
		cfg:      cfg,
		verdicts: map[string]bool{},
		trackers: map[string]context.CancelFunc{},
		current:  map[netip.Prefix]Route{},
		onHost:   map[netip.Prefix]bool{},
	}
	a.publish()
	return a, nil
}

// errStopped is returned by calls made after Run has returned.
var errStopped = errors.New("bgp announcer is not running")

// do runs f on the Run goroutine and waits for it.
func (a *Announcer) do(ctx context.Context, f func() error) error {
	var err error
	ran := make(chan struct{})
	select {
	case a.events <- func() { err = f(); close(ran) }:
	case <-a.done:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return err
	case <-a.done:
		return errStopped
	}
}

// Run brings up the speaker, its peers and the announcements, follows the
// verdicts until ctx ends, then withdraws everything (if Shutdown has not),
// closes the sessions and takes the prefixes off the host.
func (a *Announcer) Run(ctx context.Context) error {
	defer close(a.done)
	a.runCtx = ctx
	if err := a.startSpeaker(ctx); err != nil {
		return err
	}
	if err := a.placeAddresses(); err != nil {
		a.stopSpeaker()
		return err
	}
	a.retrack(ctx)
	a.sync(ctx)
	close(a.running)
	for {
		select {
		case f := <-a.events:
			f()
		case <-ctx.Done():
			a.finish()
			return nil
		}
	}
}

// finish withdraws what is left, closes the sessions and removes the
// prefixes from the host.
func (a *Announcer) finish() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.phase = PhaseStopped
	a.sync(ctx)
	for _, cancelTrack := range a.trackers {
		cancelTrack()
	}
	a.stopSpeaker()
	for p := range a.onHost {
		if err := a.opts.Addresses.Remove(p); err != nil {
			a.log.Error("bgp: removing an announced prefix from the host", "prefix", p.String(), "err", err)
		}
		delete(a.onHost, p)
	}
}

func (a *Announcer) startSpeaker(ctx context.Context) error {
	if a.cfg.Global.ASN == 0 {
		return nil
	}
	s := a.opts.NewSpeaker(a.log)
	if err := s.Start(ctx, a.cfg.Global); err != nil {
		return fmt.Errorf("bgp: starting the speaker: %w", err)
	}
	for _, p := range a.cfg.Peers {
		if err := s.AddPeer(ctx, p); err != nil {
			_ = s.Stop(ctx)
			return fmt.Errorf("bgp: peer %v: %w", p.Address, err)
		}
	}
	a.speaker = s
	a.current = map[netip.Prefix]Route{}
	a.log.Info("bgp speaker started", "local_asn", a.cfg.Global.ASN, "router_id", a.cfg.Global.RouterID.String(), "peers", len(a.cfg.Peers))
	a.publish()
	return nil
}

func (a *Announcer) stopSpeaker() {
	if a.speaker == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.speaker.Stop(ctx); err != nil {
		a.log.Error("bgp: stopping the speaker", "err", err)
	}
	a.speaker = nil
	a.current = map[netip.Prefix]Route{}
	a.publish()
}

// placeAddresses puts every configured prefix on the host.
func (a *Announcer) placeAddresses() error {
	for _, an := range a.cfg.Announcements {
		for _, p := range an.Prefixes {
			if a.onHost[p] {
				continue
			}
			if err := a.opts.Addresses.Add(p); err != nil {
				return fmt.Errorf("bgp: announce %q: adding %v to the host: %w", an.Name, p, err)
			}
			a.onHost[p] = true
		}
	}
	return nil
}

// retrack runs a tracker for every frontend an announcement tracks and
// stops the ones no longer tracked.
func (a *Announcer) retrack(ctx context.Context) {
	wanted := map[string]bool{}
	for _, an := range a.cfg.Announcements {
		for _, name := range an.TrackFrontends {
			wanted[name] = true
		}
	}
	for name, cancel := range a.trackers {
		if !wanted[name] {
			cancel()
			delete(a.trackers, name)
			delete(a.verdicts, name)
		}
	}
	for name := range wanted {
		if _, ok := a.trackers[name]; ok {
			continue
		}
		t, err := a.opts.Tracker(name)
		if err != nil {
			// config refuses an unknown frontend; keep it withdrawn.
			a.log.Error("bgp: tracked frontend", "frontend", name, "err", err)
			a.trackers[name] = func() {}
			continue
		}
		tctx, cancel := context.WithCancel(ctx)
		a.trackers[name] = cancel
		go func() {
			_ = t.Run(tctx, func(ok bool) {
				_ = a.do(tctx, func() error {
					if tctx.Err() != nil {
						return nil
					}
					a.verdicts[name] = ok
					a.sync(a.runCtx)
					return nil
				})
			})
		}()
	}
}

// situation is what Decide needs for an.
func (a *Announcer) situation(an Announcement) Situation {
	s := Situation{Known: true, Healthy: true, Maintenance: a.maintenance, Phase: a.phase}
	for _, name := range an.TrackFrontends {
		ok, known := a.verdicts[name]
		if !known {
			s.Known = false
		}
		if !ok {
			s.Healthy = false
		}
	}
	return s
}

// sync brings the speaker in line with what Decide says for every
// announcement: the one place that acts on a decision.
func (a *Announcer) sync(ctx context.Context) {
	prev := map[string]AnnouncementStatus{}
	a.mu.Lock()
	for _, st := range a.snapshot {
		prev[st.Name] = st
	}
	a.mu.Unlock()

	snap := make([]AnnouncementStatus, 0, len(a.cfg.Announcements))
	for _, an := range a.cfg.Announcements {
		adv := Decide(an, a.situation(an))
		for _, r := range Routes(an, adv, a.cfg.Global.ASN) {
			a.apply(ctx, an.Name, r)
		}
		st := AnnouncementStatus{Name: an.Name, Prefixes: slices.Clone(an.Prefixes), State: adv.State, Why: adv.Why}
		if old, ok := prev[an.Name]; !ok || old.State != st.State || old.Why != st.Why {
			a.log.Info("bgp announcement", "announce", an.Name, "state", st.State.String(), "reason", string(st.Why),
				"prepend", adv.Prepend, "graceful_shutdown", adv.GracefulShutdown)
		}
		snap = append(snap, st)
	}
	a.mu.Lock()
	a.snapshot = snap
	a.mu.Unlock()
}

// apply hands one route to the speaker if it differs from what it has.
func (a *Announcer) apply(ctx context.Context, name string, r Route) {
	if a.speaker == nil {
		return
	}
	cur, announced := a.current[r.Prefix]
	switch {
	case r.Withdraw && !announced:
		return
	case r.Withdraw:
		if err := a.speaker.Withdraw(ctx, r.Prefix); err != nil {
			a.log.Error("bgp: withdrawing", "announce", name, "prefix", r.Prefix.String(), "err", err)
			return
		}
		delete(a.current, r.Prefix)
	case announced && cur.Equal(r):
		return
	default:
		if err := a.speaker.Announce(ctx, r); err != nil {
			a.log.Error("bgp: announcing", "announce", name, "prefix", r.Prefix.String(), "err", err)
			return
		}
		a.current[r.Prefix] = r
	}
}

// publish copies what Status and the metrics read.
func (a *Announcer) publish() {
	a.mu.Lock()
	a.snapSpeak = a.speaker
	a.snapMaint = a.maintenance
	a.mu.Unlock()
}

// SetMaintenance withdraws every announcement (on) or restores them (off),
// keeping the prefixes on the host so the proxy still answers flows that
// arrive. It is lost on restart.
func (a *Announcer) SetMaintenance(ctx context.Context, on bool) error {
	return a.do(ctx, func() error {
		if a.maintenance != on {
			a.log.Info("bgp maintenance", "on", on)
		}
		a.maintenance = on
		a.publish()
		a.sync(ctx)
		return nil
	})
}

// Maintenance reports whether maintenance is on.
func (a *Announcer) Maintenance() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.snapMaint
}

// Shutdown is the first part of a graceful stop, before the proxy stops
// accepting: announcements go out again with GRACEFUL_SHUTDOWN for the
// configured time (routers move new flows to other hosts), then they are
// withdrawn. The sessions stay up until Run's ctx ends.
func (a *Announcer) Shutdown(ctx context.Context) error {
	var wait time.Duration
	err := a.do(ctx, func() error {
		a.phase = PhaseGracefulShutdown
		a.sync(ctx)
		if len(a.current) > 0 {
			wait = a.cfg.GracefulShutdown
		}
		return nil
	})
	if err != nil {
		return err
	}
	if wait > 0 {
		a.log.Info("bgp graceful shutdown: announced with GRACEFUL_SHUTDOWN; withdrawing after", "wait", wait.String())
		clock.Sleep(ctx, a.opts.Clock, wait)
	}
	return a.do(context.Background(), func() error {
		a.phase = PhaseStopped
		a.sync(ctx)
		return nil
	})
}

// Reload applies next by difference: a peer added, removed or changed
// opens, closes or reopens its own session only; announcements added,
// removed or changed are announced, withdrawn or re-announced; a new local
// ASN or router ID restarts the speaker, since every session depends on
// them.
func (a *Announcer) Reload(ctx context.Context, next Config) error {
	if next.Global.ASN != 0 {
		if err := next.check(); err != nil {
			return err
		}
	}
	return a.do(ctx, func() error { return a.reload(ctx, next) })
}

func (a *Announcer) reload(ctx context.Context, next Config) error {
	old := a.cfg
	// Prefixes that go away: withdrawn and taken off the host first.
	keep := map[netip.Prefix]bool{}
	for _, an := range next.Announcements {
		for _, p := range an.Prefixes {
			keep[p] = true
		}
	}
	for p := range a.onHost {
		if keep[p] {
			continue
		}
		if _, ok := a.current[p]; ok && a.speaker != nil {
			if err := a.speaker.Withdraw(ctx, p); err != nil {
				a.log.Error("bgp: withdrawing a removed prefix", "prefix", p.String(), "err", err)
			}
			delete(a.current, p)
		}
		if err := a.opts.Addresses.Remove(p); err != nil {
			a.log.Error("bgp: removing a prefix from the host", "prefix", p.String(), "err", err)
		}
		delete(a.onHost, p)
	}

	a.cfg = next
	if old.Global != next.Global {
		a.stopSpeaker()
		if err := a.startSpeaker(a.runCtx); err != nil {
			a.publish()
			return err
		}
	} else if a.speaker != nil {
		a.repeer(ctx, old.Peers, next.Peers)
	}
	a.publish()
	if err := a.placeAddresses(); err != nil {
		return err
	}
	a.retrack(a.runCtx)
	a.sync(ctx)
	return nil
}

// repeer changes only the sessions whose peer was added, removed or changed.
func (a *Announcer) repeer(ctx context.Context, old, next []Peer) {
	before := map[netip.Addr]Peer{}
	for _, p := range old {
		before[p.Key()] = p
	}
	after := map[netip.Addr]bool{}
	for _, p := range next {
		after[p.Key()] = true
	}
	for _, p := range old {
		if !after[p.Key()] {
			if err := a.speaker.DeletePeer(ctx, p.Address); err != nil {
				a.log.Error("bgp: removing a peer", "peer", p.Address.String(), "err", err)
			}
		}
	}
	for _, p := range next {
		was, ok := before[p.Key()]
		if ok && was == p {
			continue
		}
		if ok {
			if err := a.speaker.DeletePeer(ctx, p.Address); err != nil {
				a.log.Error("bgp: replacing a peer", "peer", p.Address.String(), "err", err)
			}
		}
		if err := a.speaker.AddPeer(ctx, p); err != nil {
			a.log.Error("bgp: adding a peer", "peer", p.Address.String(), "err", err)
		}
	}
}

// Status returns the peers' sessions and the announcements' states.
func (a *Announcer) Status(ctx context.Context) Status {
	a.mu.Lock()
	st := Status{Announcements: slices.Clone(a.snapshot), Maintenance: a.snapMaint}
	s := a.snapSpeak
	a.mu.Unlock()
	if s != nil {
		peers, err := s.Peers(ctx)
		if err == nil {
			slices.SortFunc(peers, func(x, y PeerStatus) int { return x.Address.Compare(y.Address) })
			st.Peers = peers
		}
	}
	return st
}
