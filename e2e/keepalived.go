package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// KeepalivedConf is one keepalived vrrp_instance in the same virtual router
// as a vrrplb's VRRPConf.
type KeepalivedConf struct {
	VRID     int
	Priority int
	Version  int
	Interval time.Duration
	// NoPreempt is keepalived's nopreempt.
	NoPreempt    bool
	AuthPass     string
	VIPs         []netip.Prefix
	UnicastPeers []netip.Addr
}

// Config renders keepalived.conf for host h.
func (c KeepalivedConf) Config(h *Host) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n    vrrp_garp_master_repeat 1\n}\n", h.Name)
	fmt.Fprintf(&b, "vrrp_instance VI_%d {\n    state BACKUP\n    interface %s\n    virtual_router_id %d\n    priority %d\n    version %d\n    advert_int %g\n",
		c.VRID, HostIfname, c.VRID, c.Priority, c.Version, c.Interval.Seconds())
	if c.NoPreempt {
		b.WriteString("    nopreempt\n")
	}
	if c.AuthPass != "" {
		fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", c.AuthPass)
	}
	if len(c.UnicastPeers) > 0 {
		b.WriteString("    unicast_peer {\n")
		for _, p := range c.UnicastPeers {
			fmt.Fprintf(&b, "        %s\n", p)
		}
		b.WriteString("    }\n")
	}
	b.WriteString("    virtual_ipaddress {\n")
	for _, p := range c.VIPs {
		fmt.Fprintf(&b, "        %s\n", p)
	}
	b.WriteString("    }\n}\n")
	return b.String()
}

// StartKeepalived runs keepalived (VRRP only, in the foreground, logging to
// the console) on h with its own config and pid files in the lab directory.
func (h *Host) StartKeepalived(c KeepalivedConf) *Proc {
	h.lab.t.Helper()
	bin := requireCommand(h.lab.t, "keepalived", "keepalived")
	conf := h.lab.WriteFile(h.Name+"-keepalived.conf", c.Config(h))
	dir := h.lab.LogDir
	p := h.Start("keepalived", bin, "--vrrp", "--dont-fork", "--log-console", "--log-detail", "--no-syslog",
		"--use-file", conf,
		"--pid", filepath.Join(dir, h.Name+"-keepalived.pid"),
		"--vrrp_pid", filepath.Join(dir, h.Name+"-keepalived-vrrp.pid"))
	Eventually(h.lab.t, 10*time.Second, func() (bool, string) {
		if p.Exited() {
			h.lab.t.Fatalf("keepalived on %s exited: %v\n%s", h.Name, p.WaitExit(0), p.Output())
		}
		return strings.Contains(p.Output(), "Entering"), "keepalived on " + h.Name + " did not start its instance"
	})
	return p
}
