package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// clientTuples are n connections from distinct client ports to vip:8443.
func clientTuples(vip, client netip.Addr, n int) []Tuple {
	out := make([]Tuple, n)
	for i := range out {
		out[i] = Tuple{Local: netip.AddrPortFrom(vip, 8443), Remote: netip.AddrPortFrom(client, uint16(30000+i))}
	}
	return out
}

var (
	vip4    = netip.MustParseAddr("192.0.2.100")
	client4 = netip.MustParseAddr("198.51.100.7")
	vip6    = netip.MustParseAddr("2001:db8::100")
	client6 = netip.MustParseAddr("2001:db8:1::7")
)

func TestTakeoverSnapshotsRoundTripInDatagramsUnderTheMTU(t *testing.T) {
	for _, tc := range []struct {
		name   string
		v4     bool
		tuples []Tuple
		chunks int
	}{
		{"an empty set is one datagram", true, nil, 1},
		{"IPv4: 94 tuples a datagram", true, clientTuples(vip4, client4, 300), 4},
		{"IPv6: 31 tuples a datagram", false, clientTuples(vip6, client6, 100), 4},
		{"at most maxStreamTuples are sent", true, clientTuples(vip4, client4, maxStreamTuples+5), (maxStreamTuples + 93) / 94},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := encodeSnapshot(testKey, tc.v4, 51, 1000, 7, 300*time.Millisecond, tc.tuples)
			if len(ds) != tc.chunks {
				t.Fatalf("%d datagrams, want %d", len(ds), tc.chunks)
			}
			var got []Tuple
			for i, d := range ds {
				if len(d) > streamMaxDatagram {
					t.Fatalf("datagram %d is %d bytes, over %d", i, len(d), streamMaxDatagram)
				}
				c, err := decodeChunk(testKey, d)
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				want := streamChunk{v4: tc.v4, vrid: 51, timestamp: 1000 + int64(i), snapshot: 7, chunk: uint16(i), chunks: uint16(tc.chunks),
					total: uint32(min(len(tc.tuples), maxStreamTuples)), period: 300 * time.Millisecond}
				c.tuples, got = nil, append(got, c.tuples...)
				if diff := cmp.Diff(want, c, cmp.AllowUnexported(streamChunk{})); diff != "" {
					t.Fatalf("datagram %d header (-want +got):\n%s", i, diff)
				}
			}
			if diff := cmp.Diff(tc.tuples[:min(len(tc.tuples), maxStreamTuples)], got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("tuples (-want +got):\n%s", diff)
			}
		})
	}
}

// resign replaces a datagram's MAC after a test changed its body.
func resign(key, d []byte) []byte {
	body := d[:len(d)-streamMACLen]
	return encodeMAC(key, body)
}

func TestTakeoverDatagramsAreCheckedBeforeTheyAreTrusted(t *testing.T) {
	good := encodeSnapshot(testKey, true, 51, 1000, 1, 0, clientTuples(vip4, client4, 10))[0]
	mod := func(f func(d []byte) []byte) []byte { return f(slices.Clone(good)) }
	for _, tc := range []struct {
		name string
		d    []byte
		want error
	}{
		{"another key's datagram is refused", encodeSnapshot([]byte("another key of 16+ bytes"), true, 51, 1000, 1, 0, clientTuples(vip4, client4, 10))[0], errStreamMAC},
		{"an altered tuple is refused", mod(func(d []byte) []byte { d[40] ^= 1; return d }), errStreamMAC},
		{"a truncated datagram is refused", good[:len(good)-1], errStreamMAC},
		{"a datagram shorter than a header is refused", good[:40], errStreamShort},
		{"a datagram over the size bound is refused", append(slices.Clone(good), make([]byte, streamMaxDatagram)...), errStreamShort},
		{"another magic is refused", mod(func(d []byte) []byte { d[0] = 'X'; return resign(testKey, d) }), errStreamShort},
		{"a count that is not the payload's is refused", mod(func(d []byte) []byte { binary.BigEndian.PutUint16(d[28:], 11); return resign(testKey, d) }), errStreamShort},
		{"a total over maxStreamTuples is refused", mod(func(d []byte) []byte {
			binary.BigEndian.PutUint32(d[24:], maxStreamTuples+1)
			binary.BigEndian.PutUint16(d[22:], (maxStreamTuples+1+93)/94)
			return resign(testKey, d)
		}), errStreamOversize},
		{"more chunks than the total needs are refused", mod(func(d []byte) []byte { binary.BigEndian.PutUint16(d[22:], 9); return resign(testKey, d) }), errStreamOversize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeChunk(testKey, tc.d); !errors.Is(err, tc.want) {
				t.Errorf("decodeChunk: %v, want %v", err, tc.want)
			}
		})
	}
}

// The prompt is a SYN from the virtual IP's port to the client's, with a
// right checksum for either family.
func TestThePromptIsASYNWithARightChecksum(t *testing.T) {
	for _, tu := range []Tuple{clientTuples(vip4, client4, 1)[0], clientTuples(vip6, client6, 1)[0]} {
		t.Run(tu.Local.Addr().String(), func(t *testing.T) {
			seg := promptSegment(tu, 0x01020304)
			want := fmt.Sprintf("%04x %04x 01020304 00000000 50 02", 8443, 30000)
			got := fmt.Sprintf("%x %x %x %x %x %x", seg[0:2], seg[2:4], seg[4:8], seg[8:12], seg[12:13], seg[13:14])
			if got != want {
				t.Errorf("header %s, want %s", got, want)
			}
			sum := pseudoHeaderSum(tu.Local.Addr(), tu.Remote.Addr(), len(seg)) - ProtocolNumber + tcpProtocol
			if checksum(seg, sum) != 0 {
				t.Errorf("checksum %04x does not verify", binary.BigEndian.Uint16(seg[16:]))
			}
		})
	}
}
