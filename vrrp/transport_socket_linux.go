package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/vrrplb/vrrplb/config"
)

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
