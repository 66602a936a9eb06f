package proxy

import (
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrrplb/vrrplb/config"
)

// The listener side of a loop: accepting clients, refusing them over
// max_connections or at the descriptor limit, backing off when accepting
// fails.

// accept takes waiting clients off the listening socket.
func (l *loop) accept() {
	if l.acceptPaused {
		return
	}
	for range acceptBatch {
		var rsa unix.RawSockaddrAny
		alen := uint32(unix.SizeofSockaddrAny)
		r, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(l.lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&alen)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		switch errno {
		case 0:
			l.backoff = 0
			if to := l.handTo(); to != l {
				l.handOver(to, int(r), rsa)
				continue
			}
			l.newConn(int(r), &rsa)
			continue
		case unix.EAGAIN:
			return
		case unix.EINTR, unix.ECONNABORTED:
			continue
		}
		reason := ReasonAcceptError
		if errno == unix.EMFILE || errno == unix.ENFILE {
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

// acceptSlack is how many connections more than another loop of the
// frontend the accepting loop may hold and still keep a new client itself:
// at a light load it keeps them, and no other loop wakes.
const acceptSlack = 2

// handTo returns the loop of the frontend that should serve a new client
// this loop accepted: this one, or one that holds more than acceptSlack
// connections fewer. One loop accepts: with the listening socket in every
// loop's epoll set, every loop woke for every new client (when the sets
// waited inside the runtime's poller, where EPOLLEXCLUSIVE picks no single
// one), all but one for nothing, and the loop that happened to be running
// took the clients: one loop served all 100 clients of a burst on one core
// while the other loops idled.
func (l *loop) handTo() *loop {
	to, least := l, l.load.Load()-acceptSlack
	for _, o := range l.peers {
		if n := o.load.Load(); n < least {
			to, least = o, n
		}
	}
	return to
}

// handOver gives an accepted client to loop to, which starts serving it in
// its next batch.
func (l *loop) handOver(to *loop, cfd int, rsa unix.RawSockaddrAny) {
	to.load.Add(1) // counted at once, so the next client goes elsewhere
	to.post(func() {
		to.load.Add(-1) // put counts it again
		to.newConn(cfd, &rsa)
	})
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
	r, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(l.lfd), 0, 0, unix.SOCK_CLOEXEC, 0, 0)
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
		l.f.log.Warn("accept failed, backing off", "err", os.NewSyscallError("accept4", err), "reason", reason)
	} else {
		l.backoff = min(2*l.backoff, acceptBackoffMax)
	}
	l.acceptPaused = true
	_ = l.ctl(unix.EPOLL_CTL_DEL, l.lfd, 0, 0, 0)
	l.after(l.backoff, func() {
		if l.acceptOver {
			return
		}
		l.acceptPaused = false
		_ = l.ctl(unix.EPOLL_CTL_ADD, l.lfd, unix.EPOLLIN, slotListener, 0)
	})
}

// stopAccepting takes the listener out of the loop for good.
func (l *loop) stopAccepting() {
	if !l.acceptPaused && l.lfd >= 0 {
		_ = l.ctl(unix.EPOLL_CTL_DEL, l.lfd, 0, 0, 0)
	}
	l.acceptPaused, l.acceptOver = true, true
}

// newConn starts serving an accepted client: count it, refuse it over
// max_connections (0: over the process's limit derived from the open-file
// limit), else start the backend connect.
func (l *loop) newConn(cfd int, rsa *unix.RawSockaddrAny) {
	f := l.f
	st := f.state.Load()
	f.metrics.connections.Inc()
	n := f.active.Add(1)
	inProc := procConns.Add(1)
	f.metrics.active.Inc()
	f.wg.Add(1)
	limit := int64(st.cfg.MaxConnections)
	if limit == 0 {
		// The open-file limit's share, counted over the whole process.
		limit, n = f.autoMax.Load(), inProc
	}
	if limit > 0 && n > limit {
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
	if err := l.ctl(unix.EPOLL_CTL_ADD, cfd, connEvents, c.slot, int32(c.gen<<1|sideClient)); err != nil {
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

// drop closes a connection that never reached a backend and counts why.
func (l *loop) drop(c *evConn, reason string) {
	l.f.metrics.reject(reason) // counted before the client sees the close
	l.release(c)
	l.ended()
}

// sockaddrIP is the client address of an accepted connection.
func sockaddrIP(rsa *unix.RawSockaddrAny) netip.Addr {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrFrom4(sa.Addr)
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}
