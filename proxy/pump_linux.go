package proxy

import (
	"golang.org/x/sys/unix"
)

// The events of a connection's sockets and the copying they allow. Each
// direction reads into the loop's buffer and writes that out at once; what
// the destination cannot take waits in a pooled buffer; a read that fills
// the buffer switches the direction to splice through a pooled pipe. The
// source's end is passed on as a shutdown once everything before it went
// out.

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
	switch c.cstate {
	case connConnecting:
		if side == sideServer {
			l.connectEvent(c, events)
			return
		}
		if events&unix.EPOLLERR != 0 {
			l.closeConn(c) // the client gave up
			return
		}
		c.up.sawReadable(events)
	case connProxying:
		l.proxyEvent(c, side, events)
	}
}

// proxyEvent handles readiness of one side of a connection being proxied.
func (l *loop) proxyEvent(c *evConn, side int32, events uint32) {
	// The client side's readiness moves the up direction's source and the
	// down direction's destination; the server side's the other two.
	src, dst := &c.up, &c.down
	if side == sideServer {
		src, dst = &c.down, &c.up
	}
	readable := src.sawReadable(events)
	writable := events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0
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
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return false
	}
	d.readable = true
	d.hup = d.hup || events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
	d.rdhup = d.rdhup || events&(unix.EPOLLRDHUP|unix.EPOLLERR) == unix.EPOLLRDHUP
	return true
}

// step is what one move of a direction left: more to do, a wait for the
// next event, or a closed connection.
type step uint8

const (
	stepOn step = iota
	stepWait
	stepClosed
)

// pump moves what it can in one direction without waiting, and passes an
// end on. It returns false when the connection was closed.
func (l *loop) pump(c *evConn, d *evDir) bool {
	l.budget = pumpBudget
	for {
		var s step
		switch {
		case d.holding():
			// What dst could not take before goes first.
			s = l.flushHeld(c, d)
		case d.eof || !d.readable:
			return l.passEnd(c, d)
		case l.budget <= 0:
			// A bulk transfer that keeps both sides busy: the rest
			// moves after the loop has looked at its other sockets.
			l.later(c, d)
			return true
		case d.pipe != nil:
			s = l.spliceIn(c, d)
		default:
			s = l.copyIn(c, d)
		}
		if s != stepOn {
			return s == stepWait
		}
	}
}

// pumpBudget is how many bytes one pump reads before the direction waits
// for the loop's next batch: at loopback speed about half a millisecond, so
// a bulk transfer cannot hold its loop (and the sockets of its other
// connections) for longer.
const pumpBudget = 1 << 20

// pending is a direction whose pump stopped at its budget.
type pending struct {
	c *evConn
	d *evDir
}

// later queues d to be pumped again in the loop's next batch.
func (l *loop) later(c *evConn, d *evDir) {
	if !d.queued {
		d.queued = true
		l.again = append(l.again, pending{c, d})
		l.deferred++
	}
}

// resume pumps the directions queued by later, once each.
func (l *loop) resume() {
	again := l.again
	l.again = l.spareAgain[:0]
	for _, p := range again {
		p.d.queued = false
		if p.c.cstate == connProxying {
			l.pump(p.c, p.d)
		}
	}
	clear(again)
	l.spareAgain = again[:0]
}

// flushHeld writes what the direction holds, once, if dst may take it.
func (l *loop) flushHeld(c *evConn, d *evDir) step {
	if !d.writable {
		return stepWait
	}
	switch err := d.flush(); err {
	case nil, unix.EINTR:
		return stepOn
	case unix.EAGAIN:
		d.writable = false
		return stepWait
	}
	l.closeConn(c)
	return stepClosed
}

// spliceIn moves bytes from the source into the direction's pipe, once. An
// empty source gives the pipe back: the next read starts in copy mode.
func (l *loop) spliceIn(c *evConn, d *evDir) step {
	m, err := rawSplice(*d.src, d.pipe.w, spliceChunk)
	switch {
	case err == unix.EINTR:
	case err == unix.EAGAIN:
		// The pipe is empty (it was emptied before this read): the
		// socket is.
		d.readable = false
		putPipe(d.pipe)
		d.pipe = nil
	case err != nil:
		l.closeConn(c)
		return stepClosed
	case m == 0:
		d.eof = true
	default:
		d.pipe.n += int(m)
		d.count(float64(m))
		l.budget -= int(m)
		l.moved(c, d)
	}
	return stepOn
}

// copyIn reads once into the loop's buffer and writes what it read to dst
// at once; what dst does not take is kept in a pooled buffer. A read that
// fills the buffer switches the direction to splice.
func (l *loop) copyIn(c *evConn, d *evDir) step {
	n, err := rawRecv(*d.src, l.scratch)
	switch {
	case err == unix.EINTR:
		return stepOn
	case err == unix.EAGAIN:
		d.readable = false
		return stepOn
	case err != nil:
		l.closeConn(c)
		return stepClosed
	case n == 0:
		d.eof = true
		return stepOn
	}
	d.count(float64(n))
	l.budget -= n
	l.moved(c, d)
	full := n == len(l.scratch)
	if !full && !d.hup {
		// A short read took all there was, and no end had come with the
		// edge: the next edge says when there is more.
		d.readable = false
	}
	w, ok := l.sendOut(d, l.scratch[:n])
	if !ok {
		l.closeConn(c)
		return stepClosed
	}
	if w < n {
		d.pbuf = bufPool.Get().(*[]byte)
		d.pend = (*d.pbuf)[:copy(*d.pbuf, l.scratch[w:n])]
	}
	if full && d.pipe == nil {
		// A bulk transfer: the rest moves by splice, in the kernel.
		if p, err := getPipe(); err == nil {
			d.pipe = p
		}
	}
	return stepOn
}

// sendOut writes out to dst if it may take bytes, and returns how much it
// took; false means dst failed.
func (l *loop) sendOut(d *evDir, out []byte) (int, bool) {
	if !d.writable {
		return 0, true
	}
	flags := 0
	if len(out) < len(l.scratch) && d.rdhup {
		// Only the peer's end follows these bytes: hold them back
		// (MSG_MORE) for the read of that end that comes next, whose
		// shutdown (or close) then sends them and the FIN in one segment.
		flags = unix.MSG_MORE
	}
	w, err := rawSend(*d.dst, out, flags)
	switch err {
	case nil:
		return w, true
	case unix.EAGAIN:
		d.writable = false
		return 0, true
	case unix.EINTR:
		return 0, true
	}
	return 0, false
}

// passEnd passes the source's end on to dst once it has come and
// everything before it went out: a shutdown, or the close when the other
// direction has ended too. It returns false when the connection was closed.
func (l *loop) passEnd(c *evConn, d *evDir) bool {
	if !d.eof || d.done {
		return true
	}
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
