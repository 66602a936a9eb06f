package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/vrrp"
)

// These tests forge adverts from a lab host, as an attacker on the LAN (or
// one router away) would, and check that they cannot take the VIP, hold it
// hostage, or make the master flood the segment.

// forged encodes a VRRPv3 advert from s's host to dst.
func (s *spoof) forged(t *testing.T, prio int, interval time.Duration, dst netip.Addr, vips ...netip.Addr) []byte {
	t.Helper()
	a := vrrp.Advertisement{Version: 3, VRID: 51, Priority: uint8(prio), Interval: interval, Addrs: vips}
	b, err := a.Append(nil, s.src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendTo writes msg n times to the unicast address dst with TTL ttl.
func (s *spoof) sendTo(t *testing.T, msg []byte, dst netip.Addr, ttl, n int) {
	t.Helper()
	if err := s.pc.SetTTL(ttl); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := s.c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			t.Fatalf("send advert %d of %d to %s: %v", i+1, n, dst, err)
		}
	}
}

func TestHostileForgedUnicastAdvertsCannotTakeTheVIP(t *testing.T) {
	l := NewLab(t, 3)
	vip := VIP4.Addr()
	h1, h2, attacker := l.Host(1), l.Host(2), l.Host(3)
	l.StartMaster(t, h1, VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}, UnicastPeers: []netip.Addr{h2.Addr4.Addr()}})
	l.StartBackup(t, h2, VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}, UnicastPeers: []netip.Addr{h1.Addr4.Addr()}})
	before := transitions(t, h1)

	s := newSpoof(t, attacker, 255)
	msg := s.forged(t, 255, advert, h1.Addr4.Addr(), vip)
	t.Run("priority 255 from an address not in unicast_peers is dropped as peer", func(t *testing.T) {
		s.sendTo(t, msg, h1.Addr4.Addr(), 255, 5)
		waitDropped(t, h1, vrrp.ReasonPeer, 5)
	})
	t.Run("priority 255 with TTL 64 is dropped as ttl, unicast too", func(t *testing.T) {
		s.sendTo(t, msg, h1.Addr4.Addr(), 64, 5)
		waitDropped(t, h1, vrrp.ReasonTTL, 5)
	})
	l.StaysMaster(t, h1, vip, 5*advert)
	if got := transitions(t, h1); got != before {
		t.Errorf("forged unicast adverts moved h1: transitions %v→%v", before, got)
	}
	if got := h2.State(); got != "backup" {
		t.Errorf("h2 is %s, want backup", got)
	}
}

func TestHostileOneForgedLongIntervalCannotHoldTheVIPHostage(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	h1, attacker := l.Host(1), l.Host(2)
	l.StartMaster(t, h1, VRRPConf{Priority: 150, VIPs: []netip.Prefix{VIP4}})

	// One higher-priority advert announcing the longest interval there is.
	s := newSpoof(t, attacker, 255)
	msg := s.forged(t, 200, 40950*time.Millisecond, vrrp.GroupIPv4, vip)
	if _, err := s.send(msg, 1, 1); err != nil {
		t.Fatal(err)
	}
	waitDropped(t, h1, vrrp.ReasonInterval, 1)
	// Without the bound h1 would step down and wait 3 × 40.95 s.
	l.StaysMaster(t, h1, vip, 3*advert+skew(150, advert)+time.Second)
}

func TestHostileAFloodOfLowerPriorityAdvertsIsNotAmplified(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	h1, attacker := l.Host(1), l.Host(2)
	l.StartMaster(t, h1, VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	time.Sleep(time.Second) // the start-up burst of gratuitous ARPs is over

	metric := func(name string) float64 {
		n, err := h1.Metric(name)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	const cpu = "vrrplb_vrrp_engine_process_cpu_seconds_total"
	sent0, garp0, recv0, cpu0 := metric("vrrplb_adverts_sent_total"), metric("vrrplb_garp_sent_total"), metric("vrrplb_adverts_received_total"), metric(cpu)
	const flood, rate = 20000, 10000
	s := newSpoof(t, attacker, 255)
	start := time.Now()
	if _, err := s.send(s.forged(t, 100, advert, vrrp.GroupIPv4, vip), flood, rate); err != nil {
		t.Fatal(err)
	}
	// Let h1 read what is queued, then count.
	Eventually(t, 5*time.Second, func() (bool, string) {
		n := metric("vrrplb_adverts_received_total") - recv0
		return n+rawDrops(t, h1) >= flood, fmt.Sprintf("h1 received %v of %d", n, flood)
	})
	took := time.Since(start)
	sent, garps := metric("vrrplb_adverts_sent_total")-sent0, metric("vrrplb_garp_sent_total")-garp0
	time.Sleep(time.Second) // the engine's figures reach /metrics at a bounded rate
	t.Logf("%d lower-priority adverts over %s: h1 received %v, sent %v adverts and %v gratuitous ARPs; its VRRP engine used %.2f s of CPU",
		flood, took.Round(time.Millisecond), metric("vrrplb_adverts_received_total")-recv0, sent, garps, metric(cpu)-cpu0)
	// Its own adverts, plus at most one answer a second, each with a burst of
	// garp_repeat (5) announcements.
	secs := took.Seconds() + 1
	if limit := secs/advert.Seconds() + secs + 1; sent > limit {
		t.Errorf("h1 sent %v adverts in %s of flood, want at most %.0f", sent, took, limit)
	}
	if limit := 5 * (secs + 1); garps > limit {
		t.Errorf("h1 sent %v gratuitous ARPs in %s of flood, want at most %.0f", garps, took, limit)
	}
	l.StaysMaster(t, h1, vip, 3*advert)
}
