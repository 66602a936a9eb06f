package vrrp

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// As PID 1 of a PID namespace (vrrplb as a container's entry point, the
// static pod) the process inherits every orphan of the namespace: the
// background children of a script or notify command whose parent has
// exited, the children of a VRRP engine that died. Nobody else reaps them.
// ReapOrphans does, and spares the children this process started itself
// with StartTracked, whose exec.Cmd.Wait must get their exit status.

var (
	// trackMu is held across a tracked Start and across a reaping pass, so
	// that a pass never sees a tracked child before it is recorded.
	trackMu sync.Mutex
	tracked = map[int]bool{}
)

// StartTracked starts cmd and records its pid, so that ReapOrphans leaves it
// to cmd.Wait. Call Untrack with the pid once Wait has returned.
func StartTracked(cmd *exec.Cmd) error {
	trackMu.Lock()
	defer trackMu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	tracked[cmd.Process.Pid] = true
	return nil
}

// Untrack forgets a pid StartTracked recorded.
func Untrack(pid int) {
	trackMu.Lock()
	delete(tracked, pid)
	trackMu.Unlock()
}

// ReapOrphans waits for every child of this process that has exited and that
// StartTracked did not start, and returns how many it reaped. Children still
// running are left alone.
func ReapOrphans() int {
	trackMu.Lock()
	defer trackMu.Unlock()
	n := 0
	for _, pid := range childPids() {
		if tracked[pid] {
			continue
		}
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err == nil && got == pid {
			n++
		}
	}
	return n
}

// childPids lists this process's children: every thread's (an orphan is
// given to one thread of the reaper).
func childPids() []int {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// RunReaper reaps orphans (ReapOrphans) at every SIGCHLD until ctx ends. A
// process that is not PID 1 needs it only if it made itself a child
// subreaper.
func RunReaper(ctx context.Context) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	ReapOrphans()
	for {
		select {
		case <-ctx.Done():
			ReapOrphans()
			return nil
		case <-sig:
			ReapOrphans()
		}
	}
}
