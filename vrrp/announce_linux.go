package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// allNodes is the IPv6 all-nodes group unsolicited neighbour advertisements
// go to (RFC 4861 §7.2.6).
var allNodes = netip.MustParseAddr("ff02::1")

// LinkAnnouncer is the Linux Announcer: for each IPv4 address a gratuitous
// ARP request (sender and target address both the VIP, RFC 5227 §3), for
// each IPv6 address an unsolicited neighbour advertisement with the override
// flag (RFC 4861 §7.2.6), both from the interface's MAC address.
//
// Sockets are opened for each Announce, in the caller's network namespace, so
// an interface that was recreated since the last call is found again.
type LinkAnnouncer struct {
	ifname string
}

// NewAnnouncer returns the announcer of interface ifname.
func NewAnnouncer(ifname string) *LinkAnnouncer {
	return &LinkAnnouncer{ifname: ifname}
}

// Announce sends one gratuitous ARP or unsolicited NA per address. The
// instance repeats it garp_repeat times.
func (a *LinkAnnouncer) Announce(addrs []netip.Addr) error {
	ifi, err := net.InterfaceByName(a.ifname)
	if err != nil {
		return fmt.Errorf("announce on %s: %w", a.ifname, err)
	}
	var v4, v6 []netip.Addr
	for _, ip := range addrs {
		if ip = ip.Unmap(); ip.Is4() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	var errs []error
	if len(v4) > 0 {
		errs = append(errs, gratuitousARP(ifi, v4))
	}
	if len(v6) > 0 {
		errs = append(errs, unsolicitedNA(ifi, v6))
	}
	return errors.Join(errs...)
}

func gratuitousARP(ifi *net.Interface, addrs []netip.Addr) error {
	c, err := arp.Dial(ifi)
	if err != nil {
		return fmt.Errorf("gratuitous ARP on %s: %w", ifi.Name, permHint(err))
	}
	defer c.Close()
	zero := make(net.HardwareAddr, len(ifi.HardwareAddr))
	var errs []error
	for _, ip := range addrs {
		p, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, ip, zero, ip)
		if err == nil {
			err = c.WriteTo(p, ethernet.Broadcast)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("gratuitous ARP for %s on %s: %w", ip, ifi.Name, permHint(err)))
		}
	}
	return errors.Join(errs...)
}

// unsolicitedNA sends the advertisements from the interface's link-local
// address. ndp marshals them; the socket is ours, so that the interface is
// named by index (ndp.Listen names it by zone, and Go resolves zone names
// through a cache that is stale for a minute after an interface is recreated).
func unsolicitedNA(ifi *net.Interface, addrs []netip.Addr) error {
	src, err := linkLocalOf(ifi)
	if err != nil {
		return fmt.Errorf("neighbour advertisement on %s: %w", ifi.Name, err)
	}
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return fmt.Errorf("neighbour advertisement on %s: %w", ifi.Name, permHint(err))
	}
	defer c.Close()
	pc := c.IPv6PacketConn()
	// RFC 4861 §7.1.2: hop limit 255; the kernel fills in the checksum.
	if err := pc.SetMulticastHopLimit(ndp.HopLimit); err != nil {
		return fmt.Errorf("neighbour advertisement on %s: hop limit: %w", ifi.Name, err)
	}
	if err := pc.SetChecksum(true, 2); err != nil {
		return fmt.Errorf("neighbour advertisement on %s: checksum: %w", ifi.Name, err)
	}
	cm := &ipv6.ControlMessage{HopLimit: ndp.HopLimit, Src: src.AsSlice(), IfIndex: ifi.Index}
	var errs []error
	for _, ip := range addrs {
		b, err := ndp.MarshalMessage(&ndp.NeighborAdvertisement{
			Override:      true,
			TargetAddress: ip,
			Options: []ndp.Option{&ndp.LinkLayerAddress{
				Direction: ndp.Target,
				Addr:      ifi.HardwareAddr,
			}},
		})
		if err == nil {
			_, err = pc.WriteTo(b, cm, &net.IPAddr{IP: allNodes.AsSlice()})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("neighbour advertisement for %s on %s: %w", ip, ifi.Name, permHint(err)))
		}
	}
	return errors.Join(errs...)
}

// linkLocalOf is the interface's IPv6 link-local address.
func linkLocalOf(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, errors.New("no IPv6 link-local address to send from")
}
