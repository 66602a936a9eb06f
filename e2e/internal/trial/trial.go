package trial

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/vrrplb/vrrplb/e2e"
)

// errFatal is what a trial's Fatal panics with; Run recovers it.
var errFatal = errors.New("trial failed")

// T is the lab's TB for one trial: Fatal ends the trial, not the program,
// and Cleanup runs when the trial ends. Fatal must be called from the
// trial's own goroutine.
type T struct {
	name string
	dir  string

	mu       sync.Mutex
	failed   bool
	msgs     []string
	cleanups []func()
}

func (t *T) Helper()      {}
func (t *T) Name() string { return t.name }

func (t *T) Logf(format string, args ...any) { t.log(fmt.Sprintf(format, args...)) }
func (t *T) Log(args ...any)                 { t.log(fmt.Sprint(args...)) }

func (t *T) log(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.msgs = append(t.msgs, s)
}

func (t *T) Errorf(format string, args ...any) {
	t.log(fmt.Sprintf(format, args...))
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
}

func (t *T) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }

func (t *T) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	panic(errFatal)
}

func (t *T) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }

func (t *T) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *T) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// TempDir is one directory per trial, removed when it ends.
func (t *T) TempDir() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dir == "" {
		dir, err := os.MkdirTemp("", "vrrplb-trial-")
		if err != nil {
			t.mu.Unlock()
			t.Fatalf("temp dir: %v", err)
		}
		t.dir = dir
		t.cleanups = append(t.cleanups, func() { os.RemoveAll(dir) })
	}
	return t.dir
}

// Run runs fn with a fresh trial, then its cleanups in reverse order.
// It returns an error with the trial's messages when fn failed.
func Run(name string, fn func(t *T)) (err error) {
	t := &T{name: name}
	defer func() {
		for i := len(t.cleanups) - 1; i >= 0; i-- {
			t.cleanups[i]()
		}
		if t.Failed() {
			err = fmt.Errorf("%s: %v", name, t.msgs)
		}
	}()
	defer func() {
		if r := recover(); r != nil && r != errFatal {
			panic(r)
		}
	}()
	fn(t)
	return nil
}

// UseVRRPLB makes the lab run the vrrplb binary at path, or, when path is
// "", builds ./cmd/vrrplb once for the whole program: Build alone would put
// it in the first trial's TempDir, gone when that trial ends. The returned
// cleanup removes what it built.
func UseVRRPLB(path string) (cleanup func(), err error) {
	const pkg = "github.com/vrrplb/vrrplb/cmd/vrrplb"
	cleanup = func() {}
	if path == "" {
		dir, err := os.MkdirTemp("", "vrrplb-bin-")
		if err != nil {
			return cleanup, fmt.Errorf("build vrrplb: %w", err)
		}
		cleanup = func() { os.RemoveAll(dir) }
		path = filepath.Join(dir, "vrrplb")
		if out, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput(); err != nil {
			return cleanup, fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	e2e.UseProgram(pkg, path)
	return cleanup, nil
}
