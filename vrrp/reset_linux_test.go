package vrrp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// SockDiagResetter ends the connections on the address it is given, IPv4
// ones on a dual-stack listener included, with an RST the client sees at
// once, and leaves those on the host's other addresses alone.
func TestSockDiagResetterResetsTheConnectionsOnAnAddressOnly(t *testing.T) {
	l := newTestLink(t)
	for _, tc := range []struct {
		name      string
		vip, own  netip.Prefix
		addrFlags []string
	}{
		{"IPv4 on a dual-stack listener", netip.MustParsePrefix("10.231.0.100/24"), l.A4, nil},
		{"IPv6", netip.MustParsePrefix("fd00:231::100/64"), l.A6, []string{"nodad"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addVIP(t, l, tc.vip, tc.addrFlags...)
			port := echoServer(t, l.NSA)
			onVIP := dialIn(t, l.NSB, netip.AddrPortFrom(tc.vip.Addr(), port))
			onOwn := dialIn(t, l.NSB, netip.AddrPortFrom(tc.own.Addr(), port))
			echo := func(c net.Conn) error {
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err := c.Write([]byte("x")); err != nil {
					return err
				}
				_, err := c.Read(make([]byte, 1))
				return err
			}
			for _, c := range []net.Conn{onVIP, onOwn} {
				if err := echo(c); err != nil {
					t.Fatalf("echo before the reset: %v", err)
				}
			}

			var n int
			var err error
			inNetns(t, l.NSA, func() { n, err = SockDiagResetter{}.Reset(tc.vip.Addr()) })
			if err != nil || n != 1 {
				t.Fatalf("Reset(%v) = %d, %v; want the one connection on it", tc.vip.Addr(), n, err)
			}
			_ = onVIP.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := onVIP.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the client on the VIP read %v, want ECONNRESET at once", err)
			}
			if err := echo(onOwn); err != nil {
				t.Errorf("the connection on the host's own address broke: %v", err)
			}
		})
	}
}

// addVIP adds vip to l's end A until the test ends.
func addVIP(t *testing.T, l *testLink, vip netip.Prefix, flags ...string) {
	t.Helper()
	run(t, append([]string{"ip", "-n", l.NSA, "addr", "add", vip.String(), "dev", l.IfA}, flags...)...)
	t.Cleanup(func() { _ = exec.Command("ip", "-n", l.NSA, "addr", "del", vip.String(), "dev", l.IfA).Run() })
}

// echoServer listens in namespace ns on a dual-stack port, echoing what
// each connection sends, until the test ends; it returns the port.
func echoServer(t *testing.T, ns string) uint16 {
	t.Helper()
	var ln net.Listener
	inNetns(t, ns, func() {
		var err error
		if ln, err = net.Listen("tcp", "[::]:0"); err != nil {
			t.Errorf("listen: %v", err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	t.Cleanup(func() { ln.Close() })
	go serveEcho(ln)
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// serveEcho echoes on each connection ln accepts, until ln is closed.
func serveEcho(ln net.Listener) {
	for c, err := ln.Accept(); err == nil; c, err = ln.Accept() {
		go func() { _, _ = io.Copy(c, c); c.Close() }()
	}
}

// dialIn connects from namespace ns to addr; the connection is closed when
// the test ends.
func dialIn(t *testing.T, ns string, addr netip.AddrPort) net.Conn {
	t.Helper()
	var c net.Conn
	inNetns(t, ns, func() {
		var err error
		if c, err = net.DialTimeout("tcp", addr.String(), 2*time.Second); err != nil {
			t.Errorf("dial %v: %v", addr, err)
		}
	})
	if c == nil {
		t.FailNow()
	}
	t.Cleanup(func() { c.Close() })
	return c
}
