package vrrp

import (
	"context"
	"fmt"
	"log/slog"

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
	in       *Instance
	notifier *CommandNotifier // nil without notify
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
	trackers, err := buildTrackers(ic, scripts, opts)
	if err != nil {
		return nil, fmt.Errorf("instance %q: %w", ic.Name, err)
	}
	io := InstanceOptions{
		Logger:    opts.Logger,
		Metrics:   opts.Metrics,
		Transport: tr,
		Addrs:     addrs,
		Announcer: NewAnnouncer(ic.Interface),
		Trackers:  trackers,
	}
	m := &instanceMember{}
	if len(ic.Notify) > 0 {
		m.notifier, err = NewCommandNotifier(ic.Notify, NotifyOptions{User: scripts.User, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("instance %q: notify: %w", ic.Name, err)
		}
		io.Notifier = m.notifier
	}
	m.in, err = NewInstance(ic, io)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// buildTrackers builds an instance's trackers with their weights.
func buildTrackers(ic config.Instance, scripts config.Scripts, opts MemberOptions) ([]WeightedTracker, error) {
	log := opts.Logger.With("instance", ic.Name)
	var ts []WeightedTracker
	for _, f := range ic.TrackFrontends {
		if opts.FrontendTracker == nil {
			return nil, fmt.Errorf("track_frontend %q: the frontends are not wired", f.Name)
		}
		t, err := opts.FrontendTracker(f.Name)
		if err != nil {
			return nil, fmt.Errorf("track_frontend %q: %w", f.Name, err)
		}
		// Weight 0 yields rather than faults: a failure that every host
		// shares must not leave the VIP without a holder.
		ts = append(ts, WeightedTracker{Tracker: t, Weight: f.Weight, Yield: true})
	}
	for _, s := range ic.TrackScripts {
		t, err := NewScriptTracker(s, ScriptOptions{User: scripts.User, Logger: log})
		if err != nil {
			return nil, err
		}
		ts = append(ts, WeightedTracker{Tracker: t, Weight: s.Weight})
	}
	tracksOwn := false
	for _, i := range ic.TrackInterfaces {
		t, err := NewInterfaceTracker(i.Name, log)
		if err != nil {
			return nil, err
		}
		ts = append(ts, WeightedTracker{Tracker: t, Weight: i.Weight})
		tracksOwn = tracksOwn || i.Name == ic.Interface
	}
	// The instance's own interface is always tracked, as keepalived does: a
	// master whose link is down cannot serve the VIP, and when the link
	// returns it comes back through backup and a fresh announcement instead
	// of staying master unseen. A track_interface entry for it sets the
	// weight instead.
	if !tracksOwn {
		t, err := NewInterfaceTracker(ic.Interface, log)
		if err != nil {
			return nil, err
		}
		ts = append(ts, WeightedTracker{Tracker: t, Weight: 0})
	}
	return ts, nil
}

// Run runs the instance and its notifier. The notifier outlives the
// instance, so the transition of its stop is told as well.
func (m *instanceMember) Run(ctx context.Context) error {
	if m.notifier == nil {
		return m.in.Run(ctx)
	}
	nctx, stopNotifier := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.notifier.Run(nctx)
	}()
	err := m.in.Run(ctx)
	stopNotifier()
	<-done
	return err
}

func (m *instanceMember) Status() InstanceStatus { return m.in.Status() }

func (m *instanceMember) SetYield(cause string, on bool) error { return m.in.SetYield(cause, on) }

func (m *instanceMember) Prepare(cfg config.Instance, _ config.Scripts) (func() error, error) {
	if err := m.in.CheckUpdate(cfg); err != nil {
		return nil, err
	}
	return func() error { return m.in.Update(cfg) }, nil
}

// Discard closes the transport of an instance that never ran.
func (m *instanceMember) Discard() { _ = m.in.transport.Close() }
