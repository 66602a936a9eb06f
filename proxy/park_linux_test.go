package proxy

import (
	"context"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestIdleDirectionsParkWithoutGoroutinesAndResume(t *testing.T) {
	saved := parkEvery
	parkEvery = 50 * time.Millisecond
	t.Cleanup(func() { parkEvery = saved })

	a, b := startBackend(t, nil), startBackend(t, nil)
	fe := testFrontend(a.Addr, b.Addr)
	fe.CloseOnBackendDown = true
	h := newFakeHealth()
	r := startFrontend(t, fe, Options{Health: h})
	base := runtime.NumGoroutine()

	const n = 20
	conns := make([]*lineClient, n)
	on := map[string][]*lineClient{}
	for i := range conns {
		conns[i] = dialLine(t, r.addr)
		name, err := conns[i].ask("hello")
		if err != nil {
			t.Fatal(err)
		}
		on[name] = append(on[name], conns[i])
	}
	// Each connection keeps one goroutine in its backend (the test's line
	// server) and none in the proxy once parked.
	waitFor(t, "idle connections park", func() bool { return runtime.NumGoroutine() <= base+n })
	// A connection that lived through a park pass has keepalive towards
	// its backend.
	r.f.mu.Lock()
	var server net.Conn
	for pc := range r.f.conns {
		server = pc.server
		break
	}
	r.f.mu.Unlock()
	rc, _ := server.(*net.TCPConn).SyscallConn()
	var ka int
	rc.Control(func(fd uintptr) { ka, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
	if ka != 1 {
		t.Errorf("backend socket of a parked connection: SO_KEEPALIVE %d, want 1", ka)
	}

	for i, c := range conns {
		if _, err := c.ask("again"); err != nil {
			t.Fatalf("connection %d after parking: %v", i, err)
		}
	}
	waitFor(t, "they park again", func() bool { return runtime.NumGoroutine() <= base+n })

	// A parked connection still sees the client's FIN and ends.
	conns[0].c.(*net.TCPConn).CloseWrite()
	if !closedByPeer(conns[0].c, 5*time.Second) {
		t.Fatal("parked connection did not pass on the client's FIN")
	}
	// Parked connections of a backend that goes down are cut, and the
	// frontend counts them as ended.
	h.Set(a.Addr, false)
	for _, c := range on[a.Addr] {
		if c != conns[0] && !closedByPeer(c.c, 5*time.Second) {
			t.Fatal("parked connection to the down backend still open")
		}
	}
	want := int64(len(on[b.Addr]))
	if on[b.Addr] != nil && on[b.Addr][0] == conns[0] {
		want--
	}
	waitFor(t, "only the other backend's connections are active", func() bool { return r.f.active.Load() == want })
	for _, c := range on[b.Addr] {
		if c == conns[0] {
			continue
		}
		if _, err := c.ask("still"); err != nil {
			t.Fatalf("parked connection to the healthy backend: %v", err)
		}
	}
}

func TestAcceptedSocketsInheritTheListenersKeepalive(t *testing.T) {
	ln, err := listenTCP(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := New(testFrontend("127.0.0.1:1"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.setListenerKeepAlive(ln, 7*time.Second)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rc, _ := s.(*net.TCPConn).SyscallConn()
	var on, idle int
	rc.Control(func(fd uintptr) {
		on, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		idle, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
	})
	if on != 1 || idle != 7 {
		t.Errorf("accepted socket: SO_KEEPALIVE %d, TCP_KEEPIDLE %d; want 1, 7", on, idle)
	}
}
