package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The capabilities vrrplb needs, and their bits in /proc/PID/status.
const (
	capNetBindService = 10 // listen on a port below 1024
	capNetAdmin       = 12 // add and remove the VIP, send gratuitous ARP
	capNetRaw         = 13 // VRRP's raw socket
	capSysNice        = 23 // real-time priority for the VRRP engine (optional)
)

// TestVRRPLBRunsUnprivilegedWithOnlyItsThreeCapabilities runs vrrplb as user
// nobody with net_admin, net_raw and net_bind_service as ambient
// capabilities and nothing else, as a systemd unit with
// AmbientCapabilities= would: it must take the VIP and proxy to an
// apiserver on a port below 1024.
//
// Without CAP_SYS_NICE the VRRP engine runs at normal priority and says so.
func TestVRRPLBRunsUnprivilegedWithOnlyItsThreeCapabilities(t *testing.T) {
	runUnprivileged(t, "net_admin,net_raw,net_bind_service", false)
}

// TestVRRPLBUnprivilegedGetsRealtimeWithSysNice adds CAP_SYS_NICE, as the
// shipped systemd unit and static pod do: the VRRP engine runs SCHED_FIFO.
func TestVRRPLBUnprivilegedGetsRealtimeWithSysNice(t *testing.T) {
	runUnprivileged(t, "net_admin,net_raw,net_bind_service,sys_nice", true)
}

func runUnprivileged(t *testing.T, caps string, realtime bool) {
	l := NewLab(t, 3)
	setpriv := requireCommand(t, "setpriv", "util-linux")
	lb, api, client := l.Host(1), l.Host(2), l.Host(3)

	// Binary and config where nobody can read them: the lab's own
	// directories are root's alone.
	dir := openDir(t, "vrrplb-nonroot-")
	bin := copyOfBinary(t, dir)
	backend := fakeAPIServer(t, api, 6443, "apiserver-behind-nobody", "")
	// :443 needs net_bind_service: without it the listen fails.
	cfg := writeIn(t, dir, "vrrplb.toml", lbConf{
		VRRPConf: VRRPConf{VIPs: []netip.Prefix{VIP4}},
		Backends: []netip.AddrPort{backend},
		Listen:   ":443",
		Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, Rise: 1,
	}.config(t), 0o644)
	p := lb.Start("vrrplb", setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all,+"+strings.ReplaceAll(caps, ",", ",+"),
		"--ambient-caps=-all,+"+strings.ReplaceAll(caps, ",", ",+"),
		"--bounding-set=-all,+"+strings.ReplaceAll(caps, ",", ",+"),
		"--no-new-privs",
		bin, "run", "--config", cfg)
	Eventually(t, 10*time.Second, func() (bool, string) {
		if p.Exited() {
			t.Fatalf("vrrplb as nobody exited: %v\n%s", p.WaitExit(0), p.Output())
		}
		code, _, err := lb.HTTPGet("http://" + adminAddr + "/healthz")
		return err == nil && code == 200, fmt.Sprintf("vrrplb as nobody not serving /healthz: %v %d", err, code)
	})

	// The process is the daemon itself (setpriv execs it), as nobody, with
	// exactly the capabilities given effective; so is its VRRP engine.
	want := uint64(1<<capNetBindService | 1<<capNetAdmin | 1<<capNetRaw)
	if realtime {
		want |= 1 << capSysNice
	}
	var engine []int
	Eventually(t, 5*time.Second, func() (bool, string) {
		engine = p.Children()
		return len(engine) == 1, fmt.Sprintf("vrrplb has child processes %v, want its VRRP engine", engine)
	})
	for _, pid := range []int{p.Pid(), engine[0]} {
		checkUnprivileged(t, pid, want, caps)
	}
	l.WaitMaster(t, lb, VIP4.Addr(), 10*time.Second)
	hc := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DialContext:       client.DialContext,
			DisableKeepAlives: true,
			// The fake apiserver's certificate is a throwaway self-signed one.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
	}
	url := "https://" + netip.AddrPortFrom(VIP4.Addr(), 443).String() + "/version"
	var server string
	Eventually(t, 5*time.Second, func() (bool, string) {
		resp, err := hc.Get(url)
		if err != nil {
			return false, fmt.Sprintf("GET %s from the client: %v", url, err)
		}
		defer resp.Body.Close()
		var v struct {
			Server string `json:"server"`
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		server = v.Server
		return err == nil && server != "", fmt.Sprintf("GET %s: %s %v", url, resp.Status, err)
	})
	if server != "apiserver-behind-nobody" {
		t.Errorf("the VIP was answered by %q, want apiserver-behind-nobody", server)
	}

	rt := 0.0
	if realtime {
		rt = 1
	}
	if got, err := lb.Metric("vrrplb_vrrp_engine_realtime"); err != nil || got != rt {
		t.Errorf("vrrplb_vrrp_engine_realtime = %v (%v), want %v with %s", got, err, rt, caps)
	}
	warned := strings.Contains(p.Output(), "VRRP engine runs at normal priority")
	if warned == realtime {
		t.Errorf("with %s the log says normal priority: %v, want %v\n%s", caps, warned, !realtime, p.Output())
	}
}

// checkUnprivileged checks that pid runs as nobody with exactly the
// capabilities want in its effective, permitted and ambient sets.
func checkUnprivileged(t *testing.T, pid int, want uint64, caps string) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	if got := strings.Fields(fields["Uid"]); len(got) != 4 || got[0] != "65534" || got[1] != "65534" {
		t.Errorf("process %d runs with uids %v, want 65534 (nobody)", pid, got)
	}
	for _, set := range []string{"CapEff", "CapPrm", "CapAmb"} {
		got, err := strconv.ParseUint(fields[set], 16, 64)
		if err != nil || got != want {
			t.Errorf("process %d's %s is %s, want %016x (%s only)", pid, set, fields[set], want, caps)
		}
	}
}
