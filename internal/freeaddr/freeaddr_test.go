package freeaddr

import (
	"net"
	"testing"
)

func TestLoopbackCanBeListenedOn(t *testing.T) {
	a := Loopback(t)
	if !a.Addr().IsLoopback() || a.Port() == 0 {
		t.Fatalf("Loopback = %v, want a port on a loopback address", a)
	}
	ln, err := net.Listen("tcp", a.String())
	if err != nil {
		t.Fatalf("listen on %v: %v", a, err)
	}
	ln.Close()
}
