package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"crypto/tls"

	"github.com/vrrplb/vrrplb/e2e"
)

// bgpConnections is how many connections the client opens to show ECMP.
const bgpConnections = 40

// bgpSteps is the BGP act (demo -bgp): two LB hosts announce the VIP to an
// FRR router, which spreads the client's connections over both; one host's
// apiservers go unready and the router stops using it; a SIGTERM takes the
// other out of the route before it stops accepting.
func (d *demo) bgpSteps() {
	d.printf("vrrplb demo, BGP mode: two load balancers, each on its own link to a router\n" +
		"(FRR), announce the virtual IP as a host route; the router spreads a client's\n" +
		"connections over both. All of it runs in network namespaces on this machine and\n" +
		"is removed at the end (Ctrl-C removes it too).\n")

	d.step(1, "The lab: a router and its links")
	b := e2e.NewBGPLab(d.t, 2)
	d.lab = b.Lab
	d.namespaces = len(b.Hosts)
	d.procs += 2 // zebra, bgpd
	d.printf("    namespaces (names carry the lab id %s):\n", b.ID)
	d.printf("      router     FRR zebra + bgpd, AS %d; forwards between the links below\n", e2e.BGPRouterASN)
	for i, h := range b.LBs {
		d.printf("      lb%d        %-13s vrrplb, AS %d, on its own link to the router\n", i+1, h.Addr4.Addr(), e2e.BGPLocalASN)
	}
	d.printf("      apiservers %-13s six fake kube-apiservers (three for each LB host)\n", "10.92.0.10")
	d.printf("      client     %-13s talks only to the virtual IP %s\n", b.Client.Addr4.Addr(), e2e.BGPVIP)
	backends, ready := b.StartBackends()
	d.procs += len(backends) * 3

	d.step(2, "vrrplb starts on lb1 and lb2 and announces the VIP")
	d.printf("    lb1's vrrplb.toml (BGP part; lb2 peers with its own router address):\n\n")
	conf := b.BGPConf(b.LBs[0], backends[0], "")
	d.indent(conf[strings.Index(conf, "[bgp]"):strings.Index(conf, "[[frontend]]")])
	procs := make([]*e2e.Proc, len(b.LBs))
	for i, h := range b.LBs {
		procs[i] = h.StartVRRPLB(b.BGPConf(h, backends[i], ""))
		d.procs++
	}
	all := e2e.Gateways(b.LBs...)
	took := d.waitHops(b, all, 20*time.Second)
	d.printf("\n    %.1fs later the router has both sessions and one route with two next hops:\n\n", took.Seconds())
	sum, _ := b.Vtysh("show bgp ipv4 unicast summary")
	for _, l := range strings.Split(sum, "\n") {
		if strings.HasPrefix(l, "Neighbor") || strings.HasPrefix(l, "*") && strings.Contains(l, "10.90.") {
			d.indent(l)
		}
	}
	d.printf("\n    router# ip route show %s\n", e2e.BGPVIP)
	d.indent(b.Router.MustExec("ip", "route", "show", e2e.BGPVIP.String()))

	d.step(3, fmt.Sprintf("The client opens %d connections to https://%s:8443/version", bgpConnections, e2e.BGPVIP))
	d.spread(b)

	d.step(4, "lb1's apiservers all go unready")
	if err := os.Remove(ready[0]); err != nil {
		d.t.Fatalf("mark lb1's apiservers unready: %v", err)
	}
	took = d.waitHops(b, e2e.Gateways(b.LBs[1]), 10*time.Second)
	d.printf("    %d ms later lb1 announces the VIP with its AS prepended 3 times (still a\n"+
		"    last resort if every host were unready) and the router's route leaves it:\n", took.Milliseconds())
	d.indent(b.Router.MustExec("ip", "route", "show", e2e.BGPVIP.String()))
	d.printf("\n    lb1# vrrplb status\n")
	d.indent(d.status(b.LBs[0]))
	if err := os.WriteFile(ready[0], nil, 0o644); err != nil {
		d.t.Fatalf("mark lb1's apiservers ready: %v", err)
	}
	took = d.waitHops(b, all, 10*time.Second)
	d.printf("\n    ready again: back in the route %d ms later.\n", took.Milliseconds())

	d.step(5, "lb2 gets SIGTERM")
	start := time.Now()
	procs[1].Signal(syscall.SIGTERM)
	took = d.waitHops(b, e2e.Gateways(b.LBs[0]), 10*time.Second)
	if procs[1].Exited() {
		d.t.Fatalf("lb2 left the route only after it exited")
	}
	d.printf("    %d ms later the router's route leaves lb2, which is still running: it\n"+
		"    re-announced the VIP with the GRACEFUL_SHUTDOWN community and keeps\n"+
		"    accepting for graceful_shutdown, then withdraws, drains and exits.\n", took.Milliseconds())
	if err := procs[1].WaitExit(15 * time.Second); err != nil {
		d.t.Fatalf("lb2 after SIGTERM: %v", err)
	}
	d.printf("    lb2 exited 0, %.1fs after the signal.\n", time.Since(start).Seconds())
}

// waitHops waits until the router's route to the VIP has the next hops want.
func (d *demo) waitHops(b *e2e.BGPLab, want []string, timeout time.Duration) time.Duration {
	start := time.Now()
	e2e.Eventually(d.t, timeout, func() (bool, string) {
		got := b.NextHops(e2e.BGPVIP)
		return strings.Join(got, ",") == strings.Join(want, ","), fmt.Sprintf("router next hops %v, want %v", got, want)
	})
	return time.Since(start)
}

// spread opens connections from the client and shows how many each LB
// host served.
func (d *demo) spread(b *e2e.BGPLab) {
	before := make([]float64, len(b.LBs))
	for i, h := range b.LBs {
		before[i], _ = h.Metric("vrrplb_frontend_connections_total", `frontend="apiserver"`)
	}
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DialContext:       b.Client.DialContext,
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		},
	}
	url := "https://" + netip.AddrPortFrom(e2e.BGPVIP, 8443).String() + "/version"
	for range bgpConnections {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			d.t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
	}
	var parts []string
	for i, h := range b.LBs {
		after, _ := h.Metric("vrrplb_frontend_connections_total", `frontend="apiserver"`)
		parts = append(parts, fmt.Sprintf("lb%d %v", i+1, after-before[i]))
		if after == before[i] {
			d.t.Fatalf("lb%d served none of %d connections", i+1, bgpConnections)
		}
	}
	d.printf("    connections per LB host: %s (the router hashes each flow's addresses\n"+
		"    and ports over the two next hops).\n", strings.Join(parts, ", "))
}
