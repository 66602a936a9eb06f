package vrrp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// The takeover stream: a master tells the other LB hosts of its instance
// which client connections it holds on the virtual IPs, so that a host that
// takes over after the master crashed can prompt those clients to reset
// (see takeover.go). Each datagram is one chunk of a snapshot of the whole
// set, authenticated with HMAC-SHA256 under the instance's key:
//
//	0  magic "VLTS"           4 bytes
//	4  version (1)            1
//	5  family (4 or 6)        1
//	6  virtual_router_id      1
//	7  flags (0)              1
//	8  timestamp              8  sender's Unix time in ns, rising with every datagram
//	16 snapshot               4  number of the snapshot, rising
//	20 chunk                  2  0..chunks-1
//	22 chunks                 2
//	24 total                  4  tuples in the snapshot
//	28 count                  2  tuples in this chunk
//	30 period                 2  ms until the next snapshot at the latest
//	32 tuples                 count × (4+2+4+2 | 16+2+16+2): VIP, port, client, port
//	.. HMAC-SHA256            32 over everything before it
const (
	streamMagic       = "VLTS"
	streamVersion     = 1
	streamHeaderLen   = 32
	streamMACLen      = sha256.Size
	streamMaxDatagram = 1200 // under the IPv6 minimum MTU (1280) less IPv6 and UDP headers
	tupleLen4         = 12
	tupleLen6         = 36
	// maxStreamTuples bounds the tuples a snapshot carries and a backup holds.
	maxStreamTuples = 65536
)

// Tuple is one TCP connection: its local end (a virtual IP and port) and
// its remote end (the client).
type Tuple struct {
	Local, Remote netip.AddrPort
}

// tupleLen is the size of one tuple of the family on the wire.
func tupleLen(v4 bool) int {
	if v4 {
		return tupleLen4
	}
	return tupleLen6
}

// tuplesPerChunk is how many tuples of the family one datagram carries.
func tuplesPerChunk(v4 bool) int {
	return (streamMaxDatagram - streamHeaderLen - streamMACLen) / tupleLen(v4)
}

// streamChunk is one datagram of the stream, decoded.
type streamChunk struct {
	v4        bool
	vrid      uint8
	timestamp int64
	snapshot  uint32
	chunk     uint16
	chunks    uint16
	total     uint32
	period    time.Duration
	tuples    []Tuple
}

// Errors of decodeChunk, each a reason of the drop metric.
var (
	errStreamShort    = errors.New("short or malformed")
	errStreamMAC      = errors.New("bad key or MAC")
	errStreamOversize = errors.New("more tuples or chunks than allowed")
)

// encodeSnapshot splits tuples (all of the family v4) into datagrams signed
// with key. The first datagram's timestamp is ts, each next one's ts+1.
// An empty set is one datagram with no tuple: it tells the backups that the
// master holds none.
func encodeSnapshot(key []byte, v4 bool, vrid uint8, ts int64, snapshot uint32, period time.Duration, tuples []Tuple) [][]byte {
	per := tuplesPerChunk(v4)
	if len(tuples) > maxStreamTuples {
		tuples = tuples[:maxStreamTuples]
	}
	chunks := max(1, (len(tuples)+per-1)/per)
	out := make([][]byte, 0, chunks)
	for c := range chunks {
		part := tuples[min(c*per, len(tuples)):min((c+1)*per, len(tuples))]
		b := make([]byte, streamHeaderLen, streamHeaderLen+len(part)*tupleLen(v4)+streamMACLen)
		copy(b, streamMagic)
		b[4] = streamVersion
		b[5] = 6
		if v4 {
			b[5] = 4
		}
		b[6] = vrid
		binary.BigEndian.PutUint64(b[8:], uint64(ts+int64(c)))
		binary.BigEndian.PutUint32(b[16:], snapshot)
		binary.BigEndian.PutUint16(b[20:], uint16(c))
		binary.BigEndian.PutUint16(b[22:], uint16(chunks))
		binary.BigEndian.PutUint32(b[24:], uint32(len(tuples)))
		binary.BigEndian.PutUint16(b[28:], uint16(len(part)))
		binary.BigEndian.PutUint16(b[30:], uint16(min(period.Milliseconds(), 65535)))
		for _, t := range part {
			b = appendEnd(b, t.Local, v4)
			b = appendEnd(b, t.Remote, v4)
		}
		out = append(out, encodeMAC(key, b))
	}
	return out
}

// encodeMAC appends the HMAC-SHA256 of body under key to body.
func encodeMAC(key, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return mac.Sum(body)
}

func appendEnd(b []byte, ap netip.AddrPort, v4 bool) []byte {
	a := ap.Addr().Unmap()
	if v4 {
		a4 := a.As4()
		b = append(b, a4[:]...)
	} else {
		a16 := a.As16()
		b = append(b, a16[:]...)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

// decodeChunk checks one datagram's MAC under key, then its bounds, and
// decodes it. The MAC is checked before anything else is trusted.
func decodeChunk(key, b []byte) (streamChunk, error) {
	var c streamChunk
	if len(b) < streamHeaderLen+streamMACLen || len(b) > streamMaxDatagram || string(b[:4]) != streamMagic || b[4] != streamVersion {
		return c, errStreamShort
	}
	body, sum := b[:len(b)-streamMACLen], b[len(b)-streamMACLen:]
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), sum) {
		return c, errStreamMAC
	}
	switch b[5] {
	case 4:
		c.v4 = true
	case 6:
	default:
		return c, errStreamShort
	}
	c.vrid = b[6]
	c.timestamp = int64(binary.BigEndian.Uint64(b[8:]))
	c.snapshot = binary.BigEndian.Uint32(b[16:])
	c.chunk = binary.BigEndian.Uint16(b[20:])
	c.chunks = binary.BigEndian.Uint16(b[22:])
	c.total = binary.BigEndian.Uint32(b[24:])
	count := int(binary.BigEndian.Uint16(b[28:]))
	c.period = time.Duration(binary.BigEndian.Uint16(b[30:])) * time.Millisecond
	tl := tupleLen(c.v4)
	if len(body) != streamHeaderLen+count*tl || c.chunks == 0 || c.chunk >= c.chunks {
		return c, errStreamShort
	}
	per := tuplesPerChunk(c.v4)
	if c.total > maxStreamTuples || int(c.chunks) != max(1, (int(c.total)+per-1)/per) || count > per {
		return c, errStreamOversize
	}
	c.tuples = make([]Tuple, count)
	p := body[streamHeaderLen:]
	for i := range c.tuples {
		c.tuples[i] = Tuple{Local: readEnd(p, c.v4), Remote: readEnd(p[tl/2:], c.v4)}
		p = p[tl:]
	}
	return c, nil
}

func readEnd(p []byte, v4 bool) netip.AddrPort {
	if v4 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(p[:4])), binary.BigEndian.Uint16(p[4:]))
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[:16])), binary.BigEndian.Uint16(p[16:]))
}

// TCP header fields of a prompt (RFC 9293 §3.1).
const (
	tcpHeaderLen = 20
	tcpProtocol  = 6
	tcpFlagSYN   = 0x02
	promptWindow = 1024
)

// promptSegment is the TCP segment that prompts the client of t to answer:
// a SYN from t.Local to t.Remote with sequence number seq. On a
// synchronized connection a SYN draws a challenge ACK whatever its sequence
// number (RFC 5961 §4.2; before RFC 5961, an in-window SYN reset the
// connection outright), so the prompt needs nothing of the connection's
// sequence space, which only the crashed host knew. No options: without a
// timestamp the client's PAWS check does not apply. The checksum covers
// the pseudo-header of t's family.
func promptSegment(t Tuple, seq uint32) []byte {
	b := make([]byte, tcpHeaderLen)
	binary.BigEndian.PutUint16(b[0:], t.Local.Port())
	binary.BigEndian.PutUint16(b[2:], t.Remote.Port())
	binary.BigEndian.PutUint32(b[4:], seq)
	b[12] = tcpHeaderLen / 4 << 4
	b[13] = tcpFlagSYN
	binary.BigEndian.PutUint16(b[14:], promptWindow)
	src, dst := t.Local.Addr().Unmap(), t.Remote.Addr().Unmap()
	// pseudoHeaderSum counts VRRP's protocol number; TCP's replaces it.
	sum := pseudoHeaderSum(src, dst, len(b)) - ProtocolNumber + tcpProtocol
	binary.BigEndian.PutUint16(b[16:], checksum(b, sum))
	return b
}

// EncodeTakeoverSnapshot returns the datagrams of one snapshot of the
// takeover stream, as a master of virtual router vrid sends them now: what
// a test needs to play a master, or a forger.
func EncodeTakeoverSnapshot(key []byte, vrid uint8, snapshot uint32, tuples []Tuple) [][]byte {
	v4 := len(tuples) == 0 || tuples[0].Local.Addr().Unmap().Is4()
	return encodeSnapshot(key, v4, vrid, time.Now().UnixNano(), snapshot, streamMinPeriod, tuples)
}
