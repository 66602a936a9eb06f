package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vrrplb/vrrplb/config"
)

// Options are what a Frontend takes besides its config. The zero value works.
type Options struct {
	// Logger receives errors and reload facts; nil discards them.
	Logger *slog.Logger
	// Metrics counts connections and bytes; nil counts into unregistered series.
	Metrics *Metrics
	// Health says which backends may take connections; nil (or health type
	// "none" in the config) means every backend is healthy.
	Health Health
	// ListenFunc opens the frontend's listener; nil listens on TCP.
	ListenFunc func(ctx context.Context, network, address string) (net.Listener, error)
	// DialContext connects to a backend; nil dials TCP. The data path splices
	// only when it returns a *net.TCPConn.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
}

// Frontend is one [[frontend]]: a listener and the connections it proxies.
type Frontend struct {
	name    string
	log     *slog.Logger
	metrics frontendMetrics
	health  Health
	listen  func(ctx context.Context, network, address string) (net.Listener, error)
	dial    func(ctx context.Context, network, address string) (net.Conn, error)

	// state is what a new connection reads, replaced whole on reload.
	state  atomic.Pointer[state]
	active atomic.Int64 // client connections open, for max_connections
	wg     sync.WaitGroup
	// workers runs the connection goroutines; set by Run before it accepts.
	workers *workers

	mu       sync.Mutex
	addr     net.Addr                // the listener's address once listening
	conns    map[*proxyConn]struct{} // connections being proxied
	stopping bool                    // drain over: new registrations are refused
}

// state is a frontend's config and backend set, immutable once published.
type state struct {
	cfg      config.Frontend
	bal      balancer
	backends []*backend
}

// backend is one configured backend address of a frontend.
type backend struct {
	addr    string
	hash    uint64 // of addr, for source hashing
	active  atomic.Int64
	metrics backendMetrics
}

// Status is a frontend's state for `vrrplb status` and /status.
type Status struct {
	Name     string          `json:"name"`
	Listen   string          `json:"listen"`
	Backends []BackendStatus `json:"backends"`
}

// BackendStatus is one backend of a Status.
type BackendStatus struct {
	Address           string `json:"address"`
	Healthy           bool   `json:"healthy"`
	ActiveConnections int64  `json:"active_connections"`
}

// New returns a frontend for fe; Run starts it.
func New(fe config.Frontend, opts Options) (*Frontend, error) {
	bal, err := newBalancer(fe.Balance)
	if err != nil {
		return nil, fmt.Errorf("frontend %q: %w", fe.Name, err)
	}
	m := opts.Metrics
	if m == nil {
		m, _ = NewMetrics(nil) // cannot fail without a registerer
	}
	f := &Frontend{
		name:    fe.Name,
		log:     opts.Logger,
		metrics: m.frontend(fe.Name),
		health:  opts.Health,
		listen:  opts.ListenFunc,
		dial:    opts.DialContext,
		conns:   make(map[*proxyConn]struct{}),
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.log = f.log.With("frontend", fe.Name)
	if f.health == nil || fe.Health.Type == config.CheckNone {
		f.health = alwaysHealthy{}
	}
	if f.listen == nil {
		f.listen = listenTCP
	}
	if f.dial == nil {
		// keepalive is set per frontend after connect
		d := &net.Dialer{KeepAlive: -1, Control: connectEarly}
		f.dial = d.DialContext
	}
	st := &state{cfg: fe, bal: bal}
	for _, addr := range fe.Backends {
		st.backends = append(st.backends, f.newBackend(addr))
	}
	f.state.Store(st)
	return f, nil
}

func (f *Frontend) newBackend(addr string) *backend {
	return &backend{addr: addr, hash: hashBytes([]byte(addr)), metrics: f.metrics.backend(addr)}
}

// Name is the frontend's configured name.
func (f *Frontend) Name() string { return f.name }

// Addr is the address the frontend listens on, or nil before Run has
// opened its listener.
func (f *Frontend) Addr() net.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addr
}

// Status reports the frontend's backends, their health and their load.
func (f *Frontend) Status() Status {
	st := f.state.Load()
	s := Status{Name: f.name, Listen: st.cfg.Listen, Backends: []BackendStatus{}}
	for _, b := range st.backends {
		s.Backends = append(s.Backends, BackendStatus{
			Address:           b.addr,
			Healthy:           f.health.Healthy(b.addr),
			ActiveConnections: b.active.Load(),
		})
	}
	return s
}

// HasHealthyBackend reports whether at least one backend may take
// connections now (what track_frontend watches).
func (f *Frontend) HasHealthyBackend() bool {
	for _, b := range f.state.Load().backends {
		if f.health.Healthy(b.addr) {
			return true
		}
	}
	return false
}

// Update applies a reloaded config of the same frontend. New connections
// use it at once; live connections keep going, except those to a removed
// backend, which are closed after drain_timeout. The listen address cannot
// change while running: such a frontend must be replaced.
func (f *Frontend) Update(fe config.Frontend) error {
	if fe.Name != f.name {
		return fmt.Errorf("frontend %q: cannot update from config of frontend %q", f.name, fe.Name)
	}
	if cur := f.state.Load().cfg.Listen; fe.Listen != cur {
		return fmt.Errorf("frontend %q: listen changes from %s to %s: the frontend must be restarted", f.name, cur, fe.Listen)
	}
	bal, err := newBalancer(fe.Balance)
	if err != nil {
		return fmt.Errorf("frontend %q: %w", f.name, err)
	}
	f.replace(fe, bal)
	return nil
}

// SetBackends replaces the backend set, keeping the rest of the config:
// new connections use the new set at once, connections to a backend that
// stays are untouched, those to a removed backend close after drain_timeout.
func (f *Frontend) SetBackends(addrs []string) {
	st := f.state.Load()
	fe := st.cfg
	fe.Backends = slices.Clone(addrs)
	f.replace(fe, st.bal)
}

func (f *Frontend) replace(fe config.Frontend, bal balancer) {
	f.mu.Lock()
	old := f.state.Load()
	if old.cfg.Balance == fe.Balance {
		bal = old.bal // keep the round-robin position
	}
	st := &state{cfg: fe, bal: bal}
	kept := make(map[*backend]bool)
	for _, addr := range fe.Backends {
		i := slices.IndexFunc(old.backends, func(b *backend) bool { return b.addr == addr })
		if i >= 0 {
			st.backends = append(st.backends, old.backends[i])
			kept[old.backends[i]] = true
			continue
		}
		st.backends = append(st.backends, f.newBackend(addr))
	}
	f.state.Store(st)
	var removed []*backend
	for _, b := range old.backends {
		if !kept[b] {
			removed = append(removed, b)
		}
	}
	f.mu.Unlock()

	for _, b := range removed {
		f.metrics.deleteBackend(b.addr)
		f.log.Info("backend removed, draining its connections", "backend", b.addr,
			"connections", b.active.Load(), "drain_timeout", fe.DrainTimeout)
		time.AfterFunc(fe.DrainTimeout, func() {
			n := f.closeBackend(b)
			if n > 0 {
				f.log.Info("drain of removed backend over, connections closed", "backend", b.addr, "connections", n)
			}
		})
	}
	for _, b := range st.backends {
		if !kept[b] {
			f.log.Info("backend added", "backend", b.addr)
		}
	}
}

// closeBackend closes every connection proxied to b and returns how many.
func (f *Frontend) closeBackend(b *backend) int {
	f.mu.Lock()
	var cut []*proxyConn
	for pc := range f.conns {
		if pc.backend == b {
			cut = append(cut, pc)
		}
	}
	f.mu.Unlock()
	for _, pc := range cut {
		pc.close()
	}
	return len(cut)
}

// onHealth is called by Health on every change.
func (f *Frontend) onHealth(addr string, healthy bool) {
	st := f.state.Load()
	if healthy || !st.cfg.CloseOnBackendDown {
		return
	}
	for _, b := range st.backends {
		if b.addr == addr {
			if n := f.closeBackend(b); n > 0 {
				f.log.Info("backend down, connections closed", "backend", addr, "connections", n)
			}
		}
	}
}

// Run listens and proxies until ctx ends, then stops accepting, lets live
// connections finish for drain_timeout, closes the rest and returns.
func (f *Frontend) Run(ctx context.Context) error {
	cfg := f.state.Load().cfg
	ln, err := f.listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("frontend %q: listen on %s: %w", f.name, cfg.Listen, err)
	}
	f.mu.Lock()
	f.addr = ln.Addr()
	f.stopping = false
	f.mu.Unlock()
	f.log.Info("frontend listening", "listen", ln.Addr().String())
	cancel := f.health.Subscribe(f.onHealth)
	defer cancel()

	f.setListenerKeepAlive(ln, cfg.TCPKeepAlive)
	if err := parker.init(); err != nil {
		f.log.Warn("idle connections cannot park, each keeps two goroutines", "error", err)
	}
	f.workers = newWorkers()
	defer f.workers.stop()
	acceptDone := make(chan error, 1)
	go func() { acceptDone <- f.acceptLoop(ctx, ln) }()
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweepDone := make(chan struct{})
	go func() {
		f.sweepLoop(sweepCtx)
		close(sweepDone)
	}()
	defer func() {
		stopSweep()
		<-sweepDone
	}()
	select {
	case <-ctx.Done():
	case err = <-acceptDone:
		acceptDone <- err
	}
	ln.Close()
	if err := <-acceptDone; err != nil {
		return fmt.Errorf("frontend %q: %w", f.name, err)
	}
	f.drain(f.state.Load().cfg.DrainTimeout)
	return nil
}

// Once at least releaseAfterParking directions have parked (a mass
// reconnect that went idle: every kubelet's watches after a failover) and
// the parking has settled, the sweep returns the freed goroutine stacks to
// the system, at most once per releaseEvery.
const (
	releaseAfterParking = 1000
	releaseEvery        = 10 * time.Second
)

// sweepLoop enforces idle_timeout and parks idle directions.
func (f *Frontend) sweepLoop(ctx context.Context) {
	const maxTick = 250 * time.Millisecond
	tick := time.NewTicker(maxTick)
	defer tick.Stop()
	lastPark := time.Now()
	var lastRelease time.Time
	parkedSinceRelease := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			parkPass := now.Sub(lastPark) >= parkEvery
			if parkPass {
				lastPark = now
			}
			idle := f.state.Load().cfg.IdleTimeout
			if !parkPass && idle == 0 {
				continue
			}
			f.mu.Lock()
			conns := make([]*proxyConn, 0, len(f.conns))
			for pc := range f.conns {
				conns = append(conns, pc)
			}
			f.mu.Unlock()
			asked := 0
			for _, pc := range conns {
				asked += pc.sweep(now, parkPass)
			}
			if !parkPass {
				continue
			}
			f.workers.trim()
			parkedSinceRelease += asked
			if parkedSinceRelease >= releaseAfterParking && asked < releaseAfterParking/10 &&
				now.Sub(lastRelease) >= releaseEvery {
				// The mass parking has settled and its goroutines have
				// returned; their stacks go back to the system only at a
				// GC, which an idle proxy may not run for minutes.
				debug.FreeOSMemory()
				lastRelease = now
				parkedSinceRelease = 0
			}
			if idle > 0 {
				tick.Reset(min(maxTick, max(idle/4, 10*time.Millisecond)))
			}
		}
	}
}

// drain waits up to timeout for the live connections to end, then closes
// what is left and waits for the connection goroutines to return.
func (f *Frontend) drain(timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	if n := f.active.Load(); n > 0 {
		f.log.Info("draining connections", "connections", n, "drain_timeout", timeout)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	f.mu.Lock()
	f.stopping = true
	cut := make([]*proxyConn, 0, len(f.conns))
	for pc := range f.conns {
		cut = append(cut, pc)
	}
	f.mu.Unlock()
	f.log.Info("drain timeout over, closing connections", "connections", len(cut))
	for _, pc := range cut {
		pc.close()
	}
	<-done
}

// Accept back-off after EMFILE/ENFILE or another accept error: short at
// first so a brief fd shortage costs little, bounded so recovery is quick.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = 500 * time.Millisecond
)

// acceptLoop accepts until the listener closes. When the process is out of
// file descriptors it refuses the waiting client with a spare descriptor
// kept for that, counts it, and backs off instead of spinning on accept.
func (f *Frontend) acceptLoop(ctx context.Context, ln net.Listener) error {
	spare := openSpareFD()
	defer func() { closeSpareFD(spare) }()
	backoff := time.Duration(0)
	for {
		c, err := ln.Accept()
		if err == nil {
			backoff = 0
			f.wg.Add(1)
			f.workers.run(func() { f.serve(c) })
			continue
		}
		if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
			return nil
		}
		reason := ReasonAcceptError
		if isFDLimit(err) {
			reason = ReasonFDLimit
			var refused bool
			if spare, refused = f.refuseOne(ln, spare); refused {
				// One waiting client was refused: progress, not a spin.
				f.metrics.reject(reason)
				continue
			}
		}
		f.metrics.reject(reason)
		if backoff == 0 {
			backoff = acceptBackoffMin
			f.log.Warn("accept failed, backing off", "error", err, "reason", reason)
		} else {
			backoff = min(2*backoff, acceptBackoffMax)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// refuseOne frees the spare descriptor, accepts the client waiting at the
// head of the queue and closes it at once (so it learns now instead of
// waiting in the backlog), then takes the spare back. refused reports
// whether a client was refused.
func (f *Frontend) refuseOne(ln net.Listener, spare int) (newSpare int, refused bool) {
	if spare < 0 {
		return openSpareFD(), false
	}
	closeSpareFD(spare)
	c, err := ln.Accept()
	if err == nil {
		c.Close()
	}
	return openSpareFD(), err == nil
}

func isFDLimit(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// serve connects one accepted client to a backend and starts the two
// directions of copying; it returns without waiting for them.
func (f *Frontend) serve(client net.Conn) {
	st := f.state.Load()
	f.metrics.connections.Inc()
	n := f.active.Add(1)
	f.metrics.active.Inc()
	refuse := func(reason string) {
		f.metrics.reject(reason)
		client.Close()
		f.active.Add(-1)
		f.metrics.active.Dec()
		f.wg.Done()
	}
	if max := st.cfg.MaxConnections; max > 0 && n > int64(max) {
		refuse(ReasonMaxConnections)
		return
	}
	server, b, err := f.connect(st, client)
	if err != nil {
		f.log.Debug("connection refused", "client", client.RemoteAddr().String(), "error", err)
		if isFDLimit(err) {
			refuse(ReasonFDLimit)
		} else {
			refuse(ReasonNoBackend)
		}
		return
	}
	pc := newProxyConn(f, client, server, b, st.cfg.IdleTimeout)
	pc.keepAlive = st.cfg.TCPKeepAlive
	if !f.register(pc) {
		server.Close()
		refuse(ReasonNoBackend)
		return
	}
	b.active.Add(1)
	b.metrics.active.Inc()
	b.metrics.connections.Inc()
	pc.start()
}

// connDone is called once per proxied connection, when both directions
// have ended.
func (f *Frontend) connDone(pc *proxyConn) {
	pc.backend.active.Add(-1)
	pc.backend.metrics.active.Dec()
	f.unregister(pc)
	f.active.Add(-1)
	f.metrics.active.Dec()
	f.wg.Done()
}

func (f *Frontend) register(pc *proxyConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopping {
		return false
	}
	f.conns[pc] = struct{}{}
	return true
}

func (f *Frontend) unregister(pc *proxyConn) {
	f.mu.Lock()
	delete(f.conns, pc)
	f.mu.Unlock()
}

var errNoHealthyBackend = errors.New("no healthy backend")

// connect dials a healthy backend, and on failure reports the fault and
// tries another healthy one, up to retries more times.
func (f *Frontend) connect(st *state, client net.Conn) (net.Conn, *backend, error) {
	var clientIP netip.Addr // only source hashing reads it
	if st.cfg.Balance == config.Source {
		if ta, ok := client.RemoteAddr().(*net.TCPAddr); ok {
			clientIP = ta.AddrPort().Addr().Unmap()
		}
	}
	var tried [8]*backend
	excluded := tried[:0]
	var cands [8]*backend
	lastErr := errNoHealthyBackend
	for range st.cfg.Retries + 1 {
		healthy := cands[:0]
		for _, b := range st.backends {
			if !slices.Contains(excluded, b) && f.health.Healthy(b.addr) {
				healthy = append(healthy, b)
			}
		}
		if len(healthy) == 0 {
			break
		}
		b := st.bal.pick(healthy, clientIP)
		ctx, cancel := context.WithTimeout(context.Background(), st.cfg.ConnectTimeout)
		server, err := f.dial(ctx, "tcp", b.addr)
		cancel()
		if err == nil {
			return server, b, nil
		}
		if isFDLimit(err) {
			// Our own shortage, not the backend's fault.
			return nil, nil, fmt.Errorf("connect to %s: %w", b.addr, err)
		}
		b.metrics.connectErrors.Inc()
		f.health.ReportFault(b.addr)
		f.log.Debug("connect to backend failed", "backend", b.addr, "error", err)
		lastErr = fmt.Errorf("connect to %s: %w", b.addr, err)
		excluded = append(excluded, b)
	}
	return nil, nil, lastErr
}

// keepaliveProbes is how many unanswered probes declare a peer dead.
const keepaliveProbes = 3

// setListenerKeepAlive sets TCP keepalive on the listening socket: Linux
// copies it to every accepted socket, which saves four setsockopt calls
// per connection.
func (f *Frontend) setListenerKeepAlive(ln net.Listener, period time.Duration) {
	tl, ok := ln.(*net.TCPListener)
	if !ok || period <= 0 {
		return
	}
	rc, err := tl.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { err = setKeepAliveFD(int(fd), period) })
	}
	if err != nil {
		f.log.Warn("cannot set TCP keepalive on the listener", "error", err)
	}
}

func setKeepAlive(c net.Conn, period time.Duration) {
	tc, ok := c.(*net.TCPConn)
	if !ok || period <= 0 {
		return
	}
	_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{
		Enable:   true,
		Idle:     period,
		Interval: max(period/keepaliveProbes, time.Second),
		Count:    keepaliveProbes,
	})
}

func listenTCP(ctx context.Context, network, address string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1} // keepalive is set per frontend after connect
	return lc.Listen(ctx, network, address)
}
