package proxy

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The data path is a set of event loops per frontend, one per core
// (GOMAXPROCS). Each loop owns an epoll set; the first one also watches the
// frontend's listening socket and hands each new client to the loop with the
// fewest connections (itself unless another has fewer by more than
// acceptSlack). A loop runs every connection it was given from accept to
// close on its own goroutine: the backend connect, both directions of
// copying, half-close, timeouts and close. No goroutine is started per
// connection or woken per message: one epoll_wait serves every socket that
// became ready together.
// The sockets never enter the Go runtime's poller. A busy loop waits in
// epoll_wait on its own set, on its own thread, which the kernel wakes
// straight into the loop; an idle one parks its set in the runtime's
// poller, holding no thread (the comment on threadWait says when and why).
//
// Other goroutines (reload, health changes, stop) never touch a loop's
// connections: they hand the loop a task and wait for it (exec).
//
// The loop's parts live in files of their own: this one has the loop, its
// connection table and closing; timer_linux.go its timers and periodic
// sweep; accept_linux.go the listener; connect_linux.go the backend connect
// and its retries; pump_linux.go the events of connected sockets and the
// copying; splice_linux.go the system calls and pools of buffers and pipes.

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

const connEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

// loop is one event loop of a frontend.
type loop struct {
	f        *Frontend
	epfd     int
	parkfd   int             // an epoll set that holds epfd while the loop is cold or parked
	file     *os.File        // parkfd, so the runtime's poller can wait for it
	rc       syscall.RawConn // file's
	deadline int64           // file's read deadline, unix nanoseconds (never: none)
	wakefd   int             // eventfd: tasks are waiting
	lfd      int             // the frontend's listening socket (not owned); -1: another loop accepts

	mu    sync.Mutex
	tasks []func()

	conns []*evConn // by slot; nil when free
	free  []int32
	live  int          // connections in conns
	load  atomic.Int64 // live and clients handed over to it, for the other loops to read
	peers []*loop      // the frontend's loops, this one included

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

	yields int // times the loop gave its P away to other goroutines
	wakes  int // times it woke from a wait with events

	hot      bool  // busy enough to wait on its own thread
	procs    int32 // GOMAXPROCS, read once per loadWindow
	inPark   bool  // epfd is in parkfd
	looks    int   // epoll_pwait calls in this batch's wait
	windowAt int64 // start of the current loadWindow
	idleNs   int64 // time waited in it

	budget     int       // bytes the pump under way may still read
	again      []pending // directions to pump again in the next batch
	spareAgain []pending
	deferred   int // pumps stopped at the budget
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
	chosen   *backend   // counted in its connecting until connected or given up
	addrBase uint32     // pending's address the attempt started with
	addrTry  int        // pending's addresses tried in this attempt, less one

	up, down     evDir // client → backend, backend → client
	lastActive   int64
	owed         bool  // the last bytes read went client → backend
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
	queued   bool    // in the loop's again: its pump stopped at the budget
}

// startLoops opens n loops on the listening socket lfd.
func (f *Frontend) startLoops(n, lfd int) ([]*loop, error) {
	loops := make([]*loop, 0, n)
	for range n {
		l, err := newLoop(f, lfd, len(loops) == 0)
		if err != nil {
			for _, l := range loops {
				l.closeFDs()
			}
			return nil, err
		}
		loops = append(loops, l)
	}
	for _, l := range loops {
		l.peers = loops
		go l.run()
	}
	return loops, nil
}

// newLoop opens a loop of f; accepts: it watches the listening socket lfd.
func newLoop(f *Frontend, lfd int, accepts bool) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd2", err)
	}
	l := &loop{
		f: f, epfd: epfd, wakefd: wakefd, lfd: lfd,
		done:    make(chan struct{}),
		spare:   openSpareFD(),
		scratch: make([]byte, readBufSize),
		procs:   int32(runtime.GOMAXPROCS(0)),
	}
	if err := l.ctl(unix.EPOLL_CTL_ADD, l.wakefd, unix.EPOLLIN|unix.EPOLLET, slotWake, 0); err != nil {
		l.closeFDs()
		return nil, err
	}
	if !accepts {
		l.lfd = -1
	} else if err := l.ctl(unix.EPOLL_CTL_ADD, lfd, unix.EPOLLIN, slotListener, 0); err != nil {
		l.closeFDs()
		return nil, err
	}
	parkfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		l.closeFDs()
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(parkfd, true); err != nil {
		unix.Close(parkfd)
		l.closeFDs()
		return nil, os.NewSyscallError("fcntl", err)
	}
	l.parkfd = parkfd
	l.file = os.NewFile(uintptr(parkfd), "epoll")
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
	}
	unix.Close(l.epfd)
	unix.Close(l.wakefd)
	closeSpareFD(l.spare)
}

func (l *loop) ctl(op, fd int, events uint32, slot int32, pad int32) error {
	ev := unix.EpollEvent{Events: events, Fd: slot, Pad: pad}
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(l.epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	if errno != 0 {
		return os.NewSyscallError("epoll_ctl", errno)
	}
	return nil
}

// exec runs fn on the loop and returns when it has run. After the loop has
// stopped it runs nothing.
func (l *loop) exec(fn func()) {
	ran := make(chan struct{})
	l.post(func() { fn(); close(ran) })
	select {
	case <-ran:
	case <-l.done:
	}
}

// post runs fn on the loop in its next batch, without waiting for it. A
// loop that has stopped runs nothing.
func (l *loop) post(fn func()) {
	l.mu.Lock()
	l.tasks = append(l.tasks, fn)
	l.mu.Unlock()
	var one = [8]byte{1}
	unix.Write(l.wakefd, one[:])
}

func (l *loop) runTasks() {
	var buf [8]byte
	unix.Read(l.wakefd, buf[:])
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = nil
	l.mu.Unlock()
	if len(tasks) == 0 {
		return
	}
	// A task may have been posted after this batch read the clock (a
	// client handed over while the batch ran): what it times, a connect
	// timeout, counts from now, not from before the client arrived.
	l.now = time.Now().UnixNano()
	for _, fn := range tasks {
		fn()
	}
}

// A loop yields at least every yieldEvery while it has events to serve
// without waiting for any.
const yieldEvery = time.Millisecond

func (l *loop) run() {
	defer close(l.done)
	defer l.closeFDs()
	events := make([]unix.EpollEvent, maxEvents)
	l.now = time.Now().UnixNano()
	l.nextTick = l.now + int64(tickEvery)
	l.windowAt = l.now
	got := 0
	lastYield, lastWait := l.now, l.now
	wait := func(ms int) bool {
		// epoll_pwait without a signal mask is epoll_wait, which some
		// architectures (arm64) only have in this form. A look (ms 0),
		// and a hot loop's wait while it may keep its P (see
		// threadWait), skip the scheduler's bookkeeping of a system
		// call.
		l.looks++
		var n uintptr
		var errno syscall.Errno
		if ms == 0 || l.holdsP() {
			n, _, errno = unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(ms), 0, 0)
		} else {
			n, _, errno = unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(ms), 0, 0)
		}
		if errno != 0 {
			n = 0
		}
		got = int(n)
		// A signal ended a wait: the runtime preempting the loop, which
		// it does next time the loop calls a function. The loop goes
		// round and looks again, rather than parking.
		return got > 0 || (ms != 0 && errno == syscall.EINTR)
	}
	for !l.stopped {
		// Look at the epoll set without the scheduler's syscall
		// bookkeeping: under load the sockets are ready again by the time
		// the last batch is done. Else wait: a hot loop in epoll_wait on
		// this thread for a while, then in the runtime's poller, a cold
		// one in the poller (see threadWait).
		l.looks = 0
		busy := len(l.again) > 0
		parked := false
		var from int64 // when a wait began; 0: no wait
		switch {
		case busy:
			wait(0) // directions are owed a pump: no waiting
		case l.hot:
			if !wait(0) {
				from = time.Now().UnixNano()
				parked = l.threadWait(wait, from)
			}
		default:
			from = time.Now().UnixNano()
			parked = l.park(wait) // which looks first
		}
		n := got
		got = 0
		l.now = time.Now().UnixNano()
		l.measureLoad(from)
		if l.looks > 1 && n > 0 {
			l.wakes++
		}
		waited := !busy && (l.looks > 1 || n == 0)
		switch {
		case parked:
			// The goroutines sharing the loop's P had it meanwhile. A
			// yield now would only wake an idle thread to look for
			// work, two context switches and a futex call.
			lastYield, lastWait = l.now, l.now
		case waited && l.now-lastYield >= int64(schedEvery):
			// Woken from epoll_wait on this thread, where the
			// scheduler does not see the loop: it must see it pass
			// by now and then.
			l.yield()
			lastYield, lastWait = l.now, l.now
		case waited:
			// On its thread: the loop's P had no other work meanwhile,
			// or the runtime gave it to that work.
			lastWait = l.now
		case l.now-max(lastYield, lastWait) >= int64(yieldEvery):
			// Events without a wait for yieldEvery.
			l.yield()
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
		l.resume()
	}
	l.setHot(false)
	for _, c := range l.conns {
		if c != nil {
			l.closeConn(c)
		}
	}
}

// A loop that found nothing to do waits in the Go runtime's poller until
// an event or its next timer; a loop kept busy (hot) waits in epoll_wait
// on its own thread first, for up to threadWait.
//
// The poller has one thread waiting in it, which runs the goroutine it
// wakes, and then looks for the next: at a light load one thread serves
// every loop, with half the context switches of a thread per loop (the
// proxy's own CPU per request was 1.27–1.34× with a thread per loop at
// 1,000–6,000 requests a second). Under load that thread is the
// bottleneck: a second loop that became ready meanwhile waited until some
// thread looked, and at saturation the host idled (0.94× of haproxy's
// requests on two cores, against 1.00–1.02× with a thread per loop).
//
// On its own thread the kernel wakes it straight into the loop, as it
// wakes a thread of a C proxy: under load the next events come within
// threadWait. The thread keeps the loop's P while it waits: the wait is a
// raw system call, which the runtime takes for the goroutine running. Seen
// as a system call, the wait lost its P whenever every P's goroutine was
// in one and no P was idle, as at saturation: the runtime's monitor took
// the P after 20 µs and started a thread to look for work, and from then
// on looked every 20 µs; the loop came back from epoll_wait without a P
// and went on on whichever thread had one. In such rounds four to six
// threads shared the two loops' CPU, and the keep-alive row moved between
// 88,000 and 116,000 requests a second from round to round (haproxy:
// 104,000–116,000); keeping the P, two threads ran the two loops in every
// round, at 106,000–116,000.
//
// The runtime preempts a goroutine it has not seen scheduled for 10 ms (by a
// signal, which ends the wait), and the daemon's other goroutines (health
// checks, metrics, other frontends' cold loops) need a P too, so a hot loop
// passes through the scheduler every schedEvery while it has events (2 ms
// and 8 ms measured the same), and parks after threadWait without any: the
// others wait for a P at most that long, and those woken by the network
// until the runtime's monitor polls it, every 10 ms at most, since no thread
// looks for work while every P runs a loop. While more loops are hot than
// there are Ps, a hot loop waiting on its P would keep another one from
// running, and with a single P everything else would wait for the loop: then
// the wait is a system call and the runtime hands its P over. (Doubling
// GOMAXPROCS, so that a waiting loop's P is never needed elsewhere, cost 10%
// more CPU per request at 6,000 keep-alive requests a second and gained
// nothing measurable at saturation.)
//
// A loop with nothing to do for threadWait parks in the poller: an idle
// daemon holds no P and no thread, and the runtime's monitor sleeps.
const (
	threadWait = 4 * time.Millisecond
	schedEvery = 2 * time.Millisecond
)

// A loop is hot while it is busy (not waiting) for more than hotOn of a
// loadWindow, until that falls under hotOff. On two cores, with the load
// generator and the backend on the same cores, a loop was busy for 37–68%
// of its windows at saturation (10th to 90th percentile, keep-alive and a
// connection per request) and for 3–14% at the bench's fixed loads (1,000
// to 6,000 requests a second).
const (
	loadWindow = 50 * time.Millisecond
	hotOn      = 0.3
	hotOff     = 0.2
)

// measureLoad counts a wait that began at from (0: none) and, once per
// loadWindow, says whether the loop is hot.
func (l *loop) measureLoad(from int64) {
	if from != 0 {
		l.idleNs += l.now - from
	}
	window := l.now - l.windowAt
	if window < int64(loadWindow) {
		return
	}
	busy := 1 - float64(l.idleNs)/float64(window)
	l.setHot(busy > hotOn || (l.hot && busy >= hotOff))
	if l.hot {
		l.leavePark()
	}
	l.procs = int32(runtime.GOMAXPROCS(0))
	l.windowAt, l.idleNs = l.now, 0
}

// hotLoops is how many loops of the process are hot.
var hotLoops atomic.Int32

// setHot says whether the loop is hot, and counts it in hotLoops.
func (l *loop) setHot(hot bool) {
	switch {
	case hot && !l.hot:
		hotLoops.Add(1)
	case !hot && l.hot:
		hotLoops.Add(-1)
	}
	l.hot = hot
}

// holdsP reports whether a hot loop keeps its P while it waits: while no
// more loops are hot than there are Ps, and there are two at least (with
// one, everything else the daemon runs would wait for the loop's yields).
func (l *loop) holdsP() bool {
	return l.hot && l.procs > 1 && hotLoops.Load() <= l.procs
}

// threadWait waits for events after a look found none, in epoll_wait on
// the loop's thread until the next timer, threadWait at most, then in the
// runtime's poller; parked reports whether it waited there. now is the
// clock read as the wait begins.
func (l *loop) threadWait(look func(int) bool, now int64) (parked bool) {
	ms := l.waitMillis(now)
	capped := ms < 0 || ms > int(threadWait/time.Millisecond)
	if capped {
		ms = int(threadWait / time.Millisecond)
	}
	if look(ms) || !capped {
		return false // events, or a timer due
	}
	return l.park(look)
}

// waitMillis is how long a wait for events may last: until the next timer
// is due from now, rounded up to a millisecond, or -1 (no timer: until an
// event).
func (l *loop) waitMillis(now int64) int {
	next := l.nextDue()
	if next == never {
		return -1
	}
	d := next - now
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

// park calls look, and if it found nothing waits in the runtime's poller
// until the epoll set has events (look returns true) or the next timer is
// due; it reports whether it waited. The poller sees the loop's set
// through parkfd, which holds it while the loop is not hot: while a hot
// loop runs, every event of its set would wake the thread waiting in the
// poller, for nothing (0.80× of the requests at saturation).
func (l *loop) park(look func(int) bool) bool {
	if !l.inPark && !l.enterPark() {
		time.Sleep(10 * time.Millisecond)
		return true
	}
	if l.hot {
		defer l.leavePark() // a hot loop waits on its thread again next
	}
	if next := l.nextDue(); next != l.deadline {
		l.deadline = next
		var t time.Time // never: no deadline
		if next != never {
			t = time.Unix(0, next)
		}
		l.file.SetReadDeadline(t)
	}
	before := l.looks
	if err := l.rc.Read(func(uintptr) bool { return look(0) }); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		l.f.log.Error("event loop: waiting for events failed", "err", err)
		time.Sleep(10 * time.Millisecond)
	}
	return l.looks > before+1
}

// enterPark puts the loop's epoll set into parkfd, for the runtime's
// poller to watch.
func (l *loop) enterPark() bool {
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if err := unix.EpollCtl(l.parkfd, unix.EPOLL_CTL_ADD, l.epfd, &ev); err != nil {
		l.f.log.Error("event loop: waiting for events failed", "err", err)
		return false
	}
	l.inPark = true
	return true
}

// leavePark takes the loop's epoll set out of parkfd.
func (l *loop) leavePark() {
	if l.inPark {
		unix.EpollCtl(l.parkfd, unix.EPOLL_CTL_DEL, l.epfd, nil)
		l.inPark = false
	}
}

// yield gives the loop's P to the goroutines waiting for it.
func (l *loop) yield() {
	runtime.Gosched()
	l.yields++
}

func (l *loop) put(c *evConn) {
	if l.live == 0 {
		l.nextTick = l.now + int64(tickEvery) // the sweep starts again
	}
	l.live++
	l.load.Add(1)
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

// ended counts a client connection gone.
func (l *loop) ended() {
	l.f.active.Add(-1)
	procConns.Add(-1)
	l.f.metrics.active.Dec()
	l.f.wg.Done()
}

// release closes the connection's sockets and frees its slot, buffers
// and pipes.
func (l *loop) release(c *evConn) {
	c.cstate = connClosed
	c.unchoose()
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
	l.live--
	l.load.Add(-1)
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
