package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrplb/vrrplb/internal/testroot"
)

// As root, `vrrplb check` refuses what `vrrplb run` would refuse: a track
// script that another user can change.
func TestCheckRefusesAScriptOthersCanChange(t *testing.T) {
	testroot.Require(t, "the check applies to scripts that would run as root")
	dir := t.TempDir()
	script := writeFile(t, dir, "check.sh", "#!/bin/sh\nexit 0\n")
	if err := os.Chmod(script, 0o777); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, dir, "vrrplb.toml", `[[instance]]
name = "vip"
interface = "eth0"
virtual_router_id = 51
virtual_ips = ["192.0.2.1"]
  [[instance.track_script]]
  command = ["`+script+`"]
`)
	code, out, errOut := run(t, "check", "--config", cfg)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing printed", code, out)
	}
	want := `instance "vip": track_script #1: ` + script + ` is writable`
	if !strings.Contains(errOut, want) || !strings.Contains(errOut, filepath.Base(cfg)) {
		t.Errorf("stderr %q lacks %q and the file name", errOut, want)
	}

	// Made safe, the same file passes.
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "check", "--config", cfg); code != 0 {
		t.Errorf("exit %d after chmod 755: %s", code, errOut)
	}
}
