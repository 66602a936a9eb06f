package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binDir string

	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vrrplb-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Binary builds ./cmd/vrrplb the first time a test asks for it and returns
// its path; later calls reuse the build. VRRPLB_E2E_RACE=1 builds with -race.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "vrrplb")
		args := []string{"build", "-o", binPath}
		if os.Getenv("VRRPLB_E2E_RACE") == "1" {
			args = append(args, "-race")
		}
		args = append(args, "github.com/vrrplb/vrrplb/cmd/vrrplb")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/vrrplb: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}
