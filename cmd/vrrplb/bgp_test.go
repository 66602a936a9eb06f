package main

import (
	"bytes"
	"net/netip"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/bgp"
	"github.com/vrrplb/vrrplb/config"
)

func TestBGPAnnouncerConfigFromTheFile(t *testing.T) {
	cfg, err := config.Parse("vrrplb.toml", []byte(`
[[frontend]]
name = "apiserver"
backends = ["10.0.0.1:6443"]

[bgp]
local_asn = 64601
hold_time = "9s"
connect_retry = "5s"
graceful_shutdown = "2s"

  [[bgp.peer]]
  address = "10.90.0.1"
  asn = 64512
  source_ip = "10.90.0.2"
  password = "secret"

[[announce]]
name = "vip"
prefixes = ["10.77.0.100"]
communities = ["65000:100", "65000:1:2"]
prepend_when_unhealthy = 2
  [[announce.track_frontend]]
  name = "apiserver"
`))
	if err != nil {
		t.Fatal(err)
	}
	w := &bgpWiring{}
	got, err := w.announcerConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := bgp.Config{
		// router_id empty: the peer's source_ip.
		Global: bgp.Global{ASN: 64601, RouterID: netip.MustParseAddr("10.90.0.2")},
		Peers: []bgp.Peer{{Address: netip.MustParseAddr("10.90.0.1"), ASN: 64512, Port: 179, Password: "secret",
			SourceIP: netip.MustParseAddr("10.90.0.2"), HoldTime: 9 * time.Second, ConnectRetry: 5 * time.Second}},
		Announcements: []bgp.Announcement{{Name: "vip", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.77.0.100/32")},
			Communities: []uint32{65000<<16 | 100}, Large: []bgp.LargeCommunity{{ASN: 65000, Data1: 1, Data2: 2}},
			PrependWhenUnhealthy: 2, TrackFrontends: []string{"apiserver"}}},
		GracefulShutdown: 2 * time.Second,
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("announcer config (-want +got):\n%s", diff)
	}
}

func TestBGPRouterIDNeedsAnIPv4Peer(t *testing.T) {
	w := &bgpWiring{}
	_, err := w.routerID(config.BGP{LocalASN: 64601, Peers: []config.BGPPeer{{Address: netip.MustParseAddr("2001:db8::1"), ASN: 64512, Port: 179}}})
	if err == nil {
		t.Fatal("a router ID was made up with no IPv4 peer and no router_id")
	}
}

func TestStatusPrintsBGPPeersAndAnnouncements(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := &bgpStatus{
		Peers: []bgpPeerStatus{
			{Address: "10.90.0.1", ASN: 64512, State: "established", EstablishedSince: now.Add(-90 * time.Second).Format(time.RFC3339)},
			{Address: "10.90.1.1", ASN: 64512, State: "active"},
		},
		Announcements: []bgpAnnouncementStatus{{Name: "vip", Prefixes: []string{"10.77.0.100/32"}, State: "depreferred", Reason: "no_healthy_backend"}},
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	printBGPStatus(tw, st, now)
	tw.Flush()
	want := `BGP PEER   ASN    STATE        UPTIME
10.90.0.1  64512  ESTABLISHED  1m30s
10.90.1.1  64512  ACTIVE       -

ANNOUNCE  STATE        REASON              PREFIXES
vip       DEPREFERRED  no_healthy_backend  10.77.0.100/32
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}
