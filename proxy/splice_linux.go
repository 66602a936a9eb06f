package proxy

import (
	"errors"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// The data path. Each direction waits for its source to become readable
// without holding a buffer, reads once into a pooled buffer and writes that
// out: small messages (API requests, watch events) cost one read and one
// write. When a read fills the whole buffer a bulk transfer is under way and
// the direction switches to splice(2) through a pooled pipe, so the bytes
// stay in the kernel; when the source stays idle until the park sweep the
// pipe goes back to the pool. An idle connection therefore holds no buffer and no pipe; once
// parked (park_linux.go) it holds no goroutine either, only its sockets.

const (
	// readBufSize is the buffer of one read; a read that fills it switches
	// the direction to splice.
	readBufSize = 16 << 10
	// spliceChunk is the most one splice moves into the pipe.
	spliceChunk = 1 << 20
	// pipeSize asks the kernel for a pipe this large (F_SETPIPE_SZ), so one
	// splice moves more than the default 64 KiB.
	pipeSize = 1 << 20
	// maxIdlePipes is how many drained pipes the pool keeps open.
	maxIdlePipes = 64

	fSetPipeSz = 1031 // F_SETPIPE_SZ, fcntl(2); missing from package syscall
)

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, readBufSize)
	return &b
}}

// pipe is a kernel pipe used as the splice buffer of one direction while it
// is in bulk mode.
type pipe struct {
	r, w int
	n    int // bytes in the pipe
}

var (
	pipesMu   sync.Mutex
	idlePipes []*pipe
)

func getPipe() (*pipe, error) {
	pipesMu.Lock()
	if n := len(idlePipes); n > 0 {
		p := idlePipes[n-1]
		idlePipes = idlePipes[:n-1]
		pipesMu.Unlock()
		return p, nil
	}
	pipesMu.Unlock()
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	// A larger pipe is an optimisation: the default size also works.
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[0]), fSetPipeSz, pipeSize)
	return &pipe{r: fds[0], w: fds[1]}, nil
}

// putPipe returns an empty pipe to the pool; a pipe with bytes left in it
// (the copy failed) is closed.
func putPipe(p *pipe) {
	pipesMu.Lock()
	if p.n == 0 && len(idlePipes) < maxIdlePipes {
		idlePipes = append(idlePipes, p)
		pipesMu.Unlock()
		return
	}
	pipesMu.Unlock()
	p.close()
}

func (p *pipe) close() {
	syscall.Close(p.r)
	syscall.Close(p.w)
}

// closeIdlePipes empties the pool (tests count descriptors).
func closeIdlePipes() {
	pipesMu.Lock()
	ps := idlePipes
	idlePipes = nil
	pipesMu.Unlock()
	for _, p := range ps {
		p.close()
	}
}

// pump copies src to dst until EOF (nil), an error, or the sweep asks an
// idle direction to park (parked).
func (d *direction) pump() (parked bool, err error) {
	rc, err := d.tcpSrc.SyscallConn()
	if err != nil {
		return false, err
	}
	wc, err := d.tcpDst.SyscallConn()
	if err != nil {
		return false, err
	}
	// The callbacks are made once per pump, not once per message.
	m := &mover{d: d, wc: wc}
	m.readFn, m.writeFn = m.readSome, m.writeSome
	for {
		m.result, m.eof, m.bulk = nil, false, false
		// One RawRead for as long as messages are small. A short read does
		// not mean the source is drained (a FIN that came with the data has
		// no edge of its own), so the callback reads until EAGAIN.
		err := rc.Read(m.readFn)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The sweep's nudge: park if it still wants that.
			d.tcpSrc.SetReadDeadline(time.Time{})
			if d.kick.Swap(false) && d.park() {
				return true, nil
			}
		case err != nil:
			return false, err
		case m.result != nil || m.eof:
			return false, m.result
		case m.bulk:
			eof, err := d.spliceBulk(wc, rc)
			if err != nil || eof {
				return false, err
			}
		}
	}
}

// mover is the read/write state of one pump: the RawRead and RawWrite
// callbacks and what they report.
type mover struct {
	d      *direction
	wc     syscall.RawConn
	result error // the copy failed
	eof    bool  // the source ended
	bulk   bool  // a read filled the buffer: switch to splice
	moves  int   // messages moved in this pump

	out  []byte // what writeSome still has to write
	werr error

	// recvmsg's arguments, kept here so a receive allocates nothing.
	msg  syscall.Msghdr
	iov  syscall.Iovec
	ctrl [cmsgInqSpace]byte

	readFn, writeFn func(fd uintptr) bool
}

// readSome is the RawRead callback: it reads and writes out until the
// source has nothing more (false: wait for it), then returns the buffer.
func (m *mover) readSome(fd uintptr) bool {
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	d := m.d
	for {
		n, more, rerr := m.recv(int(fd), *buf)
		switch {
		case rerr == syscall.EAGAIN:
			if !d.inq && m.moves > 1 {
				// A conversation, not a single exchange: one setsockopt
				// now saves this EAGAIN read on every later message.
				d.inq = setInq(int(fd)) == nil
			}
			return false // wait for readability, holding nothing
		case rerr != nil:
			m.result = os.NewSyscallError("read", rerr)
			return true
		case n == 0:
			m.eof = true
			return true
		}
		if err := m.writeAll((*buf)[:n]); err != nil {
			m.result = err
			return true
		}
		m.moves++
		d.moved.Store(true)
		d.count(float64(n))
		if d.pc.idle > 0 {
			d.pc.touch()
		}
		if n == len(*buf) {
			m.bulk = true // more is likely waiting: splice it
			return true
		}
		if !more {
			// The kernel said the socket holds nothing more, not even
			// an end: wait without the read that would say EAGAIN.
			return false
		}
	}
}

// TCP_INQ (tcp(7), Linux 4.18): with it on, every receive on the socket
// carries a control message saying how many bytes are left to read,
// nonzero also when only the peer's FIN is left.
const (
	tcpInq       = 36 // TCP_INQ, and TCP_CM_INQ, the control message's type
	cmsgInqSpace = syscall.SizeofCmsghdr + 8
)

// recv reads into b. more is false only when the kernel reported that
// nothing more is waiting (see tcpInq); without that report it is true,
// and the caller reads again until EAGAIN.
func (m *mover) recv(fd int, b []byte) (n int, more bool, err error) {
	m.iov.Base = &b[0]
	m.iov.SetLen(len(b))
	m.msg.Iov = &m.iov
	m.msg.Iovlen = 1
	m.msg.Control = &m.ctrl[0]
	m.msg.SetControllen(len(m.ctrl))
	for {
		r, _, errno := syscall.RawSyscall(syscall.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&m.msg)), 0)
		m.iov.Base = nil // the buffer goes back to the pool
		if errno == syscall.EINTR {
			m.iov.Base = &b[0]
			continue
		}
		if errno != 0 {
			return 0, false, errno
		}
		n = int(r)
		break
	}
	more = true
	if m.msg.Controllen >= syscall.SizeofCmsghdr+4 {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&m.ctrl[0]))
		if h.Level == syscall.SOL_TCP && h.Type == tcpInq {
			more = *(*int32)(unsafe.Pointer(&m.ctrl[syscall.SizeofCmsghdr])) != 0
		}
	}
	return n, more, nil
}

// setInq turns TCP_INQ on for fd; an older kernel refuses it, and the data
// path then reads until EAGAIN.
func setInq(fd int) error {
	return syscall.SetsockoptInt(fd, syscall.SOL_TCP, tcpInq, 1)
}

// writeAll writes b to the destination socket, waiting while it is full.
func (m *mover) writeAll(b []byte) error {
	m.out, m.werr = b, nil
	err := m.wc.Write(m.writeFn)
	m.out = nil
	if err != nil {
		return err
	}
	return m.werr
}

// writeSome is the RawWrite callback.
func (m *mover) writeSome(fd uintptr) bool {
	for len(m.out) > 0 {
		n, err := rawWrite(int(fd), m.out)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return false
		}
		if err != nil {
			m.werr = os.NewSyscallError("write", err)
			return true
		}
		m.out = m.out[n:]
	}
	return true
}

// spliceBulk moves bytes from rc to wc through a pipe until rc ends (eof),
// fails, or the sweep ends an idle wait; then the pipe goes back to the
// pool.
func (d *direction) spliceBulk(wc, rc syscall.RawConn) (eof bool, err error) {
	p, err := getPipe()
	if err != nil {
		return false, nil // stay on read/write
	}
	defer putPipe(p)
	for {
		var serr error
		var n int
		err := rc.Read(func(fd uintptr) bool {
			for {
				var m int64
				m, serr = rawSplice(int(fd), p.w, spliceChunk)
				n = int(m)
				switch serr {
				case syscall.EINTR:
					continue
				case syscall.EAGAIN:
					// Wait with the pipe: a stream that ran dry for a
					// moment usually goes on. The sweep's nudge ends the
					// wait of one that stays idle, and the pipe goes back.
					return false
				}
				return true
			}
		})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil // the sweep's nudge: the caller handles it
		}
		if err != nil {
			return false, err
		}
		if serr != nil {
			return false, os.NewSyscallError("splice", serr)
		}
		if n == 0 {
			return true, nil
		}
		p.n = n
		if err := spliceOut(wc, p); err != nil {
			return false, err
		}
		d.moved.Store(true)
		d.count(float64(n))
		if d.pc.idle > 0 {
			d.pc.touch()
		}
	}
}

const spliceFlags = 0x1 | 0x2 // SPLICE_F_MOVE | SPLICE_F_NONBLOCK

// The data path's receive (recv), send and splice are raw system calls: every
// descriptor they touch is non-blocking, so none of them waits, and
// skipping the scheduler's syscall bookkeeping keeps the runtime from
// handing the goroutine's P to another thread while a loopback send runs
// the receiver's TCP stack (a thread switch per message otherwise).
// recvmsg and sendto rather than read and write skip the file layer.

func rawWrite(fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(b)), syscall.MSG_NOSIGNAL, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func rawSplice(rfd, wfd, n int) (int64, error) {
	m, _, errno := syscall.RawSyscall6(syscall.SYS_SPLICE, uintptr(rfd), 0, uintptr(wfd), 0, uintptr(n), spliceFlags)
	if errno != 0 {
		return 0, errno
	}
	return int64(m), nil
}

// spliceOut empties the pipe into the socket behind wc.
func spliceOut(wc syscall.RawConn, p *pipe) error {
	var serr error
	err := wc.Write(func(fd uintptr) bool {
		for p.n > 0 {
			m, err := rawSplice(p.r, int(fd), p.n)
			if err == syscall.EINTR {
				continue
			}
			if err == syscall.EAGAIN {
				return false
			}
			if err != nil {
				serr = os.NewSyscallError("splice", err)
				return true
			}
			p.n -= int(m)
		}
		return true
	})
	if err != nil {
		return err
	}
	return serr
}

// connectEarly is the backend dialer's Control hook: it starts the
// non-blocking connect itself, before the net package does. To a local
// backend (loopback) the handshake then completes inside this call, and
// the net package's own connect finds the socket connected, so the dialing
// goroutine does not park to wait for it. Otherwise the net package's
// connect waits for the one in progress as usual and reports its outcome;
// the error of this one is left to it.
func connectEarly(network, address string, c syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || ap.Addr().Zone() != "" {
		return nil
	}
	var sa syscall.Sockaddr
	switch ip := ap.Addr(); {
	case ip.Is4() && network != "tcp6":
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	case ip.Is6() && network != "tcp4" && !ip.Is4In6():
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	default:
		return nil
	}
	_ = c.Control(func(fd uintptr) { _ = syscall.Connect(int(fd), sa) })
	return nil
}

// The spare descriptor: when accept fails with EMFILE, closing it leaves
// room to accept the waiting client and close it cleanly.

func openSpareFD() int {
	fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

func closeSpareFD(fd int) {
	if fd >= 0 {
		syscall.Close(fd)
	}
}

// setKeepAliveFD turns TCP keepalive on for fd with the frontend's period,
// as setKeepAlive does for a connection.
func setKeepAliveFD(fd int, period time.Duration) error {
	interval := max(period/keepaliveProbes, time.Second)
	for _, o := range []struct{ level, opt, v int }{
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(max(period/time.Second, 1))},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(interval / time.Second)},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepaliveProbes},
	} {
		if err := syscall.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}
