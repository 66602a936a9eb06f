package vrrp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/vrrplb/vrrplb/config"
)

func TestMissingCapabilitiesAreNamedInOneLine(t *testing.T) {
	const fix = ": run vrrplb as root or grant it CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=)"
	admin, raw := uint64(1)<<unix.CAP_NET_ADMIN, uint64(1)<<unix.CAP_NET_RAW
	tests := []struct {
		name      string
		effective uint64
		want      string
	}{
		{"both present is fine", admin | raw, ""},
		{"every capability is fine", ^uint64(0), ""},
		{"without CAP_NET_ADMIN it is named", raw, "vrrp: missing capability CAP_NET_ADMIN (to add and remove virtual IPs)" + fix},
		{"without CAP_NET_RAW it is named", admin, "vrrp: missing capability CAP_NET_RAW (to send and receive VRRP adverts on a raw socket)" + fix},
		{"without both both are named", 1 << unix.CAP_NET_BIND_SERVICE,
			"vrrp: missing capabilities CAP_NET_ADMIN (to add and remove virtual IPs) and CAP_NET_RAW (to send and receive VRRP adverts on a raw socket)" + fix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := missingCaps(tt.effective); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckCapabilitiesPassesAsRoot(t *testing.T) {
	requireRoot(t, "checks the capabilities that only a root process holds")
	if err := CheckCapabilities(); err != nil {
		t.Error(err)
	}
}

func TestCheckScriptsUserNamesTheMissingCapability(t *testing.T) {
	const setuid, setgid = 1 << unix.CAP_SETUID, 1 << unix.CAP_SETGID
	tests := []struct {
		name string
		user string
		caps uint64
		want string
	}{
		{"no scripts user needs nothing", "", 0, ""},
		{"a daemon with both capabilities may switch", "nobody", setuid | setgid, ""},
		{"a daemon without them is refused, naming both", "nobody", 1 << unix.CAP_NET_ADMIN,
			`[scripts] user "nobody": vrrplb lacks CAP_SETUID and CAP_SETGID, needed to run scripts and notify commands as another user: grant it (systemd: AmbientCapabilities= and CapabilityBoundingSet=) or leave [scripts] user empty`},
		{"a daemon without CAP_SETGID is refused, naming it", "nobody", setuid,
			`[scripts] user "nobody": vrrplb lacks CAP_SETGID, needed to run scripts and notify commands as another user: grant it (systemd: AmbientCapabilities= and CapabilityBoundingSet=) or leave [scripts] user empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := effectiveCaps
			effectiveCaps = func() (uint64, error) { return tt.caps, nil }
			t.Cleanup(func() { effectiveCaps = old })
			got := ""
			if err := CheckScriptsUser(tt.user); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("CheckScriptsUser(%q) = %q, want %q", tt.user, got, tt.want)
			}
			_, err := NewScriptTracker(config.TrackScript{Command: []string{"/bin/true"}}, ScriptOptions{User: tt.user})
			if (err != nil) != (tt.want != "") {
				t.Errorf("NewScriptTracker: %v, want refused %v", err, tt.want != "")
			}
			_, err = NewCommandNotifier([]string{"/bin/true"}, NotifyOptions{User: tt.user})
			if (err != nil) != (tt.want != "") {
				t.Errorf("NewCommandNotifier: %v, want refused %v", err, tt.want != "")
			}
		})
	}
}
