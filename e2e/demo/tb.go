package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// fatal is what Fatal and Fatalf panic with; run recovers it and tears the
// lab down.
type fatal struct{ msg string }

// tb is the demo's e2e.TB: failures are printed to stderr and end the
// demo, cleanups run once, newest first, at the end or on a signal.
type tb struct {
	stderr io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool

	// quiet is set once the demo is interrupted: what fails while the lab
	// is torn down under it is not news.
	quiet     atomic.Bool
	cleanOnce sync.Once
}

func (t *tb) Helper() {}

func (t *tb) Name() string { return "demo" }

func (t *tb) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *tb) fail(msg string) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	if !t.quiet.Load() {
		fmt.Fprintln(t.stderr, "demo: "+msg)
	}
}

func (t *tb) Error(args ...any)                 { t.fail(fmt.Sprint(args...)) }
func (t *tb) Errorf(format string, args ...any) { t.fail(fmt.Sprintf(format, args...)) }

func (t *tb) Fatal(args ...any) {
	msg := fmt.Sprint(args...)
	t.fail(msg)
	panic(fatal{msg})
}

func (t *tb) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.fail(msg)
	panic(fatal{msg})
}

func (t *tb) Log(args ...any) { t.log(fmt.Sprint(args...)) }

func (t *tb) Logf(format string, args ...any) { t.log(fmt.Sprintf(format, args...)) }

// log prints what the lab reports, such as a process's output when the
// demo failed, cut to its last lines.
func (t *tb) log(msg string) {
	if t.quiet.Load() {
		return
	}
	const keep = 40
	lines := strings.Split(strings.TrimRight(msg, "\n"), "\n")
	if len(lines) > keep {
		lines = append([]string{lines[0], fmt.Sprintf("[… %d lines left out …]", len(lines)-keep)}, lines[len(lines)-keep+1:]...)
	}
	fmt.Fprintln(t.stderr, strings.Join(lines, "\n"))
}

func (t *tb) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// TempDir makes a new directory, removed at cleanup.
func (t *tb) TempDir() string {
	dir, err := os.MkdirTemp("", "vrrplb-demo-")
	if err != nil {
		t.Fatalf("temporary directory: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// cleanup runs every cleanup once, newest first; a second caller waits
// for the first to finish. A cleanup that fails does not stop the others.
func (t *tb) cleanup() {
	t.cleanOnce.Do(func() {
		for {
			t.mu.Lock()
			n := len(t.cleanups)
			if n == 0 {
				t.mu.Unlock()
				return
			}
			f := t.cleanups[n-1]
			t.cleanups = t.cleanups[:n-1]
			t.mu.Unlock()
			func() {
				defer func() {
					if r := recover(); r != nil {
						if _, ok := r.(fatal); !ok {
							t.fail(fmt.Sprintf("cleanup: %v", r))
						}
					}
				}()
				f()
			}()
		}
	})
}
