package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vrrplb/vrrplb/config"
)

func TestReceivedPacketsAreDroppedAndCountedByReason(t *testing.T) {
	good := Advertisement{Version: 2, VRID: 51, Priority: 200, Interval: time.Second, AuthType: AuthSimpleText,
		AuthData: [8]byte{'s', 'e', 'c', 'r', 'e', 't'}, Addrs: []netip.Addr{vip.Addr()}}
	with := func(f func(a *Advertisement)) Advertisement {
		a := good
		f(&a)
		return a
	}
	tests := []struct {
		reason Reason
		msg    func(t *testing.T) pkt
	}{
		{ReasonTTL, func(t *testing.T) pkt {
			p := advertFrom(t, good, addrMid, GroupIPv4)
			p.info.HopLimit = 254
			return p
		}},
		{ReasonVersion, func(t *testing.T) pkt {
			return advertFrom(t, with(func(a *Advertisement) { a.Version = 3 }), addrMid, GroupIPv4)
		}},
		{ReasonLength, func(t *testing.T) pkt {
			p := advertFrom(t, good, addrMid, GroupIPv4)
			p.msg = p.msg[:10]
			return p
		}},
		{ReasonChecksum, func(t *testing.T) pkt {
			p := advertFrom(t, good, addrMid, GroupIPv4)
			p.msg[2]++
			return p
		}},
		{ReasonType, func(t *testing.T) pkt {
			p := advertFrom(t, good, addrMid, GroupIPv4)
			p.msg[0] = 0x22
			fixChecksum(p.msg, addrMid, GroupIPv4)
			return p
		}},
		{ReasonVRID, func(t *testing.T) pkt {
			return advertFrom(t, with(func(a *Advertisement) { a.VRID = 52 }), addrMid, GroupIPv4)
		}},
		{ReasonAuth, func(t *testing.T) pkt {
			return advertFrom(t, with(func(a *Advertisement) { a.AuthData[0] = 'S' }), addrMid, GroupIPv4)
		}},
		{ReasonAuth, func(t *testing.T) pkt {
			return advertFrom(t, with(func(a *Advertisement) { a.AuthType = AuthNone; a.AuthData = [8]byte{} }), addrMid, GroupIPv4)
		}},
		{ReasonInterval, func(t *testing.T) pkt {
			return advertFrom(t, with(func(a *Advertisement) { a.Interval = 2 * time.Second }), addrMid, GroupIPv4)
		}},
		{ReasonSelf, func(t *testing.T) pkt {
			return advertFrom(t, good, addrLow, GroupIPv4)
		}},
	}
	h := newHarness(t)
	cfg := instanceConfig("a", 100)
	cfg.Version = 2
	cfg.AuthPass = "secret"
	a := h.add(cfg, addrLow, nil)
	h.start(a)
	want := map[Reason]float64{}
	for _, tt := range tests {
		t.Run("a packet with a bad "+string(tt.reason)+" is dropped and counted", func(t *testing.T) {
			inject(h, a, tt.msg(t))
			want[tt.reason]++
			for _, r := range dropReasons {
				if got := testutil.ToFloat64(h.metrics.dropped.WithLabelValues("a", string(r))); got != want[r] {
					t.Errorf("%s{reason=%q} = %v, want %v", MetricPacketsDropped, r, got, want[r])
				}
			}
			if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("a")); got != 0 {
				t.Errorf("%s = %v, want 0", MetricAdvertsReceived, got)
			}
		})
	}
	t.Run("a good advert is received, not dropped, and followed", func(t *testing.T) {
		inject(h, a, advertFrom(t, good, addrMid, GroupIPv4))
		if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("a")); got != 1 {
			t.Errorf("%s = %v, want 1", MetricAdvertsReceived, got)
		}
		if got := a.in.Status().MasterIP; got != addrMid {
			t.Errorf("MasterIP = %v, want %v", got, addrMid)
		}
	})
	t.Run("an advert listing other addresses is logged, not dropped", func(t *testing.T) {
		inject(h, a, advertFrom(t, with(func(a *Advertisement) { a.Addrs = addrs("192.0.2.200") }), addrMid, GroupIPv4))
		if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("a")); got != 2 {
			t.Errorf("%s = %v, want 2", MetricAdvertsReceived, got)
		}
		if !strings.Contains(a.logs.String(), "advert lists other virtual IPs") {
			t.Errorf("no log line about the address list:\n%s", a.logs.String())
		}
	})
	t.Run("a unicast advert is held to TTL 255 too", func(t *testing.T) {
		p := advertFrom(t, good, addrMid, addrLow)
		p.info.HopLimit = 64
		inject(h, a, p)
		if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("a")); got != 2 {
			t.Errorf("%s = %v, want 2", MetricAdvertsReceived, got)
		}
		if got := testutil.ToFloat64(h.metrics.dropped.WithLabelValues("a", string(ReasonTTL))); got != want[ReasonTTL]+1 {
			t.Errorf("%s{reason=\"ttl\"} = %v, want %v", MetricPacketsDropped, got, want[ReasonTTL]+1)
		}
	})
}

func TestUnicastAdvertsGoToEveryPeerWithTheirOwnChecksum(t *testing.T) {
	h := newHarness(t)
	cfg := instanceConfig("a", 255)
	cfg.UnicastPeers = []netip.Addr{addrMid, addrHigh}
	a := h.add(cfg, addrLow, nil)
	h.start(a)
	sent := a.transport.sentAdverts(t) // decoding checks each checksum against its destination
	var dsts []netip.Addr
	for _, s := range sent {
		dsts = append(dsts, s.dst)
	}
	if diff := cmp.Diff([]netip.Addr{addrMid, addrHigh}, dsts, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Fatalf("destinations (-want +got):\n%s", diff)
	}
}

func TestKeepalivedAdvertsAreAcceptedByAMatchingInstance(t *testing.T) {
	captures := readCaptures(t)
	tests := []struct {
		capture string
		cfg     func() config.Instance
		local   netip.Addr
	}{
		{"v2_pass", func() config.Instance {
			c := instanceConfig("k", 100)
			c.Version, c.AuthPass = 2, "vrrplb12"
			return c
		}, netip.MustParseAddr("192.0.2.9")},
		{"v3_ipv4", func() config.Instance {
			c := instanceConfig("k", 100)
			c.VirtualRouterID = 52
			c.VirtualIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.101/24"), netip.MustParsePrefix("192.0.2.102/24")}
			return c
		}, netip.MustParseAddr("192.0.2.9")},
		{"v3_ipv6", func() config.Instance {
			c := instanceConfig("k", 100)
			c.VirtualRouterID = 53
			c.Family = config.IPv6
			c.VirtualIPs = []netip.Prefix{netip.MustParsePrefix("fe80::53/64"), netip.MustParsePrefix("2001:db8::53/64")}
			return c
		}, netip.MustParseAddr("fe80::9")},
		{"v3_unicast", func() config.Instance {
			c := instanceConfig("k", 100)
			c.VirtualRouterID = 54
			c.UnicastPeers = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
			c.VirtualIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.104/24")}
			return c
		}, netip.MustParseAddr("192.0.2.2")},
	}
	for _, tt := range tests {
		t.Run("keepalived's "+tt.capture+" advert is followed by a backup", func(t *testing.T) {
			h := newHarness(t)
			k := h.add(tt.cfg(), tt.local, nil)
			h.start(k)
			c := captures[tt.capture]
			inject(h, k, pkt{c.msg, PacketInfo{Src: c.src, Dst: c.dst, HopLimit: TTL}})
			if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("k")); got != 1 {
				t.Fatalf("%s = %v, want 1 (dropped: %v)", MetricAdvertsReceived, got, droppedCounts(h, "k"))
			}
			if got := k.in.Status().MasterIP; got != c.src {
				t.Errorf("MasterIP = %v, want keepalived's %v", got, c.src)
			}
			if strings.Contains(k.logs.String(), "other virtual IPs") {
				t.Errorf("keepalived's address list was taken for another:\n%s", k.logs.String())
			}
		})
	}
}

func TestIPv6InstancesConvergeOnTheHigherPriority(t *testing.T) {
	h := newHarness(t)
	cfg := func(name string, prio uint8) config.Instance {
		c := instanceConfig(name, prio)
		c.Family = config.IPv6
		c.AdvertInterval = 100 * time.Millisecond
		c.VirtualIPs = []netip.Prefix{netip.MustParsePrefix("2001:db8::100/64")}
		return c
	}
	a := h.add(cfg("a", 100), netip.MustParseAddr("fe80::1"), nil)
	b := h.add(cfg("b", 200), netip.MustParseAddr("fe80::2"), nil)
	h.start(a, b)
	h.advance(2 * time.Second)
	if diff := cmp.Diff([]string{"backup", "master"}, h.states()); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	if got := a.in.Status().MasterIP; got != netip.MustParseAddr("fe80::2") {
		t.Errorf("a's MasterIP = %v", got)
	}
	if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("a")); got < 10 {
		t.Errorf("a received %v adverts in 2s at 100ms, want at least 10", got)
	}

	// Its own advert looped back, reported with a zone, is ignored as self.
	own := Advertisement{Version: 3, VRID: 51, Priority: 100, Interval: 100 * time.Millisecond, Addrs: addrs("2001:db8::100")}
	p := advertFrom(t, own, netip.MustParseAddr("fe80::1"), GroupIPv6)
	p.info.Src = p.info.Src.WithZone("eth0")
	inject(h, a, p)
	if got := droppedCounts(h, "a"); got[ReasonSelf] != 1 {
		t.Errorf("drops after our own looped-back advert: %v, want self 1", got)
	}
}

func TestAMasterFollowsItsTransportToANewSourceAddress(t *testing.T) {
	h := newHarness(t)
	a := h.add(instanceConfig("a", 255), addrLow, nil)
	h.start(a)
	h.advance(1500 * time.Millisecond)
	moved := netip.MustParseAddr("192.0.2.50")
	a.transport.setLocal(moved)
	h.advance(time.Second)
	// sentAdverts checks each checksum against the source it left from.
	sent := a.transport.sentAdverts(t)
	if got := sent[len(sent)-1]; got.priority != 255 {
		t.Fatalf("last advert %+v", got)
	}
	if got := a.in.Status().MasterIP; got != moved {
		t.Errorf("MasterIP = %v, want the new source %v", got, moved)
	}
	if !strings.Contains(a.logs.String(), "source address changed") {
		t.Errorf("no log line for the new source:\n%s", a.logs.String())
	}
}
