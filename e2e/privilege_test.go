package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startWithCaps runs vrrplb on h as user nobody holding only caps (names
// as setpriv takes them: net_raw, net_admin, net_bind_service).
func startWithCaps(t *testing.T, l *Lab, h *Host, config string, caps ...string) *Proc {
	t.Helper()
	setpriv := requireCommand(t, "setpriv", "util-linux")
	// nobody must read the config and run the binary.
	for _, d := range []string{l.LogDir, filepath.Dir(l.LogDir), filepath.Dir(Binary(t))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	path := h.WriteConfig(config)
	return h.Start("vrrplb", setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
		"--inh-caps="+set, "--ambient-caps="+set, "--bounding-set="+set,
		Binary(t), "run", "--config", path)
}

func TestVRRPWithoutACapabilityFailsNamingIt(t *testing.T) {
	tests := []struct {
		name    string
		caps    []string
		missing string
		present string
	}{
		{"without CAP_NET_ADMIN it exits naming CAP_NET_ADMIN", []string{"net_raw", "net_bind_service"}, "CAP_NET_ADMIN", "CAP_NET_RAW ("},
		{"without CAP_NET_RAW it exits naming CAP_NET_RAW", []string{"net_admin", "net_bind_service"}, "CAP_NET_RAW", "CAP_NET_ADMIN ("},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLab(t, 1)
			h := l.Host(1)
			p := startWithCaps(t, l, h, VRRPConf{VIPs: []netip.Prefix{VIP4}}.TOML(), tt.caps...)
			if err := p.WaitExit(10 * time.Second); err == nil || !p.Exited() {
				t.Fatalf("vrrplb without %s: %v, want it to exit with an error", tt.missing, err)
			}
			out := p.Output()
			var errLines []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasPrefix(line, "vrrplb:") || strings.Contains(line, "level=ERROR") {
					errLines = append(errLines, line)
				}
			}
			if len(errLines) != 1 || !strings.Contains(errLines[0], "missing capability "+tt.missing) || strings.Contains(errLines[0], tt.present) {
				t.Errorf("want one error line naming %s alone, got %q in:\n%s", tt.missing, errLines, out)
			}
			if h.HasAddr(VIP4.Addr()) {
				t.Error("the refused daemon added the VIP")
			}
		})
	}
}

func TestVRRPWithOnlyItsCapabilitiesFollowsItsInterface(t *testing.T) {
	l := NewLab(t, 1)
	h := l.Host(1)
	p := startWithCaps(t, l, h, VRRPConf{VIPs: []netip.Prefix{VIP4}}.TOML(), "net_raw", "net_admin", "net_bind_service")
	l.WaitMaster(t, h, VIP4.Addr(), 10*time.Second)
	// Following the interface needs no CAP_SYS_ADMIN: no error, and the
	// interface tracker reports at once instead of being assumed passing.
	for _, bad := range []string{"level=ERROR", "has not reported yet"} {
		if strings.Contains(p.Output(), bad) {
			t.Errorf("%q in the log with exactly the three capabilities:\n%s", bad, p.Output())
		}
	}
	h.SetLink(false)
	Eventually(t, 3*time.Second, func() (bool, string) {
		return h.State() == "fault" && !h.HasAddr(VIP4.Addr()), fmt.Sprintf("h1 is %q with its link down, want fault without the VIP", h.State())
	})
	h.SetLink(true)
	l.WaitMaster(t, h, VIP4.Addr(), 5*time.Second)
}
