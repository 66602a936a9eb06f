package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

// binDir holds the programs the tests build, removed after the run.
var binDir string

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

type build struct {
	once sync.Once
	path string
	err  error
}

var builds sync.Map // package path -> *build

// Build builds the main package pkg (a full import path) the first time a
// test asks for it and returns the program's path; later calls reuse it.
// VRRPLB_E2E_RACE=1 builds with -race, and a process whose output reports a
// data race fails its test.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		b.path = filepath.Join(binDir, path.Base(pkg))
		args := []string{"build", "-o", b.path}
		if os.Getenv("VRRPLB_E2E_RACE") == "1" {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, pkg)...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Binary is the vrrplb program built from ./cmd/vrrplb.
func Binary(t testing.TB) string {
	t.Helper()
	return Build(t, "github.com/vrrplb/vrrplb/cmd/vrrplb")
}
