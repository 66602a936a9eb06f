package e2e

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// advert is the advert interval of the fast VRRPv3 tests.
const advert = 100 * time.Millisecond

// slack covers scheduling on a loaded machine (two cores shared by the whole
// test suite) on top of what the RFC allows.
const slack = 400 * time.Millisecond

func TestVRRPElectsTheHighestPriorityOfThree(t *testing.T) {
	l := NewLab(t, 3)
	vip := VIP4.Addr()
	prio := []int{100, 150, 120}
	// Started one by one, lowest first: each better one takes over (preempt).
	l.StartMaster(t, l.Host(1), VRRPConf{Priority: prio[0], VIPs: []netip.Prefix{VIP4}})
	l.StartMaster(t, l.Host(3), VRRPConf{Priority: prio[2], VIPs: []netip.Prefix{VIP4}})
	l.StartMaster(t, l.Host(2), VRRPConf{Priority: prio[1], VIPs: []netip.Prefix{VIP4}})
	l.StaysMaster(t, l.Host(2), vip, 10*advert)
	for _, i := range []int{1, 3} {
		if s := l.Host(i).State(); s != "backup" {
			t.Errorf("h%d is %q, want backup", i, s)
		}
	}
	// `vrrplb status` run on the host tells the same.
	out := l.Host(2).MustExec(Binary(t), "status")
	if !strings.Contains(out, "MASTER") || !strings.Contains(out, VIP4.String()) {
		t.Errorf("vrrplb status on h2:\n%s", out)
	}
	// The VIP answers: h1 reaches a listener on it at h2.
	if err := l.Host(1).Reach(l.Host(2), vip, 2*time.Second); err != nil {
		t.Error(err)
	}
}

func TestVRRPSimultaneousStartOfThreeGivesOneMaster(t *testing.T) {
	l := NewLab(t, 3)
	vip := VIP4.Addr()
	prio := []int{110, 130, 120}
	bin := Binary(t)
	// Write every config first, then start all three as close together as we can.
	paths := make([]string, 3)
	for i, h := range l.Hosts {
		paths[i] = l.WriteFile(h.Name+"-vrrplb.toml", VRRPConf{Priority: prio[i], VIPs: []netip.Prefix{VIP4}}.TOML())
	}
	for i, h := range l.Hosts {
		h.Start("vrrplb", bin, "run", "--config", paths[i])
	}
	l.WaitMaster(t, l.Host(2), vip, 10*time.Second)
	l.StaysMaster(t, l.Host(2), vip, 10*advert)
}

func TestVRRPFailsOverWhenTheMasterCrashes(t *testing.T) {
	l := NewLab(t, 3)
	vip := VIP4.Addr()
	p1 := l.StartMaster(t, l.Host(1), VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	l.Host(2).StartVRRPLB(VRRPConf{Priority: 150, VIPs: []netip.Prefix{VIP4}}.TOML())
	l.Host(3).StartVRRPLB(VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}}.TOML())
	Eventually(t, 5*time.Second, func() (bool, string) {
		return l.Host(2).State() == "backup" && l.Host(3).State() == "backup", "h2 and h3 not backup yet"
	})

	// A crash: the cable is pulled and the process dies without a word.
	start := time.Now()
	l.Crash(l.Host(1), p1)
	Eventually(t, 5*time.Second, func() (bool, string) {
		return l.Host(2).HasAddr(vip), "h2 did not take the VIP"
	})
	took := time.Since(start)
	limit := 3*advert + skew(150, advert) + slack
	t.Logf("h2 took over %s after the crash (limit %s)", took, limit)
	if took > limit {
		t.Errorf("failover took %s, want at most 3×advert + skew + slack = %s", took, limit)
	}
	l.WaitMaster(t, l.Host(2), vip, 2*time.Second)
	if l.Host(3).HasAddr(vip) || l.Host(3).State() != "backup" {
		t.Errorf("h3 should stay backup: state %q", l.Host(3).State())
	}
}

func TestVRRPHandsOverOnSIGTERMWithinSkewTime(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	p1 := l.StartMaster(t, l.Host(1), VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	l.StartBackup(t, l.Host(2), VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})

	start := time.Now()
	p1.Signal(syscall.SIGTERM)
	Eventually(t, 5*time.Second, func() (bool, string) { return l.Host(2).HasAddr(vip), "h2 did not take the VIP" })
	took := time.Since(start)
	// Priority 0 from the master: the backup waits Skew_Time only (RFC 5798 §6.4.2).
	limit := skew(100, advert) + slack
	t.Logf("h2 took over %s after SIGTERM (limit %s)", took, limit)
	if took > limit {
		t.Errorf("handoff took %s, want at most skew + slack = %s (a full down interval is %s)", took, limit, 3*advert+skew(100, advert))
	}
	if err := p1.WaitExit(10 * time.Second); err != nil {
		t.Errorf("vrrplb on h1 after SIGTERM: %v, want exit 0", err)
	}
	if l.Host(1).HasAddr(vip) {
		t.Error("h1 kept the VIP after stopping")
	}
}

func TestVRRPPreemptTakesOverAndNoPreemptDoesNot(t *testing.T) {
	vip := VIP4.Addr()
	t.Run("a better backup with preempt takes over", func(t *testing.T) {
		l := NewLab(t, 2)
		l.StartMaster(t, l.Host(1), VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})
		l.StartMaster(t, l.Host(2), VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	})
	t.Run("a better backup without preempt stays backup", func(t *testing.T) {
		l := NewLab(t, 2)
		l.StartMaster(t, l.Host(1), VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})
		l.StartBackup(t, l.Host(2), VRRPConf{Priority: 200, NoPreempt: true, VIPs: []netip.Prefix{VIP4}})
		// Well past a down interval: h1 stays master.
		l.StaysMaster(t, l.Host(1), vip, 10*advert)
	})
}

func TestVRRPv2DropsAndCountsAdvertsWithTheWrongPassword(t *testing.T) {
	l := NewLab(t, 2)
	l.StartMaster(t, l.Host(1), VRRPConf{Version: 2, Priority: 200, AuthPass: "secret1", VIPs: []netip.Prefix{VIP4}})
	l.Host(2).StartVRRPLB(VRRPConf{Version: 2, Priority: 100, AuthPass: "other", VIPs: []netip.Prefix{VIP4}}.TOML())
	// h2 ignores h1's adverts: it becomes master too after its down interval.
	Eventually(t, 8*time.Second, func() (bool, string) {
		return l.Host(2).State() == "master", "h2 did not become master despite dropping h1's adverts"
	})
	Eventually(t, 5*time.Second, func() (bool, string) {
		n, err := l.Host(2).Metric("vrrplb_packets_dropped_total", `reason="auth"`)
		return err == nil && n >= 2, "h2 did not count auth drops"
	})
	if n, _ := l.Host(2).Metric("vrrplb_adverts_received_total"); n != 0 {
		t.Errorf("h2 accepted %v adverts with the wrong password", n)
	}
}

func TestVRRPUnicastPeersElectAndFailOver(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	a1, a2 := l.Host(1).Addr4.Addr(), l.Host(2).Addr4.Addr()
	p1 := l.StartMaster(t, l.Host(1), VRRPConf{Priority: 200, UnicastPeers: []netip.Addr{a2}, VIPs: []netip.Prefix{VIP4}})
	l.StartBackup(t, l.Host(2), VRRPConf{Priority: 100, UnicastPeers: []netip.Addr{a1}, VIPs: []netip.Prefix{VIP4}})
	l.StaysMaster(t, l.Host(1), vip, 10*advert)
	l.Crash(l.Host(1), p1)
	l.WaitMaster(t, l.Host(2), vip, 3*advert+skew(100, advert)+slack)
}

func TestVRRPv3MovesAnIPv6VIP(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP6.Addr()
	p1 := l.StartMaster(t, l.Host(1), VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP6}})
	l.StartBackup(t, l.Host(2), VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP6}})
	l.StaysMaster(t, l.Host(1), vip, 10*advert)
	l.Crash(l.Host(1), p1)
	l.WaitMaster(t, l.Host(2), vip, 3*advert+skew(100, advert)+slack)
}
