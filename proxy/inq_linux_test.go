package proxy

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// A reply and the FIN right behind it often arrive as one readiness edge:
// the data path must still see the end and pass it on, or the client would
// wait forever. After a few exchanges TCP_INQ is on (the data path then
// waits without reading to EAGAIN) and must report the FIN as left to read.
func TestReplyFollowedAtOnceByCloseReachesTheClientWithItsEnd(t *testing.T) {
	// No park pass: parking would rescue a direction stuck waiting.
	saved := parkEvery
	parkEvery = time.Hour
	t.Cleanup(func() { parkEvery = saved })
	b := startBackend(t, func(c *net.TCPConn, _ string) {
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			c.Write(buf[:n])
			if string(buf[:n]) == "bye" {
				return // the reply, then the close at once
			}
		}
	})
	r := startFrontend(t, testFrontend(b.Addr), Options{})
	for i := range 30 {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
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

func TestConversationsTurnOnReportsOfWhatIsLeftToRead(t *testing.T) {
	b := startBackend(t, nil)
	r := startFrontend(t, testFrontend(b.Addr), Options{})
	lc := dialLine(t, r.addr)
	// A single exchange leaves it off; a conversation turns it on.
	for range 4 {
		if _, err := lc.ask("hello"); err != nil {
			t.Fatal(err)
		}
	}
	r.f.mu.Lock()
	var pcs []*proxyConn
	for pc := range r.f.conns {
		pcs = append(pcs, pc)
	}
	r.f.mu.Unlock()
	if len(pcs) != 1 {
		t.Fatalf("%d proxied connections, want 1", len(pcs))
	}
	for _, side := range []struct {
		name string
		c    net.Conn
	}{{"client", pcs[0].client}, {"backend", pcs[0].server}} {
		rc, err := side.c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var on int
		var gerr error
		rc.Control(func(fd uintptr) { on, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_TCP, tcpInq) })
		if gerr != nil {
			t.Skipf("kernel without TCP_INQ: %v", gerr)
		}
		if on != 1 {
			t.Errorf("%s socket: TCP_INQ %d, want 1", side.name, on)
		}
	}
}
