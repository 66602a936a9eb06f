package vrrp

import (
	"bufio"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// capture is one advertisement recorded from keepalived (testdata/keepalived.hex).
type capture struct {
	src, dst netip.Addr
	msg      []byte
}

func readCaptures(t *testing.T) map[string]capture {
	t.Helper()
	f, err := os.Open("testdata/keepalived.hex")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]capture{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 4 {
			t.Fatalf("keepalived.hex: bad line %q", line)
		}
		msg, err := hex.DecodeString(fields[3])
		if err != nil {
			t.Fatal(err)
		}
		out[fields[0]] = capture{
			src: netip.MustParseAddr(fields[1]),
			dst: netip.MustParseAddr(fields[2]),
			msg: msg,
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func TestKeepalivedAdvertisementsDecodeAndEncodeToTheSameBytes(t *testing.T) {
	pass := [8]byte{'v', 'r', 'r', 'p', 'l', 'b', '1', '2'}
	tests := map[string]Advertisement{
		"v2_pass":              {Version: 2, VRID: 51, Priority: 100, Interval: time.Second, AuthType: AuthSimpleText, AuthData: pass, Addrs: addrs("192.0.2.100")},
		"v2_pass_priority0":    {Version: 2, VRID: 51, Priority: 0, Interval: time.Second, AuthType: AuthSimpleText, AuthData: pass, Addrs: addrs("192.0.2.100")},
		"v3_ipv4":              {Version: 3, VRID: 52, Priority: 150, Interval: time.Second, Addrs: addrs("192.0.2.101", "192.0.2.102")},
		"v3_ipv4_priority0":    {Version: 3, VRID: 52, Priority: 0, Interval: time.Second, Addrs: addrs("192.0.2.101", "192.0.2.102")},
		"v3_ipv6":              {Version: 3, VRID: 53, Priority: 200, Interval: 500 * time.Millisecond, Addrs: addrs("fe80::53", "2001:db8::53")},
		"v3_ipv6_priority0":    {Version: 3, VRID: 53, Priority: 0, Interval: 500 * time.Millisecond, Addrs: addrs("fe80::53", "2001:db8::53")},
		"v3_unicast":           {Version: 3, VRID: 54, Priority: 120, Interval: time.Second, Addrs: addrs("192.0.2.104")},
		"v3_unicast_priority0": {Version: 3, VRID: 54, Priority: 0, Interval: time.Second, Addrs: addrs("192.0.2.104")},
	}
	captures := readCaptures(t)
	for name, want := range tests {
		t.Run(name+" from keepalived decodes and re-encodes byte for byte", func(t *testing.T) {
			c, ok := captures[name]
			if !ok {
				t.Fatalf("no capture %q in testdata/keepalived.hex", name)
			}
			var got Advertisement
			if err := got.Decode(c.msg, c.src, c.dst); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("decoded advertisement (-want +got):\n%s", diff)
			}
			enc, err := want.Append(nil, c.src, c.dst)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if diff := cmp.Diff(hex.EncodeToString(c.msg), hex.EncodeToString(enc)); diff != "" {
				t.Errorf("encoded bytes (-keepalived +ours):\n%s", diff)
			}
		})
	}
}

func TestChecksumVectors(t *testing.T) {
	// The v3 IPv4 message from keepalived with its checksum field zeroed; the
	// expected values were computed independently (Python, RFC 1071 sum).
	msg4, _ := hex.DecodeString("3134960200640000c0000265c0000266")
	src4, group4 := netip.MustParseAddr("192.0.2.1"), GroupIPv4
	unicast, _ := hex.DecodeString("3136780100640000c0000268")
	peer := netip.MustParseAddr("192.0.2.2")
	v2, _ := hex.DecodeString("213364010101" + "0000" + "c0000264767272706c623132")

	tests := []struct {
		name string
		got  uint16
		want uint16
	}{
		{"v3 IPv4 with the RFC 5798 pseudo-header", checksum(msg4, pseudoHeaderSum(src4, group4, len(msg4))), 0x1104},
		{"v3 IPv4 in the RFC 9568 form without pseudo-header", checksum(msg4, 0), 0xb398},
		{"v3 IPv4 unicast uses the peer as destination", checksum(unicast, pseudoHeaderSum(src4, peer, len(unicast))), 0x0f7b},
		{"v3 IPv4 unicast summed with the group instead differs", checksum(unicast, pseudoHeaderSum(src4, group4, len(unicast))), 0xf16a},
		{"v2 covers the message only", checksum(v2, 0), 0x30ee},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("checksum = %#04x, want %#04x", tt.got, tt.want)
			}
		})
	}
}

func TestDecodeAcceptsBothIPv4ChecksumForms(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.1"), GroupIPv4
	rfc5798, _ := hex.DecodeString("3134960200641104c0000265c0000266")
	rfc9568, _ := hex.DecodeString("313496020064b398c0000265c0000266")
	for name, msg := range map[string][]byte{"RFC 5798": rfc5798, "RFC 9568": rfc9568} {
		t.Run("a v3 IPv4 advert with the "+name+" checksum is accepted", func(t *testing.T) {
			var a Advertisement
			if err := a.Decode(msg, src, dst); err != nil {
				t.Fatalf("Decode: %v", err)
			}
		})
	}
	t.Run("the RFC 9568 form is not accepted for IPv6", func(t *testing.T) {
		a := Advertisement{Version: 3, VRID: 1, Priority: 100, Interval: time.Second, Addrs: addrs("2001:db8::1")}
		src6 := netip.MustParseAddr("fe80::1")
		msg, err := a.Append(nil, src6, GroupIPv6)
		if err != nil {
			t.Fatal(err)
		}
		msg[6], msg[7] = 0, 0
		sum := checksum(msg, 0)
		msg[6], msg[7] = byte(sum>>8), byte(sum)
		if err := a.Decode(msg, src6, GroupIPv6); !errors.Is(err, ErrChecksum) {
			t.Fatalf("Decode = %v, want %v", err, ErrChecksum)
		}
	})
}

// mustAppend encodes a with a checksum valid for src→dst.
func mustAppend(t testing.TB, a Advertisement, src, dst netip.Addr) []byte {
	t.Helper()
	b, err := a.Append(nil, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixChecksum rewrites the checksum of msg so it is valid for version and src→dst.
func fixChecksum(msg []byte, src, dst netip.Addr) {
	if len(msg) < headerLen {
		return
	}
	msg[6], msg[7] = 0, 0
	var sum uint16
	if msg[0]>>4 == 2 {
		sum = checksum(msg, 0)
	} else {
		sum = checksum(msg, pseudoHeaderSum(src.Unmap(), dst.Unmap(), len(msg)))
	}
	msg[6], msg[7] = byte(sum>>8), byte(sum)
}

func TestDecodeRejects(t *testing.T) {
	src4, src6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("fe80::1")
	v2 := Advertisement{Version: 2, VRID: 7, Priority: 100, Interval: time.Second, Addrs: addrs("192.0.2.100")}
	v3 := Advertisement{Version: 3, VRID: 7, Priority: 100, Interval: time.Second, Addrs: addrs("192.0.2.100", "192.0.2.101")}
	v3six := Advertisement{Version: 3, VRID: 7, Priority: 100, Interval: time.Second, Addrs: addrs("2001:db8::1")}
	tests := []struct {
		name     string
		msg      []byte
		src, dst netip.Addr
		want     error
	}{
		{"an empty message is too short", nil, src4, GroupIPv4, ErrLength},
		{"version 1 is unknown", func() []byte { b := mustAppend(t, v3, src4, GroupIPv4); b[0] = 0x11; return b }(), src4, GroupIPv4, ErrVersion},
		{"version 2 over IPv6 does not exist", mustAppend(t, v2, src4, GroupIPv4), src6, GroupIPv6, ErrVersion},
		{"a header cut short is too short", mustAppend(t, v3, src4, GroupIPv4)[:7], src4, GroupIPv4, ErrLength},
		{"fewer addresses than counted are too short", mustAppend(t, v3, src4, GroupIPv4)[:12], src4, GroupIPv4, ErrLength},
		{"version 2 without authentication data is too short", mustAppend(t, v2, src4, GroupIPv4)[:12], src4, GroupIPv4, ErrLength},
		{"IPv6 addresses cut short are too short", mustAppend(t, v3six, src6, GroupIPv6)[:20], src6, GroupIPv6, ErrLength},
		{"a flipped bit fails the checksum", func() []byte { b := mustAppend(t, v3, src4, GroupIPv4); b[2] ^= 1; return b }(), src4, GroupIPv4, ErrChecksum},
		{"a version 2 flipped bit fails the checksum", func() []byte { b := mustAppend(t, v2, src4, GroupIPv4); b[10] ^= 1; return b }(), src4, GroupIPv4, ErrChecksum},
		{"a unicast advert summed for another destination fails the checksum", mustAppend(t, v3, src4, netip.MustParseAddr("192.0.2.3")), src4, netip.MustParseAddr("192.0.2.2"), ErrChecksum},
		{"an IPv6 advert from another source fails the checksum", mustAppend(t, v3six, src6, GroupIPv6), netip.MustParseAddr("fe80::2"), GroupIPv6, ErrChecksum},
		{"type 2 is not an advertisement", func() []byte {
			b := mustAppend(t, v3, src4, GroupIPv4)
			b[0] = 0x32
			fixChecksum(b, src4, GroupIPv4)
			return b
		}(), src4, GroupIPv4, ErrType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Advertisement
			err := a.Decode(tt.msg, tt.src, tt.dst)
			if err != tt.want {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
			var pe *PacketError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("error %v carries no drop reason", err)
			}
		})
	}
}

func TestAppendRejects(t *testing.T) {
	src4, src6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("fe80::1")
	tests := []struct {
		name     string
		a        Advertisement
		src, dst netip.Addr
	}{
		{"version 2 with a fractional interval", Advertisement{Version: 2, Interval: 1500 * time.Millisecond}, src4, GroupIPv4},
		{"version 2 with a zero interval", Advertisement{Version: 2}, src4, GroupIPv4},
		{"version 2 over IPv6", Advertisement{Version: 2, Interval: time.Second}, src6, GroupIPv6},
		{"version 3 with an interval beyond 12 bits of centiseconds", Advertisement{Version: 3, Interval: 41 * time.Second}, src4, GroupIPv4},
		{"version 3 with an interval finer than a centisecond", Advertisement{Version: 3, Interval: 15 * time.Millisecond}, src4, GroupIPv4},
		{"version 4", Advertisement{Version: 4, Interval: time.Second}, src4, GroupIPv4},
		{"an IPv6 address in an IPv4 advert", Advertisement{Version: 3, Interval: time.Second, Addrs: addrs("2001:db8::1")}, src4, GroupIPv4},
		{"an IPv4 address in an IPv6 advert", Advertisement{Version: 3, Interval: time.Second, Addrs: addrs("192.0.2.10")}, src6, GroupIPv6},
		{"an address that is not set, in an IPv6 advert", Advertisement{Version: 3, Interval: time.Second, Addrs: make([]netip.Addr, 1)}, src6, GroupIPv6},
		{"source and destination of different families", Advertisement{Version: 3, Interval: time.Second}, src4, GroupIPv6},
		{"256 addresses", Advertisement{Version: 3, Interval: time.Second, Addrs: make([]netip.Addr, 256)}, src4, GroupIPv4},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is not encoded", func(t *testing.T) {
			if b, err := tt.a.Append(nil, tt.src, tt.dst); err == nil {
				t.Fatalf("Append = %x, want an error", b)
			}
		})
	}
}

func TestVersion3IntervalUsesTwelveBitsAndIgnoresReservedBits(t *testing.T) {
	src := netip.MustParseAddr("192.0.2.1")
	a := Advertisement{Version: 3, VRID: 1, Priority: 1, Interval: 40950 * time.Millisecond}
	msg := mustAppend(t, a, src, GroupIPv4)
	if got := [2]byte{msg[4], msg[5]}; got != [2]byte{0x0f, 0xff} {
		t.Fatalf("interval bytes = %x, want 0fff", got)
	}
	msg[4] |= 0xf0 // reserved bits set by a sender must be ignored (RFC 5798 §5.2.6)
	fixChecksum(msg, src, GroupIPv4)
	var got Advertisement
	if err := got.Decode(msg, src, GroupIPv4); err != nil {
		t.Fatal(err)
	}
	if got.Interval != a.Interval {
		t.Fatalf("Interval = %v, want %v", got.Interval, a.Interval)
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	captures := readCaptures(t)
	var a Advertisement
	a.Addrs = make([]netip.Addr, 0, 8)
	for _, name := range []string{"v2_pass", "v3_ipv4", "v3_ipv6", "v3_unicast"} {
		c := captures[name]
		allocs := testing.AllocsPerRun(100, func() {
			if err := a.Decode(c.msg, c.src, c.dst); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Decode of %s: %v allocations per run, want 0", name, allocs)
		}
	}
	bad := append([]byte(nil), captures["v3_ipv4"].msg...)
	bad[2] ^= 1
	allocs := testing.AllocsPerRun(100, func() {
		if err := a.Decode(bad, captures["v3_ipv4"].src, GroupIPv4); err != ErrChecksum {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("rejecting a bad checksum: %v allocations per run, want 0", allocs)
	}
}

func BenchmarkDecode(b *testing.B) {
	msg, _ := hex.DecodeString("3134960200641104c0000265c0000266")
	src := netip.MustParseAddr("192.0.2.1")
	var a Advertisement
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Decode(msg, src, GroupIPv4); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzDecode (keepalived captures and broken
	// variants). fix recomputes the checksum first, so the fuzzer reaches the
	// parser behind it.
	f.Fuzz(func(t *testing.T, msg []byte, ipv6, unicast, fix bool) {
		src, dst := netip.MustParseAddr("192.0.2.1"), GroupIPv4
		if unicast {
			dst = netip.MustParseAddr("192.0.2.2")
		}
		if ipv6 {
			src, dst = netip.MustParseAddr("fe80::1"), GroupIPv6
			if unicast {
				dst = netip.MustParseAddr("2001:db8::2")
			}
		}
		if fix {
			msg = append([]byte(nil), msg...)
			fixChecksum(msg, src, dst)
		}
		var a Advertisement
		if err := a.Decode(msg, src, dst); err != nil {
			var pe *PacketError
			if !errors.As(err, &pe) {
				t.Fatalf("Decode error %v is not a *PacketError", err)
			}
			return
		}
		if a.Interval == 0 {
			return // not encodable; the receive path drops it (reason interval)
		}
		enc, err := a.Append(nil, src, dst)
		if err != nil {
			t.Fatalf("Append of a decoded advert %+v: %v", a, err)
		}
		// The re-encoded message equals the input up to its own length, but
		// for the v3 reserved bits and a checksum in the RFC 9568 form.
		want := append([]byte(nil), msg[:len(enc)]...)
		if a.Version == 3 {
			want[4] &= 0x0f
		}
		want[6], want[7] = enc[6], enc[7]
		if diff := cmp.Diff(hex.EncodeToString(want), hex.EncodeToString(enc)); diff != "" {
			t.Fatalf("round trip (-decoded input +re-encoded):\n%s", diff)
		}
		var again Advertisement
		if err := again.Decode(enc, src, dst); err != nil {
			t.Fatalf("decode of re-encoded %x: %v", enc, err)
		}
		if diff := cmp.Diff(a, again, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
