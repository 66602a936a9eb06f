package proxy

import (
	"os"
	"sync"
	"syscall"
	"time"
)

// Parking. A long-lived apiserver connection (a watch, logs -f, exec) is
// idle most of its life. Two goroutines parked in the Go poller per such
// connection cost more memory than everything else about it, so a
// direction that moved no byte for a park interval leaves its goroutine:
// its source socket goes into one process-wide epoll set (level-triggered,
// one-shot) and the goroutine returns. When the socket becomes readable (or
// hangs up) the parker starts a fresh goroutine for the direction, which
// carries on where it stopped. Busy connections are never touched.

// parkEvery is how often the sweep parks directions that moved nothing
// since its previous pass: an idle direction parks after one to two of these.
var parkEvery = time.Second

type parkerSet struct {
	once sync.Once
	epfd int
	err  error

	mu   sync.Mutex
	next uint32
	dirs map[uint32]*direction
}

var parker = &parkerSet{}

func (p *parkerSet) init() error {
	p.once.Do(func() {
		p.dirs = make(map[uint32]*direction)
		p.epfd, p.err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if p.err != nil {
			p.err = os.NewSyscallError("epoll_create1", p.err)
			return
		}
		go p.loop()
	})
	return p.err
}

// park moves d into the parker; false leaves it running. The caller is d's
// goroutine, which returns when park reports true.
func (d *direction) park() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || parker.init() != nil {
		return false
	}
	p := parker
	p.mu.Lock()
	for {
		p.next++
		if _, taken := p.dirs[p.next]; !taken {
			break
		}
	}
	d.id = p.next
	p.dirs[d.id] = d
	p.mu.Unlock()

	var eerr error
	rc, err := d.tcpSrc.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) {
			ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(d.id)}
			eerr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		})
	}
	if err != nil || eerr != nil {
		p.forget(d)
		return false
	}
	d.parked = true
	return true
}

// forget drops d from the parker; closing its socket removes it from the
// epoll set. Called with d.mu held.
func (p *parkerSet) forget(d *direction) {
	p.mu.Lock()
	if p.dirs[d.id] == d {
		delete(p.dirs, d.id)
	}
	p.mu.Unlock()
}

func (p *parkerSet) loop() {
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err != syscall.EINTR {
				time.Sleep(10 * time.Millisecond) // cannot happen with a valid epfd; never spin
			}
			continue
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			d := p.dirs[uint32(ev.Fd)]
			delete(p.dirs, uint32(ev.Fd))
			p.mu.Unlock()
			if d != nil && d.unpark() {
				go d.resume()
			}
		}
	}
}

// unpark takes d out of the epoll set; false if close got there first.
func (d *direction) unpark() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.parked {
		return false
	}
	d.parked = false
	if rc, err := d.tcpSrc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			syscall.EpollCtl(parker.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
	return true
}

// resume is a parked direction's new goroutine.
func (d *direction) resume() {
	d.kick.Store(false)
	d.tcpSrc.SetReadDeadline(time.Time{})
	d.run()
}
