package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// echoReads is a backend that answers each read (of at most 64 bytes) with
// its bytes, but a read that is exactly word with reply, and ends the
// connection when reply returns false.
func echoReads(word string, reply func(c *net.TCPConn, read []byte) (more bool)) func(*net.TCPConn, string) {
	return func(c *net.TCPConn, _ string) {
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) != word {
				c.Write(buf[:n])
			} else if !reply(c, buf[:n]) {
				return
			}
		}
	}
}

// A reply and the FIN right behind it often arrive as one readiness edge:
// the data path must still see the end after a short read and pass it on,
// or the client would wait forever.
func TestReplyFollowedAtOnceByCloseReachesTheClientWithItsEnd(t *testing.T) {
	b := startBackend(t, echoReads("bye", func(c *net.TCPConn, read []byte) bool {
		c.Write(read)
		return false // the reply, then the close at once
	}))
	r := startFrontend(t, testFrontend(b.Addr), Options{})
	for i := range 30 {
		c := dialTCP(t, r.addr, 5*time.Second)
		buf := make([]byte, 64)
		for range i % 5 { // from a single exchange to a conversation
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf[:4]); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
		if _, err := c.Write([]byte("bye")); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c) // ends only at the FIN
		c.Close()
		if err != nil || string(got) != "bye" {
			t.Fatalf("connection %d: got %q, %v; want the reply, then the end", i, got, err)
		}
	}
}

// liveConns returns the frontend's connections, read on their loops.
func liveConns(r *running) []evConn {
	var out []evConn
	loops := loopsOf(r)
	for _, l := range loops {
		l.exec(func() {
			for _, c := range l.conns {
				if c != nil {
					out = append(out, *c)
				}
			}
		})
	}
	return out
}

// Both sockets of a proxied connection have Nagle off; the client socket has
// tcp_keepalive from the start, the backend socket once the connection has
// lived keepAliveAfter.
func TestProxiedSocketsHaveTheirOptions(t *testing.T) {
	b := startBackend(t, nil)
	fe := testFrontend(b.Addr)
	fe.TCPKeepAlive = 7 * time.Second
	r := startFrontend(t, fe, Options{})
	lc := dialLine(t, r.addr)
	if _, err := lc.ask("hello"); err != nil {
		t.Fatal(err)
	}
	opt := func(fd, level, name int) int {
		v, err := syscall.GetsockoptInt(fd, level, name)
		if err != nil {
			t.Fatalf("getsockopt(%d, %d): %v", level, name, err)
		}
		return v
	}
	cs := liveConns(r)
	if len(cs) != 1 {
		t.Fatalf("%d connections, want 1", len(cs))
	}
	for _, side := range []struct {
		name string
		fd   int
	}{{"client", cs[0].cfd}, {"backend", cs[0].bfd}} {
		if v := opt(side.fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY); v != 1 {
			t.Errorf("%s socket: TCP_NODELAY %d, want 1", side.name, v)
		}
	}
	if on, idle := opt(cs[0].cfd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE), opt(cs[0].cfd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE); on != 1 || idle != 7 {
		t.Errorf("client socket: SO_KEEPALIVE %d, TCP_KEEPIDLE %d; want 1, 7", on, idle)
	}
	waitFor(t, "the backend socket gets keepalive", func() bool {
		cs := liveConns(r)
		return len(cs) == 1 && opt(cs[0].bfd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) == 1 &&
			opt(cs[0].bfd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE) == 7
	})
}

// After a bulk transfer (splice through a pipe) and an exchange of small
// messages, an idle connection holds no buffer and no pipe.
func TestIdleConnectionHoldsNoBufferOrPipe(t *testing.T) {
	const bulk = 4 << 20
	b := startBackend(t, echoReads("bulk", func(c *net.TCPConn, _ []byte) bool {
		c.Write(make([]byte, bulk))
		return true
	}))
	r := startFrontend(t, testFrontend(b.Addr), Options{})
	c := dialTCP(t, r.addr, 10*time.Second)
	if _, err := c.Write([]byte("bulk")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, bulk)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle connection lets go of its buffers", func() bool {
		cs := liveConns(r)
		if len(cs) != 1 {
			return false
		}
		for _, d := range []evDir{cs[0].up, cs[0].down} {
			if d.pipe != nil || d.pbuf != nil {
				return false
			}
		}
		return true
	})
}

// hangingBackend is a loopback listener whose accept queue is full and
// that never accepts: a connect to it gets no answer to its SYN, as from a
// host that is down.
func hangingBackend(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 2 { // a backlog of 1 holds two finished handshakes
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
		c.Close()
		t.Skip("this kernel answers a full accept queue: no way to make a connect hang on loopback")
	}
	return addr
}

// A backend that does not answer costs a client connect_timeout, then the
// connect goes to the next healthy backend; the timeout counts as that
// backend's connect error and is reported to health.
func TestConnectTimeoutMovesToTheNextBackend(t *testing.T) {
	hang := hangingBackend(t)
	good := startBackend(t, nil)
	fe := testFrontend(hang, good.Addr)
	fe.ConnectTimeout = 200 * time.Millisecond
	h := newFakeHealth()
	m, _ := newTestMetrics(t)
	r := startFrontend(t, fe, Options{Health: h, Metrics: m})
	slow := 0
	for i := range 4 { // round robin: two of them try the hanging backend first
		start := time.Now()
		lc := dialLine(t, r.addr)
		name, err := lc.ask(fmt.Sprint("req", i))
		lc.c.Close()
		if err != nil || name != good.Addr {
			t.Fatalf("connection %d: answered by %q, %v; want %s", i, name, err, good.Addr)
		}
		if took := time.Since(start); took >= fe.ConnectTimeout {
			slow++
		}
	}
	if slow == 0 {
		t.Error("no connection waited for connect_timeout: the hanging backend was never tried")
	}
	if got := testutil.ToFloat64(m.backendErrors.WithLabelValues("test", hang)); got != float64(slow) {
		t.Errorf("connect errors of the hanging backend = %v, want %d (one per slow connection)", got, slow)
	}
	if h.Faults(hang) == 0 {
		t.Error("no passive fault reported for the hanging backend")
	}
}

// A backend named by a host name is connected at its addresses in turn:
// an address that refuses costs the client nothing while another answers,
// and later connects start at the address that answered.
func TestHostNameBackendTriesItsAddressesInTurn(t *testing.T) {
	good := startBackend(t, nil)
	ap := netip.MustParseAddrPort(good.Addr)
	// 127.0.0.2 is loopback too, and nothing listens on it: refused.
	refusing := netip.MustParseAddr("127.0.0.2")
	saved := lookupIP
	lookupIP = func(_ context.Context, _, host string) ([]netip.Addr, error) {
		if host != "apiserver.test" {
			return nil, fmt.Errorf("unexpected lookup of %q", host)
		}
		return []netip.Addr{refusing, ap.Addr()}, nil
	}
	t.Cleanup(func() { lookupIP = saved })
	name := fmt.Sprintf("apiserver.test:%d", ap.Port())
	m, _ := newTestMetrics(t)
	r := startFrontend(t, testFrontend(name), Options{Metrics: m})
	b := r.f.state.Load().backends[0]
	waitFor(t, "the name is looked up", func() bool { r := b.resolved.Load(); return r != nil && len(r.addrs) == 2 })
	for i := range 5 {
		lc := dialLine(t, r.addr)
		got, err := lc.ask(fmt.Sprint("req", i))
		lc.c.Close()
		if err != nil || got != good.Addr {
			t.Fatalf("connection %d: answered by %q, %v; want %s", i, got, err, good.Addr)
		}
	}
	if got := b.preferred.Load(); got != 1 {
		t.Errorf("preferred address %d, want 1 (the one that answered)", got)
	}
	if got := testutil.ToFloat64(m.backendErrors.WithLabelValues("test", name)); got != 0 {
		t.Errorf("connect errors = %v, want 0: the backend answered at its other address", got)
	}
}

// loopsOf returns the frontend's loops.
func loopsOf(r *running) []*loop {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return r.f.loops
}

// loopYields is how often the frontend's loops have yielded, read on them.
func loopYields(r *running) int {
	loops := loopsOf(r)
	n := 0
	for _, l := range loops {
		l.exec(func() { n += l.yields })
	}
	return n
}

// A loop that waited for its events owes the other goroutines nothing: a
// yield on every wake-up wakes an idle thread to look for work, two context
// switches and a futex call per message at a light load (the co-located
// row's cost). A loop kept busy still yields.
func TestLoopYieldsOnlyWhenKeptBusy(t *testing.T) {
	b := startBackend(t, lineServer)
	r := startFrontend(t, testFrontend(b.Addr), Options{})
	lc := dialLine(t, r.addr)
	before := loopYields(r)
	for i := range 40 {
		time.Sleep(2 * yieldEvery) // the loop parks between messages
		if _, err := lc.ask(fmt.Sprint("ping ", i)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if got := loopYields(r) - before; got > 2 {
		t.Errorf("loops yielded %d times over 40 messages each after a wait; want none (at most 2 for stray timing)", got)
	}

	// A task that keeps its loop busy past yieldEvery with a wake-up
	// already pending: the next batch comes without a wait and yields.
	r.f.mu.Lock()
	l := r.f.loops[0]
	r.f.mu.Unlock()
	before = loopYields(r)
	l.exec(func() {
		var one = [8]byte{1}
		syscall.Write(l.wakefd, one[:])
		time.Sleep(2 * yieldEvery)
	})
	l.exec(func() {}) // after the batch that followed
	if got := loopYields(r) - before; got < 1 {
		t.Errorf("a loop busy for %v did not yield", 2*yieldEvery)
	}
}

// An idle daemon's loops sleep until a client comes: a loop without
// connections has no tick to wake for (before, every loop woke four times a
// second for a sweep of nothing). With a connection the sweep runs again.
func TestLoopWithoutConnectionsWaitsWithoutDeadline(t *testing.T) {
	b := startBackend(t, lineServer)
	r := startFrontend(t, testFrontend(b.Addr), Options{})
	loops := loopsOf(r)
	due := func() (n int) {
		for _, l := range loops {
			l.exec(func() {
				if l.nextDue() != never {
					n++
				}
			})
		}
		return n
	}
	if n := due(); n != 0 {
		t.Fatalf("%d of %d loops without connections have a deadline; want none", n, len(loops))
	}
	lc := dialLine(t, r.addr)
	if _, err := lc.ask("hello"); err != nil {
		t.Fatal(err)
	}
	if n := due(); n != 1 {
		t.Errorf("%d loops have a deadline with one connection; want 1 (the loop that holds it sweeps)", n)
	}
	lc.c.Close()
	waitFor(t, "the connection's close", func() bool { return due() == 0 })
}

// startMultiLoop starts a frontend before a line server and returns it and
// its loops; it skips the test with a single loop (GOMAXPROCS 1).
func startMultiLoop(t *testing.T) (*running, []*loop) {
	t.Helper()
	b := startBackend(t, lineServer)
	r := startFrontend(t, testFrontend(b.Addr), Options{})
	loops := loopsOf(r)
	if len(loops) < 2 {
		t.Skipf("one loop (GOMAXPROCS %d): nothing to spread", len(loops))
	}
	return r, loops
}

// A burst of clients is spread over the loops: the loop that accepts them
// would otherwise keep them all (one loop served all 100 connections of
// wrk -c100, on one core).
func TestBurstOfClientsIsSpreadOverTheLoops(t *testing.T) {
	r, loops := startMultiLoop(t)
	const clients = 64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			c, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { c.Close() })
			lc := &lineClient{c: c, r: bufio.NewReader(c)}
			if _, err := lc.ask("hello"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	most := 0
	for _, l := range loops {
		l.exec(func() { most = max(most, l.live) })
	}
	if fair := clients/len(loops) + acceptSlack + 1; most > fair {
		t.Errorf("a loop holds %d of %d connections over %d loops; want at most %d", most, clients, len(loops), fair)
	}
}

// At a light load a new client wakes one loop, the one that accepts: with
// the listening socket in every loop's epoll set, every loop woke for every
// client, and all but one found nothing to accept (two futex calls and more
// context switches per connection).
func TestNewClientWakesOneLoop(t *testing.T) {
	r, loops := startMultiLoop(t)
	woke := func() []int {
		var n []int
		for _, l := range loops {
			l.exec(func() { n = append(n, l.wakes) })
		}
		return n
	}
	before := woke()
	const clients = 20
	for i := range clients {
		lc := dialLine(t, r.addr)
		if _, err := lc.ask(fmt.Sprint("client ", i)); err != nil {
			t.Fatal(err)
		}
		lc.c.Close()
	}
	after := woke()
	idle := 0 // loops that woke for (almost) no client
	for i := range loops {
		// A loop also wakes for the exec that reads its count.
		if after[i]-before[i] < clients/2 {
			idle++
		}
	}
	if idle != len(loops)-1 {
		t.Errorf("wake-ups per loop over %d clients one at a time: before %v, after %v; want all but one loop near none", clients, before, after)
	}
}
