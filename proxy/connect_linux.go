package proxy

import (
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The backend side of a new connection: pick a backend, connect without
// waiting, give up after connect_timeout, and on a failure try the
// backend's next address, then the next backend, up to retries.

var errConnectTimeout = errors.New("connect timed out")

// connectNext starts a connect to a healthy backend not tried yet; with
// none left (or retries used up) the client is refused. With fail_open, a
// client that no healthy backend is left for tries the others: while no
// backend is healthy that is every backend, in balance order.
func (l *loop) connectNext(c *evConn) {
	for c.attempt <= c.st.cfg.Retries {
		var buf [8]*backend
		cands := l.candidates(c, buf[:0])
		if len(cands) == 0 {
			break
		}
		b := c.st.bal.pick(cands, c.clientIP)
		c.choose(b)
		c.attempt++
		c.addrBase, c.addrTry = b.preferred.Load(), 0
		if l.dial(c, b) {
			return
		}
	}
	l.f.log.Debug("connection refused: no healthy backend answered", "tried", len(c.tried))
	l.drop(c, ReasonNoBackend)
}

// candidates appends to buf the healthy backends not tried yet for c; if
// there is none and fail_open is on, every backend not tried yet. A
// draining backend is never one.
func (l *loop) candidates(c *evConn, buf []*backend) []*backend {
	for _, b := range c.st.backends {
		if !b.draining.Load() && !slices.Contains(c.tried, b) && l.f.health.Healthy(b.addr) {
			buf = append(buf, b)
		}
	}
	if len(buf) > 0 || !c.st.cfg.FailOpen {
		return buf
	}
	for _, b := range c.st.backends {
		if !b.draining.Load() && !slices.Contains(c.tried, b) {
			buf = append(buf, b)
		}
	}
	return buf
}

// dial starts a connect to b's address c.addrTry (counted from the one
// that answered last), going on to b's next address when one fails at
// once. It returns false when every address of b failed.
func (l *loop) dial(c *evConn, b *backend) bool {
	for {
		fd, connected, err := startConnect(b, c.addrBase+uint32(c.addrTry))
		if err == unix.EMFILE || err == unix.ENFILE {
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
		if err := l.ctl(unix.EPOLL_CTL_ADD, fd, connEvents, c.slot, int32(c.gen<<1|sideServer)); err != nil {
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
	l.f.log.Debug("connect to backend failed", "backend", b.addr, "err", err)
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

// connectEvent handles an event of the backend socket while its connect is
// under way: an error gives the connect up, writability completes it.
func (l *loop) connectEvent(c *evConn, events uint32) {
	if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		errno, _ := unix.GetsockoptInt(c.bfd, unix.SOL_SOCKET, unix.SO_ERROR)
		var err error = unix.Errno(errno)
		if errno == 0 {
			err = errors.New("connection closed")
		}
		l.abandonConnect(c, err)
		return
	}
	if events&unix.EPOLLOUT == 0 {
		return
	}
	c.down.sawReadable(events)
	l.connected(c)
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
	c.unchoose()
	b.active.Add(1)
	b.metrics.active.Inc()
	b.metrics.connections.Inc()
	c.up.count = b.metrics.bytesToBackend.Add
	c.down.count = b.metrics.bytesToClient.Add
	if l.pump(c, &c.up) {
		l.pump(c, &c.down)
	}
}

// choose counts c as connecting to b, in place of the backend it was
// chosen for before (whose connect failed).
func (c *evConn) choose(b *backend) {
	c.unchoose()
	c.chosen = b
	b.connecting.Add(1)
}

// unchoose ends the count choose made: the connect completed (the
// connection now counts in active), or the connection was given up.
func (c *evConn) unchoose() {
	if c.chosen != nil {
		c.chosen.connecting.Add(-1)
		c.chosen = nil
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
	r0, _, errno := unix.RawSyscall(unix.SYS_SOCKET, uintptr(r.family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if errno != 0 {
		return -1, false, errno
	}
	fd = int(r0)
	_ = rawSetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	sa := r.raw // the kernel may write to it; the backend's copy is shared
	_, _, errno = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(r.len))
	switch errno {
	case 0:
		return fd, true, nil
	case unix.EINPROGRESS, unix.EINTR:
		return fd, false, nil
	}
	rawClose(fd)
	return -1, false, errno
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
