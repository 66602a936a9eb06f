package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The BGP lab's addressing: LB host i on link 10.90.i.0/24 (router .1, host
// .2), the client on 10.91.0.0/24, the fake apiservers on 10.92.0.0/24, the
// announced VIP 10.77.0.100. Only ever inside the lab's namespaces.
var (
	BGPVIP     = netip.MustParseAddr("10.77.0.100")
	bgpBackend = netip.MustParseAddr("10.92.0.10")
)

// BGP lab ASNs: every LB host in one AS, the router in another.
const (
	BGPLocalASN  = 64601
	BGPRouterASN = 64512
	// BGPRouterHoldTime is what the router offers: longer than vrrplb's
	// 3 s, so the session runs on vrrplb's offer.
	BGPRouterHoldTime = 9
)

// BGPLab is a router namespace running FRR (zebra and bgpd), LB hosts each
// on their own link to it, a client behind it and a backend namespace
// behind it for the fake apiservers. Everything goes at test cleanup.
type BGPLab struct {
	*Lab
	Router, Client, Backend *Host
	// LBs are the LB hosts; LBs[i].Addr4 is 10.90.(i+1).2.
	LBs []*Host
	// FRRDir holds FRR's configs, pid files and sockets for this lab only.
	FRRDir string
}

// NewBGPLab builds the namespaces and links of a lab with n LB hosts and
// starts FRR in the router namespace.
func NewBGPLab(t TB, n int) *BGPLab {
	t.Helper()
	requireRoot(t)
	zebra := requireCommand(t, "/usr/lib/frr/zebra", "frr")
	bgpd := requireCommand(t, "/usr/lib/frr/bgpd", "frr")
	requireCommand(t, "vtysh", "frr")
	l := &Lab{t: t, ID: fmt.Sprintf("%d%04x", os.Getpid()%100000, rand.IntN(0x10000)), LogDir: t.TempDir()}
	b := &BGPLab{Lab: l}
	host := func(name string) *Host {
		h := &Host{lab: l, Name: name, NS: "e2e" + l.ID + name}
		l.addNetns(h.NS)
		must(t, "ip", "-n", h.NS, "link", "set", "lo", "up")
		return h
	}
	b.Router = host("rt")
	// Forward, and spread flows over the next hops by their ports too
	// (policy 1): one client's connections then use every LB host.
	must(t, "ip", "netns", "exec", b.Router.NS, "sh", "-c",
		"echo 1 >/proc/sys/net/ipv4/ip_forward && echo 1 >/proc/sys/net/ipv4/fib_multipath_hash_policy")
	link := func(h *Host, routerSide string, subnet string, hostAddr string) {
		must(t, "ip", "link", "add", HostIfname, "netns", h.NS, "type", "veth", "peer", "name", routerSide, "netns", b.Router.NS)
		must(t, "ip", "-n", b.Router.NS, "addr", "add", subnet+".1/24", "dev", routerSide)
		must(t, "ip", "-n", b.Router.NS, "link", "set", routerSide, "up")
		must(t, "ip", "-n", h.NS, "addr", "add", subnet+"."+hostAddr+"/24", "dev", HostIfname)
		must(t, "ip", "-n", h.NS, "link", "set", HostIfname, "up")
		must(t, "ip", "-n", h.NS, "route", "add", "default", "via", subnet+".1")
		h.Addr4 = netip.MustParsePrefix(subnet + "." + hostAddr + "/24")
		h.Port = routerSide
	}
	b.Client = host("cl")
	link(b.Client, "c0", "10.91.0", "2")
	b.Backend = host("be")
	link(b.Backend, "b0", "10.92.0", "10")
	for i := 1; i <= n; i++ {
		h := host(fmt.Sprintf("lb%d", i))
		link(h, fmt.Sprintf("l%d", i), fmt.Sprintf("10.90.%d", i), "2")
		b.LBs = append(b.LBs, h)
	}
	l.Hosts = append([]*Host{b.Router, b.Client, b.Backend}, b.LBs...)

	// FRR drops to its own user (zebra insists on it): its directory is
	// one of its own, outside the test's private temp directory.
	dir, err := os.MkdirTemp("", "vrrplb-frr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b.FRRDir = dir
	if out, err := sh("chown", "frr:frr", dir); err != nil {
		t.Fatalf("FRR's directory: %v %s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	zconf := write("zebra.conf", "hostname rt\n")
	bconf := write("bgpd.conf", FRRConfig(BGPRouterASN, BGPLocalASN, "10.90.0.0/16", BGPRouterHoldTime))
	args := func(daemon, conf string) []string {
		name := filepath.Base(daemon)
		return []string{daemon, "-f", conf, "-i", filepath.Join(dir, name+".pid"), "-z", filepath.Join(dir, "zserv.api"),
			"--vty_socket", dir, "-P", "0", "--log", "stdout"}
	}
	b.Router.Start("zebra", args(zebra, zconf)...)
	Eventually(t, 10*time.Second, func() (bool, string) {
		_, err := os.Stat(filepath.Join(b.FRRDir, "zserv.api"))
		return err == nil, "zebra has not made its socket"
	})
	b.Router.Start("bgpd", args(bgpd, bconf)...)
	Eventually(t, 10*time.Second, func() (bool, string) {
		_, err := b.Vtysh("show bgp summary json")
		return err == nil, fmt.Sprintf("bgpd does not answer vtysh: %v", err)
	})
	return b
}

// FRRConfig is an FRR bgpd configuration for a router in AS routerASN that
// accepts sessions from LB hosts of AS lbASN anywhere in lbRange, installs
// up to 16 equal paths, offers holdTime seconds and lowers the preference
// of paths carrying GRACEFUL_SHUTDOWN (RFC 8326). README shows the same.
func FRRConfig(routerASN, lbASN int, lbRange string, holdTime int) string {
	return fmt.Sprintf(`frr defaults datacenter
!
bgp community-list standard GSHUT seq 5 permit graceful-shutdown
!
route-map LB-IN permit 10
 match community GSHUT
 set local-preference 0
exit
route-map LB-IN permit 20
exit
!
router bgp %d
 bgp router-id 10.90.0.1
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
 neighbor LB peer-group
 neighbor LB remote-as %d
 neighbor LB timers %d %d
 bgp listen range %s peer-group LB
 !
 address-family ipv4 unicast
  maximum-paths 16
  neighbor LB route-map LB-IN in
 exit-address-family
exit
`, routerASN, lbASN, max(holdTime/3, 1), holdTime, lbRange)
}

// StartBackends starts three fake apiservers per LB host in the backend
// namespace, each host's three ready while its ready file exists, and
// returns the backends of each host and the ready files: one host's
// backends go unready without the others'.
func (b *BGPLab) StartBackends() (backends [][]netip.AddrPort, ready []string) {
	b.t.Helper()
	fake := Build(b.t, "github.com/vrrplb/vrrplb/e2e/fakeapiserver")
	for i := range b.LBs {
		file := b.WriteFile(fmt.Sprintf("ready-lb%d", i+1), "")
		ready = append(ready, file)
		var be []netip.AddrPort
		for j := 1; j <= 3; j++ {
			ap := netip.AddrPortFrom(bgpBackend, uint16(6400+10*(i+1)+j))
			b.Backend.Start(fmt.Sprintf("apiserver-%d-%d", i+1, j), fake, "-listen", ap.String(),
				"-name", fmt.Sprintf("apiserver-%d", j), "-ready-file", file)
			be = append(be, ap)
		}
		backends = append(backends, be)
	}
	return backends, ready
}

// Vtysh runs an FRR command against this lab's daemons.
func (b *BGPLab) Vtysh(cmd string) (string, error) {
	return b.Router.Exec("vtysh", "--vty_socket", b.FRRDir, "-c", cmd)
}

// Established lists the LB host addresses whose sessions FRR has established.
func (b *BGPLab) Established() ([]string, error) {
	out, err := b.Vtysh("show bgp ipv4 unicast summary json")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Peers map[string]struct {
			State string `json:"state"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("show bgp summary json: %w: %s", err, out)
	}
	var up []string
	for addr, p := range doc.Peers {
		if p.State == "Established" {
			up = append(up, addr)
		}
	}
	slices.Sort(up)
	return up, nil
}

// NextHops are the next hops of the router's kernel route to vip, sorted;
// none when there is no route.
func (b *BGPLab) NextHops(vip netip.Addr) []string {
	out, err := b.Router.Exec("ip", "-j", "route", "show", vip.String()+"/32")
	if err != nil {
		b.t.Fatalf("router route: %v", err)
	}
	var routes []struct {
		Gateway  string `json:"gateway"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		b.t.Fatalf("ip -j route: %v: %s", err, out)
	}
	var hops []string
	for _, r := range routes {
		if r.Gateway != "" {
			hops = append(hops, r.Gateway)
		}
		for _, nh := range r.Nexthops {
			hops = append(hops, nh.Gateway)
		}
	}
	slices.Sort(hops)
	return hops
}

// Gateways are the addresses of the given LB hosts, sorted: what NextHops
// returns when exactly those hosts carry the route.
func Gateways(hosts ...*Host) []string {
	var g []string
	for _, h := range hosts {
		g = append(g, h.Addr4.Addr().String())
	}
	slices.Sort(g)
	return g
}

// BGPConf is one LB host's vrrplb.toml in the BGP lab: a frontend on :8443
// to backends, the session to its router, the VIP announced and tracking
// the frontend. extra is appended verbatim.
func (b *BGPLab) BGPConf(h *Host, backends []netip.AddrPort, extra string) string {
	var be []string
	for _, a := range backends {
		be = append(be, fmt.Sprintf("%q", a.String()))
	}
	router := h.Addr4.Masked().Addr().Next()
	return fmt.Sprintf(`[admin]
listen = %q
socket = ""

[log]
level = "debug"

[bgp]
local_asn = %d
hold_time = "3s"
connect_retry = "2s"
graceful_shutdown = "2s"

  [[bgp.peer]]
  address = %q
  asn = %d

[[announce]]
name = "apiserver-vip"
prefixes = ["%s/32"]
prepend_when_unhealthy = 3

  [[announce.track_frontend]]
  name = "apiserver"

[[frontend]]
name = "apiserver"
listen = ":8443"
backends = [%s]
connect_timeout = "500ms"
drain_timeout = "2s"
# A backend that fails its check keeps its connections: the tests count what
# changes of the route do to connections, not what the proxy's cut does.
close_on_backend_down = false

  [frontend.health]
  type = "https"
  path = "/readyz"
  interval = "200ms"
  timeout = "500ms"
  rise = 1
  fall = 1
%s`, adminAddr, BGPLocalASN, router, BGPRouterASN, BGPVIP, strings.Join(be, ", "), extra)
}

// OnLoopback reports whether h's lo holds ip: where BGP mode keeps the
// announced VIPs.
func OnLoopback(h *Host, ip netip.Addr) bool {
	out, err := sh("ip", "-n", h.NS, "-j", "addr", "show", "dev", "lo")
	if err != nil {
		return false
	}
	var links []struct {
		AddrInfo []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	if json.Unmarshal([]byte(out), &links) != nil {
		return false
	}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if a.Local == ip.String() {
				return true
			}
		}
	}
	return false
}
