package vrrp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vrrplb/vrrplb/config"
)

// trafficClass marks adverts as network control (DSCP CS6, the IPv4 TOS
// byte 0xc0), as routers and keepalived do, so that queues under load drop
// them last (RFC 4594 §3.2).
const trafficClass = 0xc0

// maxPacket is the size of the receive buffer: the largest IP datagram.
const maxPacket = 65535

// ErrTransportClosed is returned by Receive and Send after Close.
var ErrTransportClosed = errors.New("vrrp transport closed")

// TransportOptions are the optional parts of a RawTransport.
type TransportOptions struct {
	// Logger receives the transport's reopen and error lines; nil discards them.
	Logger *slog.Logger
	// VirtualIPs are never chosen as the source address.
	VirtualIPs []netip.Prefix
}

// RawTransport is the Linux Transport: a raw IP socket of protocol 112 bound
// to one interface (SO_BINDTODEVICE), member of the VRRP group on it when
// multicast, sending with TTL / hop limit 255 from one source address.
//
// It follows its interface: a goroutine watches netlink link and address
// updates. When the interface is deleted and created again (a new ifindex),
// it opens new sockets on it (joining the group again) and closes the old
// ones; Receive moves to the new socket by itself, so the instance only sees
// Send errors while the interface is missing. When no source address was
// configured and the interface's primary address changes, LocalAddr follows
// it (the instance reads LocalAddr for its checksums and tie-breaks). An
// interface that does not exist when NewTransport is called is an error.
//
// Receive is meant for one goroutine; Send may be called from any goroutine.
type RawTransport struct {
	ifname    string
	family    config.Family
	multicast bool
	follow    bool         // no configured source: follow the primary address
	vips      []netip.Addr // never the source
	log       *slog.Logger

	cur    atomic.Pointer[rawConn]
	src    atomic.Pointer[netip.Addr]
	closed atomic.Bool

	recvMu sync.Mutex // one Receive at a time: the receive state lives in rawConn

	reopenMu sync.Mutex // serialises reopen and Close
	stop     chan struct{}
	done     chan struct{}
}

// NewTransport opens the VRRP socket for family on interface ifname. source
// is the advert source; the zero Addr picks the interface's primary address of
// the family (for IPv6 its link-local address, RFC 5798 §5.1.2.1). With no
// unicastPeers the socket joins the VRRP multicast group on the interface.
//
// It needs CAP_NET_RAW (raw socket) and CAP_NET_ADMIN (SO_BINDTODEVICE); the
// error says so when they are missing.
func NewTransport(ifname string, family config.Family, source netip.Addr, unicastPeers []netip.Addr, opts TransportOptions) (*RawTransport, error) {
	if family != config.IPv4 && family != config.IPv6 {
		return nil, fmt.Errorf("vrrp transport on %s: unknown address family %d", ifname, family)
	}
	if source.IsValid() && config.FamilyOf(source) != family {
		return nil, fmt.Errorf("vrrp transport on %s: source %s is not %s", ifname, source, family)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &RawTransport{
		ifname:    ifname,
		family:    family,
		multicast: len(unicastPeers) == 0,
		follow:    !source.IsValid(),
		log:       log.With("interface", ifname, "family", family.String()),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	for _, p := range opts.VirtualIPs {
		t.vips = append(t.vips, p.Addr().Unmap())
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrp transport: interface %s: %w", ifname, err)
	}
	src := source.Unmap()
	if !src.IsValid() {
		if src, err = t.primaryAddr(ifi); err != nil {
			return nil, fmt.Errorf("vrrp transport: %w", err)
		}
	}
	t.src.Store(&src)
	c, err := t.open(ifi)
	if err != nil {
		return nil, err
	}
	t.cur.Store(c)

	// The watcher must subscribe and reopen in the network namespace the
	// transport was created in, whatever thread it runs on later.
	ns, err := netns.Get()
	if err != nil {
		_ = c.close()
		return nil, fmt.Errorf("vrrp transport on %s: current network namespace: %w", ifname, err)
	}
	w := &watcher{
		links:     make(chan netlink.LinkUpdate, 16),
		linksDone: make(chan struct{}),
		addrs:     make(chan netlink.AddrUpdate, 16),
		addrsDone: make(chan struct{}),
	}
	if err := netlink.LinkSubscribeWithOptions(w.links, w.linksDone, netlink.LinkSubscribeOptions{}); err != nil {
		_ = ns.Close()
		_ = c.close()
		return nil, fmt.Errorf("vrrp transport on %s: subscribe to link updates: %w", ifname, permHint(err))
	}
	if err := netlink.AddrSubscribeWithOptions(w.addrs, w.addrsDone, netlink.AddrSubscribeOptions{}); err != nil {
		w.stop()
		_ = ns.Close()
		_ = c.close()
		return nil, fmt.Errorf("vrrp transport on %s: subscribe to address updates: %w", ifname, permHint(err))
	}
	go t.watch(ns, w)
	return t, nil
}

// permHint adds what the daemon needs to a permission error.
func permHint(err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w (vrrplb needs CAP_NET_RAW and CAP_NET_ADMIN)", err)
	}
	return err
}

// LocalAddr is the source address of the adverts.
func (t *RawTransport) LocalAddr() netip.Addr {
	return *t.src.Load()
}

// Send writes msg to dst (the VRRP group or a unicast peer) with TTL / hop
// limit 255 from the source address, out of the transport's interface.
func (t *RawTransport) Send(msg []byte, dst netip.Addr) error {
	if t.closed.Load() {
		return ErrTransportClosed
	}
	c := t.cur.Load()
	if err := c.send(msg, *t.src.Load(), dst.Unmap()); err != nil {
		if t.closed.Load() {
			return ErrTransportClosed
		}
		return fmt.Errorf("vrrp send to %s on %s: %w", dst, t.ifname, err)
	}
	return nil
}

// Receive blocks until a VRRP message arrives on the interface and copies it
// into buf (truncated if buf is shorter). It does not allocate in steady state.
func (t *RawTransport) Receive(buf []byte) (int, PacketInfo, error) {
	t.recvMu.Lock()
	defer t.recvMu.Unlock()
	for {
		if t.closed.Load() {
			return 0, PacketInfo{}, ErrTransportClosed
		}
		c := t.cur.Load()
		n, info, ok, err := c.receive(buf)
		if err != nil {
			if t.closed.Load() {
				return 0, PacketInfo{}, ErrTransportClosed
			}
			if t.cur.Load() != c {
				continue // reopened under us: read from the new socket
			}
			return 0, PacketInfo{}, fmt.Errorf("vrrp receive on %s: %w", t.ifname, err)
		}
		if !ok {
			continue // not for us (another interface, malformed header)
		}
		return n, info, nil
	}
}

// Close closes the socket and stops following the interface. Receive and
// Send return ErrTransportClosed afterwards.
func (t *RawTransport) Close() error {
	t.reopenMu.Lock()
	if t.closed.Swap(true) {
		t.reopenMu.Unlock()
		return nil
	}
	err := t.cur.Load().close()
	t.reopenMu.Unlock()
	close(t.stop)
	<-t.done
	return err
}
