package e2e

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// advertTimes reads a capture's VRRP adverts: when from sent one with
// priority prio, in order.
func advertTimes(t *testing.T, file string, from netip.Addr, prio int) []time.Time {
	t.Helper()
	out, err := exec.Command("tcpdump", "-n", "-tt", "-r", file).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, out)
	}
	var ts []time.Time
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[2] != from.String() || !strings.Contains(line, fmt.Sprintf(", prio %d,", prio)) {
			continue
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		ts = append(ts, time.Unix(0, int64(sec*1e9)))
	}
	return ts
}

// instanceStatus is h's only instance in /status.
func instanceStatus(t *testing.T, h *Host) InstanceStatus {
	t.Helper()
	ins, err := h.Instances()
	if err != nil || len(ins) != 1 {
		t.Fatalf("%s /status instances %+v: %v", h.Name, ins, err)
	}
	return ins[0]
}

// yieldingLBConfig is an LB host's config: one VRRP instance at prio,
// advertising every advert, that yields while frontend "apiserver" (":8443"
// to api, checked over https every 200ms, rise 1) has no healthy backend,
// and its admin socket at socket.
func yieldingLBConfig(t *testing.T, prio int, advert time.Duration, socket string, api netip.AddrPort, drainTimeout string) string {
	return lbConf{
		VRRPConf: VRRPConf{Priority: prio, Interval: advert, VIPs: []netip.Prefix{VIP4}},
		Backends: []netip.AddrPort{api},
		Frontend: fmt.Sprintf("drain_timeout = %q\n", drainTimeout),
		Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, Rise: 1,
		Socket: socket,
	}.config(t)
}

// yieldingLab is the lab of the maintenance and handover tests: LB hosts h1
// and h2, h3 with apiserver A on :6443, h4 a client. lbConfig is
// yieldingLBConfig in front of A, with drainTimeout.
func yieldingLab(t *testing.T, drainTimeout string) (lab *Lab, api netip.AddrPort, lbConfig func(prio int, socket string) string) {
	lab = NewLab(t, 4)
	api = fakeAPIServer(t, lab.Host(3), 6443, "A", "")
	return lab, api, func(prio int, socket string) string {
		return yieldingLBConfig(t, prio, advert, socket, api, drainTimeout)
	}
}

// Maintenance: the master hands its VIP to the backup within the backup's
// skew time (plus 20 ms of scheduling), a stream through its own proxy goes
// on, a new connection to it still works, a reload keeps the maintenance;
// off takes the VIP back (preempt); alone, a host in maintenance keeps it.
//
// h1 and h2 are the LB hosts (priorities 100 and 90), h3 an apiserver, h4
// the client.
func TestMaintenanceHandsTheVIPOverAndKeepsLiveConnections(t *testing.T) {
	requireRoot(t)
	requireCommand(t, "tcpdump", "tcpdump")
	lab, _, lbConfig := yieldingLab(t, "2s")
	h1, h2, h4 := lab.Host(1), lab.Host(2), lab.Host(4)
	vip := VIP4.Addr()
	sock1, sock2 := adminSocket(t), adminSocket(t)
	p1 := h1.StartVRRPLB(lbConfig(100, sock1))
	p2 := h2.StartVRRPLB(lbConfig(90, sock2))
	lab.WaitMaster(t, h1, vip, 10*time.Second)
	Eventually(t, 5*time.Second, func() (bool, string) { return h2.State() == "backup", "h2 not backup" })

	// A watch-like stream through h1's proxy, reached at h1's own address.
	direct := netip.AddrPortFrom(h1.Addr4.Addr(), 8443)
	stream := openStream(t, h4, direct)
	stream.next(t)

	// Immediate mode: the capture stops right after the handover, before
	// libpcap's buffer timeout would have handed its packets over.
	file, stopCapture := lab.Capture("--immediate-mode", "ip", "proto", "112")
	start := time.Now()
	out := mustVRRPLBCommand(t, "maintenance", "on", "--socket", sock1)
	returned := time.Since(start)
	moved := lab.WaitMaster(t, h2, vip, 5*time.Second)
	stopCapture()
	t.Logf("vrrplb maintenance on (returned after %v): %s", returned, strings.TrimSpace(out))

	checkHandoverOnTheWire(t, file, h1, h2, advert, moved)
	Eventually(t, 5*time.Second, func() (bool, string) {
		in := instanceStatus(t, h1)
		return in.State == "backup" && in.Maintenance && in.EffectivePriority == 1,
			fmt.Sprintf("h1 /status %+v, want backup, maintenance, effective priority 1", in)
	})
	if in := instanceStatus(t, h2); in.Maintenance {
		t.Errorf("h2 says maintenance: %+v", in)
	}
	if out := h1.MustExec(Binary(t), "status"); !strings.Contains(out, "BACKUP (maintenance)") {
		t.Errorf("vrrplb status on h1 does not show the maintenance:\n%s", out)
	}

	// The live stream through h1 goes on; a new connection to h1 works.
	for range 3 {
		stream.next(t)
	}
	fresh := openStream(t, h4, direct)
	fresh.next(t)
	fresh.close()

	// A reload keeps the maintenance.
	p1.Signal(syscall.SIGHUP)
	waitMetric(t, h1, 1, "vrrplb_config_last_reload_successful")
	lab.StaysMaster(t, h2, vip, time.Second)
	if in := instanceStatus(t, h1); !in.Maintenance {
		t.Errorf("after SIGHUP h1 left maintenance: %+v", in)
	}
	stream.next(t)

	// So does a restart of the VRRP engine.
	checkEngineRestartKeepsMaintenance(t, lab, h1, h2, p1, vip)
	stream.next(t)

	// off: h1 takes its priority back and preempts.
	mustVRRPLBCommand(t, "maintenance", "off", "--socket", sock1)
	lab.WaitMaster(t, h1, vip, 5*time.Second)
	if in := instanceStatus(t, h1); in.Maintenance || in.EffectivePriority != 100 {
		t.Errorf("after off h1 /status %+v, want no maintenance, priority 100", in)
	}
	stream.next(t)

	// Alone, a host in maintenance keeps the VIP: no peer can hold it.
	p2.Signal(syscall.SIGTERM)
	if err := p2.WaitExit(10 * time.Second); err != nil {
		t.Fatalf("vrrplb on h2: %v", err)
	}
	file, stopCapture = lab.Capture("--immediate-mode", "ip", "proto", "112")
	mustVRRPLBCommand(t, "maintenance", "on", "--socket", sock1)
	lab.WaitMaster(t, h1, vip, 5*time.Second)
	lab.StaysMaster(t, h1, vip, 2*time.Second)
	stopCapture()
	checkAloneTakesTheVIPBack(t, file, h1, advert)
	if in := instanceStatus(t, h1); !in.Maintenance || in.State != "master" {
		t.Errorf("alone in maintenance, h1 /status %+v, want master in maintenance", in)
	}
	stream.next(t)

	// A wrong instance name is refused and changes nothing.
	if out, err := vrrplbCommand(t, "maintenance", "off", "--instance", "nope", "--socket", sock1); err == nil ||
		!strings.Contains(out, `no instance "nope"`) {
		t.Errorf("maintenance off --instance nope: %v\n%s", err, out)
	}
	if in := instanceStatus(t, h1); !in.Maintenance {
		t.Errorf("a refused command took h1 out of maintenance: %+v", in)
	}

	// A restart forgets it: h1 is back at its own priority.
	p1.Signal(syscall.SIGTERM)
	if err := p1.WaitExit(10 * time.Second); err != nil {
		t.Fatalf("vrrplb on h1: %v", err)
	}
	h1.StartVRRPLB(lbConfig(100, sock1))
	lab.WaitMaster(t, h1, vip, 10*time.Second)
	if in := instanceStatus(t, h1); in.Maintenance || in.EffectivePriority != 100 {
		t.Errorf("after a restart h1 /status %+v, want no maintenance, priority 100", in)
	}
}

// checkHandoverOnTheWire checks a maintenance handover in a capture: h1's
// priority-0 advert, then h2's (priority 90) first advert as master within
// h2's skew time plus 20 ms, and no priority-100 advert from h1 after it.
// moved is when the VIP was seen on h2, for the log.
func checkHandoverOnTheWire(t *testing.T, file string, h1, h2 *Host, advert, moved time.Duration) {
	t.Helper()
	skew := time.Duration(256-90) * advert / 256 // h2's Skew_Time, RFC 5798 §6.1
	leaving := advertTimes(t, file, h1.Addr4.Addr(), 0)
	taking := advertTimes(t, file, h2.Addr4.Addr(), 90)
	if len(leaving) == 0 || len(taking) == 0 {
		t.Fatalf("the capture lacks h1's priority-0 advert (%d) or h2's adverts as master (%d)", len(leaving), len(taking))
	}
	handover := taking[0].Sub(leaving[0])
	t.Logf("maintenance on → h1's priority-0 advert → h2 master after %v on the wire (skew %v); VIP on h2 seen %v after the command started",
		handover, skew, moved)
	if handover < 0 || handover > skew+20*time.Millisecond {
		t.Errorf("h2 took over %v after h1's priority-0 advert, want ≤ skew %v + 20ms", handover, skew)
	}
	// h1 stays in the election at the lowest priority, and says so.
	if got := advertTimes(t, file, h1.Addr4.Addr(), 100); len(got) > 0 && got[len(got)-1].After(leaving[0]) {
		t.Errorf("h1 advertised priority 100 after its priority-0 advert")
	}
}

// checkEngineRestartKeepsMaintenance kills h1's VRRP engine while h1 is in
// maintenance and h2 holds the VIP: the daemon tells the new engine before
// its instances run, so they never advertise priority 100 and h2 stays
// master.
func checkEngineRestartKeepsMaintenance(t *testing.T, lab *Lab, h1, h2 *Host, p1 *Proc, vip netip.Addr) {
	t.Helper()
	file, stopCapture := lab.Capture("--immediate-mode", "ip", "proto", "112")
	var kids []int
	Eventually(t, 5*time.Second, func() (bool, string) {
		kids = p1.Children()
		return len(kids) == 1, fmt.Sprintf("h1's daemon has children %v, want its VRRP engine", kids)
	})
	if err := syscall.Kill(kids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, func() (bool, string) {
		n, _ := h1.Metric("vrrplb_vrrp_engine_restarts_total")
		return n == 1, fmt.Sprintf("h1's engine restarts: %v", n)
	})
	Eventually(t, 5*time.Second, func() (bool, string) {
		ins, err := h1.Instances()
		return err == nil && len(ins) == 1 && ins[0].State == "backup" && ins[0].Maintenance,
			fmt.Sprintf("after its engine restarted, h1 /status %+v (%v)", ins, err)
	})
	lab.StaysMaster(t, h2, vip, time.Second)
	stopCapture()
	if got := advertTimes(t, file, h1.Addr4.Addr(), 100); len(got) > 0 {
		t.Errorf("h1's restarted engine advertised priority 100 %d times while in maintenance", len(got))
	}
}

// checkAloneTakesTheVIPBack checks in a capture that h1, alone and put in
// maintenance, hands over as ever, hears no one, and takes the VIP back at
// priority 1 after Master_Down_Interval (RFC 5798 §6.1) plus 20 ms.
func checkAloneTakesTheVIPBack(t *testing.T, file string, h1 *Host, advert time.Duration) {
	t.Helper()
	leaving, back := advertTimes(t, file, h1.Addr4.Addr(), 0), advertTimes(t, file, h1.Addr4.Addr(), 1)
	if len(leaving) == 0 || len(back) == 0 {
		t.Fatalf("the capture lacks h1's priority-0 advert (%d) or its adverts at priority 1 (%d)", len(leaving), len(back))
	}
	down := 3*advert + time.Duration(256-1)*advert/256
	gap := back[0].Sub(leaving[0])
	t.Logf("alone: h1's priority-0 advert → h1 master again at priority 1 after %v (Master_Down_Interval at priority 1: %v)", gap, down)
	if gap < 0 || gap > down+20*time.Millisecond {
		t.Errorf("alone, h1 was without the VIP for %v, want ≤ Master_Down_Interval %v + 20ms", gap, down)
	}
}
