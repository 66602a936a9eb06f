package e2e

import (
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// reload rewrites h's config and sends SIGHUP, then waits until the daemon
// reports a successful reload.
func reload(t *testing.T, h *Host, p *Proc, config string) {
	t.Helper()
	before, err := h.Metric("vrrplb_config_last_reload_success_timestamp_seconds")
	if err != nil {
		t.Fatal(err)
	}
	h.WriteConfig(config)
	p.Signal(syscall.SIGHUP)
	Eventually(t, 5*time.Second, func() (bool, string) {
		ok, err1 := h.Metric("vrrplb_config_last_reload_successful")
		at, err2 := h.Metric("vrrplb_config_last_reload_success_timestamp_seconds")
		return err1 == nil && err2 == nil && ok == 1 && at > before,
			fmt.Sprintf("no successful reload on %s (successful=%v, errors %v %v)", h.Name, ok, err1, err2)
	})
}

func TestVRRPReloadKeepsTheMasterWhilePriorityStillWins(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	p1 := l.StartMaster(t, l.Host(1), VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	l.StartBackup(t, l.Host(2), VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})

	reload(t, l.Host(1), p1, VRRPConf{Priority: 150, VIPs: []netip.Prefix{VIP4}}.TOML())
	l.StaysMaster(t, l.Host(1), vip, 10*advert)
	ins, err := l.Host(1).Instances()
	if err != nil || len(ins) != 1 || ins[0].Priority != 150 || ins[0].State != "master" {
		t.Errorf("h1 after reload: %+v (%v), want master at priority 150", ins, err)
	}

	// A priority that loses hands the VIP to h2.
	reload(t, l.Host(1), p1, VRRPConf{Priority: 50, VIPs: []netip.Prefix{VIP4}}.TOML())
	l.WaitMaster(t, l.Host(2), vip, 3*time.Second)
}

func TestVRRPReloadAddsAndRemovesInstances(t *testing.T) {
	l := NewLab(t, 1)
	h := l.Host(1)
	a := VRRPConf{Name: "a", VRID: 51, VIPs: []netip.Prefix{VIP4}}
	second := netip.PrefixFrom(LabAddr4(101), 24)
	b := VRRPConf{Name: "b", VRID: 52, VIPs: []netip.Prefix{second}}
	p := h.StartVRRPLB(Config(a))
	l.WaitMaster(t, h, VIP4.Addr(), 5*time.Second)

	reload(t, h, p, Config(a, b))
	Eventually(t, 5*time.Second, func() (bool, string) {
		return h.HasAddr(second.Addr()) && h.HasAddr(VIP4.Addr()), "instance b did not come up beside a"
	})

	reload(t, h, p, Config(b))
	Eventually(t, 5*time.Second, func() (bool, string) {
		return !h.HasAddr(VIP4.Addr()), "the removed instance a left its VIP"
	})
	if !h.HasAddr(second.Addr()) {
		t.Error("instance b lost its VIP when a was removed")
	}
	ins, err := h.Instances()
	if err != nil || len(ins) != 1 || ins[0].Name != "b" {
		t.Errorf("/status after removing a: %+v (%v), want only b", ins, err)
	}
	if n, _ := h.Metric("vrrplb_instance_priority", `vrrp_instance="a"`); n != 0 {
		t.Errorf("metrics of the removed instance remain: priority %v", n)
	}
}

// Issue 15: a reload that only reweights a tracker, adds one or changes the
// notify command is applied to the running instance: the master keeps the
// VIP throughout, with no transition on either host (a restarted instance
// would hand the VIP to h2 and take it back).
func TestVRRPReloadOfTrackersAndNotifyKeepsTheMaster(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	script := func(weight int) string {
		return fmt.Sprintf("\n  [[instance.track_script]]\n  command = [\"/bin/false\"]\n  interval = \"200ms\"\n  timeout = \"1s\"\n  weight = %d\n", weight)
	}
	h1 := VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}, Extra: script(-10)}
	p1 := l.Host(1).StartVRRPLB(h1.TOML())
	l.WaitMaster(t, l.Host(1), vip, 5*time.Second)
	l.StartBackup(t, l.Host(2), VRRPConf{Priority: 150, VIPs: []netip.Prefix{VIP4}})
	transitions := func(h *Host) float64 {
		var sum float64
		for _, to := range []string{"init", "backup", "master", "fault"} {
			n, _ := h.Metric("vrrplb_instance_transitions_total", `vrrp_instance="vip"`, fmt.Sprintf("to=%q", to))
			sum += n
		}
		return sum
	}
	before1, before2 := transitions(l.Host(1)), transitions(l.Host(2))

	h1.Extra = script(-20) + "\n  [[instance.track_interface]]\n  name = \"eth0\"\n  weight = -5\n"
	h1.Notify = []string{"/bin/true"}
	reload(t, l.Host(1), p1, h1.TOML())
	l.StaysMaster(t, l.Host(1), vip, 10*advert)
	ins, err := l.Host(1).Instances()
	if err != nil || len(ins) != 1 || ins[0].State != "master" || ins[0].EffectivePriority != 180 {
		t.Errorf("h1 after reload: %+v (%v), want master at effective priority 180", ins, err)
	}
	if a, b := transitions(l.Host(1)), transitions(l.Host(2)); a != before1 || b != before2 {
		t.Errorf("transitions went from %v/%v to %v/%v: the reload restarted the instance", before1, before2, a, b)
	}
}
