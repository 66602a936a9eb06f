package proxy

import (
	"io"
	"net"
	"testing"
	"time"
)

// Clients that do not read a bulk reply stall their connections with the
// proxy's buffers full. Past the process's pipe cap such a direction copies
// through its buffer instead of holding a pipe (measured before the cap:
// 200 such clients held 323 pipe descriptors), and every byte still arrives
// once the clients read.
func TestSlowReadersBeyondThePipeCapHoldNoMorePipesAndStillGetTheirData(t *testing.T) {
	const (
		cap     = 4
		clients = 3 * cap
		reply   = 8 << 20
	)
	defer setMaxPipes(cap)()
	closeIdlePipes()
	base := openFDs(t, "pipe:")

	be := startBackend(t, func(c *net.TCPConn, _ string) {
		c.Write(make([]byte, reply))
	})
	r := startFrontend(t, testFrontend(be.Addr), Options{})
	var conns []net.Conn
	for range clients {
		conns = append(conns, dialTCP(t, r.addr, 0))
	}
	waitFor(t, "every connection is stalled on its client", func() bool {
		return countConns(r, func(c *evConn) bool { return c.down.holding() && !c.down.writable }) == clients
	})
	if got := openFDs(t, "pipe:") - base; got > 2*cap {
		t.Errorf("%d clients that do not read hold %d pipe descriptors, want at most %d (%d pipes)", clients, got, 2*cap, cap)
	}
	if n := pipesInUse(); n > cap {
		t.Errorf("%d pipes in use, want at most %d", n, cap)
	}

	done := make(chan error, clients)
	for _, c := range conns {
		go func() {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, err := io.Copy(io.Discard, c)
			if err == nil && n != reply {
				err = io.ErrUnexpectedEOF
			}
			done <- err
		}()
	}
	for range clients {
		if err := <-done; err != nil {
			t.Errorf("a slow reader's reply: %v", err)
		}
	}
}

// countConns counts the frontend's connections that match, on their loops
// (a pipe's fill changes on the loop).
func countConns(r *running, match func(*evConn) bool) int {
	r.f.mu.Lock()
	loops := r.f.loops
	r.f.mu.Unlock()
	n := 0
	for _, l := range loops {
		l.exec(func() {
			for _, c := range l.conns {
				if c != nil && match(c) {
					n++
				}
			}
		})
	}
	return n
}

// setMaxPipes sets the pipe cap for a test and returns what restores it.
func setMaxPipes(n int) (restore func()) {
	pipesMu.Lock()
	old := maxPipes
	maxPipes = n
	pipesMu.Unlock()
	return func() {
		pipesMu.Lock()
		maxPipes = old
		pipesMu.Unlock()
	}
}
