package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

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

// watcher holds the netlink subscriptions of a transport.
type watcher struct {
	links     chan netlink.LinkUpdate
	linksDone chan struct{}
	addrs     chan netlink.AddrUpdate
	addrsDone chan struct{}
}

// stop ends both subscriptions and waits for their goroutines.
func (w *watcher) stop() {
	close(w.linksDone)
	close(w.addrsDone)
	for range w.links {
	}
	for range w.addrs {
	}
}

// watch follows the interface until Close.
func (t *RawTransport) watch(ns netns.NsHandle, w *watcher) {
	defer close(t.done)
	defer ns.Close()
	defer w.stop()
	// This goroutine may create sockets: keep it on a thread in the
	// transport's namespace. The thread is not unlocked, so it ends with the
	// goroutine instead of going back to the pool in another namespace.
	runtime.LockOSThread()
	if !threadInNetns(ns) {
		if err := netns.Set(ns); err != nil {
			t.log.Error("vrrp transport cannot follow its interface", "err", err)
		}
	}
	links, addrs := w.links, w.addrs
	for {
		select {
		case <-t.stop:
			return
		case u, ok := <-links:
			if !ok {
				t.log.Error("vrrp transport lost its link subscription")
				links = nil
				continue
			}
			if u.Attrs() == nil || u.Attrs().Name != t.ifname || u.Header.Type == unix.RTM_DELLINK {
				continue
			}
		case u, ok := <-addrs:
			if !ok {
				t.log.Error("vrrp transport lost its address subscription")
				addrs = nil
				continue
			}
			if u.LinkIndex != t.cur.Load().ifindex {
				continue
			}
		}
		if err := t.refresh(); err != nil && !errors.Is(err, ErrTransportClosed) {
			t.log.Warn("vrrp transport could not follow its interface", "err", err)
		}
	}
}

// Reopen opens the sockets again on the interface as it is now, if its index
// changed since they were opened. The transport calls it itself on link
// updates; callers may call it after a Send error.
func (t *RawTransport) Reopen() error {
	return t.refresh()
}

func (t *RawTransport) refresh() error {
	t.reopenMu.Lock()
	defer t.reopenMu.Unlock()
	if t.closed.Load() {
		return ErrTransportClosed
	}
	ifi, err := net.InterfaceByName(t.ifname)
	if err != nil {
		return fmt.Errorf("vrrp transport: interface %s: %w", t.ifname, err)
	}
	if old := t.cur.Load(); old.ifindex != ifi.Index {
		c, err := t.open(ifi)
		if err != nil {
			return err
		}
		t.cur.Store(c)
		_ = old.close()
		t.log.Info("vrrp transport reopened on a new interface index", "ifindex", ifi.Index)
	}
	if !t.follow {
		return nil
	}
	src, err := t.primaryAddr(ifi)
	if err != nil {
		// No address for now (a link coming up): keep the one we have.
		return nil
	}
	if old := *t.src.Load(); src != old {
		t.src.Store(&src)
		t.log.Info("vrrp transport source address changed", "from", old.String(), "to", src.String())
	}
	return nil
}

// open creates and configures the socket on ifi.
func (t *RawTransport) open(ifi *net.Interface) (*rawConn, error) {
	network, laddr := fmt.Sprintf("ip4:%d", ProtocolNumber), "0.0.0.0"
	if t.family == config.IPv6 {
		network, laddr = fmt.Sprintf("ip6:%d", ProtocolNumber), "::"
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name)
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("bind to device: %w", serr)
		}
		return nil
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return nil, fmt.Errorf("vrrp transport: open raw %s socket on %s: %w", t.family, ifi.Name, permHint(err))
	}
	ipc := pc.(*net.IPConn)
	c := &rawConn{
		conn:      ipc,
		ifindex:   ifi.Index,
		ifname:    ifi.Name,
		family:    t.family,
		multicast: t.multicast,
	}
	if err := c.setup(ifi); err != nil {
		_ = ipc.Close()
		return nil, fmt.Errorf("vrrp transport on %s: %w", ifi.Name, permHint(err))
	}
	return c, nil
}

// primaryAddr is the interface's first address of the transport's family that
// is not a virtual IP: for IPv4 its first non-link-local address, for IPv6
// its link-local address.
func (t *RawTransport) primaryAddr(ifi *net.Interface) (netip.Addr, error) {
	family := t.family
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if slices.Contains(t.vips, ip) {
			continue
		}
		switch {
		case family == config.IPv4 && ip.Is4() && !ip.IsLinkLocalUnicast():
			return ip, nil
		case family == config.IPv6 && ip.Is6() && ip.IsLinkLocalUnicast():
			return ip, nil
		}
	}
	if family == config.IPv4 {
		return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address to send VRRP adverts from (set source_ip)", ifi.Name)
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv6 link-local address to send VRRP adverts from (RFC 5798 §5.1.2.1)", ifi.Name)
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

// rawConn is one opened socket with its receive state. The receive state is
// allocated once so that Receive does not allocate.
type rawConn struct {
	conn      *net.IPConn
	rc        syscall.RawConn
	p4        *ipv4.PacketConn
	p6        *ipv6.PacketConn
	ifindex   int
	ifname    string
	family    config.Family
	multicast bool

	// receive state
	buf    []byte
	oob    []byte
	name   unix.RawSockaddrInet6 // large enough for sockaddr_in too
	iov    unix.Iovec
	hdr    unix.Msghdr
	readFn func(fd uintptr) bool
	n      int
	oobn   int
	errno  syscall.Errno

	// send state, also allocated once: Send does not allocate either.
	sendMu    sync.Mutex
	sendOOB   []byte
	sendName  unix.RawSockaddrInet6 // or sockaddr_in
	sendIov   unix.Iovec
	sendHdr   unix.Msghdr
	writeFn   func(fd uintptr) bool
	sendErrno syscall.Errno
}

func (c *rawConn) setup(ifi *net.Interface) error {
	rc, err := c.conn.SyscallConn()
	if err != nil {
		return err
	}
	c.rc = rc
	if c.family == config.IPv4 {
		c.p4 = ipv4.NewPacketConn(c.conn)
		if err := c.p4.SetTTL(TTL); err != nil {
			return fmt.Errorf("set TTL: %w", err)
		}
		if err := c.p4.SetTOS(trafficClass); err != nil {
			return fmt.Errorf("set TOS: %w", err)
		}
		if err := c.p4.SetMulticastTTL(TTL); err != nil {
			return fmt.Errorf("set multicast TTL: %w", err)
		}
		if err := c.p4.SetMulticastLoopback(false); err != nil {
			return fmt.Errorf("disable multicast loopback: %w", err)
		}
		if err := c.p4.SetMulticastInterface(ifi); err != nil {
			return fmt.Errorf("set multicast interface: %w", err)
		}
		if err := c.p4.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
			return fmt.Errorf("enable packet info: %w", err)
		}
		if c.multicast {
			if err := c.p4.JoinGroup(ifi, &net.IPAddr{IP: GroupIPv4.AsSlice()}); err != nil {
				return fmt.Errorf("join %s: %w", GroupIPv4, err)
			}
		}
	} else {
		c.p6 = ipv6.NewPacketConn(c.conn)
		if err := c.p6.SetHopLimit(TTL); err != nil {
			return fmt.Errorf("set hop limit: %w", err)
		}
		if err := c.p6.SetTrafficClass(trafficClass); err != nil {
			return fmt.Errorf("set traffic class: %w", err)
		}
		if err := c.p6.SetMulticastHopLimit(TTL); err != nil {
			return fmt.Errorf("set multicast hop limit: %w", err)
		}
		if err := c.p6.SetMulticastLoopback(false); err != nil {
			return fmt.Errorf("disable multicast loopback: %w", err)
		}
		if err := c.p6.SetMulticastInterface(ifi); err != nil {
			return fmt.Errorf("set multicast interface: %w", err)
		}
		if err := c.p6.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
			return fmt.Errorf("enable packet info: %w", err)
		}
		if c.multicast {
			if err := c.p6.JoinGroup(ifi, &net.IPAddr{IP: GroupIPv6.AsSlice()}); err != nil {
				return fmt.Errorf("join %s: %w", GroupIPv6, err)
			}
		}
	}

	c.buf = make([]byte, maxPacket)
	c.oob = make([]byte, 256)
	c.iov.Base = &c.buf[0]
	c.iov.SetLen(len(c.buf))
	c.hdr.Name = (*byte)(unsafe.Pointer(&c.name))
	c.hdr.Iov = &c.iov
	c.hdr.Iovlen = 1
	c.hdr.Control = &c.oob[0]
	c.readFn = c.recvmsg

	// The send control messages: the interface and source address in
	// IP_PKTINFO / IPV6_PKTINFO, and for IPv6 the hop limit.
	if c.family == config.IPv4 {
		c.sendOOB = make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
		putCmsg(c.sendOOB, unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo)
		c.sendHdr.Namelen = unix.SizeofSockaddrInet4
	} else {
		c.sendOOB = make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo)+unix.CmsgSpace(4))
		putCmsg(c.sendOOB, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
		hl := c.sendOOB[unix.CmsgSpace(unix.SizeofInet6Pktinfo):]
		putCmsg(hl, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, 4)
		*(*int32)(unsafe.Pointer(&hl[unix.CmsgLen(0)])) = TTL
		c.sendHdr.Namelen = unix.SizeofSockaddrInet6
	}
	c.sendHdr.Name = (*byte)(unsafe.Pointer(&c.sendName))
	c.sendHdr.Iov = &c.sendIov
	c.sendHdr.Iovlen = 1
	c.sendHdr.Control = &c.sendOOB[0]
	c.sendHdr.SetControllen(len(c.sendOOB))
	c.writeFn = c.sendmsg
	return nil
}

// putCmsg writes a control message header for a payload of n bytes at the
// start of b.
func putCmsg(b []byte, level, typ int32, n int) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(n))
}

// sendmsg is the RawConn.Write callback; it is bound once in setup.
func (c *rawConn) sendmsg(fd uintptr) bool {
	_, _, errno := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&c.sendHdr)), 0)
	if errno == unix.EAGAIN || errno == unix.EINTR {
		return false
	}
	c.sendErrno = errno
	return true
}

// recvmsg is the RawConn.Read callback; it is bound once in setup.
func (c *rawConn) recvmsg(fd uintptr) bool {
	c.hdr.Namelen = uint32(unsafe.Sizeof(c.name))
	c.hdr.SetControllen(len(c.oob))
	c.hdr.Flags = 0
	n, _, errno := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&c.hdr)), 0)
	if errno == unix.EAGAIN || errno == unix.EINTR {
		return false
	}
	c.errno = errno
	c.n = int(n)
	c.oobn = int(c.hdr.Controllen)
	return true
}

// receive reads one packet. ok is false for a packet to skip.
func (c *rawConn) receive(buf []byte) (n int, info PacketInfo, ok bool, err error) {
	if err := c.rc.Read(c.readFn); err != nil {
		return 0, PacketInfo{}, false, err
	}
	if c.errno != 0 {
		return 0, PacketInfo{}, false, c.errno
	}
	pkt := c.buf[:c.n]
	var payload []byte
	if c.family == config.IPv4 {
		// A raw IPv4 socket delivers the IP header: TTL, source and
		// destination come from it.
		if len(pkt) < ipv4.HeaderLen || pkt[0]>>4 != 4 {
			return 0, PacketInfo{}, false, nil
		}
		hl := int(pkt[0]&0x0f) << 2
		if hl < ipv4.HeaderLen || hl > len(pkt) {
			return 0, PacketInfo{}, false, nil
		}
		info.HopLimit = int(pkt[8])
		info.Src = netip.AddrFrom4([4]byte(pkt[12:16]))
		info.Dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		payload = pkt[hl:]
	} else {
		// A raw IPv6 socket delivers the payload only: the source is the
		// socket address, the rest comes in control messages.
		info.Src = netip.AddrFrom16(c.name.Addr)
		payload = pkt
	}
	c.parseControl(&info)
	if info.IfIndex != 0 && info.IfIndex != c.ifindex {
		return 0, PacketInfo{}, false, nil
	}
	if info.IfIndex == 0 {
		info.IfIndex = c.ifindex
	}
	return copy(buf, payload), info, true, nil
}

// parseControl reads IP_PKTINFO, IPV6_PKTINFO and IPV6_HOPLIMIT without
// allocating.
func (c *rawConn) parseControl(info *PacketInfo) {
	oob := c.oob[:c.oobn]
	hdrLen := unix.CmsgLen(0)
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			return
		}
		data := oob[hdrLen:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			info.IfIndex = int(pi.Ifindex)
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			info.IfIndex = int(pi.Ifindex)
			info.Dst = netip.AddrFrom16(pi.Addr)
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			info.HopLimit = int(*(*int32)(unsafe.Pointer(&data[0])))
		}
		next := unix.CmsgSpace(l - hdrLen)
		if next > len(oob) {
			return
		}
		oob = oob[next:]
	}
}

func (c *rawConn) send(msg []byte, src, dst netip.Addr) error {
	if c.family == config.IPv4 && !dst.Is4() {
		return fmt.Errorf("destination %s is not IPv4", dst)
	}
	if c.family == config.IPv6 && (!dst.Is6() || dst.Is4In6()) {
		return fmt.Errorf("destination %s is not IPv6", dst)
	}
	if len(msg) == 0 {
		return errors.New("empty message")
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	// The source and the interface go in the packet-info control message;
	// the interface is never a zone on dst: zone names are resolved through
	// a cache that still holds the old index for a minute after the
	// interface is recreated.
	if c.family == config.IPv4 {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&c.sendName))
		sa.Family = unix.AF_INET
		sa.Addr = dst.As4()
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&c.sendOOB[unix.CmsgLen(0)]))
		pi.Ifindex = int32(c.ifindex)
		pi.Spec_dst = [4]byte{}
		if src.Is4() {
			pi.Spec_dst = src.As4()
		}
	} else {
		c.sendName = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
		pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&c.sendOOB[unix.CmsgLen(0)]))
		pi.Ifindex = uint32(c.ifindex)
		pi.Addr = [16]byte{}
		if src.Is6() {
			pi.Addr = src.As16()
		}
	}
	c.sendIov.Base = &msg[0]
	c.sendIov.SetLen(len(msg))
	err := c.rc.Write(c.writeFn)
	c.sendIov.Base = nil // do not keep msg alive
	if err != nil {
		return err
	}
	if c.sendErrno != 0 {
		return c.sendErrno
	}
	return nil
}

func (c *rawConn) close() error {
	return c.conn.Close()
}
