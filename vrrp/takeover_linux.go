package vrrp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/vrrplb/vrrplb/config"
)

// streamRcvBuf is the receive buffer of the stream socket: a whole
// snapshot at the bounds (65536 IPv6 tuples, about 2100 datagrams) fits.
const streamRcvBuf = 8 << 20

// UDPStream is the Linux StreamConn: a UDP socket bound to the takeover
// port on the instance's interface, sending with TTL (hop limit) 255 from
// the instance's advert source address, to the unicast peers or to the
// VRRP group of the family (joined on the interface, loopback off).
type UDPStream struct {
	c     *net.UDPConn
	p4    *ipv4.PacketConn
	p6    *ipv6.PacketConn
	ifi   *net.Interface
	port  int
	local func() netip.Addr
}

// NewStreamConn opens the takeover stream socket of an instance on ifname.
// local gives the advert source address at each send: the address the
// receivers know the master by.
func NewStreamConn(ifname string, family config.Family, port uint16, multicast bool, local func() netip.Addr) (*UDPStream, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("takeover stream: interface %s: %w", ifname, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			if serr = unix.BindToDevice(int(fd), ifname); serr != nil {
				return
			}
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, streamRcvBuf) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, streamRcvBuf)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	network, addr := "udp4", fmt.Sprintf("0.0.0.0:%d", port)
	if family == config.IPv6 {
		network, addr = "udp6", fmt.Sprintf("[::]:%d", port)
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("takeover stream on %s port %d: %w", ifname, port, err)
	}
	s := &UDPStream{c: pc.(*net.UDPConn), ifi: ifi, port: int(port), local: local}
	if err := s.setup(family, multicast); err != nil {
		s.c.Close()
		return nil, fmt.Errorf("takeover stream on %s port %d: %w", ifname, port, err)
	}
	return s, nil
}

// multicastConn is what ipv4.PacketConn and ipv6.PacketConn share.
type multicastConn interface {
	SetMulticastInterface(*net.Interface) error
	SetMulticastLoopback(bool) error
	JoinGroup(*net.Interface, net.Addr) error
}

func (s *UDPStream) setup(family config.Family, multicast bool) error {
	var (
		mc    multicastConn
		errs  []error
		group = GroupIPv4
	)
	if family == config.IPv4 {
		s.p4 = ipv4.NewPacketConn(s.c)
		mc = s.p4
		errs = append(errs, s.p4.SetControlMessage(ipv4.FlagTTL, true), s.p4.SetTTL(TTL), s.p4.SetMulticastTTL(TTL))
	} else {
		s.p6 = ipv6.NewPacketConn(s.c)
		mc, group = s.p6, GroupIPv6
		errs = append(errs, s.p6.SetControlMessage(ipv6.FlagHopLimit, true), s.p6.SetHopLimit(TTL), s.p6.SetMulticastHopLimit(TTL))
	}
	errs = append(errs, mc.SetMulticastInterface(s.ifi), mc.SetMulticastLoopback(false))
	if multicast {
		errs = append(errs, mc.JoinGroup(s.ifi, &net.UDPAddr{IP: group.AsSlice()}))
	}
	return errors.Join(errs...)
}

// Send writes one datagram to dst from the advert source address.
func (s *UDPStream) Send(b []byte, dst netip.Addr) error {
	to := &net.UDPAddr{IP: dst.AsSlice(), Port: s.port}
	src := s.local().Unmap()
	if s.p4 != nil {
		_, err := s.p4.WriteTo(b, &ipv4.ControlMessage{Src: src.AsSlice(), IfIndex: s.ifi.Index}, to)
		return err
	}
	if dst.IsLinkLocalUnicast() {
		to.Zone = s.ifi.Name
	}
	_, err := s.p6.WriteTo(b, &ipv6.ControlMessage{Src: src.WithZone("").AsSlice(), IfIndex: s.ifi.Index}, to)
	return err
}

// Receive reads one datagram with its source and hop limit.
func (s *UDPStream) Receive(b []byte) (int, netip.Addr, int, error) {
	var (
		n    int
		from net.Addr
		hop  int
		err  error
	)
	if s.p4 != nil {
		var cm *ipv4.ControlMessage
		n, cm, from, err = s.p4.ReadFrom(b)
		if cm != nil {
			hop = cm.TTL
		}
	} else {
		var cm *ipv6.ControlMessage
		n, cm, from, err = s.p6.ReadFrom(b)
		if cm != nil {
			hop = cm.HopLimit
		}
	}
	if err != nil {
		return 0, netip.Addr{}, 0, err
	}
	ua, _ := from.(*net.UDPAddr)
	if ua == nil {
		return n, netip.Addr{}, hop, nil
	}
	a, _ := netip.AddrFromSlice(ua.IP)
	return n, a.Unmap(), hop, nil
}

// Close closes the socket; a blocked Receive returns an error.
func (s *UDPStream) Close() error { return s.c.Close() }

// RawPrompter is the Linux Prompter: raw IPPROTO_TCP sockets bound to the
// virtual IPs (the kernel writes the IP header, from the bound address),
// one per address, opened as a round needs them. It needs CAP_NET_RAW.
type RawPrompter struct {
	fds map[netip.Addr]int
}

// NewRawPrompter opens a round of prompts.
func NewRawPrompter() (Prompter, error) {
	return &RawPrompter{fds: map[netip.Addr]int{}}, nil
}

// Prompt sends the client of t the segment promptSegment makes.
func (p *RawPrompter) Prompt(t Tuple) error {
	local := t.Local.Addr().Unmap()
	fd, ok := p.fds[local]
	if !ok {
		var err error
		if fd, err = openPromptSocket(local); err != nil {
			return err
		}
		p.fds[local] = fd
	}
	var seq [4]byte
	_, _ = rand.Read(seq[:])
	seg := promptSegment(t, binary.BigEndian.Uint32(seq[:]))
	remote := t.Remote.Addr().Unmap()
	var to unix.Sockaddr
	if remote.Is4() {
		to = &unix.SockaddrInet4{Addr: remote.As4()}
	} else {
		to = &unix.SockaddrInet6{Addr: remote.As16()}
	}
	if err := unix.Sendto(fd, seg, 0, to); err != nil {
		return fmt.Errorf("prompting %v from %v: %w", t.Remote, t.Local, err)
	}
	return nil
}

func openPromptSocket(local netip.Addr) (int, error) {
	fam := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: local.As16()}
	if local.Is4() {
		fam, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: local.As4()}
	}
	fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return -1, fmt.Errorf("raw TCP socket: %w (needs CAP_NET_RAW)", err)
		}
		return -1, fmt.Errorf("raw TCP socket: %w", err)
	}
	// It would receive a copy of every TCP segment: take none.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 0)
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("raw TCP socket on %v: %w", local, err)
	}
	return fd, nil
}

// Close closes the round's sockets.
func (p *RawPrompter) Close() error {
	for a, fd := range p.fds {
		unix.Close(fd)
		delete(p.fds, a)
	}
	return nil
}

// NormalPriority puts the calling thread under SCHED_NORMAL (SCHED_OTHER), nice 0: out of
// the engine's SCHED_FIFO (see TakeoverOptions.NormalPriority).
func NormalPriority() error {
	return unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0)
}
