package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/metricstest"
	"github.com/vrrplb/vrrplb/internal/poll"
)

// fakeHealth is a Health whose verdicts the test sets.
type fakeHealth struct {
	mu     sync.Mutex
	down   map[string]bool
	faults map[string]int
	subs   map[int]func(string, bool)
	nextID int
}

// newFakeHealth says every backend is healthy but those down.
func newFakeHealth(down ...string) *fakeHealth {
	h := &fakeHealth{down: map[string]bool{}, faults: map[string]int{}, subs: map[int]func(string, bool){}}
	for _, b := range down {
		h.down[b] = true
	}
	return h
}

func (h *fakeHealth) Healthy(b string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.down[b]
}

func (h *fakeHealth) ReportFault(b string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults[b]++
}

func (h *fakeHealth) Faults(b string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.faults[b]
}

func (h *fakeHealth) Subscribe(fn func(string, bool)) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.nextID
	h.nextID++
	h.subs[id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, id)
	}
}

func (h *fakeHealth) Set(b string, healthy bool) {
	h.mu.Lock()
	h.down[b] = !healthy
	var fns []func(string, bool)
	for _, fn := range h.subs {
		fns = append(fns, fn)
	}
	h.mu.Unlock()
	for _, fn := range fns {
		fn(b, healthy)
	}
}

// testBackend is a loopback server; Kill closes its listener and every
// connection it accepted.
type testBackend struct {
	Addr string
	ln   net.Listener
	mu   sync.Mutex
	conn map[net.Conn]bool
	wg   sync.WaitGroup
}

// startBackend serves handle on 127.0.0.1; nil handle is lineServer.
func startBackend(t *testing.T, handle func(c *net.TCPConn, name string)) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if handle == nil {
		handle = lineServer
	}
	b := &testBackend{Addr: ln.Addr().String(), ln: ln, conn: map[net.Conn]bool{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conn[c] = true
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				handle(c.(*net.TCPConn), b.Addr)
				c.Close()
				b.mu.Lock()
				delete(b.conn, c)
				b.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(b.Kill)
	return b
}

func (b *testBackend) Kill() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conn {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// lineServer answers every line with "name line".
func lineServer(c *net.TCPConn, name string) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "%s %s", name, line); err != nil {
			return
		}
	}
}

// echoServer copies everything back and half-closes at EOF.
func echoServer(c *net.TCPConn, _ string) {
	io.Copy(c, c)
	c.CloseWrite()
}

func testFrontend(backends ...string) config.Frontend {
	return config.Frontend{
		Name:           "test",
		Listen:         "127.0.0.1:0",
		Balance:        config.RoundRobin,
		Backends:       backends,
		ConnectTimeout: time.Second,
		Retries:        2,
		TCPKeepAlive:   30 * time.Second,
		DrainTimeout:   5 * time.Second,
		Health:         config.Health{Type: config.CheckTCP},
	}
}

type running struct {
	f      *Frontend
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startFrontend(t *testing.T, fe config.Frontend, opts Options) *running {
	t.Helper()
	f, err := New(fe, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{f: f, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- f.Run(ctx) }()
	waitFor(t, "the frontend listens", func() bool { return f.Addr() != nil })
	r.addr = f.Addr().String()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
			r.done <- err
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of cancel")
		}
	})
	return r
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

// lineClient is a client connection to a line-server backend.
type lineClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string) *lineClient {
	t.Helper()
	c := dialTCP(t, addr, 0)
	return &lineClient{c: c, r: bufio.NewReader(c)}
}

// dialTCP connects to addr, with a deadline d from now unless d is 0, and
// closes the connection at cleanup.
func dialTCP(t *testing.T, addr string, d time.Duration) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if d != 0 {
		c.SetDeadline(time.Now().Add(d))
	}
	return c.(*net.TCPConn)
}

// ask sends a line and returns the name of the backend that answered.
func (lc *lineClient) ask(msg string) (string, error) {
	lc.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(lc.c, "%s\n", msg); err != nil {
		return "", err
	}
	line, err := lc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	name, got, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	if got != msg {
		return "", fmt.Errorf("answer %q to %q", got, msg)
	}
	return name, nil
}

// oneToEach dials addr until it holds a connection to each of n backends,
// and returns them by the name of their backend.
func oneToEach(t *testing.T, addr string, n int) map[string]*lineClient {
	t.Helper()
	on := map[string]*lineClient{}
	for len(on) < n {
		c := dialLine(t, addr)
		name, err := c.ask("hi")
		if err != nil {
			t.Fatal(err)
		}
		on[name] = c
	}
	return on
}

// closedByPeer reports whether the proxy closed c: a read ends in EOF or reset.
func closedByPeer(c net.Conn, within time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(within))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	return metricstest.New(t, NewMetrics)
}

// startChildTest runs the test named name of this binary in a child process
// with env added to its environment, its stderr on ours; the test kills it
// at cleanup. The child reads commands on stdin and prints on stdout.
func startChildTest(t *testing.T, name, env string) (cmd *exec.Cmd, stdin io.WriteCloser, stdout io.ReadCloser) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v")
	cmd.Env = append(os.Environ(), env)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err = cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, stdin, stdout
}
