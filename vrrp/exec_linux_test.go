package vrrp

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A signal ignored by whoever started vrrplb stays ignored across exec
// unless vrrplb resets it: GNU make, for one, starts its recipes with
// signals 32 and 33 ignored, and the Go runtime never installs a handler
// for those. Scripts must start with every signal at its default.
func TestAScriptDoesNotInheritASignalIgnoredWhenVrrplbStarted(t *testing.T) {
	const sig = 32
	var old, ign kernelSigaction
	ign.handler = sigIgn
	if err := rtSigaction(sig, &ign, &old); err != nil {
		t.Fatalf("ignore signal %d: %v", sig, err)
	}
	t.Cleanup(func() { rtSigaction(sig, &old, nil) })

	out := filepath.Join(t.TempDir(), "status")
	cmd := exec.Command("/bin/sh", "-c", "cat /proc/self/status > "+out)
	if err := startUnprivileged(cmd, false); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "SigIgn:") {
			if f := strings.Fields(line); len(f) != 2 || strings.Trim(f[1], "0") != "" {
				t.Errorf("the script ignores signals: %s", line)
			}
			return
		}
	}
	t.Fatalf("no SigIgn line in %s", status)
}
