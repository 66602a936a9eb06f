package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetlinkAddrs is the Linux AddrManager: it adds and removes the virtual IPs
// on one interface through rtnetlink. It touches only the addresses it is
// given; IPv6 addresses are added with IFA_F_NODAD so they are usable at once.
//
// The interface is looked up by name on every call, so an interface that is
// deleted and created again is followed.
type NetlinkAddrs struct {
	ifname string
	h      *netlink.Handle
}

// NewAddrManager returns the address manager of interface ifname in the
// current network namespace. The interface need not exist yet.
func NewAddrManager(ifname string) (*NetlinkAddrs, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle for %s: %w", ifname, permHint(err))
	}
	m := &NetlinkAddrs{ifname: ifname, h: h}
	// The instance has no Close for its address manager: the netlink socket
	// goes with the manager.
	runtime.AddCleanup(m, func(h *netlink.Handle) { h.Close() }, h)
	return m, nil
}

func (m *NetlinkAddrs) link() (netlink.Link, error) {
	l, err := m.h.LinkByName(m.ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", m.ifname, err)
	}
	return l, nil
}

func toNetlinkAddr(p netip.Prefix) *netlink.Addr {
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// Add puts p on the interface; p already there is not an error.
func (m *NetlinkAddrs) Add(p netip.Prefix) error {
	l, err := m.link()
	if err != nil {
		return fmt.Errorf("add %s: %w", p, err)
	}
	if err := m.h.AddrAdd(l, toNetlinkAddr(p)); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add %s to %s: %w", p, m.ifname, permHint(err))
	}
	return nil
}

// Remove takes p off the interface; p not there is not an error.
func (m *NetlinkAddrs) Remove(p netip.Prefix) error {
	l, err := m.link()
	if err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	if err := m.h.AddrDel(l, toNetlinkAddr(p)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("remove %s from %s: %w", p, m.ifname, permHint(err))
	}
	return nil
}

// Has reports whether the interface has p now (same address and prefix length).
func (m *NetlinkAddrs) Has(p netip.Prefix) (bool, error) {
	l, err := m.link()
	if err != nil {
		return false, err
	}
	family := netlink.FAMILY_V4
	if p.Addr().Unmap().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := m.h.AddrList(l, family)
	if err != nil {
		return false, fmt.Errorf("addresses of %s: %w", m.ifname, err)
	}
	want := netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		bits, _ := a.Mask.Size()
		if netip.PrefixFrom(ip.Unmap(), bits) == want {
			return true, nil
		}
	}
	return false, nil
}
