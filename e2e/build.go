package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
)

// binDir holds the programs Build builds. The test binary sets it for the
// whole run (TestMain); when it is empty, Build uses the first caller's
// TempDir, which lives as long as a program's single TB.
var binDir string

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
func Build(t TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir := binDir
		if dir == "" {
			dir = t.TempDir()
		}
		b.path = filepath.Join(dir, path.Base(pkg))
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
func Binary(t TB) string {
	t.Helper()
	return Build(t, "github.com/vrrplb/vrrplb/cmd/vrrplb")
}

// UseProgram makes Build return path for pkg from now on instead of building
// it: a program handed ready-built binaries needs no Go toolchain.
func UseProgram(pkg, path string) {
	b := &build{path: path}
	b.once.Do(func() {})
	builds.Store(pkg, b)
}
