package vrrp

import (
	"errors"
	"io"
	"net"
	"net/netip"
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
			run(t, append([]string{"ip", "-n", l.NSA, "addr", "add", tc.vip.String(), "dev", l.IfA}, tc.addrFlags...)...)
			defer run(t, "ip", "-n", l.NSA, "addr", "del", tc.vip.String(), "dev", l.IfA)
			var ln net.Listener
			inNetns(t, l.NSA, func() {
				var err error
				ln, err = net.Listen("tcp", "[::]:0")
				if err != nil {
					t.Errorf("listen: %v", err)
				}
			})
			if ln == nil {
				t.FailNow()
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { _, _ = io.Copy(c, c); c.Close() }()
				}
			}()
			port := uint16(ln.Addr().(*net.TCPAddr).Port)
			var onVIP, onOwn net.Conn
			inNetns(t, l.NSB, func() {
				var err error
				if onVIP, err = net.DialTimeout("tcp", netip.AddrPortFrom(tc.vip.Addr(), port).String(), 2*time.Second); err != nil {
					t.Errorf("dial the VIP: %v", err)
				}
				if onOwn, err = net.DialTimeout("tcp", netip.AddrPortFrom(tc.own.Addr(), port).String(), 2*time.Second); err != nil {
					t.Errorf("dial the host's own address: %v", err)
				}
			})
			if onVIP == nil || onOwn == nil {
				t.FailNow()
			}
			defer onVIP.Close()
			defer onOwn.Close()
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
