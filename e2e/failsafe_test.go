package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFailSafeEveryReadyzFailingLeavesOneHolderThatFailsOpen is the failure
// that every LB host shares (etcd away, or a wrong check): every /readyz
// answers 500. Exactly one host still holds the VIP, its proxy fails open so
// clients reach the apiservers, and when one apiserver becomes ready in one
// host's view only, the VIP moves to that host, with preempt on or off.
//
// h1 and h2 are the LB hosts (priorities 100 and 90), h3 holds apiservers
// A, B and C on :6443, :6444 and :6445, h4 is a client.
func TestFailSafeEveryReadyzFailingLeavesOneHolderThatFailsOpen(t *testing.T) {
	requireRoot(t)
	for _, preempt := range []bool{true, false} {
		t.Run(fmt.Sprintf("preempt %v", preempt), func(t *testing.T) { failSafeAllUnready(t, preempt) })
	}
}

func failSafeAllUnready(t *testing.T, preempt bool) {
	lab := NewLab(t, 4)
	h1, h2, h3, h4 := lab.Host(1), lab.Host(2), lab.Host(3), lab.Host(4)
	vip := VIP4.Addr()
	var backends []netip.AddrPort
	ready := map[string]string{} // name → its ready file, absent for now
	for i, name := range []string{"A", "B", "C"} {
		ready[name] = lab.Path("ready-" + name)
		backends = append(backends, fakeAPIServer(t, h3, uint16(6443+i), name, ready[name]))
	}

	const (
		interval = 200 * time.Millisecond // health check interval
		advert   = 100 * time.Millisecond
		slack    = time.Second // scheduling on a loaded 2-core machine
	)
	lbConfig := func(prio int) string {
		return lbConf{
			VRRPConf: VRRPConf{Priority: prio, Interval: advert, NoPreempt: !preempt, VIPs: []netip.Prefix{VIP4}},
			Backends: backends,
			Frontend: "connect_timeout = \"1s\"\n",
			Interval: interval, Timeout: 150 * time.Millisecond, Rise: 1, Fall: 2,
		}.config(t)
	}

	// Both LB hosts start with every /readyz failing: one of them holds
	// the VIP within one election (Master_Down_Interval at priority 1 is
	// 3 × 100ms + 99.6ms), counted from when the second one serves.
	h1.StartVRRPLB(lbConfig(100))
	h2.StartVRRPLB(lbConfig(90))
	start := time.Now()
	mdi := 3*advert + 255*advert/256
	var holder, other *Host
	Eventually(t, mdi+interval+slack, func() (bool, string) {
		m := lab.Masters(vip)
		return len(m) == 1, fmt.Sprintf("VIP holders %v, want exactly one", m)
	})
	t.Logf("every /readyz failing: one VIP holder %v after the second host served (Master_Down_Interval at priority 1: %v)", time.Since(start), mdi)
	if lab.Masters(vip)[0] == h1.Name {
		holder, other = h1, h2
	} else {
		holder, other = h2, h1
	}
	lab.StaysMaster(t, holder, vip, 2*time.Second)
	for _, h := range []*Host{h1, h2} {
		st, err := h.Status()
		if err != nil {
			t.Fatal(err)
		}
		if s := st.Instances[0]; s.State == "fault" || s.EffectivePriority != 1 {
			t.Errorf("%s: state %s at priority %d, want backup or master at 1", h.Name, s.State, s.EffectivePriority)
		}
	}

	// The holder's proxy fails open: the client's connections through the
	// VIP reach the apiservers, which answer for themselves.
	seen := map[string]bool{}
	for range 6 {
		s := openStream(t, h4, netip.AddrPortFrom(vip, 8443))
		seen[strings.Fields(s.next(t))[0]] = true
		s.close()
	}
	t.Logf("through the VIP with every /readyz failing, streams came from %v", seen)
	waitMetric(t, holder, 1, "vrrplb_frontend_fail_open", `frontend="apiserver"`)
	if st, err := holder.Status(); err != nil || !st.Frontends[0].FailOpen {
		t.Errorf("%s /status fail_open: %+v, %v; want true", holder.Name, st.Frontends, err)
	}

	// C becomes ready, but the holder cannot reach h3 any more: only the
	// other host sees a ready apiserver, and it takes the VIP.
	holder.MustExec("ip", "route", "add", "unreachable", h3.Addr4.Addr().String()+"/32")
	time.Sleep(2 * interval) // the holder's view: every check fails now, not only /readyz
	if err := os.WriteFile(ready["C"], nil, 0o644); err != nil {
		t.Fatal(err)
	}
	took := lab.WaitMaster(t, other, vip, 10*time.Second)
	// One check to see C ready, then the holder's adverts at priority 1 are
	// ignored and the other's Master_Down_Interval (at priority 90) runs out.
	bound := interval*11/10 + 3*advert + 166*advert/256
	t.Logf("C ready in %s's view only → VIP on %s after %v (bound %v + %v slack)", other.Name, other.Name, took, bound, slack)
	if took > bound+slack {
		t.Errorf("the VIP took %v to reach the host with a ready apiserver, want ≤ %v", took, bound+slack)
	}
	lab.StaysMaster(t, other, vip, time.Second)
	waitMetric(t, other, 0, "vrrplb_frontend_fail_open", `frontend="apiserver"`)
	s := openStream(t, h4, netip.AddrPortFrom(vip, 8443))
	if got := s.next(t); !strings.HasPrefix(got, "C ") {
		t.Errorf("through the VIP after C became ready: %q, want apiserver C", got)
	}
	s.close()
}

// TestFailSafeOutOfDescriptorsMarksNoBackendDownAndCutsNothing runs the
// daemon under `prlimit --nofile=120` with more idle clients than it has
// descriptors for. Measured before local errors were told apart: the
// checks' "socket: too many open files" took the backend down and
// close_on_backend_down cut the live connections. Now such a check gives
// no verdict: it is counted as local_error and the backend stays up. With
// max_connections = 0 the proxy refuses the clients it has no
// descriptors for instead.
//
// The proxy alone did not always leave the process without a descriptor:
// in about half the runs one stayed free and every check found it. Idle
// connections to the admin listener now take whatever the proxy leaves.
func TestFailSafeOutOfDescriptorsMarksNoBackendDownAndCutsNothing(t *testing.T) {
	requireRoot(t)
	for _, tt := range []struct {
		name           string
		maxConnections int
	}{
		{"max_connections above the limit: checks fail locally", 10000},
		{"max_connections = 0: the proxy refuses what it has no descriptors for", 0},
	} {
		t.Run(tt.name, func(t *testing.T) { outOfDescriptors(t, tt.maxConnections) })
	}
}

func outOfDescriptors(t *testing.T, maxConnections int) {
	const (
		nofile  = 120
		clients = 150
	)
	lab := NewLab(t, 1)
	h := lab.Host(1)

	// The backend: holds connections. A client's first byte marks its
	// connection as proxied (a health check sends none); the closes of
	// those are counted.
	ln := h.Listen("tcp", "127.0.0.1:6443")
	var mu sync.Mutex
	var proxied, cut int
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := c.Read(make([]byte, 1)); err != nil {
					return
				}
				mu.Lock()
				proxied++
				mu.Unlock()
				_, _ = io.Copy(io.Discard, c)
				mu.Lock()
				cut++
				mu.Unlock()
			}()
		}
	}()

	path := h.WriteConfig(fmt.Sprintf(`[admin]
listen = %q
socket = ""

[log]
level = "debug"

[[frontend]]
name = "apiserver"
listen = "127.0.0.1:8443"
backends = ["127.0.0.1:6443"]
close_on_backend_down = true
fail_open = false
max_connections = %d

  [frontend.health]
  type = "tcp"
  interval = "50ms"
  timeout = "500ms"
  rise = 1
  fall = 1
`, adminAddr, maxConnections))
	p := h.Start("vrrplb", "prlimit", fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--", Binary(t), "run", "--config", path)
	Eventually(t, 10*time.Second, func() (bool, string) {
		if p.Exited() {
			t.Fatalf("vrrplb exited: %v\n%s", p.WaitExit(0), p.Output())
		}
		up, err := h.Metric("vrrplb_backend_up")
		return err == nil && up == 1, fmt.Sprintf("backend not up: %v %v", up, err)
	})

	var conns, idle []net.Conn
	defer func() {
		for _, c := range append(conns, idle...) {
			c.Close()
		}
	}()
	dial := func(addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return h.DialContext(ctx, "tcp", addr)
	}
	for range clients {
		c, err := dial("127.0.0.1:8443")
		if err != nil {
			break // the listen backlog is full: the kernel stops completing handshakes
		}
		conns = append(conns, c)
		_, _ = c.Write([]byte{'x'})
	}
	if maxConnections != 0 {
		// The proxy's clients leave zero to three descriptors free: one if
		// the daemon's own descriptors leave an odd number for its
		// two-descriptor connections (each client that finds one free is
		// accepted and closed again once its backend socket fails), one
		// per event loop whose spare descriptor another loop or a check
		// took while it refused a client. A tcp check finds such a
		// descriptor every time and never fails. Idle connections to the
		// admin listener take whatever is left: the admin server accepts
		// each when a descriptor is free (retrying after EMFILE) and holds
		// it for its 5s header timeout.
		before := openFDs(t, p, nofile)
		for range 8 {
			c, err := dial(adminAddr)
			if err != nil {
				t.Fatalf("idle connection to the admin listener: %v", err)
			}
			idle = append(idle, c)
		}
		// Until a check finds no descriptor (or, as before local errors
		// were told apart, takes the backend down: the assertions below
		// say what that broke).
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			out := p.Output()
			if strings.Contains(out, "health check could not run on this host") || strings.Contains(out, `msg="backend down"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("after 10s no check failed locally; the process has %d descriptors open, its limit is %d", openFDs(t, p, nofile), nofile)
				break
			}
		}
		t.Logf("descriptors open of %d: %d after the proxy's clients, %d with the idle admin connections", nofile, before, openFDs(t, p, nofile))
	}
	// Forty check intervals with every descriptor in use: long enough for
	// close_on_backend_down to cut the connections of a backend wrongly
	// marked down (once they have been quiet for 1s, at a sweep every
	// 250ms). fail_open is off, or a frontend whose only backend is down
	// would fail open and cut nothing.
	time.Sleep(40 * 50 * time.Millisecond)
	mu.Lock()
	gotProxied, gotCut := proxied, cut
	mu.Unlock()
	t.Logf("%d clients connected, %d proxied to the backend, %d of those closed", len(conns), gotProxied, gotCut)
	if gotCut != 0 {
		t.Errorf("%d live connections were cut while the process was out of descriptors", gotCut)
	}

	// Free the descriptors, then read what happened.
	for _, c := range append(conns, idle...) {
		c.Close()
	}
	conns, idle = nil, nil
	Eventually(t, 5*time.Second, func() (bool, string) {
		_, err := h.Metric("vrrplb_backend_up")
		return err == nil, fmt.Sprintf("/metrics: %v", err)
	})
	if strings.Contains(p.Output(), `msg="backend down"`) {
		t.Errorf("a backend was marked down:\n%s", p.Output())
	}
	local, _ := h.Metric("vrrplb_health_checks_total", `result="local_error"`)
	success, _ := h.Metric("vrrplb_health_checks_total", `result="success"`)
	rejected, _ := h.Metric("vrrplb_frontend_rejected_total", `reason="max_connections"`)
	t.Logf("checks: %v local_error, %v success; rejected connections %v", local, success, rejected)
	if maxConnections != 0 && local == 0 {
		t.Error("no check was counted as local_error, though the process ran out of descriptors")
	}
	if maxConnections != 0 && !strings.Contains(p.Output(), "health check could not run on this host") {
		t.Error("the local error was not logged")
	}
	if maxConnections == 0 && rejected == 0 {
		t.Error("max_connections = 0 refused nothing with more clients than descriptors")
	}
}

// openFDs counts p's descriptors below limit (an inherited one above it
// does not count against the limit), or -1 when they cannot be read.
func openFDs(t *testing.T, p *Proc, limit int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		t.Logf("descriptors of %s: %v", p.Name, err)
		return -1
	}
	n := 0
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd < limit {
			n++
		}
	}
	return n
}

// TestFailSafeSharedRecoveryMovesTheVIPOnce: every /readyz fails, h1 (the
// higher priority) holds the VIP at priority 1; the apiservers come back,
// h2 sees it first and takes the VIP, and h1 a second later. Measured
// before recovery settled: h1 preempted h2 at once, a second move that broke
// the connections made through h2 in between. Now the VIP stays on h2.
func TestFailSafeSharedRecoveryMovesTheVIPOnce(t *testing.T) {
	requireRoot(t)
	lab := NewLab(t, 3)
	h1, h2, h3 := lab.Host(1), lab.Host(2), lab.Host(3)
	vip := VIP4.Addr()
	readyFile := lab.Path("ready") // absent for now
	api := fakeAPIServer(t, h3, 6443, "A", readyFile)

	const (
		interval = 200 * time.Millisecond
		advert   = 100 * time.Millisecond
	)
	lbConfig := func(prio int) string {
		return lbConf{
			VRRPConf: VRRPConf{Priority: prio, Interval: advert, VIPs: []netip.Prefix{VIP4}},
			Backends: []netip.AddrPort{api},
			Interval: interval, Timeout: 150 * time.Millisecond, Rise: 1, Fall: 1,
		}.config(t)
	}
	h1.StartVRRPLB(lbConfig(100))
	lab.WaitMaster(t, h1, vip, 5*time.Second)
	h2.StartVRRPLB(lbConfig(90))
	Eventually(t, 5*time.Second, func() (bool, string) { return h2.State() == "backup", "h2 not backup" })
	lab.StaysMaster(t, h1, vip, time.Second)

	// The apiserver comes back; h1's view of it a second after h2's.
	h1.MustExec("ip", "route", "add", "unreachable", h3.Addr4.Addr().String()+"/32")
	time.Sleep(2 * interval) // h1's checks fail for the route now
	if err := os.WriteFile(readyFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A move overlaps for a moment: the new master adds the VIP before the
	// old one hears its advert and removes it. Such an overlap is part of
	// the move, not a holder of its own, as long as it ends within an
	// advert interval and some slack.
	var (
		holders      []string
		overlapSince time.Time
		overlapMax   time.Duration
	)
	note := func() {
		masters := lab.Masters(vip)
		if len(masters) > 1 {
			if overlapSince.IsZero() {
				overlapSince = time.Now()
			}
			overlapMax = max(overlapMax, time.Since(overlapSince))
			return
		}
		overlapSince = time.Time{}
		m := fmt.Sprint(masters)
		if len(holders) == 0 || holders[len(holders)-1] != m {
			holders = append(holders, m)
		}
	}
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		note()
	}
	h1.MustExec("ip", "route", "del", "unreachable", h3.Addr4.Addr().String()+"/32")
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		note()
	}
	t.Logf("VIP holders from the apiserver's return on: %v; longest overlap %v", holders, overlapMax)
	if overlapMax > advert+150*time.Millisecond {
		t.Errorf("two hosts held the VIP together for %v", overlapMax)
	}
	if want := []string{"[h1]", "[h2]"}; fmt.Sprint(holders) != fmt.Sprint(want) {
		t.Errorf("holders %v, want %v: one move", holders, want)
	}
	if st, err := h1.Status(); err != nil || st.Frontends[0].Backends[0].Healthy != true {
		t.Errorf("h1 does not see the apiserver ready in the end: %+v %v", st, err)
	}
}
