package config

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const bgpHead = `[bgp]
local_asn = 64601

  [[bgp.peer]]
  address = "10.90.0.1"
  asn = 64512
`

const announceHead = `[[announce]]
name = "vip"
`

func TestParseBGPErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string // every error, as printed, in order
	}{
		{"local_asn 0 is out of range", "[bgp]\nlocal_asn = 0\n",
			"vrrplb.toml:2: bgp: local_asn: 0: must be 1..4294967294"},
		{"a local_asn past 32 bits is out of range", "[bgp]\nlocal_asn = 4294967295\n",
			"vrrplb.toml:2: bgp: local_asn: 4294967295: must be 1..4294967294"},
		{"AS_TRANS is not an AS", "[bgp]\nlocal_asn = 23456\n",
			"vrrplb.toml:2: bgp: local_asn: 23456: reserved (RFC 6793, RFC 7300); use a private AS such as 64512..65534"},
		{"local_asn is required in [bgp]", "[bgp]\nhold_time = \"3s\"\n",
			"vrrplb.toml:1: bgp: local_asn: required"},
		{"a hold time under 3s is refused", bgpHead[:len("[bgp]\nlocal_asn = 64601\n")] + "hold_time = \"2s\"\n",
			"vrrplb.toml:3: bgp: hold_time: 2s: must be whole seconds from 3s to 18h12m15s"},
		{"a hold time of 0 is refused", "[bgp]\nlocal_asn = 64601\nhold_time = \"0s\"\n",
			`vrrplb.toml:3: bgp: hold_time: "0s": must be positive`},
		{"a hold time in fractions of a second is refused", "[bgp]\nlocal_asn = 64601\nhold_time = \"3500ms\"\n",
			"vrrplb.toml:3: bgp: hold_time: 3.5s: must be whole seconds from 3s to 18h12m15s"},
		{"connect_retry under 2s is refused", "[bgp]\nlocal_asn = 64601\nconnect_retry = \"1s\"\n",
			"vrrplb.toml:3: bgp: connect_retry: 1s: must be whole seconds from 2s to 1h0m0s"},
		{"an IPv6 router_id is refused", "[bgp]\nlocal_asn = 64601\nrouter_id = \"2001:db8::1\"\n",
			`vrrplb.toml:3: bgp: router_id: "2001:db8::1": must be an IPv4 address (RFC 6286 keeps the BGP identifier 32 bits)`},
		{"a peer without an ASN", "[bgp]\nlocal_asn = 64601\n[[bgp.peer]]\naddress = \"10.90.0.1\"\n",
			"vrrplb.toml:3: bgp: peer #1: asn: required"},
		{"a peer address that is not an address", "[bgp]\nlocal_asn = 64601\n[[bgp.peer]]\naddress = \"router1\"\nasn = 64512\n",
			`vrrplb.toml:4: bgp: peer #1: address: "router1": not an IP address`},
		{"two peers with one address", bgpHead + "  [[bgp.peer]]\n  address = \"10.90.0.1\"\n  asn = 64513\n",
			"vrrplb.toml:8: bgp: peer #2: address: 10.90.0.1: another [[bgp.peer]] has this address"},
		{"a TCP MD5 key longer than Linux takes", bgpHead + "  password = \"" + string(bytes.Repeat([]byte("x"), 81)) + "\"\n",
			"vrrplb.toml:7: bgp: peer #1: password: 81 bytes: a TCP MD5 key has at most 80"},
		{"a source_ip of the other family", bgpHead + "  source_ip = \"2001:db8::2\"\n",
			`vrrplb.toml:7: bgp: peer #1: source_ip: "2001:db8::2": must be ipv4 like the peer's address`},
		{"an unknown key in a peer", bgpHead + "  hold = 3\n",
			"vrrplb.toml:7: bgp: peer #1: hold: unknown key"},
		{"an announcement without [bgp]", announceHead + "prefixes = [\"10.77.0.100/32\"]\n",
			"vrrplb.toml:1: announce \"vip\": [[announce]] needs a [bgp] table with local_asn and at least one [[bgp.peer]]\n" +
				"vrrplb.toml:3: announce \"vip\": prefixes: \"10.77.0.100/32\": no [[bgp.peer]] carries ipv4: add a peer with an ipv4 address"},
		{"a prefix that is not a host route", bgpHead + announceHead + "prefixes = [\"10.77.0.0/24\"]\n",
			`vrrplb.toml:9: announce "vip": prefixes: "10.77.0.0/24": only host routes are announced (/32 for IPv4, /128 for IPv6)`},
		{"an IPv6 prefix with only IPv4 peers", bgpHead + announceHead + "prefixes = [\"2001:db8::100/128\"]\n",
			`vrrplb.toml:9: announce "vip": prefixes: "2001:db8::100/128": no [[bgp.peer]] carries ipv6: add a peer with an ipv6 address`},
		{"prefixes are required", bgpHead + announceHead,
			`vrrplb.toml:7: announce "vip": prefixes: required: at least one /32 or /128`},
		{"a community that is neither standard nor large", bgpHead + announceHead + "prefixes = [\"10.77.0.100\"]\ncommunities = [\"65000\"]\n",
			`vrrplb.toml:10: announce "vip": communities: "65000": must be ASN:value (standard) or ASN:value:value (large)`},
		{"a standard community past 16 bits", bgpHead + announceHead + "prefixes = [\"10.77.0.100\"]\ncommunities = [\"70000:1\"]\n",
			`vrrplb.toml:10: announce "vip": communities: "70000:1": "70000" is not a number 0..65535`},
		{"prepend_when_unhealthy past 16", bgpHead + announceHead + "prefixes = [\"10.77.0.100\"]\nprepend_when_unhealthy = 17\n",
			`vrrplb.toml:10: announce "vip": prepend_when_unhealthy: 17: must be 0..16`},
		{"tracking a frontend that does not exist", bgpHead + announceHead + "prefixes = [\"10.77.0.100\"]\n  [[announce.track_frontend]]\n  name = \"nope\"\n",
			`vrrplb.toml:11: announce "vip": track_frontend #1: name: "nope": no [[frontend]] has this name`},
		{"two announcements of one prefix", bgpHead + announceHead + "prefixes = [\"10.77.0.100\"]\n[[announce]]\nname = \"other\"\nprefixes = [\"10.77.0.100/32\"]\n",
			`vrrplb.toml:12: announce "other": prefixes: 10.77.0.100: announce "vip" has it too`},
		{"two announcements with one name", bgpHead + announceHead + "prefixes = [\"10.77.0.100\"]\n" + announceHead + "prefixes = [\"10.77.0.101\"]\n",
			`vrrplb.toml:11: announce "vip": name: "vip": another [[announce]] has this name`},
		{"one address as a VRRP virtual IP and a BGP announcement", instanceHead + "virtual_ips = [\"10.77.0.100/24\"]\n" + bgpHead + announceHead + "prefixes = [\"10.77.0.100\"]\n",
			`vrrplb.toml:14: announce "vip": prefixes: 10.77.0.100: also a virtual IP of instance "vip"; an address is either VRRP's or BGP's`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("vrrplb.toml", []byte(tc.text))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Parse: %v, want errors", err)
			}
			got := ""
			for i, e := range es {
				if i > 0 {
					got += "\n"
				}
				got += e.Error()
			}
			if got != tc.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestParseBGPFillsDefaults(t *testing.T) {
	cfg, err := Parse("vrrplb.toml", []byte(frontendHead+bgpHead+announceHead+"prefixes = [\"10.77.0.100\", \"2001:db8::100/128\"]\ncommunities = [\"65000:100\", \"65000:1:2\"]\n"+
		"  [[announce.track_frontend]]\n  name = \"apiserver\"\n[[bgp.peer]]\naddress = \"2001:db8::1\"\nasn = 64512\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := BGP{
		LocalASN: 64601, HoldTime: 3 * time.Second, ConnectRetry: 2 * time.Second, GracefulShutdown: 5 * time.Second,
		Peers: []BGPPeer{
			{Address: netip.MustParseAddr("10.90.0.1"), ASN: 64512, Port: 179},
			{Address: netip.MustParseAddr("2001:db8::1"), ASN: 64512, Port: 179},
		},
	}
	cmpAddr := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	if diff := cmp.Diff(want, cfg.BGP, cmpAddr); diff != "" {
		t.Errorf("BGP (-want +got):\n%s", diff)
	}
	wantA := []Announce{{
		Name:                 "vip",
		Prefixes:             []netip.Prefix{netip.MustParsePrefix("10.77.0.100/32"), netip.MustParsePrefix("2001:db8::100/128")},
		Communities:          []string{"65000:100", "65000:1:2"},
		PrependWhenUnhealthy: 3,
		TrackFrontends:       []string{"apiserver"},
	}}
	if diff := cmp.Diff(wantA, cfg.Announces, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Announces (-want +got):\n%s", diff)
	}
	roundTrip(t, cfg)
}

func TestParseCommunity(t *testing.T) {
	for s, want := range map[string]Community{
		"65535:0":            {Standard: 0xFFFF0000},
		"65000:100":          {Standard: 65000<<16 | 100},
		"4200000000:1:2":     {Large: true, ASN: 4200000000, Data1: 1, Data2: 2},
		"0:0":                {},
		"65000:0:4294967295": {Large: true, ASN: 65000, Data2: 4294967295},
	} {
		got, err := ParseCommunity(s)
		if err != nil || got != want {
			t.Errorf("ParseCommunity(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "1", "1:2:3:4", "a:b", "-1:2", "65536:0", "1:4294967296:0"} {
		if _, err := ParseCommunity(s); err == nil {
			t.Errorf("ParseCommunity(%q) accepted it", s)
		}
	}
}

func TestRenderWritesEveryBGPKeyTheSchemaReads(t *testing.T) {
	src := frontendHead + bgpHead + announceHead + "prefixes = [\"10.77.0.100\"]\n  [[announce.track_frontend]]\n  name = \"apiserver\"\n"
	asked, written := renderAndDecode(t, src)
	for _, key := range []string{"bgp.hold_time", "bgp.peer.ebgp_multihop", "announce.communities", "announce.track_frontend.name"} {
		if !asked[key] {
			t.Errorf("the decoder does not read %s", key)
		}
	}
	for key := range asked {
		bgpKey := strings.HasPrefix(key, TableBGP) || strings.HasPrefix(key, TableAnnounce)
		if bgpKey && !written[key] {
			t.Errorf("the decoder reads %s but Render does not write it", key)
		}
	}
}
