package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/clock"
)

// Notifier is told of every state change. Notify must not block: the
// instance calls it from its protocol loop.
type Notifier interface {
	Notify(instance string, state string)
}

// WeightedTracker is a tracker with the weight its configuration gives it:
// 0 puts the instance in FAULT while failing (or makes it yield, see Yield);
// a negative weight is subtracted from the priority while failing; a
// positive one is added while passing.
type WeightedTracker struct {
	Tracker Tracker
	Weight  int
	// Yield, with weight 0: while failing, the instance yields instead of
	// going to FAULT (see Instance.SetYield). track_frontend sets it.
	Yield bool
}

// InstanceOptions are the collaborators of an Instance.
type InstanceOptions struct {
	// Logger receives transitions and errors; nil discards them.
	Logger *slog.Logger
	// Metrics receives the instance's series; nil keeps them in a private registry.
	Metrics *Metrics
	// Transport sends and receives the adverts; required. The instance owns
	// it: Run closes it when it returns.
	Transport Transport
	// Addrs adds and removes the virtual IPs; required.
	Addrs AddrManager
	// Announcer sends gratuitous ARPs / unsolicited NAs; nil sends none.
	Announcer Announcer
	// Resetter, when set, hands the virtual IPs over before it removes
	// them (see Instance.holdForHandover): it ends the connections on
	// them once the new master announced itself. Nil removes them at once.
	Resetter ConnResetter
	// Takeover, when set and the config has takeover_reset and a key,
	// streams the master's client connections and prompts a silent
	// master's clients after taking over (takeover.go). Nil: neither.
	Takeover *TakeoverOptions
	// Trackers move the instance to FAULT or change its priority. Run waits
	// in init for each one's first report, at most 2 s plus the longest
	// track_script timeout; a tracker still silent then counts as passing.
	Trackers []WeightedTracker
	// Notifier is told of every transition; nil tells no one.
	Notifier Notifier
	// Clock times the protocol; nil means clock.System.
	Clock clock.Clock
}

// InstanceStatus is a snapshot of an instance for /status and `vrrplb status`.
type InstanceStatus struct {
	Name string
	// State is init, backup, master or fault.
	State string
	// Priority is the configured priority.
	Priority uint8
	// EffectivePriority has the trackers' weights applied.
	EffectivePriority uint8
	// MasterIP is the current master's address (this host's when master);
	// the zero Addr when unknown.
	MasterIP netip.Addr
	// VirtualIPs are the configured virtual IPs, held or not.
	VirtualIPs []netip.Prefix
	// HeldIPs are the virtual IPs this instance has on the interface now
	// (a master's; none in backup or fault).
	HeldIPs []netip.Prefix
	// Yielding names why the instance yields, sorted: the failing weight-0
	// track_frontend trackers ("frontend NAME") and the causes set by
	// SetYield; empty when it does not.
	Yielding []string
}

// Receive path sizes.
const (
	// rxBufSize holds the largest VRRP message: 255 IPv6 addresses (RFC 5798 §5.2.5).
	rxBufSize = headerLen + 255*16 + authDataLen
	// rxBuffers is how many received messages may wait for the protocol loop.
	rxBuffers = 8
	// logEvery limits how often a repeated per-packet problem is logged.
	logEvery = time.Minute
)

// Instance runs one VRRP virtual router: the state machine on a transport,
// the virtual IPs, the announcements and the trackers.
type Instance struct {
	cfg       config.Instance
	log       *slog.Logger
	metrics   *instanceMetrics
	transport Transport
	addrs     AddrManager
	announcer Announcer
	resetter  ConnResetter
	tk        *takeover // nil when takeover is off
	notifier  Notifier
	clock     clock.Clock
	trackers  []WeightedTracker

	local   netip.Addr    // advert source and tie-break address
	dsts    []netip.Addr  // the group, or the unicast peers
	vips    []netip.Addr  // the addresses of cfg.VirtualIPs
	advert  Advertisement // template of the adverts sent
	machine *Machine

	mu     sync.Mutex // guards status and current
	status InstanceStatus
	// current is the configuration last applied, which Update checks a
	// new one against (NeedsNewInstance).
	current config.Instance

	// The rest belongs to the Run goroutine.
	timer     clock.Timer
	timerC    <-chan time.Time
	garpTimer clock.Timer
	garpC     <-chan time.Time
	garpLeft  int // announcements left in the current burst
	// handover holds the virtual IPs of a master that left until the new
	// master announces itself (holdForHandover); nil when none is held.
	handover      clock.Timer
	handoverC     <-chan time.Time
	handoverUntil time.Time
	trackerStates []TrackerState
	trackerRuns   []*trackerRun // parallel to trackers and trackerStates
	trackC        chan trackerReport
	trackCtx      context.Context
	trackWG       *sync.WaitGroup
	done          chan struct{}   // closed as Run returns
	yieldCauses   map[string]bool // set by SetYield
	// yieldAtStart are the causes SetYield was given before Run, guarded by
	// mu; Run takes them over as it starts.
	yieldAtStart map[string]bool
	actions      []Action
	sendBuf      []byte
	rx           Advertisement
	addrListLog  rateLimit
	dropLog      map[Reason]*rateLimit
	sendErrLog   rateLimit
	announceLog  rateLimit

	// name is fixed for the instance's life.
	name string

	updates chan update
	yields  chan yieldRequest
	started atomic.Bool
	exited  chan struct{} // closed when Run returns

	// onEvent, when set by a test, is called after each event is handled.
	onEvent func()
}

// update is a reloaded configuration on its way to the protocol loop.
type update struct {
	cfg   config.Instance
	d     derived
	reply chan error
	// With UpdateWith: the new trackers and notifier.
	with     bool
	trackers []WeightedTracker
	notifier Notifier
}

// yieldRequest is a SetYield on its way to the protocol loop.
type yieldRequest struct {
	cause string
	on    bool
	done  chan struct{}
}

// NewInstance checks cfg against what the engine supports and builds an
// instance ready to Run.
func NewInstance(cfg config.Instance, opts InstanceOptions) (*Instance, error) {
	if opts.Transport == nil || opts.Addrs == nil {
		return nil, fmt.Errorf("instance %q: a transport and an address manager are required", cfg.Name)
	}
	in := &Instance{
		cfg:       cfg,
		log:       opts.Logger,
		transport: opts.Transport,
		addrs:     opts.Addrs,
		announcer: opts.Announcer,
		resetter:  opts.Resetter,
		notifier:  opts.Notifier,
		clock:     clock.Or(opts.Clock),
		trackers:  slices.Clone(opts.Trackers),
	}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	in.log = in.log.With("instance", cfg.Name, "vrid", cfg.VirtualRouterID)
	m := opts.Metrics
	if m == nil {
		m, _ = NewMetrics(nil) // cannot fail without a registerer
	}
	in.local = localAddr(opts.Transport)
	if !in.local.IsValid() {
		return nil, fmt.Errorf("instance %q: transport has no local address", cfg.Name)
	}
	d, err := derive(cfg, in.local)
	if err != nil {
		return nil, err
	}
	in.apply(cfg, d)
	in.name, in.current = cfg.Name, cfg
	in.updates = make(chan update)
	in.yields = make(chan yieldRequest)
	in.yieldCauses = map[string]bool{}
	in.exited = make(chan struct{})
	in.metrics = m.forInstance(cfg.Name)
	if opts.Takeover != nil && cfg.TakeoverOn() {
		in.tk = newTakeover(in.log, in.metrics, *opts.Takeover, in.clock)
		in.configureTakeover(cfg, d)
	}
	in.metrics.priority.Set(float64(cfg.Priority))
	in.machine = NewMachine(in.machineConfig(cfg))
	in.trackerStates = make([]TrackerState, len(in.trackers))
	for i, t := range in.trackers {
		in.trackerStates[i] = TrackerState{Weight: t.Weight, OK: true, Yield: t.Yield}
	}
	in.addrListLog = rateLimit{every: logEvery}
	in.dropLog = make(map[Reason]*rateLimit, len(dropReasons))
	for _, r := range dropReasons {
		in.dropLog[r] = &rateLimit{every: logEvery}
	}
	in.sendErrLog = rateLimit{every: 10 * time.Second}
	in.announceLog = rateLimit{every: 10 * time.Second}
	in.status = InstanceStatus{
		Name:              cfg.Name,
		State:             StateInit.String(),
		Priority:          cfg.Priority,
		EffectivePriority: cfg.Priority,
		VirtualIPs:        slices.Clone(cfg.VirtualIPs),
	}
	return in, nil
}

// derived is what an instance computes from its configuration.
type derived struct {
	vips   []netip.Addr  // the addresses of cfg.VirtualIPs
	dsts   []netip.Addr  // the group, or the unicast peers
	advert Advertisement // template of the adverts sent
}

// derive checks cfg for an instance sending from local and computes the
// advert template, the destinations and the virtual addresses.
func derive(cfg config.Instance, local netip.Addr) (derived, error) {
	if cfg.Version != 2 && cfg.Version != 3 {
		return derived{}, fmt.Errorf("instance %q: version %d: must be 2 or 3", cfg.Name, cfg.Version)
	}
	if cfg.Priority == 0 {
		return derived{}, fmt.Errorf("instance %q: priority 0: must be 1..255", cfg.Name)
	}
	if len(cfg.VirtualIPs) == 0 {
		return derived{}, fmt.Errorf("instance %q: no virtual_ips", cfg.Name)
	}
	vips := make([]netip.Addr, len(cfg.VirtualIPs))
	for i, p := range cfg.VirtualIPs {
		vips[i] = p.Addr().Unmap()
		if vips[i].Is4() != local.Is4() {
			return derived{}, fmt.Errorf("instance %q: virtual IP %v and source %v are of different families", cfg.Name, p, local)
		}
	}
	dsts := []netip.Addr{GroupIPv4}
	if !local.Is4() {
		dsts = []netip.Addr{GroupIPv6}
	}
	if len(cfg.UnicastPeers) > 0 {
		dsts = make([]netip.Addr, len(cfg.UnicastPeers))
		for i, p := range cfg.UnicastPeers {
			dsts[i] = p.Unmap()
		}
	}
	advert := Advertisement{
		Version:  cfg.Version,
		VRID:     cfg.VirtualRouterID,
		Priority: cfg.Priority,
		Interval: cfg.AdvertInterval,
		Addrs:    vips,
	}
	if cfg.Version == 2 && cfg.AuthPass != "" {
		if len(cfg.AuthPass) > authDataLen {
			return derived{}, fmt.Errorf("instance %q: auth_pass longer than %d bytes", cfg.Name, authDataLen)
		}
		advert.AuthType = AuthSimpleText
		copy(advert.AuthData[:], cfg.AuthPass)
	}
	// Encode once so a bad interval or address list fails here, not at the
	// first advert.
	for _, dst := range dsts {
		if _, err := advert.Append(nil, local, dst); err != nil {
			return derived{}, fmt.Errorf("instance %q: %w", cfg.Name, err)
		}
	}
	return derived{vips: vips, dsts: dsts, advert: advert}, nil
}

// apply makes cfg and what derive computed from it current.
func (in *Instance) apply(cfg config.Instance, d derived) {
	in.cfg = cfg
	in.vips = d.vips
	in.dsts = d.dsts
	in.advert = d.advert
}

func (in *Instance) machineConfig(cfg config.Instance) MachineConfig {
	return MachineConfig{
		Version:        cfg.Version,
		Priority:       cfg.Priority,
		AdvertInterval: cfg.AdvertInterval,
		Preempt:        cfg.Preempt,
		PreemptDelay:   cfg.PreemptDelay,
		LocalAddr:      in.local,
	}
}

// Status returns a snapshot of the instance. It is safe to call from any goroutine.
func (in *Instance) Status() InstanceStatus {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.status
	s.VirtualIPs = slices.Clone(s.VirtualIPs)
	s.HeldIPs = slices.Clone(s.HeldIPs)
	s.Yielding = slices.Clone(s.Yielding)
	return s
}

// received is a message handed from the receive goroutine to the protocol loop.
type received struct {
	buf  []byte
	n    int
	info PacketInfo
}

// Run runs the instance until ctx ends. Then, if master, it sends a
// priority-0 advert and removes the virtual IPs, closes the transport and
// returns nil. It returns an error if receiving fails for another reason,
// after the same handover.
func (in *Instance) Run(ctx context.Context) error {
	in.mu.Lock()
	twice := in.started.Swap(true)
	atStart := in.yieldAtStart
	in.yieldAtStart = nil
	in.mu.Unlock()
	if twice {
		return fmt.Errorf("instance %q: Run called twice", in.name)
	}
	defer close(in.exited)
	for cause, on := range atStart {
		if on {
			in.yieldCauses[cause] = true
		}
	}
	if len(in.yieldCauses) > 0 {
		in.updatePriority() // in Init: the machine starts yielding
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	trackCtx, stopTrackers := context.WithCancel(ctx)
	in.trackCtx, in.trackWG, in.done = trackCtx, &wg, done
	defer func() {
		stopTrackers()
		close(done)
		if err := in.transport.Close(); err != nil {
			in.log.Warn("closing transport", "err", err)
		}
		if in.tk != nil {
			if err := in.tk.opts.Conn.Close(); err != nil {
				in.log.Warn("closing the takeover stream", "err", err)
			}
		}
		wg.Wait()
	}()
	if in.tk != nil {
		wg.Go(func() { in.tk.receive(done) })
		wg.Go(func() { in.tk.send(done) })
	}

	// The receive goroutine: buffers go round between it and the loop.
	free := make(chan []byte, rxBuffers)
	for range rxBuffers {
		free <- make([]byte, rxBufSize)
	}
	rxC := make(chan received, rxBuffers)
	rxErr := make(chan error, 1)
	wg.Go(func() { in.receive(free, rxC, rxErr, done) })

	trackC := make(chan trackerReport)
	in.trackC = trackC
	in.trackerRuns = make([]*trackerRun, len(in.trackers))
	for i := range in.trackers {
		in.startTracker(i)
	}

	if !in.awaitTrackers(ctx, trackC) {
		return nil
	}
	in.handle(Event{Kind: EventStartup})
	in.eventDone()
	for {
		select {
		case <-ctx.Done():
			in.handle(Event{Kind: EventShutdown})
			in.stopGARP()
			in.finishHandover(rxC, free)
			return nil
		case err := <-rxErr:
			in.log.Error("receiving adverts failed, leaving", "err", err)
			in.handle(Event{Kind: EventShutdown})
			in.stopGARP()
			in.releaseVIPs()
			return fmt.Errorf("instance %q: receive: %w", in.cfg.Name, err)
		case p := <-rxC:
			in.receivePacket(p.buf[:p.n], p.info)
			free <- p.buf
		case <-in.timerC:
			in.timerC = nil // in.timer has fired; setTimer may reuse it
			in.handle(Event{Kind: EventTimer})
		case <-in.garpC:
			in.garpTimer, in.garpC = nil, nil
			in.garpTick()
		case <-in.handoverC:
			in.releaseVIPs()
		case r := <-trackC:
			in.trackerReport(r)
		case u := <-in.updates:
			in.reconfigure(u)
			u.reply <- nil
		case y := <-in.yields:
			in.setYield(y)
		}
		in.eventDone()
	}
}

// eventDone tells a test that the loop finished handling one event.
func (in *Instance) eventDone() {
	if in.onEvent != nil {
		in.onEvent()
	}
}
