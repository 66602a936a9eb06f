package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDebInstallsIntoARootAndRemovesCleanly builds the package the way
// `make deb` does, installs it with dpkg into an empty root, checks every
// file and that nothing was enabled, then removes and purges it.
func TestDebInstallsIntoARootAndRemovesCleanly(t *testing.T) {
	requireCommand(t, "dpkg-deb", "dpkg")
	requireCommand(t, "dpkg", "dpkg")
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root: dpkg installs files owned by root")
	}
	bin := Binary(t)
	buildDeb := func(version string) string {
		t.Helper()
		cmd := exec.Command("../deploy/debian/build-deb", bin, version, t.TempDir())
		cmd.Env = append(os.Environ(), "DEB_ARCH="+runtime.GOARCH, "SOURCE_DATE_EPOCH=1764547200") // 2025-12-01
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("build-deb: %v\n%s", err, stderrOf(err))
		}
		return strings.TrimSpace(string(out))
	}
	// A bare commit that starts with a digit is not a version.
	if got, want := filepath.Base(buildDeb("0174c6f-dirty")), "vrrplb_0~git20251201.0174c6f+dirty_"+runtime.GOARCH+".deb"; got != want {
		t.Errorf("package of a bare commit: %s, want %s", got, want)
	}
	deb := buildDeb("v1.2.3-4-gabcdef")
	if want := "vrrplb_1.2.3+4+gabcdef_" + runtime.GOARCH + ".deb"; filepath.Base(deb) != want {
		t.Errorf("package file %s, want %s", filepath.Base(deb), want)
	}

	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The maintainer scripts run outside the root with DPKG_ROOT set, as
	// dpkg does for bootstrapping tools; they must then leave the host's
	// systemd alone.
	dpkg := func(args ...string) string {
		t.Helper()
		args = append([]string{"--root=" + root, "--force-script-chrootless", "--force-not-root"}, args...)
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	dpkg("--install", deb)

	if got := dpkg("--status", "vrrplb"); !strings.Contains(got, "Status: install ok installed") ||
		!strings.Contains(got, "Conffiles:\n /etc/vrrplb/vrrplb.toml ") {
		t.Errorf("dpkg --status after install:\n%s", got)
	}
	mode := func(rel string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(filepath.Join(root, rel))
		if err != nil {
			t.Errorf("after install: %v", err)
			return 0
		}
		return fi.Mode()
	}
	if m := mode("usr/bin/vrrplb"); m != 0o755 {
		t.Errorf("usr/bin/vrrplb mode %v, want -rwxr-xr-x", m)
	}
	if m := mode("etc/vrrplb/vrrplb.toml"); m != 0o644 {
		t.Errorf("etc/vrrplb/vrrplb.toml mode %v, want -rw-r--r--", m)
	}
	for _, f := range []string{"usr/share/doc/vrrplb/copyright", "usr/share/doc/vrrplb/changelog.gz", "usr/share/man/man1/vrrplb.1.gz"} {
		mode(f)
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/vrrplb.service"))
	if err != nil {
		t.Fatalf("after install: %v", err)
	}
	if !strings.Contains(string(unit), "\nExecStart=/usr/bin/vrrplb run --config /etc/vrrplb/vrrplb.toml\n") {
		t.Errorf("the installed unit does not start /usr/bin/vrrplb:\n%s", unit)
	}
	example, _ := os.ReadFile("../deploy/examples/lb-host.toml")
	if got, _ := os.ReadFile(filepath.Join(root, "etc/vrrplb/vrrplb.toml")); string(got) != string(example) {
		t.Errorf("etc/vrrplb/vrrplb.toml is not deploy/examples/lb-host.toml")
	}
	if out, err := exec.Command(filepath.Join(root, "usr/bin/vrrplb"), "check", "--config", filepath.Join(root, "etc/vrrplb/vrrplb.toml")).CombinedOutput(); err != nil {
		t.Errorf("vrrplb check of the installed config: %v\n%s", err, out)
	}
	// Installing enables and starts nothing.
	if _, err := os.Stat(filepath.Join(root, "etc/systemd")); !os.IsNotExist(err) {
		t.Errorf("the package made etc/systemd (enabled something?): %v", err)
	}

	dpkg("--remove", "vrrplb")
	for _, f := range []string{"usr/bin/vrrplb", "lib/systemd/system/vrrplb.service", "usr/share/doc/vrrplb", "usr/share/man/man1/vrrplb.1.gz"} {
		if _, err := os.Stat(filepath.Join(root, f)); !os.IsNotExist(err) {
			t.Errorf("after dpkg --remove, %s: %v (want gone)", f, err)
		}
	}
	// A removed package keeps its conffiles, as Debian does; purge drops them.
	if _, err := os.Stat(filepath.Join(root, "etc/vrrplb/vrrplb.toml")); err != nil {
		t.Errorf("after dpkg --remove the conffile should stay: %v", err)
	}
	dpkg("--purge", "vrrplb")
	if _, err := os.Stat(filepath.Join(root, "etc/vrrplb")); !os.IsNotExist(err) {
		t.Errorf("after dpkg --purge, etc/vrrplb: %v (want gone)", err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "var/lib/dpkg/status")); strings.Contains(string(got), "Package: vrrplb") {
		t.Errorf("after dpkg --purge the status still names vrrplb:\n%s", got)
	}
}

// stderrOf is the standard error an *exec.ExitError captured.
func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
