package proxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxyConn is a client connection and its backend connection, copied by
// two directions. No goroutine owns the pair: each direction runs on its own
// goroutine while it has bytes to move, parks without one when it has been
// idle for a while (see park_linux.go), and the direction that ends last
// closes the pair and tells the frontend.
type proxyConn struct {
	f              *Frontend
	client, server net.Conn
	backend        *backend
	idle           time.Duration // idle_timeout; 0 means none
	lastActive     atomic.Int64  // unix nanoseconds of the last byte moved, when idle > 0
	up, down       direction     // client → backend, backend → client
	pending        atomic.Int32  // directions not yet ended
	// keepAlive is tcp_keepalive for the backend socket, set by the first
	// park pass that sees the connection: only a connection that lives
	// that long needs it, and short ones save four setsockopt calls. (The
	// client socket has it from the listener.)
	keepAlive    time.Duration
	keepAliveSet bool // only the sweep reads and writes it
	closeOnce    sync.Once
}

// direction copies one way: src to dst.
type direction struct {
	pc       *proxyConn
	src, dst net.Conn
	count    func(float64)
	// tcpSrc and tcpDst are set when both ends are *net.TCPConn: only then
	// does the direction splice and park.
	tcpSrc, tcpDst *net.TCPConn

	moved atomic.Bool // bytes moved since the last park sweep
	kick  atomic.Bool // the sweep asks the direction to park
	ended atomic.Bool

	// inq: TCP_INQ is on for src (see tcpInq). Only the direction's
	// running goroutine reads and writes it.
	inq bool

	mu     sync.Mutex
	parked bool   // waiting in the parker, no goroutine
	closed bool   // the pair is closed: never park again
	id     uint32 // the parker's key while parked
}

func newProxyConn(f *Frontend, client, server net.Conn, b *backend, idle time.Duration) *proxyConn {
	pc := &proxyConn{f: f, client: client, server: server, backend: b, idle: idle}
	pc.up = direction{pc: pc, src: client, dst: server, count: b.metrics.bytesToBackend.Add}
	pc.down = direction{pc: pc, src: server, dst: client, count: b.metrics.bytesToClient.Add}
	for _, d := range []*direction{&pc.up, &pc.down} {
		d.tcpSrc, _ = d.src.(*net.TCPConn)
		d.tcpDst, _ = d.dst.(*net.TCPConn)
		if d.tcpSrc == nil || d.tcpDst == nil {
			d.tcpSrc, d.tcpDst = nil, nil
		}
	}
	return pc
}

// start runs both directions: the backend's on a worker, the client's on
// the caller's (one goroutine fewer to start per connection).
func (pc *proxyConn) start() {
	if pc.idle > 0 {
		pc.touch()
	}
	pc.pending.Store(2)
	pc.f.workers.run(pc.copyBackendToClient)
	pc.copyClientToBackend()
}

func (pc *proxyConn) touch() { pc.lastActive.Store(time.Now().UnixNano()) }

// copyClientToBackend is the client → backend direction.
func (pc *proxyConn) copyClientToBackend() { pc.up.run() }

// copyBackendToClient is the backend → client direction.
func (pc *proxyConn) copyBackendToClient() { pc.down.run() }

// run copies until src ends (then half-closes dst so the peer sees the end
// too), an error (then closes both connections so the other direction ends
// as well), or the direction parks.
func (d *direction) run() {
	var err error
	if d.tcpSrc != nil {
		var parked bool
		if parked, err = d.pump(); parked {
			return
		}
	} else {
		err = copyStream(d.dst, d.src, d.count)
	}
	d.ended.Store(true)
	switch {
	case err != nil:
		d.pc.close()
	case d.pc.pending.Load() == 1:
		// The other direction has ended already: the close that follows
		// sends the FIN, no shutdown needed.
	default:
		if cw, ok := d.dst.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
			d.pc.close()
		}
	}
	d.pc.directionDone()
}

// copyStream is the data path for connections that are not TCP (test
// hooks): plain io.Copy.
func copyStream(dst io.Writer, src io.Reader, count func(float64)) error {
	n, err := io.Copy(dst, src)
	count(float64(n))
	return err
}

func (pc *proxyConn) directionDone() {
	if pc.pending.Add(-1) == 0 {
		pc.close()
		pc.f.connDone(pc)
	}
}

// close closes both connections. A running direction then fails and ends
// itself; a parked one has no goroutine, so it is ended here.
func (pc *proxyConn) close() {
	var wereParked int
	pc.closeOnce.Do(func() {
		for _, d := range []*direction{&pc.up, &pc.down} {
			d.mu.Lock()
			d.closed = true
			if d.parked {
				d.parked = false
				parker.forget(d)
				wereParked++
			}
			d.mu.Unlock()
		}
		pc.client.Close()
		pc.server.Close()
	})
	for range wereParked {
		pc.directionDone()
	}
}

// sweep runs on the frontend's sweeper: it closes the connection after
// idle_timeout without a byte, and asks a direction that moved nothing
// since the last park pass to park.
// It returns how many directions it asked to park.
func (pc *proxyConn) sweep(now time.Time, parkPass bool) int {
	if pc.idle > 0 && now.Sub(time.Unix(0, pc.lastActive.Load())) >= pc.idle {
		pc.close()
		return 0
	}
	if !parkPass {
		return 0
	}
	if !pc.keepAliveSet {
		pc.keepAliveSet = true
		setKeepAlive(pc.server, pc.keepAlive)
	}
	n := 0
	for _, d := range []*direction{&pc.up, &pc.down} {
		if d.askToPark() {
			n++
		}
	}
	return n
}

// aLongTimeAgo is a deadline in the past: setting it wakes a waiting read.
var aLongTimeAgo = time.Unix(1, 0)

func (d *direction) askToPark() bool {
	if d.tcpSrc == nil || d.ended.Load() || d.moved.Swap(false) {
		return false
	}
	d.mu.Lock()
	skip := d.parked || d.closed
	d.mu.Unlock()
	if skip {
		return false
	}
	d.kick.Store(true)
	d.tcpSrc.SetReadDeadline(aLongTimeAgo)
	return true
}
