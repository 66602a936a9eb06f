package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// VRRPConf is one VRRP instance of a test config; zero fields take the
// defaults written by TOML.
type VRRPConf struct {
	Name     string // "vip"
	VRID     int    // 51
	Priority int    // 100
	Version  int    // 3
	// Interval is the advert interval; 0 means 100ms (v3) or 1s (v2).
	Interval time.Duration
	// NoPreempt turns preempt off.
	NoPreempt    bool
	VIPs         []netip.Prefix
	UnicastPeers []netip.Addr
	AuthPass     string
	Notify       []string
	// Extra is appended to the instance table verbatim.
	Extra string
}

// TOML renders a whole vrrplb.toml with this one instance, the admin server
// on loopback inside the host's namespace, no admin socket (the hosts of a
// lab share one file system; WithAdminSocket gives one), and debug logs.
func (c VRRPConf) TOML() string { return Config(c) }

// Config renders a whole vrrplb.toml with these instances.
func Config(instances ...VRRPConf) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[admin]\nlisten = %q\nsocket = \"\"\n\n[log]\nlevel = \"debug\"\n", adminAddr)
	for _, c := range instances {
		b.WriteString("\n")
		c.writeTOML(&b)
	}
	return b.String()
}

func (c VRRPConf) writeTOML(b *strings.Builder) {
	if c.Name == "" {
		c.Name = "vip"
	}
	if c.VRID == 0 {
		c.VRID = 51
	}
	if c.Priority == 0 {
		c.Priority = 100
	}
	if c.Version == 0 {
		c.Version = 3
	}
	if c.Interval == 0 {
		c.Interval = 100 * time.Millisecond
		if c.Version == 2 {
			c.Interval = time.Second
		}
	}
	quote := func(ss []string) string {
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	var vips, peers []string
	for _, p := range c.VIPs {
		vips = append(vips, p.String())
	}
	for _, a := range c.UnicastPeers {
		peers = append(peers, a.String())
	}
	fmt.Fprintf(b, "[[instance]]\nname = %q\ninterface = %q\nvirtual_router_id = %d\npriority = %d\nversion = %d\n",
		c.Name, HostIfname, c.VRID, c.Priority, c.Version)
	fmt.Fprintf(b, "advert_interval = %q\npreempt = %v\nvirtual_ips = %s\nunicast_peers = %s\n",
		c.Interval.String(), !c.NoPreempt, quote(vips), quote(peers))
	fmt.Fprintf(b, "garp_repeat = 2\ngarp_interval = \"50ms\"\n")
	if c.AuthPass != "" {
		fmt.Fprintf(b, "auth_pass = %q\n", c.AuthPass)
	}
	if len(c.Notify) > 0 {
		fmt.Fprintf(b, "notify = %s\n", quote(c.Notify))
	}
	b.WriteString(c.Extra)
}

// AdminAddr is where every vrrplb of the lab serves /status and /metrics,
// each inside its own host's namespace: a config a program writes itself
// must use it for Instances, Status, State and Metric to work.
const AdminAddr = "127.0.0.1:9100"

const adminAddr = AdminAddr

// VIP4 and VIP6 are the lab's virtual addresses.
var (
	VIP4 = netip.PrefixFrom(LabAddr4(100), 24)
	VIP6 = netip.PrefixFrom(LabAddr6(0x100), 64)
)

// StartVRRPLB writes config into the lab and runs `vrrplb run` on h.
func (h *Host) StartVRRPLB(config string) *Proc {
	h.lab.t.Helper()
	path := h.WriteConfig(config)
	p := h.Start("vrrplb", Binary(h.lab.t), "run", "--config", path)
	// The admin server answers once the daemon runs.
	Eventually(h.lab.t, 10*time.Second, func() (bool, string) {
		if p.Exited() {
			h.lab.t.Fatalf("vrrplb on %s exited: %v\n%s", h.Name, p.WaitExit(0), p.Output())
		}
		code, _, err := h.HTTPGet("http://" + adminAddr + "/healthz")
		return err == nil && code == 200, fmt.Sprintf("vrrplb on %s not serving /healthz: %v %d", h.Name, err, code)
	})
	return p
}

// WriteConfig writes h's vrrplb.toml (a later SIGHUP reloads it) and
// returns its path.
func (h *Host) WriteConfig(config string) string {
	h.lab.t.Helper()
	return h.lab.WriteFile(h.Name+"-vrrplb.toml", config)
}

// InstanceStatus is an instance in /status.
type InstanceStatus struct {
	Name              string   `json:"name"`
	State             string   `json:"state"`
	Priority          int      `json:"priority"`
	EffectivePriority int      `json:"effective_priority"`
	MasterIP          string   `json:"master_ip"`
	VirtualIPs        []string `json:"virtual_ips"`
	Maintenance       bool     `json:"maintenance"`
}

// BackendStatus is a backend of a frontend in /status.
type BackendStatus struct {
	Address           string `json:"address"`
	Healthy           bool   `json:"healthy"`
	Draining          bool   `json:"draining"`
	ActiveConnections int    `json:"active_connections"`
}

// FrontendStatus is a frontend in /status.
type FrontendStatus struct {
	Name     string          `json:"name"`
	Listen   string          `json:"listen"`
	FailOpen bool            `json:"fail_open"`
	Backends []BackendStatus `json:"backends"`
}

// Status is h's /status document.
type Status struct {
	Instances []InstanceStatus `json:"instances"`
	Frontends []FrontendStatus `json:"frontends"`
}

// Status reads h's /status.
func (h *Host) Status() (Status, error) {
	var doc Status
	code, body, err := h.HTTPGet("http://" + adminAddr + "/status")
	if err != nil {
		return doc, err
	}
	if code != 200 {
		return doc, fmt.Errorf("/status on %s: status %d", h.Name, code)
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return doc, fmt.Errorf("/status on %s: %w", h.Name, err)
	}
	return doc, nil
}

// Instances reads the instances of h's /status.
func (h *Host) Instances() ([]InstanceStatus, error) {
	doc, err := h.Status()
	return doc.Instances, err
}

// State is the state of h's first instance per /status ("" if unreachable).
func (h *Host) State() string {
	ins, err := h.Instances()
	if err != nil || len(ins) == 0 {
		return ""
	}
	return ins[0].State
}

// Metric reads one sample of h's /metrics: name with every given label
// (label="value" pairs as written in the exposition format). It returns 0
// when the series does not exist.
func (h *Host) Metric(name string, labels ...string) (float64, error) {
	code, body, err := h.HTTPGet("http://" + adminAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("/metrics on %s: status %d", h.Name, code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		f := strings.Fields(line)
		return strconv.ParseFloat(f[len(f)-1], 64)
	}
	return 0, nil
}

// Crash pulls h's cable and kills p without a word: the VIP it held stays on
// its interface, as after a real crash, and Masters ignores h from now on.
func (l *Lab) Crash(h *Host, p *Proc) {
	l.t.Helper()
	h.SetLink(false)
	p.Kill()
	h.crashed = true
}

// Masters lists the hosts that hold vip, crashed ones left out.
func (l *Lab) Masters(vip netip.Addr) []string {
	var m []string
	for _, h := range l.Hosts {
		if !h.crashed && h.HasAddr(vip) {
			m = append(m, h.Name)
		}
	}
	return m
}

// WaitMaster waits until exactly want holds vip and says master, and no
// other host of hosts holds vip; it returns how long that took.
func (l *Lab) WaitMaster(t TB, want *Host, vip netip.Addr, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	Eventually(t, timeout, func() (bool, string) {
		m := l.Masters(vip)
		ok := len(m) == 1 && m[0] == want.Name
		return ok, fmt.Sprintf("want only %s holding %s, holders %v", want.Name, vip, m)
	})
	Eventually(t, timeout, func() (bool, string) {
		s := want.State()
		return s == "master", fmt.Sprintf("%s holds %s but its state is %q", want.Name, vip, s)
	})
	return time.Since(start)
}

// StartMaster runs vrrplb with the one instance c on h and waits until h
// alone holds c's first VIP and says master.
func (l *Lab) StartMaster(t TB, h *Host, c VRRPConf) *Proc {
	t.Helper()
	p := h.StartVRRPLB(c.TOML())
	l.WaitMaster(t, h, c.VIPs[0].Addr(), 5*time.Second)
	return p
}

// StartBackup runs vrrplb with the one instance c on h and waits until h
// says backup.
func (l *Lab) StartBackup(t TB, h *Host, c VRRPConf) *Proc {
	t.Helper()
	p := h.StartVRRPLB(c.TOML())
	Eventually(t, 5*time.Second, func() (bool, string) {
		s := h.State()
		return s == "backup", fmt.Sprintf("%s is %q, want backup", h.Name, s)
	})
	return p
}

// StaysMaster checks for d that want alone holds vip the whole time.
func (l *Lab) StaysMaster(t TB, want *Host, vip netip.Addr, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := l.Masters(vip); len(m) != 1 || m[0] != want.Name {
			t.Fatalf("%s should hold %s alone, holders %v", want.Name, vip, m)
		}
	}
}
