package vrrp

import (
	"context"
	"net/netip"
)

// PacketInfo is what the IP layer tells about a received VRRP message: what the
// receive path needs to validate it (RFC 5798 §7.1).
type PacketInfo struct {
	Src netip.Addr
	Dst netip.Addr
	// HopLimit is the IPv4 TTL or IPv6 hop limit the packet arrived with.
	HopLimit int
	// IfIndex is the interface the packet arrived on.
	IfIndex int
}

// Transport sends and receives VRRP messages (protocol 112) on one interface.
// Messages carry no IP header: the transport adds it with TTL/hop limit 255.
type Transport interface {
	// Send writes one VRRP message to dst: the VRRP multicast group or a unicast peer.
	Send(msg []byte, dst netip.Addr) error
	// Receive blocks until a message arrives, copies it into buf and reports
	// its length and IP facts. It returns an error once Close is called.
	Receive(buf []byte) (n int, info PacketInfo, err error)
	// LocalAddr is the source address adverts leave from (needed for the v3
	// pseudo-header checksum and the tie-break on primary address).
	LocalAddr() netip.Addr
	Close() error
}

// AddrManager adds and removes virtual IPs on the instance's interface.
// Add and Remove are idempotent: adding a present address or removing an
// absent one is not an error.
type AddrManager interface {
	Add(p netip.Prefix) error
	Remove(p netip.Prefix) error
	// Has reports whether p is configured on the interface now.
	Has(p netip.Prefix) (bool, error)
}

// ConnResetter ends the TCP connections on an address this host is giving
// up, before it is removed (while the kernel can still send from it): each
// peer gets an RST it acts on at once, and the socket's owner (the proxy)
// an error that makes it close the other side.
type ConnResetter interface {
	// Reset ends the connections whose local address is addr and returns
	// how many it ended.
	Reset(addr netip.Addr) (int, error)
}

// Announcer tells the segment that this host now answers for addrs:
// a gratuitous ARP for IPv4, an unsolicited neighbour advertisement for IPv6.
type Announcer interface {
	Announce(addrs []netip.Addr) error
}

// Tracker watches one condition an instance depends on (a track_script,
// track_interface or track_frontend). Run calls report with the condition's
// state at start and on every change, and returns when ctx ends. Weights are
// applied by the instance, not the tracker.
type Tracker interface {
	Name() string
	Run(ctx context.Context, report func(ok bool)) error
}
