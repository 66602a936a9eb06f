package vrrp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/testroot"
)

// asEuid makes the daemon look as if it ran with uid for the test.
func asEuid(t *testing.T, uid int) {
	t.Helper()
	old := geteuid
	geteuid = func() int { return uid }
	t.Cleanup(func() { geteuid = old })
}

// requireRoot skips a test that needs root, saying why, or fails it when
// VRRPLB_E2E=1 says the root tests must run.
func requireRoot(t *testing.T, why string) {
	t.Helper()
	testroot.Require(t, why)
}

// script writes an executable script into dir with mode, owned by uid:gid.
func script(t *testing.T, dir, name string, mode os.FileMode, uid, gid int) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// subdir makes dir/name with mode, owned by root.
func subdir(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

const refusal = ": refusing to run it as root (fix the permissions or set [scripts] user)"

func TestCheckScriptSecurityRefusesWhatAnotherUserCanChange(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the command and the error it must give ("" for none).
		setup func(t *testing.T, dir string) (argv []string, want string)
	}{
		{"a root-owned script in root-owned directories runs", func(t *testing.T, dir string) ([]string, string) {
			return []string{script(t, dir, "check.sh", 0o755, 0, 0), "arg"}, ""
		}},
		{"a script owned by another user is refused", func(t *testing.T, dir string) ([]string, string) {
			p := script(t, dir, "check.sh", 0o755, 1000, 0)
			return []string{p}, p + " is writable by uid 1000" + refusal
		}},
		{"a world-writable script is refused", func(t *testing.T, dir string) ([]string, string) {
			p := script(t, dir, "check.sh", 0o757, 0, 0)
			return []string{p}, p + " is writable by every user (mode 0757)" + refusal
		}},
		{"a script writable by a non-root group is refused", func(t *testing.T, dir string) ([]string, string) {
			p := script(t, dir, "check.sh", 0o775, 0, 1000)
			return []string{p}, p + " is writable by group 1000 (mode 0775)" + refusal
		}},
		{"a script writable by root's group runs", func(t *testing.T, dir string) ([]string, string) {
			return []string{script(t, dir, "check.sh", 0o775, 0, 0)}, ""
		}},
		{"a root-owned script in a world-writable directory is refused", func(t *testing.T, dir string) ([]string, string) {
			d := subdir(t, dir, "open", 0o777)
			return []string{script(t, d, "check.sh", 0o755, 0, 0)}, d + " is writable by every user (mode 0777)" + refusal
		}},
		{"a root-owned script in a sticky directory like /tmp runs", func(t *testing.T, dir string) ([]string, string) {
			d := subdir(t, dir, "sticky", 0o777|os.ModeSticky)
			return []string{script(t, d, "check.sh", 0o755, 0, 0)}, ""
		}},
		{"a script found through PATH is checked", func(t *testing.T, dir string) ([]string, string) {
			p := script(t, dir, "check-on-path", 0o755, 1000, 0)
			t.Setenv("PATH", dir)
			return []string{"check-on-path"}, p + " is writable by uid 1000" + refusal
		}},
		{"a safe symlink to a script another user owns is refused", func(t *testing.T, dir string) ([]string, string) {
			target := script(t, subdir(t, dir, "home", 0o755), "check.sh", 0o755, 1000, 0)
			link := filepath.Join(dir, "link.sh")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return []string{link}, target + " is writable by uid 1000" + refusal
		}},
		{"the script an interpreter runs is checked", func(t *testing.T, dir string) ([]string, string) {
			p := script(t, dir, "check.sh", 0o666, 0, 0)
			return []string{"/bin/sh", p}, p + " is writable by every user (mode 0666)" + refusal
		}},
		{"a missing script in a world-writable directory is refused", func(t *testing.T, dir string) ([]string, string) {
			d := subdir(t, dir, "open", 0o777)
			return []string{filepath.Join(d, "later.sh")}, d + " is writable by every user (mode 0777)" + refusal
		}},
		{"a missing script in root's directories is left to fail when run", func(t *testing.T, dir string) ([]string, string) {
			return []string{filepath.Join(dir, "later.sh")}, ""
		}},
		{"an interpreter's inline script is the interpreter's only", func(t *testing.T, dir string) ([]string, string) {
			return []string{"/bin/sh", "-c", "exit 0"}, ""
		}},
		{"a world-writable script a shell runs with -c is refused", func(t *testing.T, dir string) ([]string, string) {
			p := script(t, dir, "evil.sh", 0o777, 0, 0)
			return []string{"/bin/sh", "-c", p}, p + " is writable by every user (mode 0777)" + refusal
		}},
		{"a world-writable script among the words of a -c command is refused", func(t *testing.T, dir string) ([]string, string) {
			p := script(t, dir, "evil.sh", 0o777, 0, 0)
			return []string{"/bin/sh", "-c", "exec " + p + " --fast"}, p + " is writable by every user (mode 0777)" + refusal
		}},
		{"a world-writable script run through env is refused", func(t *testing.T, dir string) ([]string, string) {
			p := script(t, dir, "evil.sh", 0o777, 0, 0)
			return []string{"/usr/bin/env", "sh", p}, p + " is writable by every user (mode 0777)" + refusal
		}},
		{"a device such as /dev/null among the arguments is not a script", func(t *testing.T, dir string) ([]string, string) {
			return []string{script(t, dir, "check.sh", 0o755, 0, 0), "/dev/null"}, ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireRoot(t, "chowns files to another user")
			asEuid(t, 0)
			argv, want := tt.setup(t, t.TempDir())
			got := ""
			if err := CheckScriptSecurity(argv, ""); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("CheckScriptSecurity(%q) (-want +got):\n%s", argv, diff)
			}
		})
	}
}

// withCapabilities makes the daemon look as if it held capabilities or not.
func withCapabilities(t *testing.T, held bool) {
	t.Helper()
	old := holdsCapabilities
	holdsCapabilities = func() bool { return held }
	t.Cleanup(func() { holdsCapabilities = old })
}

func TestCheckScriptSecurityAppliesToScriptsRunWithPrivileges(t *testing.T) {
	// A file anyone may change: refused exactly when it would run as root.
	unsafe := func(t *testing.T) []string {
		p := filepath.Join(t.TempDir(), "check.sh")
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
		return []string{p}
	}
	tests := []struct {
		name    string
		euid    int
		user    string
		refused bool
	}{
		{"a daemon running as root with no scripts user refuses it", 0, "", true},
		{"a daemon running as root with scripts user root refuses it", 0, "root", true},
		{"a daemon running as root with a non-root scripts user runs it", 0, "nobody", false},
		{"a daemon not running as root and without capabilities runs it", 1000, "", false},
		{"a daemon not running as root with scripts user root refuses it", 1000, "root", true},
		{"a daemon not running as root but holding capabilities refuses it", 1000, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asEuid(t, tt.euid)
			withCapabilities(t, tt.euid == 0 || strings.Contains(tt.name, "holding capabilities"))
			err := CheckScriptSecurity(unsafe(t), tt.user)
			if (err != nil) != tt.refused {
				t.Errorf("CheckScriptSecurity: %v, want refused %v", err, tt.refused)
			}
		})
	}
}

func TestTrackersAndNotifiersRefuseUnsafeCommandsAsRoot(t *testing.T) {
	asEuid(t, 0)
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o777); err != nil {
		t.Fatal(err)
	}
	want := "writable by"
	if _, err := NewScriptTracker(config.TrackScript{Command: []string{p}}, ScriptOptions{}); err == nil || !(strings.Contains(err.Error(), p) && strings.Contains(err.Error(), want)) {
		t.Errorf("NewScriptTracker: %v, want an error naming %s as %s", err, p, want)
	}
	if _, err := NewCommandNotifier([]string{p}, NotifyOptions{}); err == nil || !(strings.Contains(err.Error(), p) && strings.Contains(err.Error(), want)) {
		t.Errorf("NewCommandNotifier: %v, want an error naming %s as %s", err, p, want)
	}
	if _, err := NewScriptTracker(config.TrackScript{Command: []string{p}}, ScriptOptions{User: "nobody"}); err != nil {
		t.Errorf("NewScriptTracker with scripts user nobody: %v, want no check", err)
	}
}

func TestACapableNonRootDaemonTrustsScriptsItsOwnUserOwns(t *testing.T) {
	requireRoot(t, "chowns files to another user")
	asEuid(t, 1000)
	withCapabilities(t, true)
	dir := t.TempDir()
	if err := CheckScriptSecurity([]string{script(t, dir, "mine.sh", 0o755, 1000, 0)}, ""); err != nil {
		t.Errorf("a script owned by the daemon's own uid: %v, want it run", err)
	}
	p := script(t, dir, "theirs.sh", 0o755, 1001, 0)
	want := p + " is writable by uid 1001: refusing to run it as the daemon's user, which holds capabilities (fix the permissions or set [scripts] user)"
	if err := CheckScriptSecurity([]string{p}, ""); err == nil || err.Error() != want {
		t.Errorf("a script owned by another uid: %v, want %q", err, want)
	}
}
