package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vrrplb/vrrplb/config"
)

// These tests play an attacker on the LAN: adverts forged to take the VIP,
// to hold it hostage, or to make the master flood the segment.

// masterAlone starts one instance and lets it become master.
func masterAlone(t *testing.T, h *harness, cfg func(c *config.Instance)) *host {
	t.Helper()
	c := instanceConfig("a", 100)
	if cfg != nil {
		cfg(&c)
	}
	a := h.add(c, addrLow, nil)
	h.start(a)
	h.advance(5 * time.Second)
	if got := a.in.Status().State; got != "master" {
		t.Fatalf("alone, a is %s, want master", got)
	}
	return a
}

func (h *harness) dropped(name string, r Reason) float64 {
	return testutil.ToFloat64(h.metrics.dropped.WithLabelValues(name, string(r)))
}

func TestAForgedUnicastAdvertCannotTakeTheVIP(t *testing.T) {
	forged := Advertisement{Version: 3, VRID: 51, Priority: 255, Interval: time.Second, Addrs: []netip.Addr{vip.Addr()}}
	tests := []struct {
		name string
		src  netip.Addr
		ttl  int
		want Reason
	}{
		{"an advert from an address that is not a listed peer is dropped as peer", addrHigh, TTL, ReasonPeer},
		{"an advert from a listed peer that crossed a router (TTL 64) is dropped as ttl", addrMid, 64, ReasonTTL},
		{"an advert from a listed peer at TTL 254 is dropped as ttl", addrMid, 254, ReasonTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			a := masterAlone(t, h, func(c *config.Instance) { c.UnicastPeers = []netip.Addr{addrMid} })
			p := advertFrom(t, forged, tt.src, addrLow)
			p.info.HopLimit = tt.ttl
			inject(h, a, p)
			if got := a.in.Status().State; got != "master" {
				t.Errorf("after one forged priority-255 advert a is %s, want master", got)
			}
			if got := h.dropped("a", tt.want); got != 1 {
				t.Errorf("%s{reason=%q} = %v, want 1", MetricPacketsDropped, tt.want, got)
			}
		})
	}
	t.Run("an advert from a listed peer at TTL 255 is followed", func(t *testing.T) {
		h := newHarness(t)
		a := masterAlone(t, h, func(c *config.Instance) { c.UnicastPeers = []netip.Addr{addrMid} })
		inject(h, a, advertFrom(t, forged, addrMid, addrLow))
		if got := a.in.Status().State; got != "backup" {
			t.Errorf("after a priority-255 advert from its peer a is %s, want backup", got)
		}
	})
}

func TestAForgedLongIntervalCostsAtMostOneMasterDownIntervalAndASecond(t *testing.T) {
	// a: priority 100, 1 s adverts: Master_Down_Interval 3 s + 156/256 s.
	bound := mdi(100) + time.Second
	forged := Advertisement{Version: 3, VRID: 51, Priority: 200, Addrs: []netip.Addr{vip.Addr()}}

	t.Run("an interval far longer than configured is dropped as interval", func(t *testing.T) {
		h := newHarness(t)
		a := masterAlone(t, h, nil)
		f := forged
		f.Interval = 40950 * time.Millisecond
		inject(h, a, advertFrom(t, f, addrMid, GroupIPv4))
		if got := a.in.Status().State; got != "master" {
			t.Errorf("after an advert with a 40.95 s interval a is %s, want master", got)
		}
		if got := h.dropped("a", ReasonInterval); got != 1 {
			t.Errorf("%s{reason=\"interval\"} = %v, want 1", MetricPacketsDropped, got)
		}
	})
	for _, iv := range []time.Duration{1500 * time.Millisecond, 3 * time.Second} {
		t.Run("one advert with a "+iv.String()+" interval holds a back no longer than the bound", func(t *testing.T) {
			h := newHarness(t)
			a := masterAlone(t, h, nil)
			f := forged
			f.Interval = iv
			forgedAt := h.clock.Now()
			inject(h, a, advertFrom(t, f, addrMid, GroupIPv4))
			if got := a.in.Status().State; got != "backup" {
				t.Fatalf("after a higher-priority advert a is %s, want backup", got)
			}
			h.advance(bound)
			if got := a.in.Status().State; got != "master" {
				t.Errorf("%v after the forged advert a is %s, want master again (bound %v)", h.clock.Now().Sub(forgedAt), got, bound)
			}
		})
	}
}

func TestAFloodOfLowerPriorityAdvertsIsAnsweredAtABoundedRate(t *testing.T) {
	h := newHarness(t)
	a := masterAlone(t, h, func(c *config.Instance) { c.Priority = 200 })
	lower := Advertisement{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip.Addr()}}
	p := advertFrom(t, lower, addrMid, GroupIPv4)
	// Let the start-up burst end, then count from here.
	h.advance(time.Second)
	sentBefore := len(a.transport.sentAdverts(t))
	garpBefore := len(a.announcer.times())

	const flood, over = 2000, 2 * time.Second
	for range flood {
		inject(h, a, p)
		h.advance(over / flood)
	}
	sent := len(a.transport.sentAdverts(t)) - sentBefore
	garps := len(a.announcer.times()) - garpBefore
	t.Logf("%d lower-priority adverts over %v: %d adverts and %d gratuitous ARPs sent", flood, over, sent, garps)
	// Two seconds of 1 s adverts, plus at most one answer a second.
	if sent > 4 {
		t.Errorf("the master sent %d adverts in %v of flood, want at most 4", sent, over)
	}
	// At most one answer a second, each a burst of garp_repeat (3).
	if garps > 2*3 {
		t.Errorf("the master sent %d gratuitous ARPs in %v of flood, want at most 6", garps, over)
	}
	if got := a.in.Status().State; got != "master" {
		t.Errorf("a is %s, want master", got)
	}

	t.Run("a second master that loses is still answered at once, adverts and gratuitous ARPs", func(t *testing.T) {
		h.advance(5 * time.Second)
		sentBefore := len(a.transport.sentAdverts(t))
		garpBefore := len(a.announcer.times())
		h.advance(10 * time.Millisecond)
		inject(h, a, p)
		if got := len(a.transport.sentAdverts(t)) - sentBefore; got != 1 {
			t.Errorf("answered with %d adverts, want 1", got)
		}
		if got := len(a.announcer.times()) - garpBefore; got != 1 {
			t.Errorf("answered with %d gratuitous ARPs, want the first of a burst", got)
		}
	})
}
