package proxy

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// The data path. Each direction waits for its source to become readable
// without holding a buffer, reads once into a pooled buffer and writes that
// out: small messages (API requests, watch events) cost one read and one
// write. When a read fills the whole buffer a bulk transfer is under way and
// the direction switches to splice(2) through a pooled pipe, so the bytes
// stay in the kernel; when the source runs dry the pipe goes back to the
// pool. An idle connection therefore holds no buffer and no pipe, only its
// two sockets and two parked goroutines.

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

// errIdle ends a connection that moved no byte for idle_timeout.
var errIdle = errors.New("idle timeout")

// pump copies src to dst until EOF (nil) or an error.
func (pc *proxyConn) pump(dst, src *net.TCPConn, count func(float64)) error {
	rc, err := src.SyscallConn()
	if err != nil {
		return err
	}
	wc, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	if pc.idle > 0 {
		src.SetReadDeadline(time.Now().Add(pc.idle))
	}
	for {
		var (
			buf  *[]byte
			n    int
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			buf = bufPool.Get().(*[]byte)
			for {
				n, rerr = syscall.Read(int(fd), *buf)
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				bufPool.Put(buf)
				buf = nil
				return false // wait for readability, holding nothing
			}
			return true
		})
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if err := pc.extendIdle(src); err != nil {
					return err
				}
				continue
			}
			return err
		}
		if rerr != nil {
			bufPool.Put(buf)
			return os.NewSyscallError("read", rerr)
		}
		if n <= 0 {
			bufPool.Put(buf)
			return nil // EOF
		}
		err = writeAll(wc, (*buf)[:n])
		bufPool.Put(buf)
		if err != nil {
			return err
		}
		count(float64(n))
		if pc.idle > 0 {
			pc.touch()
		}
		if n == readBufSize {
			eof, err := pc.spliceBulk(wc, rc, count)
			if err != nil || eof {
				return err
			}
		}
	}
}

// extendIdle is called when src's read deadline passes: the connection is
// idle only if the other direction moved nothing either.
func (pc *proxyConn) extendIdle(src *net.TCPConn) error {
	last := time.Unix(0, pc.lastActive.Load())
	if time.Since(last) >= pc.idle {
		return errIdle
	}
	src.SetReadDeadline(last.Add(pc.idle))
	return nil
}

// writeAll writes b to the socket behind wc, waiting while it is full.
func writeAll(wc syscall.RawConn, b []byte) error {
	var werr error
	err := wc.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			n, err := syscall.Write(int(fd), b)
			if err == syscall.EINTR {
				continue
			}
			if err == syscall.EAGAIN {
				return false
			}
			if err != nil {
				werr = os.NewSyscallError("write", err)
				return true
			}
			b = b[n:]
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

// spliceBulk moves bytes from rc to wc through a pipe for as long as rc has
// data ready, then returns the pipe to the pool. eof reports that rc ended.
func (pc *proxyConn) spliceBulk(wc, rc syscall.RawConn, count func(float64)) (eof bool, err error) {
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
				m, serr = syscall.Splice(int(fd), nil, p.w, nil, spliceChunk, spliceFlags)
				n = int(m)
				if serr != syscall.EINTR {
					return true // never wait here: a dry source gives the pipe back
				}
			}
		})
		if err != nil {
			return false, err
		}
		if serr == syscall.EAGAIN {
			return false, nil
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
		count(float64(n))
		if pc.idle > 0 {
			pc.touch()
		}
	}
}

const spliceFlags = 0x1 | 0x2 // SPLICE_F_MOVE | SPLICE_F_NONBLOCK

// spliceOut empties the pipe into the socket behind wc.
func spliceOut(wc syscall.RawConn, p *pipe) error {
	var serr error
	err := wc.Write(func(fd uintptr) bool {
		for p.n > 0 {
			m, err := syscall.Splice(p.r, nil, int(fd), nil, p.n, spliceFlags)
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
