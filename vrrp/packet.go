package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// Protocol numbers and addresses.
const (
	// ProtocolNumber is the IP protocol number of VRRP (RFC 5798 §5.1.1.4, §5.1.2.3).
	ProtocolNumber = 112
	// TTL is the IPv4 TTL / IPv6 hop limit every advertisement is sent with
	// and, on multicast, must arrive with (RFC 5798 §5.1.1.3, §5.1.2.4).
	TTL = 255
)

// Multicast groups adverts are sent to when no unicast peers are configured.
var (
	// GroupIPv4 is the IPv4 VRRP multicast address (RFC 5798 §5.1.1.2).
	GroupIPv4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	// GroupIPv6 is the IPv6 VRRP multicast address (RFC 5798 §5.1.2.2).
	GroupIPv6 = netip.MustParseAddr("ff02::12")
)

// Field values and sizes of the VRRP message.
const (
	// TypeAdvertisement is the only message type (RFC 5798 §5.2.2, RFC 3768 §5.3.2).
	TypeAdvertisement = 1
	// headerLen is the fixed part before the address list (RFC 5798 §5.2, RFC 3768 §5.3).
	headerLen = 8
	// authDataLen is the v2 Authentication Data trailer (RFC 3768 §5.3.10).
	authDataLen = 8
	// maxIntervalV3 is the largest 12-bit Max Adver Int, in centiseconds (RFC 5798 §5.2.7).
	maxIntervalV3 = 0x0fff
	// centisecond is the unit of the v3 Max Adver Int (RFC 5798 §5.2.7).
	centisecond = 10 * time.Millisecond
)

// AuthType is the v2 authentication type (RFC 3768 §5.3.6).
type AuthType uint8

// Authentication types kept by RFC 3768 §5.3.6 (type 2, IP Authentication
// Header, was removed and is rejected as unknown by the receive path).
const (
	AuthNone       AuthType = 0
	AuthSimpleText AuthType = 1
)

// Reason names why a received packet was dropped. It is the "reason" label of
// vrrplb_packets_dropped_total.
type Reason string

// Drop reasons, in the order the receive path checks them (RFC 5798 §7.1,
// RFC 3768 §7.1).
const (
	ReasonTTL      Reason = "ttl"
	ReasonVersion  Reason = "version"
	ReasonLength   Reason = "length"
	ReasonChecksum Reason = "checksum"
	ReasonType     Reason = "type"
	ReasonVRID     Reason = "vrid"
	ReasonPeer     Reason = "peer" // a unicast sender not in unicast_peers
	ReasonAuth     Reason = "auth"
	ReasonInterval Reason = "interval"
	ReasonSelf     Reason = "self"
)

// dropReasons lists every Reason, so metrics can be initialised to zero.
var dropReasons = []Reason{
	ReasonTTL, ReasonVersion, ReasonLength, ReasonChecksum, ReasonType,
	ReasonVRID, ReasonPeer, ReasonAuth, ReasonInterval, ReasonSelf,
}

// PacketError is a received message rejected by the decoder. Reason is the
// drop counter label. The decoder returns the shared values below, so a
// rejected packet costs no allocation.
type PacketError struct {
	Reason Reason
}

func (e *PacketError) Error() string {
	return "vrrp: packet dropped: bad " + string(e.Reason)
}

// Errors returned by Decode.
var (
	ErrVersion  = &PacketError{Reason: ReasonVersion}
	ErrLength   = &PacketError{Reason: ReasonLength}
	ErrChecksum = &PacketError{Reason: ReasonChecksum}
	ErrType     = &PacketError{Reason: ReasonType}
)

// Advertisement is a VRRP ADVERTISEMENT message, version 2 (RFC 3768 §5.3) or
// 3 (RFC 5798 §5.2). The address family is not in the message: it is the
// family of the IP packet that carries it.
type Advertisement struct {
	// Version is 2 or 3.
	Version int
	VRID    uint8
	// Priority 0 means the master is leaving; 255 means the address owner.
	Priority uint8
	// Interval is the advertisement interval: whole seconds (1..255) in
	// version 2, centiseconds up to 40.95 s in version 3.
	Interval time.Duration
	// AuthType and AuthData are the version 2 authentication fields; zero in
	// version 3.
	AuthType AuthType
	AuthData [authDataLen]byte
	// Addrs are the virtual addresses the sender backs up. Decode reuses the
	// slice's storage.
	Addrs []netip.Addr
}

// Append encodes a as it is sent from src to dst and appends it to b. The
// checksum is the RFC 3768 §5.3.8 one in version 2 (message only) and the RFC
// 5798 §5.2.8 one in version 3 (with the IPv4 or IPv6 pseudo-header, so dst
// must be the address actually written in the IP header: the group, or the
// peer in unicast).
func (a *Advertisement) Append(b []byte, src, dst netip.Addr) ([]byte, error) {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return b, fmt.Errorf("vrrp: encode: source %v and destination %v must be addresses of one family", src, dst)
	}
	if len(a.Addrs) > 255 {
		return b, fmt.Errorf("vrrp: encode: %d addresses: at most 255 fit in an advertisement", len(a.Addrs))
	}
	for _, ip := range a.Addrs {
		// An IPv4 advert carries 4 bytes an address (a mapped form is
		// written unmapped), an IPv6 one 16: an IPv4-mapped address
		// included, as a peer may send one and Decode keeps it.
		fits := ip.Is6()
		if src.Is4() {
			fits = ip.Unmap().Is4()
		}
		if !fits {
			return b, fmt.Errorf("vrrp: encode: address %v is not of the family of source %v", ip, src)
		}
	}
	var word1 [2]byte // bytes 4 and 5: auth type + advert int (v2) or rsvd + max advert int (v3)
	switch a.Version {
	case 2:
		if !src.Is4() {
			return b, fmt.Errorf("vrrp: encode: version 2 is IPv4 only, source %v", src)
		}
		if a.Interval%time.Second != 0 || a.Interval < time.Second || a.Interval > 255*time.Second {
			return b, fmt.Errorf("vrrp: encode: version 2 interval %v: must be whole seconds from 1s to 255s", a.Interval)
		}
		word1 = [2]byte{byte(a.AuthType), byte(a.Interval / time.Second)}
	case 3:
		if a.Interval%centisecond != 0 || a.Interval < centisecond || a.Interval > maxIntervalV3*centisecond {
			return b, fmt.Errorf("vrrp: encode: version 3 interval %v: must be a multiple of 10ms from 10ms to 40.95s", a.Interval)
		}
		cs := uint16(a.Interval / centisecond)
		word1 = [2]byte{byte(cs >> 8), byte(cs)}
	default:
		return b, fmt.Errorf("vrrp: encode: version %d: must be 2 or 3", a.Version)
	}

	start := len(b)
	b = append(b,
		byte(a.Version)<<4|TypeAdvertisement,
		a.VRID,
		a.Priority,
		byte(len(a.Addrs)),
		word1[0], word1[1],
		0, 0, // checksum, filled in below
	)
	for _, ip := range a.Addrs {
		if src.Is4() {
			ip = ip.Unmap()
		}
		b = append(b, ip.AsSlice()...)
	}
	if a.Version == 2 {
		b = append(b, a.AuthData[:]...)
	}
	msg := b[start:]
	var sum uint16
	if a.Version == 2 {
		sum = checksum(msg, 0)
	} else {
		sum = checksum(msg, pseudoHeaderSum(src, dst, len(msg)))
	}
	msg[6], msg[7] = byte(sum>>8), byte(sum)
	return b, nil
}

// Decode parses msg, the payload of an IP packet from src to dst, into a. It
// checks, in this order, the version, the length, the checksum and the type,
// and returns ErrVersion, ErrLength, ErrChecksum or ErrType. In version 3 over
// IPv4 it accepts both the RFC 5798 checksum (with pseudo-header) and the RFC
// 9568 one (without). Decode reuses a.Addrs and does not allocate once that
// slice has room for the addresses.
func (a *Advertisement) Decode(msg []byte, src, dst netip.Addr) error {
	src, dst = src.Unmap(), dst.Unmap()
	if len(msg) < 1 {
		return ErrLength
	}
	version := int(msg[0] >> 4)
	switch {
	case version == 3:
	case version == 2 && src.Is4():
	default:
		return ErrVersion
	}
	if len(msg) < headerLen {
		return ErrLength
	}
	addrLen := 4
	if !src.Is4() {
		addrLen = 16
	}
	count := int(msg[3])
	want := headerLen + count*addrLen
	if version == 2 {
		want += authDataLen
	}
	if len(msg) < want {
		return ErrLength
	}
	if !checksumValid(msg, version, src, dst) {
		return ErrChecksum
	}
	if msg[0]&0x0f != TypeAdvertisement {
		return ErrType
	}

	a.Version = version
	a.VRID = msg[1]
	a.Priority = msg[2]
	a.Addrs = a.Addrs[:0]
	off := headerLen
	for range count {
		if addrLen == 4 {
			a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(msg[off:off+4])))
		} else {
			a.Addrs = append(a.Addrs, netip.AddrFrom16([16]byte(msg[off:off+16])))
		}
		off += addrLen
	}
	if version == 2 {
		a.AuthType = AuthType(msg[4])
		a.Interval = time.Duration(msg[5]) * time.Second
		a.AuthData = [authDataLen]byte(msg[off : off+authDataLen])
	} else {
		a.AuthType = AuthNone
		a.AuthData = [authDataLen]byte{}
		a.Interval = time.Duration(uint16(msg[4]&0x0f)<<8|uint16(msg[5])) * centisecond
	}
	return nil
}

// checksumValid reports whether msg carries a correct checksum for its version.
func checksumValid(msg []byte, version int, src, dst netip.Addr) bool {
	if version == 2 {
		return checksum(msg, 0) == 0
	}
	if checksum(msg, pseudoHeaderSum(src, dst, len(msg))) == 0 {
		return true
	}
	// RFC 9568 §5.2.8: IPv4 VRRPv3 without the pseudo-header.
	return src.Is4() && checksum(msg, 0) == 0
}

// checksum returns the Internet checksum (RFC 1071) of b added to the partial
// sum initial. Computed over a message whose checksum field holds the right
// value, it returns 0.
func checksum(b []byte, initial uint32) uint16 {
	s := initial
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// pseudoHeaderSum is the partial sum of the IPv4 (RFC 768 style, RFC 5798
// §5.2.8) or IPv6 (RFC 8200 §8.1) pseudo-header for a VRRP message of length n.
// Both reduce to the addresses, the length and the protocol number, as 16-bit
// words: the zero padding adds nothing.
func pseudoHeaderSum(src, dst netip.Addr, n int) uint32 {
	var s uint32
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		s = sumWords(a[:]) + sumWords(b[:])
	} else {
		a, b := src.As16(), dst.As16()
		s = sumWords(a[:]) + sumWords(b[:])
	}
	return s + uint32(n>>16) + uint32(n&0xffff) + ProtocolNumber
}

func sumWords(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	return s
}
