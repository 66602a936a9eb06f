package bgp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
)

// loopbackName is where announced prefixes live: a local address on lo is
// answered by the proxy and never claimed on a link by ARP or ND replies of
// other hosts' routers.
const loopbackName = "lo"

// loopback keeps announced prefixes on the loopback interface by netlink.
type loopback struct{}

func (loopback) link() (netlink.Link, error) {
	l, err := netlink.LinkByName(loopbackName)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", loopbackName, err)
	}
	return l, nil
}

func addrOf(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{
		IP:   net.IP(p.Addr().AsSlice()),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
}

// Add puts p on lo; an address already there is kept as it is.
func (lo loopback) Add(p netip.Prefix) error {
	l, err := lo.link()
	if err != nil {
		return err
	}
	if err := netlink.AddrReplace(l, addrOf(p)); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("%v on %s: %w (needs CAP_NET_ADMIN)", p, loopbackName, err)
		}
		return fmt.Errorf("%v on %s: %w", p, loopbackName, err)
	}
	return nil
}

// Remove takes p off lo; an address already gone is not an error.
func (lo loopback) Remove(p netip.Prefix) error {
	l, err := lo.link()
	if err != nil {
		return err
	}
	if err := netlink.AddrDel(l, addrOf(p)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("%v on %s: %w", p, loopbackName, err)
	}
	return nil
}
