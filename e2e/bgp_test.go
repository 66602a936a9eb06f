package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// load is a client opening one connection after another to the VIP
// through the router: TLS to the apiserver behind, GET /version, close.
type load struct {
	ok, refused, reset, other atomic.Int64
	lastErr                   atomic.Value
}

func (l *load) String() string {
	return fmt.Sprintf("%d ok, %d refused, %d reset, %d other (last error: %v)",
		l.ok.Load(), l.refused.Load(), l.reset.Load(), l.other.Load(), l.lastErr.Load())
}

// getVersion makes one GET /version over TLS, on a connection to addr
// that dial opens, within timeout; an answer other than 200 is an error.
func getVersion(dial func(ctx context.Context, network, addr string) (net.Conn, error), addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if _, err := io.WriteString(tc, "GET /version HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	b, err := io.ReadAll(tc)
	if err != nil && len(b) == 0 {
		return err
	}
	if !strings.HasPrefix(string(b), "HTTP/1.1 200") {
		return fmt.Errorf("answer %.40q", b)
	}
	return nil
}

// one opens one connection from client to addr and counts its outcome.
func (l *load) one(client *Host, addr string) {
	err := getVersion(client.DialContext, addr, 2*time.Second)
	switch {
	case err == nil:
		l.ok.Add(1)
		return
	case errors.Is(err, syscall.ECONNREFUSED):
		l.refused.Add(1)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		strings.Contains(err.Error(), "connection reset by peer"):
		l.reset.Add(1)
	default:
		l.other.Add(1)
	}
	l.lastErr.Store(err.Error())
}

// run opens connections one at a time until stop is closed: with one in
// flight, a change of the route can reset at most one.
func (l *load) run(client *Host, addr string, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-stop:
			return
		default:
		}
		l.one(client, addr)
	}
}

// routeChanges counts the kernel's changes of the router's route to the
// VIP, from `ip monitor route` output: a route line for each change.
func routeChanges(monitor *Proc) int {
	n := 0
	for _, line := range strings.Split(monitor.Output(), "\n") {
		if strings.HasPrefix(line, BGPVIP.String()+" ") || strings.HasPrefix(line, "Deleted "+BGPVIP.String()+" ") {
			n++
		}
	}
	return n
}

// waitHops waits until the router's route to the VIP has exactly want as
// next hops and returns how long that took.
func waitHops(t *testing.T, b *BGPLab, timeout time.Duration, want []string) time.Duration {
	t.Helper()
	start := time.Now()
	Eventually(t, timeout, func() (bool, string) {
		got := b.NextHops(BGPVIP)
		return strings.Join(got, ",") == strings.Join(want, ","), fmt.Sprintf("router next hops %v, want %v", got, want)
	})
	return time.Since(start)
}

// checkBGPSessionsAndRoute waits for the sessions and the multipath route
// of TestBGPModeWithFRR and checks the hosts' side of them.
func checkBGPSessionsAndRoute(t *testing.T, b *BGPLab) {
	t.Helper()
	lb1, lb2, lb3 := b.LBs[0], b.LBs[1], b.LBs[2]
	// Sessions and the multipath route.
	Eventually(t, 20*time.Second, func() (bool, string) {
		up, err := b.Established()
		want := Gateways(lb1, lb2, lb3)
		return err == nil && strings.Join(up, ",") == strings.Join(want, ","),
			fmt.Sprintf("FRR established sessions %v (%v), want %v", up, err, want)
	})
	waitHops(t, b, 10*time.Second, Gateways(lb1, lb2, lb3))
	t.Logf("router: %s", b.Router.MustExec("ip", "route", "show", BGPVIP.String()))
	for _, h := range b.LBs {
		if v, err := h.Metric("vrrplb_bgp_peer_up"); err != nil || v != 1 {
			t.Errorf("%s: vrrplb_bgp_peer_up %v (%v), want 1", h.Name, v, err)
		}
		if v, err := h.Metric("vrrplb_bgp_announced", `prefix="10.77.0.100/32"`); err != nil || v != 1 {
			t.Errorf("%s: vrrplb_bgp_announced %v (%v), want 1", h.Name, v, err)
		}
	}
	for _, h := range b.LBs {
		if !OnLoopback(h, BGPVIP) {
			t.Errorf("%s does not hold %v on lo: the proxy would not answer on it", h.Name, BGPVIP)
		}
	}
	nb, _ := b.Vtysh("show bgp neighbors 10.90.1.2 json")
	if !strings.Contains(nb, `"bgpTimerHoldTimeMsecs":3000`) {
		t.Errorf("FRR's session with lb1 does not run on vrrplb's 3s hold time (the router offers %ds):\n%s", BGPRouterHoldTime, nb)
	}
	if ls := lb1.MustExec("ss", "-Htln"); strings.Contains(ls, ":179 ") {
		t.Errorf("vrrplb listens for BGP on lb1; it must only connect out:\n%s", ls)
	}
	out, err := lb1.Exec(Binary(t), "status")
	if err != nil || !strings.Contains(out, "ESTABLISHED") || !strings.Contains(out, "ANNOUNCED") {
		t.Errorf("vrrplb status on lb1 shows no established peer or announced VIP: %v\n%s", err, out)
	}
}

// TestBGPModeWithFRR runs three LB hosts in BGP mode against FRR: ECMP over
// the healthy ones, depreference when one loses its backends, fail open
// when all do, graceful stop, and a dead host's route gone by hold time.
func TestBGPModeWithFRR(t *testing.T) {
	b := NewBGPLab(t, 3)
	backends, ready := b.StartBackends()
	lb1, lb2, lb3 := b.LBs[0], b.LBs[1], b.LBs[2]
	procs := make([]*Proc, 3)
	for i, h := range b.LBs {
		procs[i] = h.StartVRRPLB(b.BGPConf(h, backends[i], ""))
	}
	vip := netip.AddrPortFrom(BGPVIP, 8443).String()

	checkBGPSessionsAndRoute(t, b)

	// Client connections land on every LB host.
	before := make([]float64, 3)
	for i, h := range b.LBs {
		before[i], _ = h.Metric("vrrplb_frontend_connections_total", `frontend="apiserver"`)
	}
	var spread load
	for range 150 {
		spread.one(b.Client, vip)
	}
	if spread.ok.Load() != 150 {
		t.Errorf("150 connections through the VIP: %s", &spread)
	}
	for i, h := range b.LBs {
		after, _ := h.Metric("vrrplb_frontend_connections_total", `frontend="apiserver"`)
		t.Logf("%s served %v of 150 connections", h.Name, after-before[i])
		if after-before[i] == 0 {
			t.Errorf("%s served none of 150 connections: ECMP does not spread them", h.Name)
		}
	}

	// From here on a client connects without pause; the route's changes
	// are counted.
	var (
		traffic load
		wg      sync.WaitGroup
		stop    = make(chan struct{})
	)
	monitor := b.Router.Start("route-monitor", "ip", "monitor", "route")
	time.Sleep(100 * time.Millisecond) // ip monitor has subscribed
	wg.Add(1)
	go traffic.run(b.Client, vip, stop, &wg)
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()

	// One host's backends all unready: depreferred, out of the route.
	if err := os.Remove(ready[0]); err != nil {
		t.Fatal(err)
	}
	d := waitHops(t, b, 5*time.Second, Gateways(lb2, lb3))
	t.Logf("lb1 unready: out of the route after %v", d)
	if v, _ := lb1.Metric("vrrplb_bgp_announced", `prefix="10.77.0.100/32"`); v != 0.5 {
		t.Errorf("lb1 with no healthy backend: vrrplb_bgp_announced %v, want 0.5 (depreferred)", v)
	}
	path, _ := b.Vtysh("show bgp ipv4 unicast 10.77.0.100/32")
	if !strings.Contains(path, "64601 64601 64601 64601") {
		t.Errorf("FRR does not see lb1's path with the AS prepended 3 times:\n%s", path)
	}

	// Every host unready: the route stays (all depreferred alike) and the
	// proxies fail open.
	for _, f := range ready[1:] {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	d = waitHops(t, b, 5*time.Second, Gateways(lb1, lb2, lb3))
	t.Logf("every host unready: all three back in the route after %v", d)
	okBefore := traffic.ok.Load()
	time.Sleep(time.Second)
	if traffic.ok.Load() == okBefore {
		t.Errorf("with every backend unready no connection passed in 1s: %s", &traffic)
	}
	for _, f := range ready {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Healthy again: lb1's path comes back first or last, but all three end
	// up in the route with no penalty.
	waitHops(t, b, 5*time.Second, Gateways(lb1, lb2, lb3))
	Eventually(t, 5*time.Second, func() (bool, string) {
		v, _ := lb1.Metric("vrrplb_bgp_announced", `prefix="10.77.0.100/32"`)
		return v == 1, fmt.Sprintf("lb1 healthy again: vrrplb_bgp_announced %v, want 1", v)
	})

	// SIGTERM: GRACEFUL_SHUTDOWN moves the route away while lb2 still
	// accepts, then it withdraws, drains and exits 0.
	sigterm := time.Now()
	procs[1].Signal(syscall.SIGTERM)
	d = waitHops(t, b, 5*time.Second, Gateways(lb1, lb3))
	if procs[1].Exited() {
		t.Errorf("lb2 left the route only after it exited (%v): the graceful shutdown did not move traffic first", d)
	}
	t.Logf("SIGTERM on lb2: out of the route after %v, while still accepting", d)
	if err := procs[1].WaitExit(15 * time.Second); err != nil {
		t.Errorf("lb2 after SIGTERM: %v", err)
	}
	t.Logf("lb2 exited %v after SIGTERM", time.Since(sigterm).Round(time.Millisecond))
	if !strings.Contains(procs[1].Output(), "graceful_shutdown=true") {
		t.Error("lb2's log does not show the GRACEFUL_SHUTDOWN announcement")
	}
	if OnLoopback(lb2, BGPVIP) {
		t.Error("lb2 stopped with the VIP still on lo")
	}
	time.Sleep(500 * time.Millisecond)
	stopLoad()
	changes := routeChanges(monitor)
	t.Logf("client during unready, fail open, recovery and SIGTERM: %s; route changes %d", &traffic, changes)
	if n := traffic.refused.Load(); n != 0 {
		t.Errorf("%d connections refused, want 0", n)
	}
	if n := traffic.reset.Load() + traffic.other.Load(); n > int64(changes) {
		t.Errorf("%d connections failed for %d changes of the route: want at most one each", n, changes)
	}

	// A crash: lb3's link cut on the router and its process killed.
	b.Router.MustExec("ip", "link", "set", lb3.Port, "down")
	procs[2].Kill()
	d = waitHops(t, b, 5*time.Second, Gateways(lb1))
	t.Logf("lb3 crashed (link cut, killed): out of the route after %v", d)

	// A hung host (SIGSTOP): nothing tells the router; the negotiated hold
	// time (vrrplb's 3 s, not the router's 9 s) takes it out.
	procs[0].SignalGroup(syscall.SIGSTOP)
	defer procs[0].SignalGroup(syscall.SIGCONT)
	d = waitHops(t, b, 3*time.Second+2*time.Second, nil)
	t.Logf("lb1 hung: out of the route after %v (hold time 3s)", d)
}

// TestREADMEShowsTheFRRConfigTheLabRuns keeps README's router config the
// one TestBGPModeWithFRR proves.
func TestREADMEShowsTheFRRConfigTheLabRuns(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := "```\n" + FRRConfig(BGPRouterASN, BGPLocalASN, "10.90.0.0/16", BGPRouterHoldTime) + "```\n"
	if !strings.Contains(string(b), want) {
		t.Errorf("README's BGP mode section does not show the lab's FRR config:\n%s", want)
	}
}

// TestDemoBGPRunsToTheEndAndLeavesNothing runs `demo -bgp` (make demo-bgp)
// and checks it showed ECMP, the depreference and the graceful stop, and
// removed its lab.
func TestDemoBGPRunsToTheEndAndLeavesNothing(t *testing.T) {
	requireRoot(t)
	requireCommand(t, "/usr/lib/frr/bgpd", "frr")
	out := runDemo(t, "-bgp")
	demoShowed(t, out,
		`connections per LB host: lb1 [1-9]\d*, lb2 [1-9]\d*`,
		`apiserver-vip  DEPREFERRED  no_healthy_backend`,
		`lb2 exited 0`,
		`nothing is left\.`,
	)
}

// TestBGPReloadKeepsTheSession reloads an LB host with a second
// announcement and a second peer: the router gets the new prefix over the
// session it had, which is never reset.
func TestBGPReloadKeepsTheSession(t *testing.T) {
	b := NewBGPLab(t, 1)
	backends, _ := b.StartBackends()
	lb := b.LBs[0]
	p := lb.StartVRRPLB(b.BGPConf(lb, backends[0], ""))
	second := netip.MustParseAddr("10.77.0.101")
	waitHops(t, b, 20*time.Second, Gateways(lb))

	conf := b.BGPConf(lb, backends[0], "") + fmt.Sprintf(`
[[announce]]
name = "second"
prefixes = ["%s/32"]

[[bgp.peer]]
address = "10.90.1.99"   # nobody: a session that never comes up
asn = %d
`, second, BGPRouterASN)
	lb.WriteConfig(conf)
	p.Signal(syscall.SIGHUP)
	Eventually(t, 10*time.Second, func() (bool, string) {
		got := b.NextHops(second)
		return strings.Join(got, ",") == strings.Join(Gateways(lb), ","), fmt.Sprintf("router next hops for %v: %v", second, got)
	})
	if v, err := lb.Metric("vrrplb_config_last_reload_successful"); err != nil || v != 1 {
		t.Errorf("reload not successful: %v %v\n%s", v, err, p.Output())
	}
	nb, err := b.Vtysh("show bgp neighbors 10.90.1.2 json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(nb, `"connectionsEstablished":1,`) || !strings.Contains(nb, `"connectionsDropped":0,`) {
		t.Errorf("the reload reset the session to the router:\n%s", nb)
	}
	if got := b.NextHops(BGPVIP); strings.Join(got, ",") != strings.Join(Gateways(lb), ",") {
		t.Errorf("the first VIP's route after the reload: %v", got)
	}
	out, _ := lb.Exec(Binary(t), "status")
	if !strings.Contains(out, "10.90.1.99") || !strings.Contains(out, "second") {
		t.Errorf("vrrplb status after the reload lacks the new peer or announcement:\n%s", out)
	}
}

// TestBGPMaintenanceWithdraws puts one of two LB hosts in maintenance over
// its admin socket: the router's route leaves it while the other keeps
// serving, and `maintenance off` brings it back.
func TestBGPMaintenanceWithdraws(t *testing.T) {
	b := NewBGPLab(t, 2)
	backends, _ := b.StartBackends()
	lb1, lb2 := b.LBs[0], b.LBs[1]
	sock := adminSocket(t)
	lb1.StartVRRPLB(withAdminSocket(t, b.BGPConf(lb1, backends[0], ""), sock))
	lb2.StartVRRPLB(b.BGPConf(lb2, backends[1], ""))
	waitHops(t, b, 20*time.Second, Gateways(lb1, lb2))

	out := mustVRRPLBCommand(t, "maintenance", "on", "--socket", sock)
	if !strings.Contains(out, "announce apiserver-vip: maintenance on") {
		t.Errorf("maintenance on says:\n%s", out)
	}
	d := waitHops(t, b, 5*time.Second, Gateways(lb2))
	t.Logf("maintenance on: lb1 out of the route after %v", d)
	if !OnLoopback(lb1, BGPVIP) {
		t.Error("maintenance took the VIP off lb1's lo: flows still arriving would be refused")
	}
	st, _ := lb1.Exec(Binary(t), "status")
	if !strings.Contains(st, "WITHDRAWN  maintenance") {
		t.Errorf("vrrplb status on lb1 does not show the withdrawal:\n%s", st)
	}
	var l load
	for range 20 {
		l.one(b.Client, netip.AddrPortFrom(BGPVIP, 8443).String())
	}
	if l.ok.Load() != 20 {
		t.Errorf("with lb1 in maintenance: %s", &l)
	}

	mustVRRPLBCommand(t, "maintenance", "off", "--socket", sock)
	d = waitHops(t, b, 5*time.Second, Gateways(lb1, lb2))
	t.Logf("maintenance off: lb1 back in the route after %v", d)
}
