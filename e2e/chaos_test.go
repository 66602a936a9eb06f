package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/vrrplb/vrrplb/vrrp"
)

// spoof is a sender of hand-made VRRPv3 adverts on a lab host: a raw socket
// in the host's namespace, multicast to the VRRP group on eth0 only.
type spoof struct {
	h   *Host
	c   net.PacketConn
	pc  *ipv4.PacketConn
	src netip.Addr
}

// newSpoof opens a raw IP socket for protocol 112 in h's namespace whose
// multicast adverts leave with the given TTL. It is closed at cleanup.
func newSpoof(t *testing.T, h *Host, ttl int) *spoof {
	t.Helper()
	s := &spoof{h: h, src: h.Addr4.Addr()}
	err := h.Do(func() error {
		c, err := net.ListenPacket("ip4:112", s.src.String())
		if err != nil {
			return err
		}
		s.c, s.pc = c, ipv4.NewPacketConn(c)
		ifi, err := net.InterfaceByName(HostIfname)
		if err != nil {
			return err
		}
		if err := s.pc.SetMulticastInterface(ifi); err != nil {
			return err
		}
		if err := s.pc.SetMulticastLoopback(false); err != nil {
			return err
		}
		return s.pc.SetMulticastTTL(ttl)
	})
	if err != nil {
		t.Fatalf("raw socket on %s: %v", h.Name, err)
	}
	t.Cleanup(func() { s.c.Close() })
	return s
}

// advert encodes a VRRPv3 advert from the spoofing host to the group.
func (s *spoof) advert(t *testing.T, vrid, prio int, vips ...netip.Addr) []byte {
	t.Helper()
	a := vrrp.Advertisement{Version: 3, VRID: uint8(vrid), Priority: uint8(prio), Interval: advert, Addrs: vips}
	b, err := a.Append(nil, s.src, vrrp.GroupIPv4)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// send writes msg n times to the VRRP group at rate packets per second,
// paced against the clock so that the rate holds on average, and returns
// how many were sent. It is bounded by n.
func (s *spoof) send(msg []byte, n, rate int) (int, error) {
	dst := &net.IPAddr{IP: net.IP(vrrp.GroupIPv4.AsSlice())}
	period := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * period)); d > 0 {
			time.Sleep(d)
		}
		if _, err := s.c.WriteTo(msg, dst); err != nil {
			return i, fmt.Errorf("send advert %d of %d from %s: %w", i+1, n, s.h.Name, err)
		}
	}
	return n, nil
}

// dropped reads h's vrrplb_packets_dropped_total for reason.
func dropped(h *Host, reason vrrp.Reason) float64 {
	n, _ := h.Metric("vrrplb_packets_dropped_total", `reason="`+string(reason)+`"`)
	return n
}

// waitDropped waits until h has counted want drops for reason, and fails if
// it counts more.
func waitDropped(t *testing.T, h *Host, reason vrrp.Reason, want float64) {
	t.Helper()
	Eventually(t, 3*time.Second, func() (bool, string) {
		got := dropped(h, reason)
		if got > want {
			t.Fatalf("%s counted %v drops with reason %q, want %v", h.Name, got, reason, want)
		}
		return got == want, fmt.Sprintf("%s counted %v drops with reason %q, want %v", h.Name, got, reason, want)
	})
}

// rawDrops is how many packets the kernel dropped on h's VRRP raw sockets
// (the drops column of /proc/net/raw; the local port there is the protocol).
func rawDrops(t *testing.T, h *Host) float64 {
	t.Helper()
	var sum float64
	for _, line := range strings.Split(h.MustExec("cat", "/proc/net/raw"), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasSuffix(f[1], fmt.Sprintf(":%04X", vrrp.ProtocolNumber)) {
			continue
		}
		n, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("/proc/net/raw on %s: %q: %v", h.Name, line, err)
		}
		sum += n
	}
	return sum
}

// usage is what a daemon holds: open files and goroutines.
type usage struct{ fds, goroutines int }

func (u usage) String() string { return fmt.Sprintf("%d fds, %d goroutines", u.fds, u.goroutines) }

// usageOf reads the open descriptors of p and of its VRRP engine process
// from /proc, and their goroutines from go_goroutines and
// vrrplb_vrrp_engine_goroutines in h's /metrics.
func usageOf(h *Host, p *Proc) (usage, error) {
	var u usage
	pids := append([]int{p.Pid()}, p.Children()...)
	if len(pids) != 2 {
		return usage{}, fmt.Errorf("%s: want the daemon and its VRRP engine, found processes %v", h.Name, pids)
	}
	for _, pid := range pids {
		ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
		if err != nil {
			return usage{}, err
		}
		u.fds += len(ents)
	}
	for _, name := range []string{"go_goroutines", "vrrplb_vrrp_engine_goroutines"} {
		g, err := h.Metric(name)
		if err != nil {
			return usage{}, err
		}
		if g == 0 {
			return usage{}, fmt.Errorf("%s reports no %s", h.Name, name)
		}
		u.goroutines += int(g)
	}
	return u, nil
}

// transitions is h's vrrplb_instance_transitions_total summed over states.
func transitions(t *testing.T, h *Host) float64 {
	t.Helper()
	var sum float64
	for _, s := range []string{"init", "backup", "master", "fault"} {
		n, err := h.Metric("vrrplb_instance_transitions_total", `to="`+s+`"`)
		if err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	return sum
}

func TestChaosSpoofedAndFloodedAdvertsChangeNothingAndLeakNothing(t *testing.T) {
	l := NewLab(t, 3)
	vip := VIP4.Addr()
	h1, h2, attacker := l.Host(1), l.Host(2), l.Host(3)
	p1 := l.StartMaster(t, h1, VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	p2 := l.StartBackup(t, h2, VRRPConf{Priority: 150, VIPs: []netip.Prefix{VIP4}})

	// What h2 holds as a settled backup, before any of it.
	base, err := usageOf(h2, p2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("h2 at baseline: %s", base)
	before1, before2 := transitions(t, h1), transitions(t, h2)

	t.Run("priority 255 with TTL 64 is dropped as ttl", func(t *testing.T) {
		s := newSpoof(t, attacker, 64)
		if _, err := s.send(s.advert(t, 51, 255, vip), 20, 50); err != nil {
			t.Fatal(err)
		}
		waitDropped(t, h1, vrrp.ReasonTTL, 20)
		waitDropped(t, h2, vrrp.ReasonTTL, 20)
	})

	t.Run("priority 255 with a bad checksum is dropped as checksum", func(t *testing.T) {
		s := newSpoof(t, attacker, 255)
		msg := s.advert(t, 51, 255, vip)
		msg[6] ^= 0x5a // RFC 5798 §5.2.8: the checksum is bytes 6 and 7
		if _, err := s.send(msg, 20, 50); err != nil {
			t.Fatal(err)
		}
		waitDropped(t, h1, vrrp.ReasonChecksum, 20)
		waitDropped(t, h2, vrrp.ReasonChecksum, 20)
	})

	t.Run("a version 2 advert of priority 255 is dropped as version", func(t *testing.T) {
		s := newSpoof(t, attacker, 255)
		a := vrrp.Advertisement{Version: 2, VRID: 51, Priority: 255, Interval: time.Second, Addrs: []netip.Addr{vip}}
		msg, err := a.Append(nil, s.src, vrrp.GroupIPv4)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.send(msg, 20, 50); err != nil {
			t.Fatal(err)
		}
		waitDropped(t, h1, vrrp.ReasonVersion, 20)
		waitDropped(t, h2, vrrp.ReasonVersion, 20)
	})

	// Nothing moved: the same master, no transition anywhere.
	l.StaysMaster(t, h1, vip, 5*advert)
	if a1, a2 := transitions(t, h1), transitions(t, h2); a1 != before1 || a2 != before2 {
		t.Errorf("spoofed adverts changed state: transitions h1 %v→%v, h2 %v→%v", before1, a1, before2, a2)
	}

	t.Run("a wrong-VRID flood does not delay the failover", func(t *testing.T) {
		const flood, rate = 10000, 5000 // 2 s
		s := newSpoof(t, attacker, 255)
		msg := s.advert(t, 52, 255, vip)
		sent := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := s.send(msg, flood, rate)
			sent <- err
		}()
		// Half a second into the flood the master dies.
		Eventually(t, 3*time.Second, func() (bool, string) {
			return dropped(h2, vrrp.ReasonVRID) >= rate/2, "the flood has not reached h2"
		})
		crashed := time.Now()
		l.Crash(h1, p1)
		Eventually(t, 5*time.Second, func() (bool, string) { return h2.HasAddr(vip), "h2 did not take the VIP during the flood" })
		took := time.Since(crashed)
		limit := 3*advert + skew(150, advert) + slack
		t.Logf("h2 took over %s after the crash, %s into the flood (limit %s)", took, crashed.Sub(start), limit)
		if took > limit {
			t.Errorf("failover during the flood took %s, want at most 3×advert + skew + slack = %s", took, limit)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		t.Logf("flood of %d adverts sent in %s", flood, time.Since(start).Round(time.Millisecond))
		// Every advert of the flood is counted as vrid, but for those the
		// kernel dropped when h2's socket buffer was full (h2 descheduled on
		// a busy machine).
		Eventually(t, 3*time.Second, func() (bool, string) {
			n, lost := dropped(h2, vrrp.ReasonVRID), rawDrops(t, h2)
			return n <= flood && n+lost >= flood && n >= flood/2,
				fmt.Sprintf("h2 counted %v wrong-VRID drops of %d sent, and its kernel dropped %v", n, flood, lost)
		})
		t.Logf("h2 counted %v wrong-VRID drops; its kernel dropped %v", dropped(h2, vrrp.ReasonVRID), rawDrops(t, h2))
		if n := dropped(h2, vrrp.ReasonVersion); n != 20 {
			t.Errorf("h2 counted %v drops with reason version, want the 20 from before", n)
		}
		for _, r := range []vrrp.Reason{vrrp.ReasonLength, vrrp.ReasonType, vrrp.ReasonAuth, vrrp.ReasonInterval} {
			if n := dropped(h2, r); n != 0 {
				t.Errorf("h2 counted %v drops with reason %q, want 0", n, r)
			}
		}
		if n := strings.Count(p2.Output(), "\n"); n > 200 {
			t.Errorf("h2 wrote %d log lines through the flood, want no line per packet", n)
		}
	})

	// h1 comes back and preempts: h2 is a backup again, as at baseline, and
	// holds no more than it did then.
	h1.SetLink(true)
	h1.crashed = false
	l.StartMaster(t, h1, VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	Eventually(t, 3*time.Second, func() (bool, string) { return h2.State() == "backup", "h2 did not yield to h1" })
	var now usage
	Eventually(t, 10*time.Second, func() (bool, string) {
		now, err = usageOf(h2, p2)
		return err == nil && now.fds <= base.fds && now.goroutines <= base.goroutines,
			fmt.Sprintf("h2 holds %s (%v), baseline %s", now, err, base)
	})
	t.Logf("h2 after the chaos: %s", now)
}

// startTogether starts vrrplb with each config on hosts at the same instant:
// every process waits on one FIFO that is written once all are started.
func startTogether(t *testing.T, l *Lab, hosts []*Host, configs []string) []*Proc {
	t.Helper()
	fifo := filepath.Join(l.LogDir, fmt.Sprintf("go-%d", time.Now().UnixNano()))
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// O_RDWR does not block on a FIFO; the waiting shells block in read.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	bin := Binary(t)
	procs := make([]*Proc, len(hosts))
	for i, h := range hosts {
		path := h.WriteConfig(configs[i])
		procs[i] = h.Start("vrrplb", "/bin/sh", "-c", `read go < "$0"; exec "$@"`, fifo, bin, "run", "--config", path)
	}
	// One line each: sh reads a pipe byte by byte, so each takes its own.
	if _, err := w.WriteString(strings.Repeat("go\n", len(hosts))); err != nil {
		t.Fatal(err)
	}
	for i, h := range hosts {
		Eventually(t, 10*time.Second, func() (bool, string) {
			if procs[i].Exited() {
				t.Fatalf("vrrplb on %s exited: %v\n%s", h.Name, procs[i].WaitExit(0), procs[i].Output())
			}
			code, _, err := h.HTTPGet("http://" + adminAddr + "/healthz")
			return err == nil && code == 200, fmt.Sprintf("vrrplb on %s not serving: %v", h.Name, err)
		})
	}
	return procs
}

// stopAll stops every daemon with SIGTERM and waits for it to exit.
func stopAll(t *testing.T, procs []*Proc) {
	t.Helper()
	for _, p := range procs {
		p.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		if err := p.WaitExit(10 * time.Second); err != nil {
			t.Fatalf("%s after SIGTERM: %v", p.Name, err)
		}
	}
}

func TestChaosSimultaneousStartElectsTheHighestEveryTime(t *testing.T) {
	l := NewLab(t, 3)
	vip := VIP4.Addr()
	// Each trial puts the highest priority on another host.
	trials := [][]int{{130, 110, 120}, {110, 130, 120}, {110, 120, 130}}
	for n, prio := range trials {
		configs := make([]string, 3)
		best := 0
		for i := range prio {
			configs[i] = VRRPConf{Priority: prio[i], VIPs: []netip.Prefix{VIP4}}.TOML()
			if prio[i] > prio[best] {
				best = i
			}
		}
		procs := startTogether(t, l, l.Hosts, configs)
		l.WaitMaster(t, l.Hosts[best], vip, 5*time.Second)
		l.StaysMaster(t, l.Hosts[best], vip, 10*advert)
		for i, h := range l.Hosts {
			if s := h.State(); i != best && s != "backup" {
				t.Errorf("trial %d: %s is %q, want backup", n+1, h.Name, s)
			}
		}
		stopAll(t, procs)
		if m := l.Masters(vip); len(m) != 0 {
			t.Fatalf("trial %d: %v kept the VIP after stopping", n+1, m)
		}
	}

	// Equal priorities: whoever's down timer fires first is master (a tie
	// is broken by address only between two masters, RFC 5798 §6.4.3), and
	// it stays master with the others backup.
	configs := make([]string, 3)
	for i := range configs {
		configs[i] = VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}}.TOML()
	}
	startTogether(t, l, l.Hosts, configs)
	var master *Host
	Eventually(t, 5*time.Second, func() (bool, string) {
		m := l.Masters(vip)
		if len(m) == 1 {
			master = l.Host(int(m[0][1] - '0'))
		}
		return len(m) == 1 && master.State() == "master", fmt.Sprintf("equal priorities: holders %v", m)
	})
	before := transitions(t, master)
	l.StaysMaster(t, master, vip, 3*time.Second)
	for _, h := range l.Hosts {
		if s := h.State(); h != master && s != "backup" {
			t.Errorf("equal priorities: %s is %q, want backup under %s", h.Name, s, master.Name)
		}
	}
	if after := transitions(t, master); after != before {
		t.Errorf("equal priorities: %s changed state %v times while it should have stayed master", master.Name, after-before)
	}
}

func TestChaosMasterLinkFlapsSettleAndPreemptBack(t *testing.T) {
	l := NewLab(t, 3)
	vip := VIP4.Addr()
	h1, h2, h3 := l.Host(1), l.Host(2), l.Host(3)
	l.StartMaster(t, h1, VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}})
	h2.StartVRRPLB(VRRPConf{Priority: 150, VIPs: []netip.Prefix{VIP4}}.TOML())
	h3.StartVRRPLB(VRRPConf{Priority: 100, VIPs: []netip.Prefix{VIP4}}.TOML())
	Eventually(t, 5*time.Second, func() (bool, string) {
		return h2.State() == "backup" && h3.State() == "backup", "h2 and h3 not backup yet"
	})

	// The master's cable flaps: down and up five times, some flaps shorter
	// than a down interval, some longer.
	for i, down := range []time.Duration{50, 400, 100, 600, 150} {
		h1.SetLink(false)
		time.Sleep(down * time.Millisecond) // the flap itself, not a wait for a state
		h1.SetLink(true)
		time.Sleep(time.Duration(100*(i+1)) * time.Millisecond)
	}
	l.WaitMaster(t, h1, vip, 5*time.Second)
	Eventually(t, 3*time.Second, func() (bool, string) {
		return h2.State() == "backup" && h3.State() == "backup", fmt.Sprintf("h2 %q, h3 %q after the flaps", h2.State(), h3.State())
	})
	l.StaysMaster(t, h1, vip, 2*time.Second)
	if err := h3.Reach(h1, vip, 2*time.Second); err != nil {
		t.Error(err)
	}
}
