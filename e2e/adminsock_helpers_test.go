package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// adminSocket is a path for one daemon's admin socket in a short directory
// of its own (a unix socket path has at most 107 bytes), removed at cleanup.
func adminSocket(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vrrplb-sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "admin.sock")
}

// withAdminSocket turns on the admin socket, at path, of a config written
// by Config.
func withAdminSocket(t *testing.T, config, path string) string {
	t.Helper()
	const off = "\nsocket = \"\"\n"
	if !strings.Contains(config, off) {
		t.Fatalf("config has no %q line to replace:\n%s", off, config)
	}
	return strings.Replace(config, off, fmt.Sprintf("\nsocket = %q\n", path), 1)
}

// vrrplbCommand runs `vrrplb ARGS...` (a client command such as
// maintenance) and returns its combined output.
func vrrplbCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(Binary(t), args...).CombinedOutput()
	return string(out), err
}

// mustVRRPLBCommand is vrrplbCommand that fails the test on an error.
func mustVRRPLBCommand(t *testing.T, args ...string) string {
	t.Helper()
	out, err := vrrplbCommand(t, args...)
	if err != nil {
		t.Fatalf("vrrplb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
