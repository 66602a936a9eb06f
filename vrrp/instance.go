package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vrrplb/vrrplb/config"
)

// Clock is the time source of an instance. Tests pass a fake one.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C delivers the time the timer fired.
	C() <-chan time.Time
	// Stop prevents the timer from firing; once Stop returns, C delivers
	// nothing (the time.Timer behaviour since Go 1.23).
	Stop()
}

// SystemClock is the Clock of the time package.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time                 { return time.Now() }
func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop()               { t.t.Stop() }

// Reset re-arms the timer d from now.
func (t systemTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

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
	// Trackers move the instance to FAULT or change its priority. Run waits
	// in init for each one's first report, at most 2 s plus the longest
	// track_script timeout; a tracker still silent then counts as passing.
	Trackers []WeightedTracker
	// Notifier is told of every transition; nil tells no one.
	Notifier Notifier
	// Clock times the protocol; nil means SystemClock.
	Clock Clock
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
	notifier  Notifier
	clock     Clock
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
	timer         Timer
	timerC        <-chan time.Time
	garpTimer     Timer
	garpC         <-chan time.Time
	garpLeft      int // announcements left in the current burst
	trackerStates []TrackerState
	trackerRuns   []*trackerRun // parallel to trackers and trackerStates
	trackC        chan trackerReport
	trackCtx      context.Context
	trackWG       *sync.WaitGroup
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
		notifier:  opts.Notifier,
		clock:     opts.Clock,
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
	if in.clock == nil {
		in.clock = SystemClock
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

// trackerRun is one running tracker: its reports name it, so a report of a
// tracker a reload removed is told apart and dropped.
type trackerRun struct {
	cancel context.CancelFunc
}

type trackerReport struct {
	run *trackerRun
	ok  bool
}

// trackerIndex is where the tracker of r is now, or -1 if a reload removed it.
func (in *Instance) trackerIndex(r *trackerRun) int {
	return slices.Index(in.trackerRuns, r)
}

// startTracker runs tracker i until it is stopped or the instance stops.
func (in *Instance) startTracker(i int) {
	ctx, cancel := context.WithCancel(in.trackCtx)
	run := &trackerRun{cancel: cancel}
	in.trackerRuns[i] = run
	t := in.trackers[i]
	in.trackWG.Go(func() { in.runTracker(ctx, run, t, in.trackC) })
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
	in.trackCtx, in.trackWG = trackCtx, &wg
	defer func() {
		stopTrackers()
		close(done)
		if err := in.transport.Close(); err != nil {
			in.log.Warn("closing transport", "err", err)
		}
		wg.Wait()
	}()

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
			return nil
		case err := <-rxErr:
			in.log.Error("receiving adverts failed, leaving", "err", err)
			in.handle(Event{Kind: EventShutdown})
			in.stopGARP()
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

// trackerStartWait is how long an instance waits in Init for its trackers'
// first verdicts, beyond the longest track_script timeout.
const trackerStartWait = 2 * time.Second

// awaitTrackers holds the instance in Init until every tracker has reported
// once, so that a failing check at start never puts it in Master, not even
// for a moment (an address owner would otherwise take the VIP and give it
// back). A tracker still silent after the wait counts as passing. It returns
// false if ctx ends first.
func (in *Instance) awaitTrackers(ctx context.Context, trackC <-chan trackerReport) bool {
	if len(in.trackers) == 0 {
		return true
	}
	wait := trackerStartWait
	for _, s := range in.cfg.TrackScripts {
		wait = max(wait, trackerStartWait+s.Timeout)
	}
	timer := in.clock.NewTimer(wait)
	defer timer.Stop()
	heard := map[*trackerRun]bool{}
	silent := func() []int {
		var out []int
		for i, r := range in.trackerRuns {
			if !heard[r] {
				out = append(out, i)
			}
		}
		return out
	}
	// The event that ends the wait is reported done with the startup.
	in.eventDone()
	for {
		select {
		case <-ctx.Done():
			return false
		case r := <-trackC:
			heard[r.run] = true
			in.trackerReport(r)
			if len(silent()) == 0 {
				return true
			}
		case u := <-in.updates:
			in.reconfigure(u)
			u.reply <- nil
			if len(silent()) == 0 {
				return true
			}
		case y := <-in.yields:
			in.setYield(y)
		case <-timer.C():
			for _, i := range silent() {
				in.log.Warn("tracker has not reported yet, counting it as passing", "tracker", in.trackers[i].Tracker.Name(), "waited", wait)
			}
			return true
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

// Update applies a reloaded configuration to the running instance: priority,
// preempt, preempt_delay, advert interval, version, virtual IPs, unicast
// peers, auth and GARP settings. A master stays master and keeps the virtual
// IPs that remain configured (new ones are added and announced, dropped ones
// removed) and advertises its new priority at once; it yields only if that
// priority loses to a backup, by the protocol. What NeedsNewInstance names
// cannot change. Update waits for the protocol loop; it returns an error if
// Run is not running.
func (in *Instance) Update(cfg config.Instance) error {
	return in.update(update{cfg: cfg})
}

// UpdateWith is Update with the trackers and the notifier built for cfg,
// so that a reload that adds, removes or reweights trackers or changes the
// notify command applies in place too. A tracker equal (==) to a running
// one keeps running with its state and takes its new weight; others start
// and count as passing until they report; the ones left out stop. A nil
// notifier tells no one.
func (in *Instance) UpdateWith(cfg config.Instance, trackers []WeightedTracker, notifier Notifier) error {
	return in.update(update{cfg: cfg, with: true, trackers: trackers, notifier: notifier})
}

func (in *Instance) update(u update) error {
	d, err := in.checkUpdate(u.cfg, u.with)
	if err != nil {
		return err
	}
	if !in.started.Load() {
		return fmt.Errorf("instance %q: not running", in.name)
	}
	u.d, u.reply = d, make(chan error, 1)
	select {
	case in.updates <- u:
		if err := <-u.reply; err != nil {
			return err
		}
		in.mu.Lock()
		in.current = u.cfg
		in.mu.Unlock()
		return nil
	case <-in.exited:
		return fmt.Errorf("instance %q: not running", in.name)
	}
}

// CheckUpdate reports whether UpdateWith(cfg, …) would be refused,
// changing nothing.
func (in *Instance) CheckUpdate(cfg config.Instance) error {
	_, err := in.checkUpdate(cfg, true)
	return err
}

// checkUpdate checks cfg against NeedsNewInstance; without new trackers
// and notifier (Update), their config cannot change either.
func (in *Instance) checkUpdate(cfg config.Instance, with bool) (derived, error) {
	in.mu.Lock()
	cur := in.current
	in.mu.Unlock()
	why := NeedsNewInstance(cur, cfg)
	if why == "" && !with {
		why = trackersChanged(cur, cfg)
	}
	if why != "" {
		return derived{}, fmt.Errorf("instance %q: reload: %s: needs a new instance", in.name, why)
	}
	return derive(cfg, localAddr(in.transport))
}

// trackersChanged says what UpdateWith must carry: a change of trackers or
// notify, or "".
func trackersChanged(a, b config.Instance) string {
	switch {
	case !reflect.DeepEqual(a.TrackFrontends, b.TrackFrontends),
		!reflect.DeepEqual(a.TrackScripts, b.TrackScripts),
		!reflect.DeepEqual(a.TrackInterfaces, b.TrackInterfaces):
		return "trackers changed"
	case !slices.Equal(a.Notify, b.Notify):
		return "notify changed"
	}
	return ""
}

// reconfigure is Update inside the protocol loop.
func (in *Instance) reconfigure(u update) {
	cfg := u.cfg
	oldVIPs := in.cfg.VirtualIPs
	in.apply(cfg, u.d)
	if u.with {
		in.replaceTrackers(u.trackers)
		in.notifier = u.notifier
	}
	master := in.machine.State() == StateMaster
	added := false
	if master {
		for _, p := range oldVIPs {
			if !slices.Contains(cfg.VirtualIPs, p) {
				in.removeVIP(p)
			}
		}
		for _, p := range cfg.VirtualIPs {
			if !slices.Contains(oldVIPs, p) {
				added = true
				in.addVIP(p)
			}
		}
	}
	prio, fault := EffectivePriority(cfg.Priority, in.trackerStates)
	in.handle(Event{Kind: EventReconfigure, Config: in.machineConfig(cfg), Fault: fault, Yield: in.yielding(), EffectivePriority: prio})
	if added && in.machine.State() == StateMaster {
		in.startGARP()
	}
	in.mu.Lock()
	in.status.Priority = cfg.Priority
	in.status.VirtualIPs = slices.Clone(cfg.VirtualIPs)
	in.mu.Unlock()
	in.log.Info("configuration reloaded", "priority", cfg.Priority, "effective_priority", prio, "state", in.machine.State().String())
}

// receive reads messages until the transport is closed.
func (in *Instance) receive(free chan []byte, out chan<- received, errc chan<- error, done <-chan struct{}) {
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-done:
			return
		}
		n, info, err := in.transport.Receive(buf)
		if err != nil {
			select {
			case <-done:
			case errc <- err:
			}
			return
		}
		select {
		case out <- received{buf: buf, n: n, info: info}:
		case <-done:
			return
		}
	}
}

// runTracker runs one tracker and forwards its verdicts. A tracker that
// stops with an error before the instance stops counts as failing.
func (in *Instance) runTracker(ctx context.Context, run *trackerRun, t WeightedTracker, out chan<- trackerReport) {
	report := func(ok bool) {
		select {
		case out <- trackerReport{run: run, ok: ok}:
		case <-ctx.Done():
		}
	}
	err := t.Tracker.Run(ctx, report)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		err = errors.New("stopped")
	}
	in.log.Error("tracker stopped, counting it as failing", "tracker", t.Tracker.Name(), "err", err)
	report(false)
}

func (in *Instance) trackerReport(r trackerReport) {
	i := in.trackerIndex(r.run)
	if i < 0 || in.trackerStates[i].OK == r.ok {
		return // removed by a reload, or no change
	}
	in.trackerStates[i].OK = r.ok
	in.log.Info("tracker changed", "tracker", in.trackers[i].Tracker.Name(), "ok", r.ok, "weight", in.trackers[i].Weight)
	in.updatePriority()
}

// replaceTrackers makes next the trackers: one equal (==) to a running
// tracker keeps running with its state and takes its new weight; the
// others start, counted passing until they report; those not in next stop.
func (in *Instance) replaceTrackers(next []WeightedTracker) {
	runs := make([]*trackerRun, len(next))
	states := make([]TrackerState, len(next))
	kept := map[int]bool{}
	for j, t := range next {
		states[j] = TrackerState{Weight: t.Weight, OK: true, Yield: t.Yield}
		for i, old := range in.trackers {
			if !kept[i] && sameTracker(old.Tracker, t.Tracker) {
				kept[i] = true
				runs[j] = in.trackerRuns[i]
				states[j].OK = in.trackerStates[i].OK
				break
			}
		}
	}
	for i, r := range in.trackerRuns {
		if !kept[i] && r != nil {
			r.cancel()
		}
	}
	in.trackers, in.trackerStates, in.trackerRuns = slices.Clone(next), states, runs
	for j, r := range runs {
		if r == nil && in.trackWG != nil {
			in.startTracker(j)
		}
	}
}

// sameTracker reports whether a and b are the one tracker.
func sameTracker(a, b Tracker) bool {
	if a == nil || b == nil || reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	return a == b
}

// updatePriority feeds the trackers' verdict and the yield causes to the machine.
func (in *Instance) updatePriority() {
	prio, fault := EffectivePriority(in.cfg.Priority, in.trackerStates)
	in.handle(Event{Kind: EventTrack, Fault: fault, Yield: in.yielding(), EffectivePriority: prio})
}

// SetYield sets (on) or clears a cause for the instance to yield: while any
// cause is set, or a weight-0 track_frontend has no healthy backend, a
// master hands the VIP over as for FAULT (one priority-0 advert, VIPs
// removed), and the instance stays in the election at PriorityLowest, so it
// holds the VIP only when no other router will, and loses it to any router
// that does not yield, even with preempt off. Its state stays backup or
// master, and notify commands hear those. A cause such as "maintenance" is
// shown in Status().Yielding. SetYield waits for the protocol loop; given
// before Run, it holds from the start. It returns an error once Run has
// returned.
func (in *Instance) SetYield(cause string, on bool) error {
	in.mu.Lock()
	if !in.started.Load() {
		if in.yieldAtStart == nil {
			in.yieldAtStart = map[string]bool{}
		}
		in.yieldAtStart[cause] = on
		in.mu.Unlock()
		return nil
	}
	in.mu.Unlock()
	y := yieldRequest{cause: cause, on: on, done: make(chan struct{})}
	select {
	case in.yields <- y:
		<-y.done
		return nil
	case <-in.exited:
		return fmt.Errorf("instance %q: not running", in.name)
	}
}

// setYield is SetYield inside the protocol loop.
func (in *Instance) setYield(y yieldRequest) {
	defer close(y.done)
	if in.yieldCauses[y.cause] == y.on {
		return
	}
	if y.on {
		in.yieldCauses[y.cause] = true
	} else {
		delete(in.yieldCauses, y.cause)
	}
	in.log.Info("yield changed", "cause", y.cause, "yield", y.on)
	in.updatePriority()
}

// yielding reports whether the instance yields, and records why for Status.
func (in *Instance) yielding() bool {
	var why []string
	for i, t := range in.trackerStates {
		if t.Weight == 0 && t.Yield && !t.OK {
			why = append(why, in.trackers[i].Tracker.Name())
		}
	}
	for c := range in.yieldCauses {
		why = append(why, c)
	}
	slices.Sort(why)
	in.mu.Lock()
	in.status.Yielding = why
	in.mu.Unlock()
	return len(why) > 0
}

// receivePacket checks a received message in the order of RFC 5798 §7.1 and
// DESIGN.md, counts it, and feeds an advert that passes to the machine.
func (in *Instance) receivePacket(msg []byte, info PacketInfo) {
	src, dst := info.Src.Unmap().WithZone(""), info.Dst.Unmap().WithZone("")
	// RFC 5798 §7.1: multicast and unicast alike, so a sender off the
	// segment is never heard.
	if info.HopLimit != TTL {
		in.drop(ReasonTTL, src)
		return
	}
	if len(msg) > 0 && int(msg[0]>>4) != in.cfg.Version {
		in.drop(ReasonVersion, src)
		return
	}
	if err := in.rx.Decode(msg, src, dst); err != nil {
		var pe *PacketError
		if errors.As(err, &pe) {
			in.drop(pe.Reason, src)
		}
		return
	}
	a := &in.rx
	if a.VRID != in.cfg.VirtualRouterID {
		in.drop(ReasonVRID, src)
		return
	}
	if len(in.cfg.UnicastPeers) > 0 && !slices.ContainsFunc(in.dsts, func(p netip.Addr) bool { return p.WithZone("") == src }) {
		in.drop(ReasonPeer, src)
		return
	}
	if in.cfg.Version == 2 && (a.AuthType != in.advert.AuthType || a.AuthData != in.advert.AuthData) {
		in.drop(ReasonAuth, src)
		return
	}
	if (in.cfg.Version == 2 && a.Interval != in.cfg.AdvertInterval) || a.Interval == 0 ||
		a.Interval > MaxIntervalRatio*in.cfg.AdvertInterval {
		in.drop(ReasonInterval, src)
		return
	}
	in.followLocalAddr()
	if src == in.local {
		in.drop(ReasonSelf, src)
		return
	}
	if !sameAddrs(a.Addrs, in.vips) {
		if in.addrListLog.allow(in.clock.Now()) {
			in.log.Warn("advert lists other virtual IPs than ours", "from", src, "theirs", a.Addrs, "ours", in.vips, "suppressed", in.addrListLog.take())
		}
	}
	in.handle(Event{Kind: EventAdvert, From: src, Priority: a.Priority, Interval: a.Interval})
	// Counted last: once it shows, the advert's effects are done.
	in.metrics.advertsReceived.Inc()
}

// drop counts a dropped packet and logs it, at most one line per reason per
// logEvery with the count of the ones not logged since. Packets of other
// virtual routers and our own are normal on a shared segment: debug only.
func (in *Instance) drop(r Reason, src netip.Addr) {
	in.metrics.dropped[r].Inc()
	l := in.dropLog[r]
	if !l.allow(in.clock.Now()) {
		return
	}
	level := slog.LevelWarn
	if r == ReasonVRID || r == ReasonSelf {
		level = slog.LevelDebug
	}
	in.log.Log(context.Background(), level, "dropping VRRP packet", "reason", string(r), "from", src, "suppressed", l.take())
}

// sameAddrs reports whether a and b hold the same addresses in any order.
func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// handle feeds ev to the machine and carries out its actions.
func (in *Instance) handle(ev Event) {
	now := in.clock.Now()
	in.actions = in.machine.Handle(now, ev, in.actions)
	for _, a := range in.actions {
		in.perform(now, a)
	}
	in.mu.Lock()
	in.status.State = in.machine.State().String()
	in.status.EffectivePriority = in.machine.Priority()
	in.status.MasterIP = in.machine.Master()
	in.mu.Unlock()
	in.metrics.priority.Set(float64(in.machine.Priority()))
}

func (in *Instance) perform(now time.Time, a Action) {
	switch a.Kind {
	case ActionSendAdvert:
		in.sendAdvert(now, a.Priority)
	case ActionAddVIPs:
		for _, p := range in.cfg.VirtualIPs {
			in.addVIP(p)
		}
	case ActionRemoveVIPs:
		for _, p := range in.cfg.VirtualIPs {
			in.removeVIP(p)
		}
	case ActionRemoveStaleVIPs:
		in.removeStale()
	case ActionAnnounce:
		in.startGARP()
	case ActionSetTimer:
		in.setTimer(a.Deadline.Sub(now))
	case ActionStopTimer:
		in.setTimer(-1)
	case ActionTransition:
		in.log.Info("transition", "from", a.From.String(), "to", a.To.String(), "reason", string(a.Why),
			"priority", in.machine.Priority(), "master", in.machine.Master())
		in.metrics.setState(a.To)
		in.metrics.transitions[a.To].Inc()
		if a.From == StateMaster {
			in.stopGARP()
		}
		if in.notifier != nil {
			in.notifier.Notify(in.cfg.Name, a.To.String())
		}
	}
}

// localAddr is t's source address without zone: a link-local source
// compares equal however it is reported.
func localAddr(t Transport) netip.Addr {
	return t.LocalAddr().Unmap().WithZone("")
}

// followLocalAddr picks up a new source address of the transport (the
// interface's primary address changed): the checksum, the tie-break and the
// self check use it from now on.
func (in *Instance) followLocalAddr() {
	l := localAddr(in.transport)
	if l == in.local || !l.IsValid() || l.Is4() != in.local.Is4() {
		return
	}
	in.log.Info("source address changed", "from", in.local, "to", l)
	in.local = l
	in.machine.SetLocalAddr(l)
	in.mu.Lock()
	if in.machine.State() == StateMaster {
		in.status.MasterIP = l
	}
	in.mu.Unlock()
}

// removeStale removes configured virtual IPs left on the interface by a run
// that did not stop cleanly. Other addresses are never touched.
// addVIP adds a virtual IP to the interface and, done, counts it held.
func (in *Instance) addVIP(p netip.Prefix) {
	if err := in.addrs.Add(p); err != nil {
		in.log.Error("adding virtual IP", "vip", p, "err", err)
		return
	}
	in.mu.Lock()
	if !slices.Contains(in.status.HeldIPs, p) {
		in.status.HeldIPs = append(in.status.HeldIPs, p)
	}
	in.mu.Unlock()
}

// removeVIP removes a virtual IP from the interface and no longer counts
// it held, even when the removal failed (the address is then not ours to
// vouch for).
func (in *Instance) removeVIP(p netip.Prefix) {
	if err := in.addrs.Remove(p); err != nil {
		in.log.Error("removing virtual IP", "vip", p, "err", err)
	}
	in.mu.Lock()
	in.status.HeldIPs = slices.DeleteFunc(in.status.HeldIPs, func(q netip.Prefix) bool { return q == p })
	in.mu.Unlock()
}

func (in *Instance) removeStale() {
	for _, p := range in.cfg.VirtualIPs {
		has, err := in.addrs.Has(p)
		if err != nil {
			in.log.Error("looking for a leftover virtual IP", "vip", p, "err", err)
			continue
		}
		if !has {
			continue
		}
		in.log.Info("removing virtual IP left on the interface before becoming backup", "vip", p)
		if err := in.addrs.Remove(p); err != nil {
			in.log.Error("removing leftover virtual IP", "vip", p, "err", err)
		}
	}
}

func (in *Instance) sendAdvert(now time.Time, prio uint8) {
	in.followLocalAddr()
	in.advert.Priority = prio
	for _, dst := range in.dsts {
		var err error
		in.sendBuf, err = in.advert.Append(in.sendBuf[:0], in.local, dst)
		if err == nil {
			err = in.transport.Send(in.sendBuf, dst)
		}
		if err != nil {
			if in.sendErrLog.allow(now) {
				in.log.Error("sending advert", "to", dst, "priority", prio, "err", err, "suppressed", in.sendErrLog.take())
			}
			continue
		}
		in.metrics.advertsSent.Inc()
	}
}

// setTimer re-arms the machine's timer d from now; d < 0 disarms it. A
// timer that can be reset is reused, so that the advert path allocates
// nothing.
func (in *Instance) setTimer(d time.Duration) {
	if in.timer != nil {
		if r, ok := in.timer.(resetter); ok && d >= 0 {
			r.Reset(d)
			in.timerC = in.timer.C()
			return
		}
		in.timer.Stop()
		in.timer, in.timerC = nil, nil
	}
	if d < 0 {
		return
	}
	in.timer = in.clock.NewTimer(d)
	in.timerC = in.timer.C()
}

// resetter is a Timer that can be re-armed (a system timer): since Go 1.23
// Reset leaves no stale expiry in the channel.
type resetter interface {
	Reset(d time.Duration) bool
}

// startGARP starts a burst of cfg.GARPRepeat announcements, GARPInterval apart.
func (in *Instance) startGARP() {
	in.stopGARP()
	in.garpLeft = in.cfg.GARPRepeat
	switch {
	case in.garpLeft > 0:
		in.garpTick()
	case in.cfg.GARPRefresh > 0:
		in.armGARP(in.cfg.GARPRefresh)
	}
}

// garpTick sends one announcement of the burst, or a refresh once the burst
// is over, and arms the next.
func (in *Instance) garpTick() {
	if in.machine.State() != StateMaster {
		return
	}
	if in.garpLeft > 0 {
		in.garpLeft--
	}
	in.announce()
	switch {
	case in.garpLeft > 0:
		in.armGARP(in.cfg.GARPInterval)
	case in.cfg.GARPRefresh > 0:
		in.armGARP(in.cfg.GARPRefresh)
	}
}

func (in *Instance) armGARP(d time.Duration) {
	in.garpTimer = in.clock.NewTimer(d)
	in.garpC = in.garpTimer.C()
}

func (in *Instance) stopGARP() {
	if in.garpTimer != nil {
		in.garpTimer.Stop()
		in.garpTimer, in.garpC = nil, nil
	}
	in.garpLeft = 0
}

func (in *Instance) announce() {
	if in.announcer == nil {
		return
	}
	if err := in.announcer.Announce(in.vips); err != nil {
		if now := in.clock.Now(); in.announceLog.allow(now) {
			in.log.Error("announcing virtual IPs", "err", err, "suppressed", in.announceLog.take())
		}
		return
	}
	in.metrics.garpSent.Inc()
}

// rateLimit lets a repeated log line through at most once per every.
type rateLimit struct {
	every      time.Duration
	last       time.Time
	suppressed int
}

// allow reports whether to log now; when not, it counts the line as suppressed.
func (r *rateLimit) allow(now time.Time) bool {
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		r.suppressed++
		return false
	}
	r.last = now
	return true
}

// take returns and resets the count of suppressed lines.
func (r *rateLimit) take() int {
	n := r.suppressed
	r.suppressed = 0
	return n
}
