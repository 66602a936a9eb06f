package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The VRRP instances run in a child process of the daemon, the VRRP engine,
// at real-time priority: proxy load cannot delay an advertisement. If the
// engine dies the daemon starts it again while the proxy goes on; if the
// daemon dies the engine hands the VIP over and exits.
func TestEngineRunsAtRealtimePriorityAndRestartsWithoutTouchingTheProxy(t *testing.T) {
	requireRoot(t)
	lab := NewLab(t, 3)
	h1, h2, h3 := lab.Host(1), lab.Host(2), lab.Host(3)
	vip := VIP4.Addr()
	api := fakeAPIServer(t, h3, 6443, "A", lab.WriteFile("ready", ""))

	cfg := func(prio int) string {
		return lbConf{
			VRRPConf: VRRPConf{Priority: prio, VIPs: []netip.Prefix{VIP4}},
			Backends: []netip.AddrPort{api},
			Interval: 200 * time.Millisecond,
		}.config(t)
	}
	p1 := h1.StartVRRPLB(cfg(200))
	lab.WaitMaster(t, h1, vip, 10*time.Second)
	h2.StartVRRPLB(cfg(100))
	Eventually(t, 5*time.Second, func() (bool, string) { return h2.State() == "backup", "h2 is " + h2.State() })

	engine := func(p *Proc) int {
		t.Helper()
		var kids []int
		Eventually(t, 5*time.Second, func() (bool, string) {
			kids = p.Children()
			return len(kids) == 1, fmt.Sprintf("daemon %d has child processes %v, want one VRRP engine", p.Pid(), kids)
		})
		return kids[0]
	}

	// Every thread of the engine is SCHED_FIFO; the daemon's are not.
	e1 := engine(p1)
	for pid, want := range map[int]string{e1: "1", p1.Pid(): "0"} {
		for _, policy := range schedPolicies(t, pid) {
			if policy != want {
				t.Errorf("process %d has a thread with scheduling policy %s, want %s (0 normal, 1 SCHED_FIFO)", pid, policy, want)
			}
		}
	}
	if got, err := h1.Metric("vrrplb_vrrp_engine_realtime"); err != nil || got != 1 {
		t.Errorf("vrrplb_vrrp_engine_realtime = %v (%v), want 1", got, err)
	}

	// A watch-like stream through the VIP survives the engine's death.
	stream := openStream(t, h2, netip.AddrPortFrom(vip, 8443))
	stream.next(t)
	if err := syscall.Kill(e1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, func() (bool, string) {
		kids := p1.Children()
		n, _ := h1.Metric("vrrplb_vrrp_engine_restarts_total")
		return n == 1 && len(kids) == 1 && kids[0] != e1, fmt.Sprintf("restarts %v, engine processes %v (the killed one was %d)", n, kids, e1)
	})
	if !strings.Contains(p1.Output(), "VRRP engine exited; starting it again") {
		t.Errorf("the daemon did not log the engine's death:\n%s", p1.Output())
	}
	lab.WaitMaster(t, h1, vip, 10*time.Second)
	Eventually(t, 5*time.Second, func() (bool, string) { return h1.State() == "master", "h1 is " + h1.State() })
	for i := 0; i < 3; i++ {
		stream.next(t)
	}
	if p1.Exited() {
		t.Fatalf("the daemon exited with its engine: %v", p1.WaitExit(0))
	}

	// The daemon killed outright: its engine sees the socket close, hands
	// the VIP over at once (priority 0) and exits; nothing is left behind.
	e1 = engine(p1)
	start := time.Now()
	p1.Signal(syscall.SIGKILL)
	lab.WaitMaster(t, h2, vip, 2*time.Second)
	t.Logf("h2 master %s after the daemon on h1 was killed", time.Since(start).Round(time.Millisecond))
	Eventually(t, 5*time.Second, func() (bool, string) {
		_, err := os.Stat("/proc/" + strconv.Itoa(e1))
		return os.IsNotExist(err), fmt.Sprintf("the engine %d outlived its daemon", e1)
	})
	if h1.HasAddr(vip) {
		t.Errorf("h1 still holds the VIP after its engine stopped")
	}
}

// schedPolicies lists the scheduling policy of each thread of pid (field 41
// of /proc/PID/task/TID/stat).
func schedPolicies(t *testing.T, pid int) []string {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		// The command name (field 2) may hold spaces: count from its ")".
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		out = append(out, f[41-3])
	}
	if len(out) == 0 {
		t.Fatalf("process %d has no threads", pid)
	}
	return out
}
