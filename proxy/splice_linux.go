package proxy

import (
	"errors"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The data path's system calls (see pump_linux.go for the loop that makes
// them). Each direction reads into its loop's buffer and writes that out at
// once: small messages (API requests, watch events) cost one read and one
// write, and only what the destination cannot take yet is copied into a
// pooled buffer. When a read fills the whole buffer a bulk transfer is
// under way and the direction switches to splice(2) through a pooled pipe,
// so the bytes stay in the kernel; once the source is drained the pipe goes
// back to the pool. An idle connection therefore holds no buffer, no pipe
// and no goroutine, only its sockets and its small record in the loop.

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

// maxPipes caps the pipes open in the process at once, held by directions
// in splice mode or idle in the pool (haproxy's maxpipes): a client that does
// not read keeps its direction's pipe full, and without a cap such clients
// hold two descriptors and up to pipeSize of kernel memory each. Past the cap
// a direction copies through its buffer, which works as well, with more
// system calls. It is set from the open-file limit the process starts
// with (pipeCap); a variable for tests.
var maxPipes = pipeCap(openFileLimit())

var (
	pipesMu   sync.Mutex
	idlePipes []*pipe
	pipesOpen int // in use and idle, at most maxPipes
)

// errPipeCap: maxPipes pipes are open; the direction copies instead.
var errPipeCap = errors.New("pipe cap reached")

func getPipe() (*pipe, error) {
	pipesMu.Lock()
	if n := len(idlePipes); n > 0 {
		p := idlePipes[n-1]
		idlePipes = idlePipes[:n-1]
		pipesMu.Unlock()
		return p, nil
	}
	if pipesOpen >= maxPipes {
		pipesMu.Unlock()
		return nil, errPipeCap
	}
	pipesOpen++
	pipesMu.Unlock()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		pipesMu.Lock()
		pipesOpen--
		pipesMu.Unlock()
		return nil, os.NewSyscallError("pipe2", err)
	}
	// A larger pipe is an optimisation: the default size also works.
	_, _, _ = unix.Syscall(unix.SYS_FCNTL, uintptr(fds[0]), unix.F_SETPIPE_SZ, pipeSize)
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
	pipesOpen--
	pipesMu.Unlock()
	p.close()
}

func (p *pipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// pipesInUse is how many pipes directions hold now.
func pipesInUse() int {
	pipesMu.Lock()
	defer pipesMu.Unlock()
	return pipesOpen - len(idlePipes)
}

// closeIdlePipes empties the pool (tests count descriptors).
func closeIdlePipes() {
	pipesMu.Lock()
	ps := idlePipes
	idlePipes = nil
	pipesOpen -= len(ps)
	pipesMu.Unlock()
	for _, p := range ps {
		p.close()
	}
}

const spliceFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK

// The event loops' system calls on sockets and pipes are raw: every
// descriptor is non-blocking, so none of them waits, and skipping the
// scheduler's syscall bookkeeping keeps the runtime from handing the loop's
// P to another thread meanwhile. recvfrom and sendto rather than read and
// write skip the file layer.

func rawRecv(fd int, b []byte) (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// rawSend sends b with flags (and MSG_NOSIGNAL).
func rawSend(fd int, b []byte, flags int) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(b)), uintptr(flags|unix.MSG_NOSIGNAL), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func rawClose(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// rawShutdown shuts down the sending side of fd.
func rawShutdown(fd int) error {
	if _, _, errno := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0); errno != 0 {
		return errno
	}
	return nil
}

func rawSetsockoptInt(fd, level, opt, v int) error {
	v32 := int32(v)
	if _, _, errno := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&v32)), 4, 0); errno != 0 {
		return errno
	}
	return nil
}

func rawSplice(rfd, wfd, n int) (int64, error) {
	m, _, errno := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(rfd), 0, uintptr(wfd), 0, uintptr(n), spliceFlags)
	if errno != 0 {
		return 0, errno
	}
	return int64(m), nil
}

// The spare descriptor: when accept fails with EMFILE, closing it leaves
// room to accept the waiting client and close it cleanly.

func openSpareFD() int {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

func closeSpareFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

// setKeepAliveFD turns TCP keepalive on for fd with the frontend's period:
// the first probe after period idle, then keepaliveProbes probes
// period/keepaliveProbes apart (at least a second).
func setKeepAliveFD(fd int, period time.Duration) error {
	interval := max(period/keepaliveProbes, time.Second)
	for _, o := range []struct{ level, opt, v int }{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(max(period/time.Second, 1))},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(interval / time.Second)},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepaliveProbes},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}
