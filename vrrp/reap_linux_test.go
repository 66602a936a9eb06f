package vrrp

import (
	"errors"
	"os/exec"
	"testing"
	"time"
)

func TestReapOrphansReapsOnlyTheChildrenItDidNotStart(t *testing.T) {
	mine := exec.Command("/bin/sh", "-c", "exit 3")
	if err := StartTracked(mine); err != nil {
		t.Fatal(err)
	}
	// A child this process does not wait for: an orphan, as far as
	// ReapOrphans can tell.
	orphan := exec.Command("/bin/sh", "-c", "exit 0")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	// Both exit at once; reap what is a zombie until the orphan is gone.
	deadline := time.Now().Add(5 * time.Second)
	reaped := 0
	for reaped == 0 && time.Now().Before(deadline) {
		reaped += ReapOrphans()
		time.Sleep(10 * time.Millisecond)
	}
	if reaped != 1 {
		t.Fatalf("ReapOrphans reaped %d children, want the one untracked", reaped)
	}
	err := mine.Wait()
	Untrack(mine.Process.Pid)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("the tracked child's Wait: %v, want its exit status 3", err)
	}
	if n := ReapOrphans(); n != 0 {
		t.Errorf("a second pass reaped %d, want 0", n)
	}
}
