//go:build !linux

package bgp

import (
	"errors"
	"net/netip"
)

// loopback needs Linux's netlink; elsewhere announcing fails at start.
type loopback struct{}

var errNotLinux = errors.New("keeping announced prefixes on the loopback interface needs Linux")

func (loopback) Add(netip.Prefix) error    { return errNotLinux }
func (loopback) Remove(netip.Prefix) error { return errNotLinux }
