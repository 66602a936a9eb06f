package bgp

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecide(t *testing.T) {
	lenient := Announcement{Name: "vip", PrependWhenUnhealthy: 3}
	strict := Announcement{Name: "vip", PrependWhenUnhealthy: 0}
	healthy := Situation{Known: true, Healthy: true}
	sick := Situation{Known: true, Healthy: false}
	with := func(s Situation, f func(*Situation)) Situation { f(&s); return s }
	for _, tc := range []struct {
		name string
		a    Announcement
		s    Situation
		want Advert
	}{
		{"a healthy host announces with no penalty", lenient, healthy,
			Advert{State: StateAnnounced, Why: WhyHealthy}},
		{"a host with no healthy backend still announces, prepended", lenient, sick,
			Advert{State: StateDepreferred, Why: WhyUnhealthy, Prepend: 3}},
		{"with prepend_when_unhealthy 0 a host with no healthy backend withdraws", strict, sick,
			Advert{State: StateWithdrawn, Why: WhyUnhealthyStrict}},
		{"nothing is announced before every tracked frontend has a verdict", lenient, Situation{Healthy: true},
			Advert{State: StateWithdrawn, Why: WhyStarting}},
		{"maintenance withdraws a healthy host", lenient, with(healthy, func(s *Situation) { s.Maintenance = true }),
			Advert{State: StateWithdrawn, Why: WhyMaintenance}},
		{"graceful shutdown re-announces a healthy host with the community", lenient,
			with(healthy, func(s *Situation) { s.Phase = PhaseGracefulShutdown }),
			Advert{State: StateDepreferred, Why: WhyGracefulShutdown, GracefulShutdown: true}},
		{"graceful shutdown keeps an unhealthy host's prepending", lenient,
			with(sick, func(s *Situation) { s.Phase = PhaseGracefulShutdown }),
			Advert{State: StateDepreferred, Why: WhyGracefulShutdown, Prepend: 3, GracefulShutdown: true}},
		{"graceful shutdown does not bring back a strict withdrawal", strict,
			with(sick, func(s *Situation) { s.Phase = PhaseGracefulShutdown }),
			Advert{State: StateWithdrawn, Why: WhyUnhealthyStrict}},
		{"graceful shutdown does not bring back a maintenance withdrawal", lenient,
			with(healthy, func(s *Situation) { s.Phase = PhaseGracefulShutdown; s.Maintenance = true }),
			Advert{State: StateWithdrawn, Why: WhyMaintenance}},
		{"stopped withdraws whatever the health", lenient, with(healthy, func(s *Situation) { s.Phase = PhaseStopped }),
			Advert{State: StateWithdrawn, Why: WhyStopped}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Decide(tc.a, tc.s)); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	a := Announcement{
		Name:                 "vip",
		Prefixes:             []netip.Prefix{netip.MustParsePrefix("10.77.0.100/32"), netip.MustParsePrefix("2001:db8::100/128")},
		Communities:          []uint32{65000<<16 | 100},
		Large:                []LargeCommunity{{65000, 1, 2}},
		PrependWhenUnhealthy: 2,
	}
	v4, v6 := a.Prefixes[0], a.Prefixes[1]
	for _, tc := range []struct {
		name string
		adv  Advert
		want []Route
	}{
		{"announced carries the configured communities and an empty AS path", Advert{State: StateAnnounced},
			[]Route{
				{Prefix: v4, Communities: []uint32{65000<<16 | 100}, Large: []LargeCommunity{{65000, 1, 2}}},
				{Prefix: v6, Communities: []uint32{65000<<16 | 100}, Large: []LargeCommunity{{65000, 1, 2}}},
			}},
		{"depreferred prepends the local AS", Advert{State: StateDepreferred, Prepend: 2},
			[]Route{
				{Prefix: v4, ASPath: []uint32{64601, 64601}, Communities: []uint32{65000<<16 | 100}, Large: []LargeCommunity{{65000, 1, 2}}},
				{Prefix: v6, ASPath: []uint32{64601, 64601}, Communities: []uint32{65000<<16 | 100}, Large: []LargeCommunity{{65000, 1, 2}}},
			}},
		{"graceful shutdown adds 65535:0 to the communities", Advert{State: StateDepreferred, GracefulShutdown: true},
			[]Route{
				{Prefix: v4, Communities: []uint32{65000<<16 | 100, 0xFFFF0000}, Large: []LargeCommunity{{65000, 1, 2}}},
				{Prefix: v6, Communities: []uint32{65000<<16 | 100, 0xFFFF0000}, Large: []LargeCommunity{{65000, 1, 2}}},
			}},
		{"withdrawn withdraws every prefix", Advert{State: StateWithdrawn},
			[]Route{{Prefix: v4, Withdraw: true}, {Prefix: v6, Withdraw: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Routes(a, tc.adv, 64601), cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
				t.Errorf("Routes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPathCarriesTheRoute(t *testing.T) {
	r := Route{Prefix: netip.MustParsePrefix("10.77.0.100/32"), ASPath: []uint32{64601, 64601},
		Communities: []uint32{CommunityGracefulShutdown}, Large: []LargeCommunity{{65000, 1, 2}}}
	p, err := path(r)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range p.Attrs {
		got[a.GetType().String()] = a.String()
	}
	want := map[string]string{
		"BGP_ATTR_TYPE_ORIGIN":          "{Origin: i}",
		"BGP_ATTR_TYPE_AS_PATH":         "{AsPath: 64601 64601}",
		"BGP_ATTR_TYPE_NEXT_HOP":        "{Nexthop: 0.0.0.0}",
		"BGP_ATTR_TYPE_COMMUNITIES":     "{Communities: planned-shut}",
		"BGP_ATTR_TYPE_LARGE_COMMUNITY": "{LargeCommunity: [ 65000:1:2]}",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("path attributes (-want +got):\n%s", diff)
	}
	if p.Nlri.String() != "10.77.0.100/32" {
		t.Errorf("NLRI %s, want 10.77.0.100/32", p.Nlri)
	}
}

func TestSnakeKey(t *testing.T) {
	for in, want := range map[string]string{
		"Topic": "topic", "Key": "key", "Error": "err", "Communicated-Reason": "communicated_reason",
		"AdminState": "admin_state", "peer": "peer",
	} {
		if got := snakeKey(in); got != want {
			t.Errorf("snakeKey(%q) = %q, want %q", in, got, want)
		}
	}
}
