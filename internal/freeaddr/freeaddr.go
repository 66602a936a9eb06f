// Package freeaddr finds a free TCP port on 127.0.0.1 for a test's
// listener: one the kernel handed out a moment ago and nobody holds now. It
// is for tests: the daemon does not use it.
package freeaddr

import (
	"net"
	"net/netip"
	"testing"
)

// Loopback is 127.0.0.1 with a TCP port that was free a moment ago.
func Loopback(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}
