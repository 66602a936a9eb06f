package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/vrrplb/vrrplb/config"
)

// MemberOptions are what the real members of a Set share.
type MemberOptions struct {
	// Logger receives the instances' lines; nil discards them.
	Logger *slog.Logger
	// Metrics holds the instances' series; nil keeps them private.
	Metrics *Metrics
	// FrontendTracker is track_frontend's source: the verdicts of the
	// frontend called name. nil refuses instances that track a frontend.
	FrontendTracker func(name string) (Tracker, error)
}

// NewMembers returns the constructor of real instances on this host's
// interfaces: a raw-socket transport, netlink addresses, gratuitous ARP or
// unsolicited NA, the configured trackers and notify command.
func NewMembers(opts MemberOptions) NewMemberFunc {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return func(ic config.Instance, scripts config.Scripts) (Member, error) {
		return newInstanceMember(ic, scripts, opts)
	}
}

// instanceMember is an Instance and the notifier that tells its
// transitions.
type instanceMember struct {
	in   *Instance
	opts MemberOptions

	mu sync.Mutex
	// trackers are the instance's trackers by what they check (trackerKey),
	// so that a reload keeps running the ones it does not change.
	trackers map[string]Tracker
	notifier *runningNotifier // nil without notify
	ctx      context.Context  // Run's; nil before
}

// runningNotifier is a notify command and the goroutine that runs it.
type runningNotifier struct {
	argv []string
	user string
	n    *CommandNotifier
	stop context.CancelFunc // nil until started
	done chan struct{}
}

func newInstanceMember(ic config.Instance, scripts config.Scripts, opts MemberOptions) (_ *instanceMember, err error) {
	log := opts.Logger.With("instance", ic.Name)
	tr, err := NewTransport(ic.Interface, ic.Family, ic.SourceIP, ic.UnicastPeers, TransportOptions{Logger: log, VirtualIPs: ic.VirtualIPs})
	if err != nil {
		return nil, fmt.Errorf("instance %q: %w", ic.Name, err)
	}
	defer func() {
		if err != nil { // the instance will never run to close it
			_ = tr.Close()
		}
	}()
	addrs, err := NewAddrManager(ic.Interface)
	if err != nil {
		return nil, fmt.Errorf("instance %q: %w", ic.Name, err)
	}
	m := &instanceMember{opts: opts}
	trackers, byKey, err := m.buildTrackers(ic, scripts)
	if err != nil {
		return nil, fmt.Errorf("instance %q: %w", ic.Name, err)
	}
	notifier, err := m.buildNotifier(ic, scripts)
	if err != nil {
		return nil, err
	}
	io := InstanceOptions{
		Logger:    opts.Logger,
		Metrics:   opts.Metrics,
		Transport: tr,
		Addrs:     addrs,
		Announcer: NewAnnouncer(ic.Interface),
		Resetter:  SockDiagResetter{},
		Trackers:  trackers,
		Notifier:  notifier.notifier(),
	}
	if ic.TakeoverOn() {
		var stream *UDPStream
		stream, err = NewStreamConn(ic.Interface, ic.Family, ic.TakeoverPort, len(ic.UnicastPeers) == 0, tr.LocalAddr)
		if err != nil {
			return nil, fmt.Errorf("instance %q: %w", ic.Name, err)
		}
		defer func() {
			if err != nil {
				_ = stream.Close()
			}
		}()
		io.Takeover = &TakeoverOptions{Conn: stream, Lister: SockDiagResetter{}, NewPrompter: NewRawPrompter,
			NormalPriority: NormalPriority}
	}
	m.in, err = NewInstance(ic, io)
	if err != nil {
		return nil, err
	}
	m.trackers, m.notifier = byKey, notifier
	return m, nil
}

// trackerKey names what a tracker checks, so that a reload that keeps it
// (with any weight) keeps the running tracker.
func trackerKey(kind string, what any, scripts config.Scripts) string {
	return fmt.Sprintf("%s %#v %q", kind, what, scripts.User)
}

// buildTrackers builds an instance's trackers with their weights, reusing
// the member's running ones that check the same thing.
func (m *instanceMember) buildTrackers(ic config.Instance, scripts config.Scripts) ([]WeightedTracker, map[string]Tracker, error) {
	log := m.opts.Logger.With("instance", ic.Name)
	m.mu.Lock()
	old := m.trackers
	m.mu.Unlock()
	byKey := map[string]Tracker{}
	var ts []WeightedTracker
	add := func(key string, weight int, yield bool, build func() (Tracker, error)) error {
		t, ok := old[key]
		if !ok {
			var err error
			if t, err = build(); err != nil {
				return err
			}
		}
		byKey[key] = t
		ts = append(ts, WeightedTracker{Tracker: t, Weight: weight, Yield: yield})
		return nil
	}
	for _, f := range ic.TrackFrontends {
		// Weight 0 yields rather than faults: a failure that every host
		// shares must not leave the VIP without a holder.
		err := add(trackerKey("frontend", f.Name, config.Scripts{}), f.Weight, true, func() (Tracker, error) {
			if m.opts.FrontendTracker == nil {
				return nil, fmt.Errorf("track_frontend %q: the frontends are not wired", f.Name)
			}
			t, err := m.opts.FrontendTracker(f.Name)
			if err != nil {
				return nil, fmt.Errorf("track_frontend %q: %w", f.Name, err)
			}
			return t, nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	for _, s := range ic.TrackScripts {
		what := s
		what.Weight = 0
		err := add(trackerKey("script", what, scripts), s.Weight, false, func() (Tracker, error) {
			return NewScriptTracker(s, ScriptOptions{User: scripts.User, Logger: log})
		})
		if err != nil {
			return nil, nil, err
		}
	}
	tracksOwn := false
	for _, i := range ic.TrackInterfaces {
		err := add(trackerKey("interface", i.Name, config.Scripts{}), i.Weight, false, func() (Tracker, error) {
			return NewInterfaceTracker(i.Name, log)
		})
		if err != nil {
			return nil, nil, err
		}
		tracksOwn = tracksOwn || i.Name == ic.Interface
	}
	// The instance's own interface is always tracked, as keepalived does: a
	// master whose link is down cannot serve the VIP, and when the link
	// returns it comes back through backup and a fresh announcement instead
	// of staying master unseen. A track_interface entry for it sets the
	// weight instead.
	if !tracksOwn {
		err := add(trackerKey("interface", ic.Interface, config.Scripts{}), 0, false, func() (Tracker, error) {
			return NewInterfaceTracker(ic.Interface, log)
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return ts, byKey, nil
}

// buildNotifier returns the notifier of ic: the running one when the
// command and the user stay, a new one (not yet running) otherwise, nil
// without notify.
func (m *instanceMember) buildNotifier(ic config.Instance, scripts config.Scripts) (*runningNotifier, error) {
	if len(ic.Notify) == 0 {
		return nil, nil
	}
	m.mu.Lock()
	old := m.notifier
	m.mu.Unlock()
	if old != nil && slices.Equal(old.argv, ic.Notify) && old.user == scripts.User {
		return old, nil
	}
	n, err := NewCommandNotifier(ic.Notify, NotifyOptions{User: scripts.User, Logger: m.opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("instance %q: notify: %w", ic.Name, err)
	}
	return &runningNotifier{argv: slices.Clone(ic.Notify), user: scripts.User, n: n}, nil
}

// notifier is r as the instance's Notifier: nil for none.
func (r *runningNotifier) notifier() Notifier {
	if r == nil {
		return nil
	}
	return r.n
}

// start runs the notifier apart from ctx's end: it outlives the instance,
// so the transition of its stop is told as well.
func (r *runningNotifier) start(ctx context.Context) {
	if r == nil || r.stop != nil {
		return
	}
	nctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stop, r.done = stop, make(chan struct{})
	go func() {
		defer close(r.done)
		_ = r.n.Run(nctx)
	}()
}

// finish stops the notifier once what it has queued is told.
func (r *runningNotifier) finish() {
	if r == nil || r.stop == nil {
		return
	}
	r.stop()
	<-r.done
}

// Run runs the instance and its notifier.
func (m *instanceMember) Run(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	m.notifier.start(ctx)
	m.mu.Unlock()
	err := m.in.Run(ctx)
	m.mu.Lock()
	n := m.notifier
	m.mu.Unlock()
	n.finish()
	return err
}

func (m *instanceMember) Status() InstanceStatus { return m.in.Status() }

func (m *instanceMember) SetYield(cause string, on bool) error { return m.in.SetYield(cause, on) }

// Prepare builds what a reload changes (trackers, notify command) and
// returns what applies it in place.
func (m *instanceMember) Prepare(cfg config.Instance, scripts config.Scripts) (func() error, error) {
	if err := m.in.CheckUpdate(cfg); err != nil {
		return nil, err
	}
	trackers, byKey, err := m.buildTrackers(cfg, scripts)
	if err != nil {
		return nil, fmt.Errorf("instance %q: %w", cfg.Name, err)
	}
	notifier, err := m.buildNotifier(cfg, scripts)
	if err != nil {
		return nil, err
	}
	return func() error {
		m.mu.Lock()
		old, ctx := m.notifier, m.ctx
		if ctx != nil {
			notifier.start(ctx)
		}
		m.mu.Unlock()
		if err := m.in.UpdateWith(cfg, trackers, notifier.notifier()); err != nil {
			if notifier != old {
				notifier.finish()
			}
			return err
		}
		m.mu.Lock()
		m.trackers, m.notifier = byKey, notifier
		m.mu.Unlock()
		if old != notifier {
			old.finish()
		}
		return nil
	}, nil
}

// Discard closes the transport of an instance that never ran.
func (m *instanceMember) Discard() { _ = m.in.transport.Close() }
