package bgp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vrrplb/vrrplb/internal/poll"
)

var (
	vip1  = netip.MustParsePrefix("10.77.0.100/32")
	vip2  = netip.MustParsePrefix("10.77.0.101/32")
	peerA = netip.MustParseAddr("10.90.0.1")
	peerB = netip.MustParseAddr("10.90.1.1")
)

func testConfig() Config {
	return Config{
		Global: Global{ASN: 64601, RouterID: netip.MustParseAddr("10.90.0.2")},
		Peers: []Peer{
			{Address: peerA, ASN: 64512, HoldTime: 3 * time.Second, ConnectRetry: 2 * time.Second},
			{Address: peerB, ASN: 64512, HoldTime: 3 * time.Second, ConnectRetry: 2 * time.Second},
		},
		Announcements: []Announcement{{
			Name: "apiserver-vip", Prefixes: []netip.Prefix{vip1}, PrependWhenUnhealthy: 3,
			TrackFrontends: []string{"apiserver"},
		}},
		GracefulShutdown: 5 * time.Second,
	}
}

func TestAnnouncerStartsWithdrawnUntilHealthIsKnown(t *testing.T) {
	h := newHarness(t, testConfig(), "apiserver")
	s := h.speaker()
	if _, ok := s.route(vip1); ok {
		t.Fatal("announced before the tracked frontend had a verdict")
	}
	if !h.addrs.has(vip1) {
		t.Error("the prefix is not on the host: the proxy would not answer on it")
	}
	if diff := cmp.Diff([]string{"start", "add-peer 10.90.0.1", "add-peer 10.90.1.1"}, s.calls()); diff != "" {
		t.Errorf("speaker calls (-want +got):\n%s", diff)
	}
	h.verdict("apiserver", true)
	r, ok := s.route(vip1)
	if !ok || len(r.ASPath) != 0 {
		t.Fatalf("healthy: route %+v announced %v, want announced with an empty AS path", r, ok)
	}
}

func TestAnnouncerFollowsHealth(t *testing.T) {
	h := newHarness(t, testConfig(), "apiserver")
	s := h.speaker()
	h.verdict("apiserver", true)
	h.verdict("apiserver", false)
	r, ok := s.route(vip1)
	if !ok || !slices.Equal(r.ASPath, []uint32{64601, 64601, 64601}) {
		t.Fatalf("no healthy backend: route %+v announced %v, want the local AS prepended 3 times", r, ok)
	}
	if got := h.a.Status(context.Background()).Announcements[0].State; got != StateDepreferred {
		t.Errorf("status %v, want depreferred", got)
	}
	h.verdict("apiserver", true)
	if r, _ := s.route(vip1); len(r.ASPath) != 0 {
		t.Errorf("healthy again: AS path %v, want empty", r.ASPath)
	}
}

func TestAnnouncerSendsOnlyChanges(t *testing.T) {
	h := newHarness(t, testConfig(), "apiserver")
	s := h.speaker()
	h.verdict("apiserver", true)
	before := len(s.calls())
	h.verdict("apiserver", true)
	if err := h.a.SetMaintenance(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got := s.calls()[before:]; len(got) != 0 {
		t.Errorf("speaker calls without a change: %v", got)
	}
}

func TestAnnouncerMaintenanceWithdrawsAndKeepsTheAddress(t *testing.T) {
	h := newHarness(t, testConfig(), "apiserver")
	s := h.speaker()
	h.verdict("apiserver", true)
	if err := h.a.SetMaintenance(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.route(vip1); ok {
		t.Error("maintenance on: still announced")
	}
	if !h.addrs.has(vip1) {
		t.Error("maintenance on: the prefix left the host; flows already here would be refused")
	}
	if !h.a.Maintenance() || !h.a.Status(context.Background()).Maintenance {
		t.Error("Maintenance() and Status do not say maintenance is on")
	}
	if err := h.a.SetMaintenance(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.route(vip1); !ok {
		t.Error("maintenance off: not announced again")
	}
}

func TestAnnouncerShutdownIsGraceful(t *testing.T) {
	h := newHarness(t, testConfig(), "apiserver")
	s := h.speaker()
	h.verdict("apiserver", true)
	done := make(chan error, 1)
	go func() { done <- h.a.Shutdown(context.Background()) }()

	poll.Until(t, 5*time.Second, "the re-announcement with GRACEFUL_SHUTDOWN", func() bool {
		r, _ := s.route(vip1)
		return slices.Contains(r.Communities, CommunityGracefulShutdown)
	})
	select {
	case <-done:
		t.Fatal("Shutdown returned before graceful_shutdown ran out")
	default:
	}
	poll.Until(t, 5*time.Second, "the graceful_shutdown wait", func() bool { return h.clock.Pending() == 1 })
	h.clock.Advance(testConfig().GracefulShutdown)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := s.route(vip1); ok {
		t.Error("after graceful_shutdown: still announced")
	}
	if s.stopped {
		t.Error("sessions closed by Shutdown: they stay until Run ends")
	}
	h.stop()
	if !s.stopped {
		t.Error("Run ended without stopping the speaker")
	}
	if h.addrs.has(vip1) {
		t.Error("Run ended with the prefix still on the host")
	}
}

func TestAnnouncerShutdownDoesNotWaitWithNothingAnnounced(t *testing.T) {
	h := newHarness(t, testConfig(), "apiserver")
	// No verdict: nothing announced, so nothing to move away from.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAnnouncerReloadTouchesOnlyWhatChanged(t *testing.T) {
	h := newHarness(t, testConfig(), "apiserver")
	s := h.speaker()
	h.verdict("apiserver", true)
	before := len(s.calls())

	next := testConfig()
	next.Peers[1].Password = "secret" // peer B changed: its session only
	next.Peers = append(next.Peers, Peer{Address: netip.MustParseAddr("10.90.2.1"), ASN: 64512,
		HoldTime: 3 * time.Second, ConnectRetry: 2 * time.Second})
	next.Announcements = append(next.Announcements, Announcement{Name: "second", Prefixes: []netip.Prefix{vip2}, PrependWhenUnhealthy: 1})
	if err := h.a.Reload(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	want := []string{"del-peer 10.90.1.1", "add-peer 10.90.1.1", "add-peer 10.90.2.1", "announce 10.77.0.101/32"}
	if diff := cmp.Diff(want, s.calls()[before:]); diff != "" {
		t.Errorf("speaker calls of the reload (-want +got):\n%s", diff)
	}
	if !h.addrs.has(vip2) {
		t.Error("the new prefix is not on the host")
	}

	before = len(s.calls())
	last := testConfig()
	last.Announcements = nil
	if err := h.a.Reload(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	want = []string{"withdraw 10.77.0.100/32", "withdraw 10.77.0.101/32", "del-peer 10.90.2.1", "del-peer 10.90.1.1", "add-peer 10.90.1.1"}
	got := s.calls()[before:]
	if diff := cmp.Diff(sorted(want), sorted(got)); diff != "" {
		t.Errorf("speaker calls of the second reload (-want +got):\n%s", diff)
	}
	if h.addrs.has(vip1) || h.addrs.has(vip2) {
		t.Error("removed prefixes are still on the host")
	}
	if len(h.speakers) != 1 {
		t.Errorf("%d speakers made: a reload with the same local AS must keep the sessions", len(h.speakers))
	}
}

func TestAnnouncerReloadWithNewLocalASRestartsTheSpeaker(t *testing.T) {
	h := newHarness(t, testConfig(), "apiserver")
	h.verdict("apiserver", true)
	old := h.speaker()
	next := testConfig()
	next.Global.ASN = 64602
	if err := h.a.Reload(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	if !old.stopped {
		t.Error("the old speaker still runs")
	}
	s := h.speaker()
	if s == old || s.global.ASN != 64602 {
		t.Fatalf("no new speaker with AS 64602")
	}
	if _, ok := s.route(vip1); !ok {
		t.Error("the new speaker does not announce the healthy prefix")
	}
}

func TestAnnouncerMetrics(t *testing.T) {
	h := newHarness(t, testConfig(), "apiserver")
	h.verdict("apiserver", true)
	h.verdict("apiserver", false)
	want := `
# HELP vrrplb_bgp_announced How a prefix goes out: 1 announced, 0.5 depreferred (prepended or GRACEFUL_SHUTDOWN), 0 withdrawn.
# TYPE vrrplb_bgp_announced gauge
vrrplb_bgp_announced{announce="apiserver-vip",prefix="10.77.0.100/32"} 0.5
# HELP vrrplb_bgp_peer_up 1 while the BGP session with the peer is established.
# TYPE vrrplb_bgp_peer_up gauge
vrrplb_bgp_peer_up{peer="10.90.0.1"} 1
vrrplb_bgp_peer_up{peer="10.90.1.1"} 1
`
	if err := testutil.CollectAndCompare(h.a, strings.NewReader(want), MetricAnnounced, MetricPeerUp); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(h.a, MetricUpdatesSent); n != 2 {
		t.Errorf("%d %s series, want one per peer", n, MetricUpdatesSent)
	}
}

func TestNewRefusesWhatTheSpeakerCannotRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"a prefix that is not a host route", func(c *Config) { c.Announcements[0].Prefixes = []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")} }},
		{"a hold time under 3s", func(c *Config) { c.Peers[0].HoldTime = time.Second }},
		{"an IPv6 router ID", func(c *Config) { c.Global.RouterID = netip.MustParseAddr("2001:db8::1") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.edit(&cfg)
			if _, err := New(cfg, Options{}); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
