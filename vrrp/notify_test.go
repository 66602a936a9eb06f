package vrrp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/internal/poll"
	"github.com/vrrplb/vrrplb/internal/runtest"
)

// runNotifier runs n until the test ends.
func runNotifier(t *testing.T, n *CommandNotifier) {
	t.Helper()
	t.Cleanup(runtest.Start(t, n.Run))
}

// waitLines polls file until it has want lines, for at most 10s.
func waitLines(t *testing.T, file string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) == 0 {
			lines = nil
		}
		if len(lines) >= want {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d lines after 10s, want %d: %q", file, len(lines), want, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNotifierRunsTransitionsInOrderWithInstanceAndState(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	n, err := NewCommandNotifier([]string{"/bin/sh", "-c", `echo "$1 $2" >> "$0"`, out}, NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"vip backup", "vip master", "vip fault", "vip backup", "vip master"}
	for _, w := range want {
		f := strings.Fields(w)
		n.Notify(f[0], f[1])
	}
	runNotifier(t, n)
	if diff := cmp.Diff(want, waitLines(t, out, len(want))); diff != "" {
		t.Errorf("commands run (-want +got):\n%s", diff)
	}
}

func TestNotifierNeverBlocksAndKeepsTheLatestTransitions(t *testing.T) {
	dir := t.TempDir()
	out, gate := filepath.Join(dir, "out"), filepath.Join(dir, "gate")
	// Each run waits for the gate file (at most 5s), then records its arguments.
	script := `i=0; while [ ! -e "$1" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; echo "$2 $3" >> "$0"`
	log, buf := testLogger()
	n, err := NewCommandNotifier([]string{"/bin/sh", "-c", script, out, gate}, NotifyOptions{Queue: 4, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	runNotifier(t, n)
	n.Notify("vip", "first")
	// Wait until the first run has taken "first" off the queue.
	waitQueueBelow(t, n, 1)
	start := time.Now()
	for i := range 100 {
		n.Notify("vip", fmt.Sprintf("s%d", i))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("100 Notify calls behind a busy command took %s", d)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{"vip first", "vip s96", "vip s97", "vip s98", "vip s99"}
	if diff := cmp.Diff(want, waitLines(t, out, len(want))); diff != "" {
		t.Errorf("commands run (-want +got):\n%s", diff)
	}
	if !strings.Contains(buf.String(), "notify queue full") {
		t.Errorf("drops were not logged: %q", buf.String())
	}
}

func TestNotifierKillsACommandAtItsTimeoutAndLogsIt(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	log, buf := testLogger()
	n, err := NewCommandNotifier([]string{"/bin/sh", "-c", `[ "$2" = slow ] && sleep 60; echo "$1 $2" >> "$0"`, out},
		NotifyOptions{Timeout: 200 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	runNotifier(t, n)
	n.Notify("vip", "slow")
	n.Notify("vip", "master")
	// The slow run is cut short; the next one still runs.
	if diff := cmp.Diff([]string{"vip master"}, waitLines(t, out, 1)); diff != "" {
		t.Errorf("commands run (-want +got):\n%s", diff)
	}
	if got := buf.String(); !strings.Contains(got, "notify command failed") || !strings.Contains(got, "state=slow") {
		t.Errorf("the timeout was not logged: %q", got)
	}
}

func TestNotifierWithoutCommandDoesNothing(t *testing.T) {
	n, err := NewCommandNotifier(nil, NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify("vip", "master")
	if len(n.queue) != 0 {
		t.Errorf("queued %d notifications without a command", len(n.queue))
	}
}

func TestNotifierFinishesWhatIsQueuedWhenStopped(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	n, err := NewCommandNotifier([]string{"/bin/sh", "-c", `sleep 0.2; echo "$1 $2" >> "$0"`, out}, NotifyOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify("vip", "master")
	n.Notify("vip", "init")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	// Stop while the first command runs.
	waitQueueBelow(t, n, 2)
	cancel()
	if err := poll.Receive(t, done, 10*time.Second, "Run to return after the stop"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	b, _ := os.ReadFile(out)
	if diff := cmp.Diff("vip master\nvip init\n", string(b)); diff != "" {
		t.Errorf("commands run (-want +got):\n%s", diff)
	}
}

// waitQueueBelow waits up to 5s until n's queue holds fewer than k
// notifications: its runner has taken the first.
func waitQueueBelow(t *testing.T, n *CommandNotifier, k int) {
	t.Helper()
	poll.Until(t, 5*time.Second, "the first notification to be taken", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return len(n.queue) < k
	})
}
