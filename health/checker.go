package health

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/clock"
)

// msgLocalError is the log line of a check that could not run for a reason
// of this host; localErrorLogEvery spaces them per frontend.
const (
	msgLocalError      = "health check could not run on this host; backend state kept"
	localErrorLogEvery = time.Minute
)

// faultSpacing: a passive fault brings the next check forward, but never
// closer than interval/faultSpacing to the start of the previous one, so a
// storm of failed connects costs at most a few extra checks per interval.
const faultSpacing = 4

// Options are a Checker's collaborators. The zero value is ready to use.
type Options struct {
	// Logger receives one line per backend state change; nil discards.
	Logger *slog.Logger
	// Metrics records vrrplb_backend_up and the check metrics; nil records
	// nothing.
	Metrics *Metrics
	// Clock schedules checks; nil is the real clock. A check's timeout and
	// its measured duration always use real time: the I/O they bound is real.
	Clock clock.Clock
	// DialContext opens the checks' TCP connections; nil is a net.Dialer.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
	// Jitter returns the wait until the next check for the configured
	// interval; nil draws it uniformly within ±10% of the interval.
	Jitter func(interval time.Duration) time.Duration
}

// Checker checks the backends of one frontend and holds their state. Its
// methods are safe for concurrent use. The proxy reads it through Healthy,
// ReportFault and Subscribe; VRRP's track_frontend and BGP through Track
// (Tracker); the admin server through Status.
type Checker struct {
	frontend string
	log      *slog.Logger
	metrics  *Metrics
	clock    clock.Clock
	dial     dialFunc
	jitter   func(time.Duration) time.Duration

	mu       sync.Mutex
	cfg      config.Health
	prober   *prober // nil for type "none"
	order    []string
	backends map[string]*backend
	// runCtx is Run's context while Run runs, nil otherwise.
	runCtx  context.Context
	running bool
	wg      sync.WaitGroup

	subs     []*subscription
	watchers map[chan struct{}]struct{}
	// events waits for delivery to subscribers, in order; delivering is true
	// while some goroutine delivers them.
	events     []event
	delivering bool

	// localLogAt is when a local error was last logged; localSuppressed
	// counts those not logged since.
	localLogAt      time.Time
	localSuppressed int
}

// backend is one checked address. Fields are guarded by Checker.mu, except
// kick, which is only sent to and received from.
type backend struct {
	addr   string
	streak streak
	// last is the most recent check result; zero before the first.
	last result
	// kick carries a pending passive fault (or a reload) to the check loop;
	// its buffer of one coalesces any number of them.
	kick chan struct{}
	// cancel stops the check loop; nil while none runs.
	cancel context.CancelFunc
}

// event is one backend state change, delivered after the lock is released.
type event struct {
	backend  string
	from, to State
	reason   string
	hint     string // advice for the operator, "" for none
}

type subscription struct {
	fn     func(backend string, healthy bool)
	active bool // guarded by Checker.mu
}

// BackendStatus is one backend as the admin /status shows it.
type BackendStatus struct {
	// Address is the backend as configured, "host:port".
	Address string `json:"address"`
	Healthy bool   `json:"healthy"`
	State   State  `json:"state"`
	// Reason is what the latest check found ("status 200", "connection
	// refused"); "" before the first check.
	Reason string `json:"reason,omitempty"`
}

// MarshalText makes a State read as "up", "down" or "unknown" in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// New returns the Checker of the frontend named frontend, checking backends
// ("host:port") as cfg says. Checks start when Run is called. Every backend
// starts Unknown (not healthy), except with type "none", where every backend
// is always Up. It fails if cfg is unusable, for example if ca_file cannot be
// read.
func New(frontend string, cfg config.Health, backends []string, opts Options) (*Checker, error) {
	c := &Checker{
		frontend: frontend,
		log:      opts.Logger,
		metrics:  opts.Metrics,
		clock:    clock.Or(opts.Clock),
		dial:     opts.DialContext,
		jitter:   opts.Jitter,
		backends: make(map[string]*backend),
		watchers: make(map[chan struct{}]struct{}),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.dial == nil {
		c.dial = (&net.Dialer{}).DialContext
	}
	if c.jitter == nil {
		c.jitter = func(d time.Duration) time.Duration { return jitter(d, rand.Float64()) }
	}
	c.cfg.Type = config.CheckNone
	if err := c.Update(cfg, backends); err != nil {
		return nil, err
	}
	return c, nil
}

// Run checks the backends until ctx ends, then stops every check and returns
// nil once they have all returned. A Checker runs at most once.
func (c *Checker) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return fmt.Errorf("frontend %q: health checker already ran", c.frontend)
	}
	c.running = true
	c.runCtx = ctx
	for _, addr := range c.order {
		c.startLocked(c.backends[addr])
	}
	c.mu.Unlock()

	<-ctx.Done()

	c.mu.Lock()
	c.runCtx = nil
	for _, b := range c.backends {
		c.stopLocked(b)
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// Update applies a reloaded configuration. Backends kept keep their state
// and their place in the schedule; if the check itself changed, each is
// checked again a quarter interval after its last check (at once if that has
// passed), unless its next check is due sooner.
// New backends start Unknown (Up with type "none") and are checked at once.
// Removed backends stop being checked and their metric series are deleted;
// their removal is not an event for subscribers (the proxy drains them on its
// own reload), so a caller that tracks anyHealthyLocked re-reads it, which Track
// does. A backend kept while the type changes from "none" to a real check

// CheckUpdate reports whether Update(cfg, backends) would be refused (an
// unreadable ca_file), changing nothing.
func (c *Checker) CheckUpdate(cfg config.Health, _ []string) error {
	_, err := c.checkUpdate(cfg)
	return err
}

func (c *Checker) checkUpdate(cfg config.Health) (*prober, error) {
	p, err := newProber(cfg, c.dial)
	if err != nil {
		return nil, fmt.Errorf("frontend %q: %w", c.frontend, err)
	}
	if cfg.Type != config.CheckNone && cfg.Interval <= 0 {
		return nil, fmt.Errorf("frontend %q: health interval %v: must be positive", c.frontend, cfg.Interval)
	}
	return p, nil
}

// stays Up until fall checks fail. On error nothing changes.
func (c *Checker) Update(cfg config.Health, backends []string) error {
	p, err := c.checkUpdate(cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	wasNone := c.cfg.Type == config.CheckNone
	isNone := cfg.Type == config.CheckNone
	changed := !sameHealth(c.cfg, cfg)
	c.cfg = cfg
	c.cfg.ExpectStatus = slices.Clone(cfg.ExpectStatus)
	c.prober = p

	var order []string
	for _, addr := range backends {
		if !slices.Contains(order, addr) {
			order = append(order, addr)
		}
	}
	for addr, b := range c.backends {
		if !slices.Contains(order, addr) {
			c.stopLocked(b)
			delete(c.backends, addr)
			c.metrics.forget(c.frontend, addr)
		}
	}
	for _, addr := range order {
		b, ok := c.backends[addr]
		switch {
		case !ok:
			b = &backend{addr: addr, kick: make(chan struct{}, 1)}
			if isNone {
				b.streak.state = Up
			}
			c.backends[addr] = b
			c.metrics.add(c.frontend, addr, isNone)
			c.startLocked(b)
		case isNone:
			c.stopLocked(b)
			from := b.streak.state
			b.streak, b.last = streak{state: Up}, result{}
			c.changedLocked(b, from, "health check type none")
		case wasNone:
			c.startLocked(b)
		case changed:
			kick(b)
		}
	}
	c.order = order
	c.pokeLocked()
	c.mu.Unlock()
	c.deliver()
	return nil
}

// sameHealth reports whether two check configurations are equal.
func sameHealth(a, b config.Health) bool {
	return a.Type == b.Type && a.Path == b.Path && slices.Equal(a.ExpectStatus, b.ExpectStatus) &&
		a.Interval == b.Interval && a.Timeout == b.Timeout && a.Rise == b.Rise && a.Fall == b.Fall &&
		a.CAFile == b.CAFile && a.ServerName == b.ServerName && a.CertFile == b.CertFile && a.KeyFile == b.KeyFile
}

// startLocked starts b's check loop if Run runs, the type checks, and none
// runs yet.
func (c *Checker) startLocked(b *backend) {
	if c.runCtx == nil || c.prober == nil || b.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(c.runCtx)
	b.cancel = cancel
	c.wg.Add(1)
	go c.loop(ctx, b)
}

// stopLocked stops b's check loop. A check in flight finishes in the
// background, but its result is dropped: record sees the cancelled context
// under the same lock.
func (c *Checker) stopLocked(b *backend) {
	if b.cancel != nil {
		b.cancel()
		b.cancel = nil
	}
}

// loop checks one backend until ctx ends: once at start, then every jittered
// interval, and sooner after a passive fault. One goroutine per backend, so
// never more than one check of a backend is in flight.
func (c *Checker) loop(ctx context.Context, b *backend) {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		p := c.prober
		c.mu.Unlock()
		if p == nil {
			return
		}
		// Faults reported before this check starts are answered by it.
		select {
		case <-b.kick:
		default:
		}
		start := c.clock.Now()
		r, took := p.check(ctx, b.addr)
		c.record(ctx, b, r, took)
		if !c.wait(ctx, b, start) {
			return
		}
	}
}

// wait blocks until the next check of b is due, counting from the start of
// the previous one. It returns false when ctx ends.
func (c *Checker) wait(ctx context.Context, b *backend, last time.Time) bool {
	due := last.Add(c.jitter(c.interval()))
	timer := c.clock.NewTimer(due.Sub(c.clock.Now()))
	defer func() { timer.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C():
			return true
		case <-b.kick:
			soon := last.Add(c.interval() / faultSpacing)
			if !soon.Before(due) {
				continue
			}
			now := c.clock.Now()
			if !now.Before(soon) {
				return true
			}
			timer.Stop()
			due = soon
			timer = c.clock.NewTimer(due.Sub(now))
		}
	}
}

func (c *Checker) interval() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Interval
}

// record applies one check result to b, unless b's loop was stopped
// meanwhile. A local error is counted and logged, at most once per
// localErrorLogEvery, and changes nothing else: the backend keeps its state.
func (c *Checker) record(ctx context.Context, b *backend, r result, took time.Duration) {
	c.mu.Lock()
	if ctx.Err() != nil {
		c.mu.Unlock()
		return
	}
	c.metrics.observe(c.frontend, b.addr, r, took)
	if r.kind == ResultLocalError {
		now := c.clock.Now()
		logIt := c.localLogAt.IsZero() || now.Sub(c.localLogAt) >= localErrorLogEvery
		suppressed := c.localSuppressed
		if logIt {
			c.localLogAt, c.localSuppressed = now, 0
		} else {
			c.localSuppressed++
		}
		c.mu.Unlock()
		if logIt {
			c.log.Warn(msgLocalError, "frontend", c.frontend, "backend", b.addr, "reason", r.detail,
				"state", b.streakState(c), "suppressed", suppressed)
		}
		return
	}
	newlyRefused := r.kind == ResultAuth && b.last.kind != ResultAuth
	b.last = r
	from := b.streak.state
	b.streak = next(b.streak, r.ok, c.cfg.Rise, c.cfg.Fall)
	changed := from != b.streak.state
	c.changedLocked(b, from, r.detail)
	c.mu.Unlock()
	if newlyRefused && !changed {
		// Already down for another reason: the state change line that
		// carries the hint will not come.
		c.log.Warn("health check not allowed", "frontend", c.frontend, "backend", b.addr, "reason", r.detail, "hint", r.hint())
	}
	c.deliver()
}

// streakState is b's state under c's lock.
func (b *backend) streakState(c *Checker) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return b.streak.state.String()
}

// changedLocked queues an event if b's state is no longer from. The caller
// calls deliver after unlocking.
func (c *Checker) changedLocked(b *backend, from State, reason string) {
	to := b.streak.state
	if from == to {
		return
	}
	c.metrics.setUp(c.frontend, b.addr, to == Up)
	c.events = append(c.events, event{backend: b.addr, from: from, to: to, reason: reason, hint: b.last.hint()})
	c.pokeLocked()
}

// pokeLocked wakes every Track loop; it never blocks.
func (c *Checker) pokeLocked() {
	for ch := range c.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// deliver logs queued events and hands them to subscribers, in order and
// without holding the lock. Whichever goroutine finds the queue idle
// delivers everything queued, including events queued by other goroutines
// (or by the subscribers themselves) meanwhile.
func (c *Checker) deliver() {
	c.mu.Lock()
	if c.delivering {
		c.mu.Unlock()
		return
	}
	c.delivering = true
	for len(c.events) > 0 {
		ev := c.events[0]
		c.events = c.events[1:]
		subs := slices.Clone(c.subs)
		c.mu.Unlock()

		c.logChange(ev)
		if (ev.from == Up) != (ev.to == Up) {
			for _, s := range subs {
				if c.subscribed(s) {
					s.fn(ev.backend, ev.to == Up)
				}
			}
		}

		c.mu.Lock()
	}
	c.delivering = false
	c.mu.Unlock()
}

func (c *Checker) subscribed(s *subscription) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.active
}

// logChange writes the line an operator reads to learn why a backend was
// taken out or put back.
func (c *Checker) logChange(ev event) {
	level, msg := slog.LevelInfo, "backend up"
	if ev.to != Up {
		level, msg = slog.LevelWarn, "backend down"
	}
	attrs := []any{"frontend", c.frontend, "backend", ev.backend,
		"from", ev.from.String(), "to", ev.to.String(), "reason", ev.reason}
	if ev.hint != "" && ev.to != Up {
		attrs = append(attrs, "hint", ev.hint)
	}
	c.log.Log(context.Background(), level, msg, attrs...)
}

func kick(b *backend) {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Healthy reports whether backend ("host:port" as configured) is Up. An
// unknown address is not healthy.
func (c *Checker) Healthy(backend string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.backends[backend]
	return ok && b.streak.state == Up
}

func (c *Checker) anyHealthyLocked() bool {
	for _, b := range c.backends {
		if b.streak.state == Up {
			return true
		}
	}
	return false
}

// ReportFault tells the checker that the proxy failed to connect to backend.
// It does not change the state by itself: it brings the backend's next check
// forward to now (or to a quarter interval after the previous check, if that
// is later). Any number of faults before that check coalesce into it. Unknown
// addresses and type "none" are ignored. It never blocks.
func (c *Checker) ReportFault(backend string) {
	c.mu.Lock()
	b, ok := c.backends[backend]
	c.mu.Unlock()
	if ok {
		kick(b)
	}
}

// Subscribe calls fn(backend, healthy) on every change of a backend's
// health, in order, never while holding the checker's lock, on a check
// goroutine or the goroutine calling Update. fn should return quickly: the
// check goroutine that delivers waits for it. Adding or removing a backend is not a
// change. cancel stops further calls.
func (c *Checker) Subscribe(fn func(backend string, healthy bool)) (cancel func()) {
	s := &subscription{fn: fn, active: true}
	c.mu.Lock()
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		s.active = false
		c.subs = slices.DeleteFunc(c.subs, func(x *subscription) bool { return x == s })
	}
}

// Track calls report with whether any backend is Up until ctx ends, then returns nil. The
// first call waits until every backend has its first result or one is
// healthy, so a starting daemon does not yield before its checks have
// run; after that it calls report on every change of it, including
// one caused by Update. Its signature fits vrrp.Tracker's Run.
func (c *Checker) Track(ctx context.Context, report func(ok bool)) error {
	wake := make(chan struct{}, 1)
	c.mu.Lock()
	c.watchers[wake] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.watchers, wake)
		c.mu.Unlock()
	}()

	reported, last := false, false
	for {
		c.mu.Lock()
		healthy := c.anyHealthyLocked()
		settled := healthy || c.settledLocked()
		c.mu.Unlock()
		if settled && (!reported || healthy != last) {
			report(healthy)
			reported, last = true, healthy
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

// Settled reports whether every backend has had its first result (the
// proxy does not announce fail_open before: a starting daemon has no
// verdict yet, not a failed one).
func (c *Checker) Settled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.settledLocked()
}

// settledLocked reports whether every backend has had its first result.
func (c *Checker) settledLocked() bool {
	for _, b := range c.backends {
		if b.streak.state == Unknown {
			return false
		}
	}
	return true
}

// Status returns every backend in configured order.
func (c *Checker) Status() []BackendStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]BackendStatus, 0, len(c.order))
	for _, addr := range c.order {
		b := c.backends[addr]
		out = append(out, BackendStatus{
			Address: addr,
			Healthy: b.streak.state == Up,
			State:   b.streak.state,
			Reason:  b.last.detail,
		})
	}
	return out
}

// Frontend returns the name of the frontend whose backends c checks.
func (c *Checker) Frontend() string { return c.frontend }

// FrontendTracker is a Checker seen by VRRP's track_frontend: it has the
// Name and Run methods of vrrp.Tracker.
type FrontendTracker struct{ c *Checker }

// Tracker returns c as a track_frontend tracker.
func (c *Checker) Tracker() FrontendTracker { return FrontendTracker{c} }

// Name is "frontend NAME", as VRRP logs the tracker.
func (t FrontendTracker) Name() string { return "frontend " + t.c.frontend }

// Run is Checker.Track.
func (t FrontendTracker) Run(ctx context.Context, report func(ok bool)) error {
	return t.c.Track(ctx, report)
}
