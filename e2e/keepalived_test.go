package e2e

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// interopCase is one way both daemons speak VRRP.
type interopCase struct {
	name     string
	version  int
	interval time.Duration
	auth     string
	vip      netip.Prefix
	// unicast: adverts go to the other host's address instead of the group.
	unicast bool
}

var interopCases = []interopCase{
	{name: "VRRPv3 at 100ms", version: 3, interval: 100 * time.Millisecond, vip: VIP4},
	{name: "VRRPv2 with simple password", version: 2, interval: time.Second, auth: "s3cret", vip: VIP4},
	{name: "VRRPv3 unicast", version: 3, interval: 100 * time.Millisecond, vip: VIP4, unicast: true},
	{name: "VRRPv3 over IPv6", version: 3, interval: 100 * time.Millisecond, vip: VIP6},
}

// peer is the address of the other host of a two-host lab.
func peerOf(l *Lab, h *Host) netip.Addr {
	other := l.Host(1)
	if other == h {
		other = l.Host(2)
	}
	return other.Addr4.Addr()
}

func (c interopCase) vrrplb(l *Lab, h *Host, prio int) string {
	conf := VRRPConf{Priority: prio, Version: c.version, Interval: c.interval, AuthPass: c.auth, VIPs: []netip.Prefix{c.vip}}
	if c.unicast {
		conf.UnicastPeers = []netip.Addr{peerOf(l, h)}
	}
	return conf.TOML()
}

func (c interopCase) keepalived(l *Lab, h *Host, prio int) KeepalivedConf {
	conf := KeepalivedConf{VRID: 51, Priority: prio, Version: c.version, Interval: c.interval, AuthPass: c.auth, VIPs: []netip.Prefix{c.vip}}
	if c.unicast {
		conf.UnicastPeers = []netip.Addr{peerOf(l, h)}
	}
	return conf
}

// downInterval is Master_Down_Interval for priority p, with slack.
func (c interopCase) downInterval(p int) time.Duration {
	return 3*c.interval + skew(p, c.interval) + slack
}

// sigtermHandsOver sends SIGTERM to the master p, named stopping, and
// checks that taker, named taking and at priority 100, holds vip within its
// Skew_Time (and slack), and that p exits 0.
func sigtermHandsOver(t *testing.T, p *Proc, stopping string, taker *Host, taking string, vip netip.Addr, interval time.Duration) {
	t.Helper()
	start := time.Now()
	p.Signal(syscall.SIGTERM)
	Eventually(t, 5*time.Second, func() (bool, string) { return taker.HasAddr(vip), taking + " did not take the VIP" })
	took := time.Since(start)
	t.Logf("%s took over %s after %s's SIGTERM (skew %s)", taking, took, stopping, skew(100, interval))
	if limit := skew(100, interval) + slack; took > limit {
		t.Errorf("handoff took %s, want at most %s", took, limit)
	}
	if err := p.WaitExit(10 * time.Second); err != nil {
		t.Fatalf("%s after SIGTERM: %v", stopping, err)
	}
}

// crashHandsOver crashes the master h, running p named crashing, and checks
// that taker, named taking, holds vip within down, its
// Master_Down_Interval.
func crashHandsOver(t *testing.T, l *Lab, h *Host, p *Proc, crashing string, taker *Host, taking string, vip netip.Addr, down time.Duration) {
	t.Helper()
	start := time.Now()
	l.Crash(h, p)
	Eventually(t, down+time.Second, func() (bool, string) { return taker.HasAddr(vip), taking + " did not take the VIP" })
	took := time.Since(start)
	t.Logf("%s took over %s after %s crashed (limit %s)", taking, took, crashing, down)
	if took > down {
		t.Errorf("failover took %s, want at most %s", took, down)
	}
}

func TestKeepalivedInteropVRRPLBMasterKeepalivedBackup(t *testing.T) {
	for _, c := range interopCases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLab(t, 2)
			vip := c.vip.Addr()
			v, k := l.Host(1), l.Host(2)

			pv := v.StartVRRPLB(c.vrrplb(l, v, 200))
			l.WaitMaster(t, v, vip, 5*time.Second+c.downInterval(200))
			pk := k.StartKeepalived(c.keepalived(l, k, 100))
			Eventually(t, 5*time.Second, func() (bool, string) {
				return strings.Contains(pk.Output(), "Entering BACKUP STATE"), "keepalived did not enter BACKUP"
			})
			l.StaysMaster(t, v, vip, 3*c.interval)
			if strings.Contains(pk.Output(), "Entering MASTER STATE") {
				t.Fatalf("keepalived became master beside vrrplb:\n%s", pk.Output())
			}

			// Graceful handoff: vrrplb's priority-0 advert makes keepalived take over at once.
			sigtermHandsOver(t, pv, "vrrplb", k, "keepalived", vip, c.interval)

			// vrrplb comes back with the higher priority and preempts.
			pv = v.StartVRRPLB(c.vrrplb(l, v, 200))
			l.WaitMaster(t, v, vip, 5*time.Second+c.downInterval(200))

			// Crash: keepalived takes over within its down interval.
			crashHandsOver(t, l, v, pv, "vrrplb", k, "keepalived", vip, c.downInterval(100))
		})
	}
}

func TestKeepalivedInteropKeepalivedMasterVRRPLBBackup(t *testing.T) {
	for _, c := range interopCases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLab(t, 2)
			vip := c.vip.Addr()
			k, v := l.Host(1), l.Host(2)

			pk := k.StartKeepalived(c.keepalived(l, k, 200))
			Eventually(t, 5*time.Second+c.downInterval(200), func() (bool, string) { return k.HasAddr(vip), "keepalived did not become master" })
			v.StartVRRPLB(c.vrrplb(l, v, 100))
			Eventually(t, 5*time.Second, func() (bool, string) { return v.State() == "backup", "vrrplb not backup" })
			l.StaysMaster(t, k, vip, 3*c.interval)

			// Graceful handoff from keepalived.
			sigtermHandsOver(t, pk, "keepalived", v, "vrrplb", vip, c.interval)
			l.WaitMaster(t, v, vip, 2*time.Second)

			// keepalived comes back with the higher priority and preempts vrrplb.
			pk = k.StartKeepalived(c.keepalived(l, k, 200))
			Eventually(t, 5*time.Second+c.downInterval(200), func() (bool, string) {
				return k.HasAddr(vip) && !v.HasAddr(vip) && v.State() == "backup",
					fmt.Sprintf("keepalived did not preempt: vrrplb is %q", v.State())
			})

			// Crash keepalived: vrrplb takes over within its down interval.
			crashHandsOver(t, l, k, pk, "keepalived", v, "vrrplb", vip, c.downInterval(100))
			l.WaitMaster(t, v, vip, 2*time.Second)
		})
	}
}

func TestTcpdumpDecodesVRRPLBAdverts(t *testing.T) {
	for _, c := range interopCases {
		t.Run(c.name, func(t *testing.T) {
			requireCommand(t, "tcpdump", "tcpdump")
			l := NewLab(t, 2)
			file, stop := l.Capture("ip", "proto", "112", "or", "ip6", "proto", "112")
			l.Host(1).StartVRRPLB(c.vrrplb(l, l.Host(1), 200))
			l.WaitMaster(t, l.Host(1), c.vip.Addr(), 5*time.Second+c.downInterval(200))
			l.Host(2).StartVRRPLB(c.vrrplb(l, l.Host(2), 100))
			Eventually(t, 5*time.Second, func() (bool, string) { return l.Host(2).State() == "backup", "h2 not backup" })
			want := fmt.Sprintf("VRRPv%d, Advertisement, vrid 51, prio 200", c.version)
			// Read the capture while it runs until it holds three adverts of the master.
			var out []byte
			Eventually(t, 5*time.Second+3*c.interval, func() (bool, string) {
				var err error
				out, err = exec.Command("tcpdump", "-vv", "-n", "-r", file).CombinedOutput()
				return err == nil && strings.Count(string(out), want) >= 3, fmt.Sprintf("capture lacks 3 × %q: %v\n%s", want, err, out)
			})
			stop()
			text := string(out)
			header := []string{"tos 0xc0, ttl 255"}
			if c.vip.Addr().Is6() {
				header = []string{"class 0xc0", "hlim 255"} // the flow label is the kernel's
			}
			for _, want := range append(header, "addrs: "+c.vip.Addr().String()) {
				if !strings.Contains(text, want) {
					t.Errorf("tcpdump output lacks %q:\n%s", want, text)
				}
			}
			if c.auth != "" && !strings.Contains(text, `auth "`+c.auth) {
				t.Errorf("tcpdump output lacks the simple password:\n%s", text)
			}
			for _, bad := range []string{"bad", "[|vrrp]", "truncated", "malformed", "invalid"} {
				if strings.Contains(text, bad) {
					t.Errorf("tcpdump complains (%q):\n%s", bad, text)
				}
			}
			t.Logf("tcpdump, first lines:\n%s", firstLines(text, 4))
		})
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func TestKeepalivedNopreemptBackupLeavesVRRPLBMaster(t *testing.T) {
	l := NewLab(t, 2)
	vip := VIP4.Addr()
	v, k := l.Host(1), l.Host(2)
	l.StartMaster(t, v, VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}})
	pk := k.StartKeepalived(KeepalivedConf{VRID: 51, Priority: 200, Version: 3, Interval: advert, NoPreempt: true, VIPs: []netip.Prefix{VIP4}})
	Eventually(t, 5*time.Second, func() (bool, string) {
		return strings.Contains(pk.Output(), "Entering BACKUP STATE"), "keepalived did not enter BACKUP"
	})
	// keepalived has the higher priority but nopreempt: vrrplb stays master.
	l.StaysMaster(t, v, vip, 10*advert)
	if strings.Contains(pk.Output(), "Entering MASTER STATE") {
		t.Errorf("keepalived with nopreempt took over:\n%s", pk.Output())
	}
}
