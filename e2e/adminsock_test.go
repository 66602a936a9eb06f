package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The admin socket takes commands from root and the daemon's user alone:
// nobody is kept out by the file's mode, and, with the mode loosened, by
// the peer's uid (SO_PEERCRED), which the daemon logs.
func TestAdminSocketRefusesAnotherUsersCommand(t *testing.T) {
	requireRoot(t)
	setpriv := requireCommand(t, "setpriv", "util-linux")
	lab := NewLab(t, 1)
	h := lab.Host(1)
	sock := adminSocket(t)
	p := h.StartVRRPLB(withAdminSocket(t, Config(), sock))
	// nobody must run the binary and reach the socket's directory.
	for _, d := range []string{filepath.Dir(Binary(t)), filepath.Dir(sock)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	asNobody := func() (string, error) {
		out, err := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
			Binary(t), "backend", "drain", "10.77.0.9:6443", "--socket", sock).CombinedOutput()
		return string(out), err
	}

	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket %s: %v %v, want mode 0600", sock, fi.Mode(), err)
	}
	out, err := asNobody()
	if err == nil || !strings.Contains(out, "permission denied") {
		t.Errorf("nobody's command on the 0600 socket: %v\n%s", err, out)
	}

	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	out, err = asNobody()
	if err == nil || !strings.Contains(out, "refused: uid 65534 is neither root nor vrrplb's user") {
		t.Errorf("nobody's command on the loosened socket: %v\n%s", err, out)
	}
	Eventually(t, 5*time.Second, func() (bool, string) {
		return strings.Contains(p.Output(), "command refused") && strings.Contains(p.Output(), "peer_uid=65534"),
			"the daemon did not log the refused uid:\n" + p.Output()
	})
}
