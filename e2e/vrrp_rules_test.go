package e2e

import (
	"fmt"
	"github.com/google/go-cmp/cmp"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestVRRPPausedMasterSettlesWithinAnAdvertOfResuming(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	p1 := l.StartMaster(t, l.Host(1), VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	l.StartBackup(t, l.Host(2), VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})

	// The whole daemon stops: the signal goes to its process group, which
	// holds its VRRP engine process.
	p1.SignalGroup(syscall.SIGSTOP)
	// h2 takes over while h1 is frozen with the VIP still on its interface.
	Eventually(t, 3*time.Second, func() (bool, string) { return l.Host(2).State() == "master", "h2 did not take over from the paused h1" })
	start := time.Now()
	p1.SignalGroup(syscall.SIGCONT)
	settlesWithinAnAdvert(t, l, vip, start, "h1 resumed")
}

// settlesWithinAnAdvert waits until h1 alone holds vip and h2 is backup,
// and checks that this took at most one advert interval (and slack) from
// start, the moment of what after names.
func settlesWithinAnAdvert(t *testing.T, l *Lab, vip netip.Addr, start time.Time, after string) {
	t.Helper()
	h2 := l.Host(2)
	Eventually(t, 3*time.Second, func() (bool, string) {
		m := l.Masters(vip)
		return len(m) == 1 && m[0] == "h1" && h2.State() == "backup", fmt.Sprintf("holders %v, h2 %q", m, h2.State())
	})
	took := time.Since(start)
	t.Logf("one master %s after %s", took, after)
	if limit := advert + slack; took > limit {
		t.Errorf("one master only %s after %s, want at most one advert interval + slack = %s", took, after, limit)
	}
}

func TestVRRPRemovesAStaleVIPAtStartAndNothingElse(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	l.StartMaster(t, l.Host(1), VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	// h2 crashed earlier as master: the VIP is still on its interface, beside
	// an address vrrplb does not manage.
	other := netip.MustParsePrefix("10.77.0.200/24")
	l.Host(2).MustExec("ip", "addr", "add", VIP4.String(), "dev", HostIfname)
	l.Host(2).MustExec("ip", "addr", "add", other.String(), "dev", HostIfname)
	p2 := l.Host(2).StartVRRPLB(VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}}.TOML())
	Eventually(t, 5*time.Second, func() (bool, string) {
		return l.Host(2).State() == "backup" && !l.Host(2).HasAddr(vip), "h2 kept the stale VIP"
	})
	if !l.Host(2).HasAddr(other.Addr()) || !l.Host(2).HasAddr(l.Host(2).Addr4.Addr()) {
		t.Errorf("h2 lost addresses that are not its VIPs: %v", must(t, "ip", "-n", l.Host(2).NS, "addr"))
	}
	if !strings.Contains(p2.Output(), vip.String()) {
		t.Errorf("removing the stale VIP was not logged:\n%s", p2.Output())
	}
}

func TestVRRPFailingTrackScriptMovesTheVIPAtOnce(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	broken := filepath.Join(l.LogDir, "h1-broken")
	script := fmt.Sprintf(`
  [[instance.track_script]]
  command = ["/bin/sh", "-c", "test ! -e %s"]
  interval = "100ms"
  timeout = "1s"
  fall = 1
  rise = 1
  weight = 0
`, broken)
	l.StartMaster(t, l.Host(1), VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}, Extra: script})
	l.StartBackup(t, l.Host(2), VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})

	start := time.Now()
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l.WaitMaster(t, l.Host(2), vip, 5*time.Second)
	took := time.Since(start)
	// One script interval to notice, then the priority-0 advert: Skew_Time.
	limit := 100*time.Millisecond + skew(100, advert) + slack
	t.Logf("h2 took over %s after h1's check started failing (limit %s)", took, limit)
	if took > limit {
		t.Errorf("takeover took %s, want at most %s", took, limit)
	}
	if s := l.Host(1).State(); s != "fault" {
		t.Errorf("h1 is %q, want fault", s)
	}
	// The check passes again: h1, the better one, takes the VIP back.
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	l.WaitMaster(t, l.Host(1), vip, 5*time.Second)
}

func TestVRRPTrackedInterfaceDownMovesTheVIP(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	// h1 depends on a second link, eth1, whose far end we can pull.
	h1 := l.Host(1)
	h1.MustExec("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1peer")
	h1.MustExec("ip", "link", "set", "eth1peer", "up")
	h1.MustExec("ip", "link", "set", "eth1", "up")
	track := "\n  [[instance.track_interface]]\n  name = \"eth1\"\n  weight = 0\n"
	l.StartMaster(t, h1, VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}, Extra: track})
	l.StartBackup(t, l.Host(2), VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})

	h1.MustExec("ip", "link", "set", "eth1peer", "down")
	l.WaitMaster(t, l.Host(2), vip, 5*time.Second)
	if s := h1.State(); s != "fault" {
		t.Errorf("h1 is %q with eth1 down, want fault", s)
	}
	h1.MustExec("ip", "link", "set", "eth1peer", "up")
	l.WaitMaster(t, h1, vip, 5*time.Second)
}

func TestVRRPNotifyRunsOnEveryTransition(t *testing.T) {
	l := NewLab(t, 1)
	out := filepath.Join(l.LogDir, "notify.out")
	notify := []string{"/bin/sh", "-c", `echo "$1 $2" >> "$0"`, out}
	p := l.StartMaster(t, l.Host(1), VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}, Notify: notify})
	p.Signal(syscall.SIGTERM)
	if err := p.WaitExit(10 * time.Second); err != nil {
		t.Fatalf("vrrplb after SIGTERM: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("notify never ran: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	// Start, election, and the stop: every transition in order.
	if diff := cmp.Diff([]string{"vip backup", "vip master", "vip init"}, lines); diff != "" {
		t.Errorf("notify runs (-want +got):\n%s", diff)
	}
}

func TestVRRPAnnouncementsUpdateTheNeighboursCaches(t *testing.T) {
	for _, vipPrefix := range []netip.Prefix{VIP4, VIP6} {
		t.Run(vipPrefix.String(), func(t *testing.T) {
			l := NewLab(t, 3)
			vip := vipPrefix.Addr()
			p1 := l.StartMaster(t, l.Host(1), VRRPConf{Priority: 200, VIPs: []netip.Prefix{vipPrefix}})
			l.StartBackup(t, l.Host(2), VRRPConf{Priority: 100, VIPs: []netip.Prefix{vipPrefix}})

			// h3, a client, talks to the VIP: its cache points at h1.
			client := l.Host(3)
			if err := client.Reach(l.Host(1), vip, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			if got, want := client.Neighbour(vip), l.Host(1).MAC(); got != want {
				t.Fatalf("h3 resolves %s to %q, want h1's %s", vip, got, want)
			}
			// After the failover h2's announcements repoint it, with no
			// traffic from h3 and long before the entry would expire.
			l.Crash(l.Host(1), p1)
			l.WaitMaster(t, l.Host(2), vip, 2*time.Second)
			want := l.Host(2).MAC()
			Eventually(t, 2*time.Second, func() (bool, string) {
				got := client.Neighbour(vip)
				return got == want, fmt.Sprintf("h3 resolves %s to %q, want h2's %s", vip, got, want)
			})
			if err := client.Reach(l.Host(2), vip, 2*time.Second); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestVRRPMasterThatLosesItsLinkFaultsAndComesBack(t *testing.T) {
	l := NewLab(t, 3)
	vip := VIP4.Addr()
	h1, h2, client := l.Host(1), l.Host(2), l.Host(3)
	l.StartMaster(t, h1, VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	l.StartBackup(t, h2, VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})

	// h1's cable is pulled: its own interface is tracked, so it faults and
	// drops the VIP while h2 takes over.
	h1.SetLink(false)
	Eventually(t, 3*time.Second, func() (bool, string) {
		return h1.State() == "fault" && !h1.HasAddr(vip), fmt.Sprintf("h1 is %q with its link down, want fault without the VIP", h1.State())
	})
	l.WaitMaster(t, h2, vip, 3*time.Second)
	if err := client.Reach(h2, vip, 2*time.Second); err != nil {
		t.Fatal(err)
	}

	// The cable is back: h1 returns through backup, preempts, and its
	// announcements repoint the client.
	h1.SetLink(true)
	l.WaitMaster(t, h1, vip, 3*time.Second)
	want := h1.MAC()
	Eventually(t, 2*time.Second, func() (bool, string) {
		got := client.Neighbour(vip)
		return got == want, fmt.Sprintf("the client resolves %s to %q, want h1's %s", vip, got, want)
	})
}

func TestVRRPSplitBrainHealsWithinAnAdvert(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	h1, h2 := l.Host(1), l.Host(2)
	l.StartMaster(t, h1, VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	l.StartBackup(t, h2, VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})

	// A partition the hosts cannot see: h1's port leaves the bridge, its
	// link stays up. Both become master.
	must(t, "ip", "-n", l.BridgeNS, "link", "set", h1.Port, "nomaster")
	Eventually(t, 3*time.Second, func() (bool, string) {
		return h2.State() == "master" && h1.State() == "master", fmt.Sprintf("h1 %q, h2 %q: want both master", h1.State(), h2.State())
	})

	start := time.Now()
	must(t, "ip", "-n", l.BridgeNS, "link", "set", h1.Port, "master", "br0")
	settlesWithinAnAdvert(t, l, vip, start, "the partition healed")
}

func TestVRRPAddressOwnerTakesOverAtOnce(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	l.StartMaster(t, l.Host(2), VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})
	// Priority 255 does not wait for a down interval (RFC 5798 §6.4.1).
	start := time.Now()
	l.Host(1).StartVRRPLB(VRRPConf{Priority: 255, VIPs: []netip.Prefix{VIP4}}.TOML())
	l.WaitMaster(t, l.Host(1), vip, 3*time.Second)
	took := time.Since(start) // includes starting the daemon and its admin server
	t.Logf("the owner was master %s after it was started", took)
	if down := 3*advert + skew(255, advert); took > down+slack {
		t.Errorf("the owner took %s, more than a down interval (%s) + slack", took, down)
	}
}

func TestVRRPGARPRefreshRepairsAClientCache(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	h1, client := l.Host(1), l.Host(2)
	l.StartMaster(t, h1, VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}, Extra: "garp_refresh = \"300ms\"\n"})
	// The burst on becoming master is over (garp_repeat = 2)…
	Eventually(t, 2*time.Second, func() (bool, string) {
		n, err := h1.Metric("vrrplb_garp_sent_total")
		return err == nil && n >= 2, fmt.Sprintf("burst not sent: %v %v", n, err)
	})
	// …when something poisons the client's cache.
	client.MustExec("ip", "neigh", "replace", vip.String(), "lladdr", "02:00:00:00:00:99", "dev", HostIfname, "nud", "stale")
	want := h1.MAC()
	Eventually(t, 2*time.Second, func() (bool, string) {
		got := client.Neighbour(vip)
		return got == want, fmt.Sprintf("the client resolves %s to %q, want h1's %s", vip, got, want)
	})
}

func TestVRRPInstanceSurvivesItsInterfaceBeingRecreated(t *testing.T) {
	for _, vipPrefix := range []netip.Prefix{VIP4, VIP6} {
		t.Run(vipPrefix.String(), func(t *testing.T) {
			l := NewLab(t, 2)
			vip := vipPrefix.Addr()
			h1, h2 := l.Host(1), l.Host(2)
			l.StartMaster(t, h1, VRRPConf{Priority: 200, VIPs: []netip.Prefix{vipPrefix}})
			l.StartBackup(t, h2, VRRPConf{Priority: 100, VIPs: []netip.Prefix{vipPrefix}})

			oldMAC := h1.MAC()
			h1.RecreateLink()
			if h1.MAC() == oldMAC {
				t.Fatal("the recreated link kept its MAC: the test proves less than it says")
			}
			// h1 faulted when its interface went away, h2 took over; on the
			// new interface h1 sends and hears adverts again and preempts.
			l.WaitMaster(t, h1, vip, 5*time.Second)
			Eventually(t, 3*time.Second, func() (bool, string) { return h2.State() == "backup", "h2 did not yield to h1" })
			l.StaysMaster(t, h1, vip, 10*advert)
		})
	}
}

func TestVRRPPreemptDelayHoldsOffTheTakeover(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	l.StartMaster(t, l.Host(1), VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})
	start := time.Now()
	l.Host(2).StartVRRPLB(VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}, Extra: "preempt_delay = \"1s\"\n"}.TOML())
	// Well past a down interval, h1 is still master…
	l.StaysMaster(t, l.Host(1), vip, 600*time.Millisecond)
	// …until the delay is over.
	l.WaitMaster(t, l.Host(2), vip, 3*time.Second)
	took := time.Since(start)
	t.Logf("h2 took over %s after it started, with preempt_delay 1s", took)
	if took < time.Second {
		t.Errorf("h2 took over after %s, before its preempt_delay of 1s", took)
	}
}
