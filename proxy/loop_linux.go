package proxy

import (
	"container/heap"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/vrrplb/vrrplb/config"
)

// The data path is a set of event loops per frontend, one per core
// (GOMAXPROCS). Each loop owns an epoll set, shares the frontend's listening
// socket with the others (EPOLLEXCLUSIVE, so a new client wakes one loop)
// and runs every connection it accepted from accept to close on its own
// goroutine: the backend connect, both directions of copying, half-close,
// timeouts and close. No goroutine is started per connection or woken per
// message: one epoll_wait serves every socket that became ready together.
// The sockets never enter the Go runtime's poller; only the epoll set does,
// so that an idle loop parks there without holding a thread.
//
// Other goroutines (reload, health changes, stop) never touch a loop's
// connections: they hand the loop a task and wait for it (exec).

// Event data: the connection's slot in the loop's table, and in the other
// half the side (bit 0) and the slot's generation, so an event that was
// read before its connection closed cannot reach the connection that
// reuses the slot.
const (
	slotListener = -1
	slotWake     = -2

	sideClient = 0
	sideServer = 1

	// acceptBatch is how many clients one listener event accepts at most
	// before the loop serves its other sockets.
	acceptBatch = 32
	// maxEvents is the most events one epoll_wait returns.
	maxEvents = 256
)

const connEvents = syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET

// epollET is EPOLLET as the uint32 the event mask is (package syscall
// declares it as a negative int).
const epollET = 1 << 31

// epollExclusive is EPOLLEXCLUSIVE (Linux 4.5), missing from package syscall.
const epollExclusive = 1 << 28

// loop is one event loop of a frontend.
type loop struct {
	f        *Frontend
	epfd     int
	file     *os.File        // epfd, so the runtime's poller can wait for it
	rc       syscall.RawConn // file's
	deadline int64           // file's read deadline, unix nanoseconds
	wakefd   int             // eventfd: tasks are waiting
	lfd      int             // the frontend's listening socket (not owned)

	mu    sync.Mutex
	tasks []func()

	conns []*evConn // by slot; nil when free
	free  []int32

	gen uint32 // of the last slot taken

	timers   timerHeap
	now      int64 // unix nanoseconds, read once per wakeup
	nextTick int64
	stopped  bool
	done     chan struct{}

	// accept back-off after an error that a refusal cannot clear
	acceptPaused bool
	acceptOver   bool // the frontend stops: the listener is gone
	backoff      time.Duration
	spare        int // a descriptor kept to refuse one client at EMFILE

	scratch []byte // every read lands here first
}

// evConn is one client connection and its backend connection.
type evConn struct {
	slot   int32
	gen    uint32
	st     *state
	b      *backend // nil until connected
	cfd    int
	bfd    int // -1 while no connect is under way
	cstate uint8

	clientIP netip.Addr // for source hashing
	tried    []*backend // backends whose connect failed
	attempt  int        // backends tried
	pending  *backend   // whose connect is under way
	addrBase uint32     // pending's address the attempt started with
	addrTry  int        // pending's addresses tried in this attempt, less one

	up, down     evDir // client → backend, backend → client
	lastActive   int64
	since        int64 // connected at
	keepAliveSet bool
}

const (
	connConnecting = iota
	connProxying
	connClosed
)

// evDir is one direction of a connection.
type evDir struct {
	src, dst *int
	count    func(float64)
	readable bool    // src may hold bytes or its end
	hup      bool    // src's peer has sent its end: read until it shows
	rdhup    bool    // that end is a FIN (EPOLLRDHUP), not an error
	writable bool    // dst may take bytes
	eof      bool    // src ended
	done     bool    // the end was passed on to dst
	pend     []byte  // read but not yet written
	pbuf     *[]byte // pend's pooled buffer
	pipe     *pipe   // splice mode: a bulk transfer
}

// startLoops opens n loops on the listening socket lfd.
func (f *Frontend) startLoops(n, lfd int) ([]*loop, error) {
	var loops []*loop
	for range n {
		l, err := newLoop(f, lfd)
		if err != nil {
			for _, l := range loops {
				l.exec(func() { l.stopped = true })
				<-l.done
			}
			return nil, err
		}
		loops = append(loops, l)
		go l.run()
	}
	return loops, nil
}

func newLoop(f *Frontend, lfd int) (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	r, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errno != 0 {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("eventfd2", errno)
	}
	l := &loop{
		f: f, epfd: epfd, wakefd: int(r), lfd: lfd,
		done:    make(chan struct{}),
		spare:   openSpareFD(),
		scratch: make([]byte, readBufSize),
	}
	if err := l.ctl(syscall.EPOLL_CTL_ADD, l.wakefd, syscall.EPOLLIN|epollET, slotWake, 0); err != nil {
		l.closeFDs()
		return nil, err
	}
	if err := l.ctl(syscall.EPOLL_CTL_ADD, lfd, syscall.EPOLLIN|epollExclusive, slotListener, 0); err != nil {
		l.closeFDs()
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		l.closeFDs()
		return nil, os.NewSyscallError("fcntl", err)
	}
	l.file = os.NewFile(uintptr(epfd), "epoll")
	rc, err := l.file.SyscallConn()
	if err != nil {
		l.closeFDs()
		return nil, err
	}
	l.rc = rc
	return l, nil
}

func (l *loop) closeFDs() {
	if l.file != nil {
		l.file.Close()
	} else {
		syscall.Close(l.epfd)
	}
	syscall.Close(l.wakefd)
	closeSpareFD(l.spare)
}

func (l *loop) ctl(op, fd int, events uint32, slot int32, pad int32) error {
	ev := syscall.EpollEvent{Events: events, Fd: slot, Pad: pad}
	_, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(l.epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	if errno != 0 {
		return os.NewSyscallError("epoll_ctl", errno)
	}
	return nil
}

// exec runs fn on the loop and returns when it has run. After the loop has
// stopped it runs nothing.
func (l *loop) exec(fn func()) {
	ran := make(chan struct{})
	l.mu.Lock()
	l.tasks = append(l.tasks, func() { fn(); close(ran) })
	l.mu.Unlock()
	var one = [8]byte{1}
	syscall.Write(l.wakefd, one[:])
	select {
	case <-ran:
	case <-l.done:
	}
}

func (l *loop) runTasks() {
	var buf [8]byte
	syscall.Read(l.wakefd, buf[:])
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = nil
	l.mu.Unlock()
	for _, fn := range tasks {
		fn()
	}
}

// tickEvery is how often a loop looks for idle connections (idle_timeout)
// and sets keepalive on connections that have lived a while.
const tickEvery = 250 * time.Millisecond

// A loop yields at least every yieldEvery while it has events to serve.
const yieldEvery = time.Millisecond

// keepAliveAfter is how long a connection lives before its backend socket
// gets tcp_keepalive: short ones save the setsockopt calls. (The client
// socket has it from the listener.)
const keepAliveAfter = time.Second

func (l *loop) run() {
	defer close(l.done)
	defer l.closeFDs()
	events := make([]syscall.EpollEvent, maxEvents)
	l.now = time.Now().UnixNano()
	l.nextTick = l.now + int64(tickEvery)
	got := 0
	lastYield := l.now
	wait := func(uintptr) bool {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		if errno != 0 {
			n = 0
		}
		got = int(n)
		return got > 0
	}
	for !l.stopped {
		// Under load the sockets are ready again by the time the last
		// batch is done: look without the scheduler's syscall bookkeeping.
		// Else park until the epoll set has something: the Go runtime's
		// poller watches it like any socket, so no thread and no P wait
		// here.
		if !wait(0) {
			if next := l.nextDue(); next != l.deadline {
				l.deadline = next
				l.file.SetReadDeadline(time.Unix(0, next))
			}
			if err := l.rc.Read(wait); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				l.f.log.Error("event loop: waiting for events failed", "error", err)
				time.Sleep(10 * time.Millisecond)
			}
		}
		n := got
		got = 0
		l.now = time.Now().UnixNano()
		if l.now-lastYield >= int64(yieldEvery) {
			runtime.Gosched()
			lastYield = l.now
		}
		for i := range n {
			ev := &events[i]
			switch ev.Fd {
			case slotListener:
				l.accept()
			case slotWake:
				l.runTasks()
			default:
				l.event(ev.Fd, ev.Pad, ev.Events)
			}
		}
		l.runTimers()
	}
	for _, c := range l.conns {
		if c != nil {
			l.closeConn(c)
		}
	}
}

// nextDue is when the next timer or tick is due, in unix nanoseconds.
func (l *loop) nextDue() int64 {
	if len(l.timers) > 0 && l.timers[0].when < l.nextTick {
		return l.timers[0].when
	}
	return l.nextTick
}

// accept takes waiting clients off the listening socket.
func (l *loop) accept() {
	if l.acceptPaused {
		return
	}
	for range acceptBatch {
		var rsa syscall.RawSockaddrAny
		alen := uint32(syscall.SizeofSockaddrAny)
		r, _, errno := syscall.RawSyscall6(syscall.SYS_ACCEPT4, uintptr(l.lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&alen)), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		switch errno {
		case 0:
			l.backoff = 0
			l.newConn(int(r), &rsa)
			continue
		case syscall.EAGAIN:
			return
		case syscall.EINTR, syscall.ECONNABORTED:
			continue
		}
		reason := ReasonAcceptError
		if errno == syscall.EMFILE || errno == syscall.ENFILE {
			reason = ReasonFDLimit
			if l.refuseOne() {
				// One waiting client was refused: progress, not a spin.
				l.f.metrics.reject(reason)
				continue
			}
		}
		l.f.metrics.reject(reason)
		l.pauseAccept(reason, errno)
		return
	}
}

// refuseOne frees the spare descriptor, accepts the client waiting at the
// head of the queue and closes it at once (so it learns now instead of
// waiting in the backlog), then takes the spare back.
func (l *loop) refuseOne() bool {
	if l.spare < 0 {
		l.spare = openSpareFD()
		return false
	}
	closeSpareFD(l.spare)
	r, _, errno := syscall.RawSyscall6(syscall.SYS_ACCEPT4, uintptr(l.lfd), 0, 0, syscall.SOCK_CLOEXEC, 0, 0)
	if errno == 0 {
		rawClose(int(r))
	}
	l.spare = openSpareFD()
	return errno == 0
}

// pauseAccept takes the listener out of the loop's epoll set for a
// back-off that doubles while accepting keeps failing.
func (l *loop) pauseAccept(reason string, err error) {
	if l.backoff == 0 {
		l.backoff = acceptBackoffMin
		l.f.log.Warn("accept failed, backing off", "error", os.NewSyscallError("accept4", err), "reason", reason)
	} else {
		l.backoff = min(2*l.backoff, acceptBackoffMax)
	}
	l.acceptPaused = true
	_ = l.ctl(syscall.EPOLL_CTL_DEL, l.lfd, 0, 0, 0)
	l.after(l.backoff, func() {
		if l.acceptOver {
			return
		}
		l.acceptPaused = false
		_ = l.ctl(syscall.EPOLL_CTL_ADD, l.lfd, syscall.EPOLLIN|epollExclusive, slotListener, 0)
	})
}

// stopAccepting takes the listener out of the loop for good.
func (l *loop) stopAccepting() {
	if !l.acceptPaused {
		_ = l.ctl(syscall.EPOLL_CTL_DEL, l.lfd, 0, 0, 0)
	}
	l.acceptPaused, l.acceptOver = true, true
}

// newConn starts serving an accepted client: count it, refuse it over
// max_connections, else start the backend connect.
func (l *loop) newConn(cfd int, rsa *syscall.RawSockaddrAny) {
	f := l.f
	st := f.state.Load()
	f.metrics.connections.Inc()
	n := f.active.Add(1)
	f.metrics.active.Inc()
	f.wg.Add(1)
	if max := st.cfg.MaxConnections; max > 0 && n > int64(max) {
		l.refused(ReasonMaxConnections) // counted before the client sees the close
		rawClose(cfd)
		return
	}
	c := &evConn{st: st, cfd: cfd, bfd: -1, cstate: connConnecting, lastActive: l.now}
	if st.cfg.Balance == config.Source {
		c.clientIP = sockaddrIP(rsa)
	}
	c.up = evDir{src: &c.cfd, dst: &c.bfd, writable: true}
	c.down = evDir{src: &c.bfd, dst: &c.cfd, writable: true}
	l.put(c)
	if err := l.ctl(syscall.EPOLL_CTL_ADD, cfd, connEvents, c.slot, int32(c.gen<<1|sideClient)); err != nil {
		l.drop(c, ReasonAcceptError)
		return
	}
	l.connectNext(c)
}

// refused counts a client turned away before it had a backend.
func (l *loop) refused(reason string) {
	l.f.metrics.reject(reason)
	l.ended()
}

// ended counts a client connection gone.
func (l *loop) ended() {
	l.f.active.Add(-1)
	l.f.metrics.active.Dec()
	l.f.wg.Done()
}

func (l *loop) put(c *evConn) {
	if n := len(l.free); n > 0 {
		c.slot = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		c.slot = int32(len(l.conns))
		l.conns = append(l.conns, nil)
	}
	l.gen++
	c.gen = l.gen & (1<<30 - 1)
	l.conns[c.slot] = c
}

// drop closes a connection that never reached a backend and counts why.
func (l *loop) drop(c *evConn, reason string) {
	l.f.metrics.reject(reason) // counted before the client sees the close
	l.release(c)
	l.ended()
}

// release closes the connection's sockets and frees its slot, buffers
// and pipes.
func (l *loop) release(c *evConn) {
	c.cstate = connClosed
	rawClose(c.cfd)
	if c.bfd >= 0 {
		rawClose(c.bfd)
	}
	for _, d := range []*evDir{&c.up, &c.down} {
		d.dropPend()
		if d.pipe != nil {
			putPipe(d.pipe)
			d.pipe = nil
		}
	}
	l.conns[c.slot] = nil
	l.free = append(l.free, c.slot)
}

// closeConn closes a connection: one being proxied, or one whose client
// left (or that is stopped) while its backend connect was under way.
func (l *loop) closeConn(c *evConn) {
	if c.cstate == connClosed {
		return
	}
	proxying := c.cstate == connProxying
	l.release(c)
	if proxying {
		c.b.active.Add(-1)
		c.b.metrics.active.Dec()
	}
	l.ended()
}

var errConnectTimeout = errors.New("connect timed out")

// connectNext starts a connect to a healthy backend not tried yet; with
// none left (or retries used up) the client is refused.
func (l *loop) connectNext(c *evConn) {
	for c.attempt <= c.st.cfg.Retries {
		var cands [8]*backend
		healthy := cands[:0]
		for _, b := range c.st.backends {
			if !slices.Contains(c.tried, b) && l.f.health.Healthy(b.addr) {
				healthy = append(healthy, b)
			}
		}
		if len(healthy) == 0 {
			break
		}
		b := c.st.bal.pick(healthy, c.clientIP)
		c.attempt++
		c.addrBase, c.addrTry = b.preferred.Load(), 0
		if l.dial(c, b) {
			return
		}
	}
	l.f.log.Debug("connection refused: no healthy backend answered", "tried", len(c.tried))
	l.drop(c, ReasonNoBackend)
}

// dial starts a connect to b's address c.addrTry (counted from the one
// that answered last), going on to b's next address when one fails at
// once. It returns false when every address of b failed.
func (l *loop) dial(c *evConn, b *backend) bool {
	for {
		fd, connected, err := startConnect(b, c.addrBase+uint32(c.addrTry))
		if err == syscall.EMFILE || err == syscall.ENFILE {
			// Our own shortage, not the backend's fault.
			l.drop(c, ReasonFDLimit)
			return true
		}
		if err != nil {
			if l.nextAddr(c, b, err) {
				continue
			}
			return false
		}
		c.bfd = fd
		if err := l.ctl(syscall.EPOLL_CTL_ADD, fd, connEvents, c.slot, int32(c.gen<<1|sideServer)); err != nil {
			rawClose(fd)
			c.bfd = -1
			l.drop(c, ReasonNoBackend)
			return true
		}
		c.pending = b
		if connected {
			l.connected(c)
			return true
		}
		// A closed connection is no longer connecting; a later connect of
		// the same one has another (attempt, addrTry).
		attempt, addrTry := c.attempt, c.addrTry
		l.after(c.st.cfg.ConnectTimeout, func() {
			if c.cstate == connConnecting && c.attempt == attempt && c.addrTry == addrTry {
				l.abandonConnect(c, errConnectTimeout)
			}
		})
		return true
	}
}

// nextAddr is called when the connect to b's current address failed. It
// moves on to b's next address if one is left (true); else the backend's
// connect has failed: it is counted, reported to the checker and not tried
// again for this client.
func (l *loop) nextAddr(c *evConn, b *backend, err error) bool {
	l.f.log.Debug("connect to backend failed", "backend", b.addr, "error", err)
	if r := b.resolved.Load(); r != nil && c.addrTry+1 < len(r.addrs) {
		c.addrTry++
		return true
	}
	b.metrics.connectErrors.Inc()
	l.f.health.ReportFault(b.addr)
	if b.hostName {
		b.resolve()
	}
	c.tried = append(c.tried, b)
	return false
}

// abandonConnect gives up the connect under way and tries the pending
// backend's next address, or else the next backend.
func (l *loop) abandonConnect(c *evConn, err error) {
	b := c.pending
	rawClose(c.bfd)
	c.bfd = -1
	c.pending = nil
	c.down = evDir{src: &c.bfd, dst: &c.cfd, writable: true}
	if l.nextAddr(c, b, err) && l.dial(c, b) {
		return
	}
	if c.cstate == connConnecting {
		l.connectNext(c)
	}
}

// connected: the backend accepted; copying starts.
func (l *loop) connected(c *evConn) {
	c.cstate = connProxying
	c.b, c.pending, c.tried = c.pending, nil, nil
	if c.addrTry > 0 {
		if r := c.b.resolved.Load(); r != nil && len(r.addrs) > 0 {
			c.b.preferred.Store((c.addrBase + uint32(c.addrTry)) % uint32(len(r.addrs)))
		}
	}
	c.since = l.now
	c.lastActive = l.now
	b := c.b
	b.active.Add(1)
	b.metrics.active.Inc()
	b.metrics.connections.Inc()
	c.up.count = b.metrics.bytesToBackend.Add
	c.down.count = b.metrics.bytesToClient.Add
	if l.pump(c, &c.up) {
		l.pump(c, &c.down)
	}
}

// event handles readiness of one side of a connection.
func (l *loop) event(slot, pad int32, events uint32) {
	if slot < 0 || int(slot) >= len(l.conns) {
		return
	}
	c := l.conns[slot]
	if c == nil || c.gen != uint32(pad)>>1 {
		return // the connection closed after the event was read
	}
	side := pad & 1
	if c.cstate == connConnecting {
		if side == sideClient {
			if events&syscall.EPOLLERR != 0 {
				l.closeConn(c) // the client gave up
				return
			}
			c.up.sawReadable(events)
			return
		}
		if events&(syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
			errno, _ := syscall.GetsockoptInt(c.bfd, syscall.SOL_SOCKET, syscall.SO_ERROR)
			var err error = syscall.Errno(errno)
			if errno == 0 {
				err = errors.New("connection closed")
			}
			l.abandonConnect(c, err)
			return
		}
		if events&syscall.EPOLLOUT == 0 {
			return
		}
		c.down.sawReadable(events)
		l.connected(c)
		return
	}
	if c.cstate != connProxying {
		return
	}
	// The client side's readiness moves the up direction's source and the
	// down direction's destination; the server side's the other two.
	src, dst := &c.up, &c.down
	if side == sideServer {
		src, dst = &c.down, &c.up
	}
	readable := src.sawReadable(events)
	writable := events&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
	if writable {
		dst.writable = true
	}
	if readable && !l.pump(c, src) {
		return
	}
	if writable && dst.holding() {
		l.pump(c, dst)
	}
}

// sawReadable notes what an event says about the direction's source, and
// reports whether it may be read.
func (d *evDir) sawReadable(events uint32) bool {
	if events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) == 0 {
		return false
	}
	d.readable = true
	d.hup = d.hup || events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
	d.rdhup = d.rdhup || events&(syscall.EPOLLRDHUP|syscall.EPOLLERR) == syscall.EPOLLRDHUP
	return true
}

// pump moves what it can in one direction without waiting, and passes an
// end on. It returns false when the connection was closed.
func (l *loop) pump(c *evConn, d *evDir) bool {
	for {
		if d.holding() {
			// What dst could not take before goes first.
			if !d.writable {
				return true
			}
			switch err := d.flush(); err {
			case nil, syscall.EINTR:
				continue
			case syscall.EAGAIN:
				d.writable = false
				return true
			}
			l.closeConn(c)
			return false
		}
		if d.eof || !d.readable {
			break
		}
		if d.pipe != nil {
			m, err := rawSplice(*d.src, d.pipe.w, spliceChunk)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				// The pipe is empty (it was emptied above): the socket is.
				d.readable = false
				putPipe(d.pipe)
				d.pipe = nil
			case err != nil:
				l.closeConn(c)
				return false
			case m == 0:
				d.eof = true
			default:
				d.pipe.n += int(m)
				d.count(float64(m))
				c.lastActive = l.now
			}
			continue
		}
		n, err := rawRecv(*d.src, l.scratch)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			d.readable = false
			continue
		case err != nil:
			l.closeConn(c)
			return false
		case n == 0:
			d.eof = true
			continue
		}
		d.count(float64(n))
		c.lastActive = l.now
		more := n == len(l.scratch) || d.hup
		if !more {
			// A short read took all there was, and no end had come with
			// the edge: the next edge says when there is more.
			d.readable = false
		}
		out := l.scratch[:n]
		w := 0
		if d.writable {
			flags := 0
			if n < len(l.scratch) && d.rdhup {
				// Only the peer's end follows these bytes: hold them
				// back (MSG_MORE) for the read of that end just below,
				// whose shutdown (or close) then sends them and the FIN
				// in one segment.
				flags = syscall.MSG_MORE
			}
			w, err = rawSend(*d.dst, out, flags)
			switch err {
			case nil:
			case syscall.EAGAIN, syscall.EINTR:
				w = 0
				if err == syscall.EAGAIN {
					d.writable = false
				}
			default:
				l.closeConn(c)
				return false
			}
		}
		if w < n {
			d.pbuf = bufPool.Get().(*[]byte)
			d.pend = (*d.pbuf)[:copy(*d.pbuf, out[w:])]
		}
		if n == len(l.scratch) && more && d.pipe == nil {
			// A bulk transfer: the rest moves by splice, in the kernel.
			if p, err := getPipe(); err == nil {
				d.pipe = p
			}
		}
	}
	if d.eof && !d.done {
		d.done = true
		other := &c.up
		if d == &c.up {
			other = &c.down
		}
		if other.done {
			// Both ends arrived: the close sends the last FIN.
			l.closeConn(c)
			return false
		}
		if err := rawShutdown(*d.dst); err != nil {
			l.closeConn(c)
			return false
		}
	}
	return true
}

// holding reports whether the direction holds bytes dst has not taken:
// in its pipe, or pending from a short write.
func (d *evDir) holding() bool {
	return len(d.pend) > 0 || (d.pipe != nil && d.pipe.n > 0)
}

// flush writes what the direction holds to dst, once.
func (d *evDir) flush() error {
	if d.pipe != nil && d.pipe.n > 0 {
		m, err := rawSplice(d.pipe.r, *d.dst, d.pipe.n)
		d.pipe.n -= int(m)
		return err
	}
	n, err := rawSend(*d.dst, d.pend, 0)
	if d.pend = d.pend[n:]; len(d.pend) == 0 {
		d.dropPend()
	}
	return err
}

func (d *evDir) dropPend() {
	if d.pbuf != nil {
		bufPool.Put(d.pbuf)
		d.pbuf, d.pend = nil, nil
	}
}

// startConnect opens a non-blocking socket to b's address i (modulo their
// number) and starts connecting. connected is true when the connect
// completed at once (a local backend).
func startConnect(b *backend, i uint32) (fd int, connected bool, err error) {
	r, err := b.sockaddr(i)
	if err != nil {
		return -1, false, err
	}
	r0, _, errno := syscall.RawSyscall(syscall.SYS_SOCKET, uintptr(r.family), syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if errno != 0 {
		return -1, false, errno
	}
	fd = int(r0)
	_ = rawSetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	sa := r.raw // the kernel may write to it; the backend's copy is shared
	_, _, errno = syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(r.len))
	switch errno {
	case 0:
		return fd, true, nil
	case syscall.EINPROGRESS, syscall.EINTR:
		return fd, false, nil
	}
	rawClose(fd)
	return -1, false, errno
}

// sockaddrIP is the client address of an accepted connection.
func sockaddrIP(rsa *syscall.RawSockaddrAny) netip.Addr {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrFrom4(sa.Addr)
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}

// runTimers runs the timers that are due and, once per tick, the sweep.
func (l *loop) runTimers() {
	for len(l.timers) > 0 && l.timers[0].when <= l.now {
		t := heap.Pop(&l.timers).(timer)
		t.fn()
	}
	if l.now >= l.nextTick {
		l.nextTick = l.now + int64(tickEvery)
		l.sweep()
	}
}

// after runs fn on the loop once d has passed. It counts from the loop's
// clock (l.now, read once per batch), not from a clock read of its own: a
// connect sets one of these per new client.
func (l *loop) after(d time.Duration, fn func()) {
	heap.Push(&l.timers, timer{when: l.now + int64(d), fn: fn})
}

// sweep closes connections idle for idle_timeout, and gives the backend
// socket of a connection that has lived keepAliveAfter its tcp_keepalive.
func (l *loop) sweep() {
	st := l.f.state.Load()
	idle := int64(st.cfg.IdleTimeout)
	for _, c := range l.conns {
		if c == nil || c.cstate != connProxying {
			continue
		}
		if idle > 0 && l.now-c.lastActive >= idle {
			l.closeConn(c)
			continue
		}
		if !c.keepAliveSet && l.now-c.since >= int64(keepAliveAfter) {
			c.keepAliveSet = true
			if p := c.st.cfg.TCPKeepAlive; p > 0 {
				_ = setKeepAliveFD(c.bfd, p)
			}
		}
	}
}

// closeWhere closes the loop's connections that match and returns how many.
func (l *loop) closeWhere(match func(*evConn) bool) int {
	n := 0
	for _, c := range l.conns {
		if c != nil && c.cstate != connClosed && match(c) {
			l.closeConn(c)
			n++
		}
	}
	return n
}

type timer struct {
	when int64
	fn   func()
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when < h[j].when }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = timer{}
	*h = old[:len(old)-1]
	return t
}

// sockaddr is the backend's address i (modulo their number) for
// connect(2). A host name is looked up when the backend is created and
// again after a failed lookup or connect.
func (b *backend) sockaddr(i uint32) (*sockAddr, error) {
	r := b.resolved.Load()
	switch {
	case r == nil:
		return nil, fmt.Errorf("%s: not looked up yet", b.addr)
	case len(r.addrs) == 0:
		b.resolve()
		return nil, r.err
	}
	return &r.addrs[i%uint32(len(r.addrs))], nil
}
