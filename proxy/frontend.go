package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/clock"
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
	// Clock times drain_timeout and the wait for health's first verdicts;
	// nil is clock.System. The event loops' own deadlines (connect_timeout,
	// idle_timeout) run on the epoll wait and real time.
	Clock clock.Clock
}

// Frontend is one [[frontend]]: a listener and the connections it proxies.
type Frontend struct {
	name    string
	log     *slog.Logger
	metrics frontendMetrics
	health  Health
	clock   clock.Clock

	// state is what a new connection reads, replaced whole on reload.
	state  atomic.Pointer[state]
	active atomic.Int64 // client connections open, for max_connections
	// autoMax is the process-wide limit that max_connections = 0 means,
	// set at Run from the open-file limit (limits_linux.go); 0: none.
	autoMax atomic.Int64
	wg      sync.WaitGroup // one per client connection open

	// failOpen is true while fail_open applies: it is on and no backend
	// is healthy. foMu orders its changes.
	failOpen atomic.Bool
	foMu     sync.Mutex

	mu    sync.Mutex
	addr  net.Addr // the listener's address once listening
	loops []*loop  // the event loops while running
}

// state is a frontend's config and backend set, immutable once published.
type state struct {
	cfg      config.Frontend
	bal      balancer
	backends []*backend
}

// backend is one configured backend address of a frontend.
type backend struct {
	addr   string
	hash   uint64       // of addr, for source hashing
	active atomic.Int64 // connections proxied to it
	// connecting counts the clients it was chosen for whose connect is
	// still under way; balancing counts them with active (load), so a
	// burst of new clients does not all go to one backend.
	connecting atomic.Int64
	metrics    backendMetrics
	// draining: `vrrplb backend drain` took it out of new connections;
	// its live ones go on and health checks go on.
	draining atomic.Bool
	// cutting: health reports it down and close_on_backend_down is on:
	// the loops close its connections as each goes quiet (quiet_linux.go).
	cutting atomic.Bool

	resolved  atomic.Pointer[resolved] // what connect(2) takes
	resolving atomic.Bool
	hostName  bool          // addr names a host, not an IP address
	preferred atomic.Uint32 // index of the address that answered last
}

// resolved is a backend's addresses for connect(2), or why there are none.
type resolved struct {
	addrs []sockAddr
	err   error
}

// sockAddr is one address in the kernel's form, built once; loops copy it
// for each connect.
type sockAddr struct {
	raw    unix.RawSockaddrAny
	len    uint32
	family int
}

// Status is a frontend's state for `vrrplb status` and /status.
type Status struct {
	Name   string `json:"name"`
	Listen string `json:"listen"`
	// FailOpen is true while fail_open applies: no backend is healthy and
	// new connections go to every backend.
	FailOpen bool            `json:"fail_open"`
	Backends []BackendStatus `json:"backends"`
}

// BackendStatus is one backend of a Status.
type BackendStatus struct {
	Address string `json:"address"`
	Healthy bool   `json:"healthy"`
	// Draining is true while the backend takes no new connections
	// (Drain).
	Draining          bool  `json:"draining"`
	ActiveConnections int64 `json:"active_connections"`
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
		clock:   clock.Or(opts.Clock),
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.log = f.log.With("frontend", fe.Name)
	if f.health == nil || fe.Health.Type == config.CheckNone {
		f.health = alwaysHealthy{}
	}
	st := &state{cfg: fe, bal: bal}
	for _, addr := range fe.Backends {
		st.backends = append(st.backends, f.newBackend(addr))
	}
	f.state.Store(st)
	return f, nil
}

func (f *Frontend) newBackend(addr string) *backend {
	b := &backend{addr: addr, hash: hashBytes([]byte(addr)), metrics: f.metrics.backend(addr)}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		b.resolved.Store(&resolved{addrs: []sockAddr{sockaddrOf(ap)}})
	} else {
		b.hostName = true
		b.resolve()
	}
	return b
}

// lookupIP looks a backend's host name up (a variable for tests).
var lookupIP = net.DefaultResolver.LookupNetIP

// resolveTimeout bounds one lookup of a backend's host name.
const resolveTimeout = 5 * time.Second

// resolve looks the backend's host name up in the background; until the
// first answer its connects fail (and the next backend is tried). It runs
// again after a failed lookup and after every address failed a connect, so
// a moved name is followed. A connect tries the addresses in turn, from the
// one that answered last.
func (b *backend) resolve() {
	if !b.resolving.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer b.resolving.Store(false)
		var r resolved
		host, port, err := net.SplitHostPort(b.addr)
		var p uint64
		if err == nil {
			p, err = strconv.ParseUint(port, 10, 16)
		}
		var ips []netip.Addr
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
			ips, err = lookupIP(ctx, "ip", host)
			cancel()
		}
		if err == nil && len(ips) == 0 {
			err = fmt.Errorf("lookup %s: no address", host)
		}
		r.err = err
		for _, ip := range ips {
			r.addrs = append(r.addrs, sockaddrOf(netip.AddrPortFrom(ip.Unmap(), uint16(p))))
		}
		if old := b.resolved.Load(); old == nil || !slices.Equal(old.addrs, r.addrs) {
			b.preferred.Store(0)
		}
		b.resolved.Store(&r)
	}()
}

func sockaddrOf(ap netip.AddrPort) sockAddr {
	var r sockAddr
	port := ap.Port()
	if ip := ap.Addr().Unmap(); ip.Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.raw))
		sa.Family = unix.AF_INET
		sa.Port = port>>8 | port<<8 // network byte order
		sa.Addr = ip.As4()
		r.len, r.family = unix.SizeofSockaddrInet4, unix.AF_INET
		return r
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&r.raw))
	sa.Family = unix.AF_INET6
	sa.Port = port>>8 | port<<8
	sa.Addr = ap.Addr().As16()
	if z := ap.Addr().Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.Scope_id = uint32(ifi.Index)
		}
	}
	r.len, r.family = unix.SizeofSockaddrInet6, unix.AF_INET6
	return r
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
	s := Status{Name: f.name, Listen: st.cfg.Listen, FailOpen: f.failOpen.Load(), Backends: []BackendStatus{}}
	for _, b := range st.backends {
		s.Backends = append(s.Backends, BackendStatus{
			Address:           b.addr,
			Healthy:           f.health.Healthy(b.addr),
			Draining:          b.draining.Load(),
			ActiveConnections: b.active.Load(),
		})
	}
	return s
}

// Update applies a reloaded config of the same frontend. New connections
// use it at once; live connections keep going, except those to a removed
// backend, which are closed after drain_timeout. The listen address cannot
// change while running: such a frontend must be replaced.
func (f *Frontend) Update(fe config.Frontend) error {
	bal, err := f.checkUpdate(fe)
	if err != nil {
		return err
	}
	old := f.state.Load().cfg.MaxConnections
	f.replace(fe, bal)
	f.checkFailOpen(false)
	if fe.MaxConnections != old {
		f.deriveMaxConnections(fe.MaxConnections)
	}
	return nil
}

// CheckUpdate reports whether Update(fe) would be refused, changing nothing.
func (f *Frontend) CheckUpdate(fe config.Frontend) error {
	_, err := f.checkUpdate(fe)
	return err
}

func (f *Frontend) checkUpdate(fe config.Frontend) (balancer, error) {
	if why := NeedsNewFrontend(f.state.Load().cfg, fe); why != "" {
		return nil, fmt.Errorf("frontend %q: %s: needs a new frontend", f.name, why)
	}
	bal, err := newBalancer(fe.Balance)
	if err != nil {
		return nil, fmt.Errorf("frontend %q: %w", f.name, err)
	}
	return bal, nil
}

// NeedsNewFrontend says why going from a to b cannot be applied to the
// running frontend by Update, or "" when it can: the one rule of what a
// reload replaces. A new listen address needs a new listener.
func NeedsNewFrontend(a, b config.Frontend) string {
	switch {
	case a.Name != b.Name:
		return fmt.Sprintf("renamed to %q", b.Name)
	case a.Listen != b.Listen:
		return fmt.Sprintf("listen changes from %s to %s", a.Listen, b.Listen)
	}
	return ""
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
		f.clock.AfterFunc(fe.DrainTimeout, func() {
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
	return f.closeWhere(func(c *evConn) bool { return c.b == b })
}

// closeWhere closes the connections that match, on their loops, and
// returns how many.
func (f *Frontend) closeWhere(match func(*evConn) bool) int {
	f.mu.Lock()
	loops := f.loops
	f.mu.Unlock()
	n := 0
	for _, l := range loops {
		l.exec(func() { n += l.closeWhere(match) })
	}
	return n
}

// onHealth is called by Health on every change.
func (f *Frontend) onHealth(addr string, healthy bool) {
	f.checkFailOpen(false)
	st := f.state.Load()
	i := slices.IndexFunc(st.backends, func(b *backend) bool { return b.addr == addr })
	if i < 0 {
		return
	}
	b := st.backends[i]
	if healthy {
		if b.cutting.Swap(false) {
			f.log.Info("backend up again: its connections stay", "backend", addr, "connections", b.active.Load())
		}
		return
	}
	if !st.cfg.CloseOnBackendDown || b.cutting.Swap(true) {
		return
	}
	f.log.Info("backend down: closing its connections as each goes quiet", "backend", addr,
		"connections", b.active.Load(), "quiet", quietCut, "quiet_after_request", quietOwed)
}

// Run listens and proxies until ctx ends, then stops accepting, lets live
// connections finish for drain_timeout, closes the rest and returns.
func (f *Frontend) Run(ctx context.Context) error {
	cfg := f.state.Load().cfg
	lfd, addr, err := f.openListener(ctx, cfg)
	if err != nil {
		return fmt.Errorf("frontend %q: listen on %s: %w", f.name, cfg.Listen, err)
	}
	f.deriveMaxConnections(cfg.MaxConnections) // before the first client
	loops, err := f.startLoops(runtime.GOMAXPROCS(0), lfd)
	if err != nil {
		unix.Close(lfd)
		return fmt.Errorf("frontend %q: %w", f.name, err)
	}
	f.mu.Lock()
	f.addr = addr
	f.loops = loops
	f.mu.Unlock()
	f.log.Info("frontend listening", "listen", addr.String())
	cancel := f.health.Subscribe(f.onHealth)
	defer cancel()
	f.checkFailOpen(false)
	defer f.checkFailOpen(true)
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		f.watchSettle(ctx)
	}()
	defer func() { <-settled }() // before the stop's checkFailOpen

	<-ctx.Done()
	for _, l := range loops {
		l.exec(l.stopAccepting)
	}
	unix.Close(lfd) // clients now get a refusal, not a wait in the backlog
	f.drain(f.state.Load().cfg.DrainTimeout)
	for _, l := range loops {
		l.exec(func() { l.stopped = true })
		<-l.done
	}
	f.mu.Lock()
	f.loops = nil
	f.mu.Unlock()
	return nil
}

// drain waits up to timeout for the live connections to end, then closes
// what is left.
func (f *Frontend) drain(timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	if n := f.active.Load(); n > 0 {
		f.log.Info("draining connections", "connections", n, "drain_timeout", timeout)
	}
	t := f.clock.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C():
	}
	n := f.closeWhere(func(*evConn) bool { return true })
	f.log.Info("drain timeout over, connections closed", "connections", n)
	<-done
}

// Accept back-off after an accept error that refusing one client cannot
// clear: short at first so a brief fd shortage costs little, bounded so
// recovery is quick.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = 500 * time.Millisecond
)

// keepaliveProbes is how many unanswered probes declare a peer dead.
const keepaliveProbes = 3

// openListener opens the frontend's listening socket and takes it out of
// the Go runtime's poller: the event loops wait on it. Accepted sockets
// inherit its options, so they are set here once: no Nagle delay and the
// frontend's tcp_keepalive.
func (f *Frontend) openListener(ctx context.Context, cfg config.Frontend) (int, net.Addr, error) {
	lc := net.ListenConfig{KeepAlive: -1, Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		cerr := c.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			if err == nil && cfg.TCPKeepAlive > 0 {
				err = setKeepAliveFD(int(fd), cfg.TCPKeepAlive)
			}
		})
		if cerr != nil {
			return cerr
		}
		return err
	}}
	// Plain TCP: Go listens with Multipath TCP where the kernel has it, and
	// an accepted socket is then an MPTCP socket even for a plain TCP
	// client, with every call going through the MPTCP layer.
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return -1, nil, err
	}
	defer ln.Close()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return -1, nil, err
	}
	lfd := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		r, _, errno := unix.Syscall(unix.SYS_FCNTL, fd, unix.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			derr = os.NewSyscallError("fcntl", errno)
			return
		}
		lfd = int(r)
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return -1, nil, err
	}
	return lfd, ln.Addr(), nil
}
