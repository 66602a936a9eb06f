package vrrp

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/clock"
	"github.com/vrrplb/vrrplb/internal/clock/clocktest"
	"github.com/vrrplb/vrrplb/internal/poll"
	"github.com/vrrplb/vrrplb/internal/runtest"
	"github.com/vrrplb/vrrplb/internal/syncbuf"
)

func testLogger() (*slog.Logger, *syncbuf.Buffer) {
	var b syncbuf.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// never is a clock that never moves: the tracker runs its first check only.
func never() clock.Clock { return clocktest.New(t0) }

// firstReport runs a tracker until its first report.
func firstReport(t *testing.T, tr *ScriptTracker) bool {
	t.Helper()
	got := make(chan bool, 1)
	defer runtest.Start(t, func(ctx context.Context) error {
		return tr.Run(ctx, func(ok bool) { got <- ok })
	})()
	return poll.Receive(t, got, 10*time.Second, "the first report")
}

func TestScriptTrackerReportsTheFirstResult(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		timeout time.Duration
		want    bool
		wantLog string
	}{
		{name: "a command that exits 0 passes", command: []string{"true"}, want: true},
		{name: "a command that exits 1 fails", command: []string{"false"}, want: false},
		{name: "a command that cannot be started fails and is logged", command: []string{"/nonexistent/check"}, want: false, wantLog: "/nonexistent/check"},
		{name: "a command that outlives its timeout fails and is logged", command: []string{"sleep", "30"}, timeout: 100 * time.Millisecond, want: false, wantLog: "timed out"},
		{name: "arguments are passed without a shell", command: []string{"test", "a b", "=", "a b"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, buf := testLogger()
			tr, err := NewScriptTracker(config.TrackScript{Command: tt.command, Interval: time.Second, Timeout: tt.timeout, Fall: 1, Rise: 1},
				ScriptOptions{Logger: log, Clock: never()})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if got := firstReport(t, tr); got != tt.want {
				t.Errorf("first report = %v, want %v", got, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("check took %s", d)
			}
			if tt.wantLog != "" && !strings.Contains(buf.String(), tt.wantLog) {
				t.Errorf("log %q does not mention %q", buf.String(), tt.wantLog)
			}
		})
	}
}

// gone reports whether pid has exited (no process, or a zombie nobody reaped).
func gone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

func TestScriptTrackerTimeoutKillsTheWholeProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// The script forks a sleeping child, records its pid and waits.
	script := []string{"/bin/sh", "-c", `sleep 60 & echo $! > "$0"; wait`, pidFile}
	tr, err := NewScriptTracker(config.TrackScript{Command: script, Interval: time.Second, Timeout: 300 * time.Millisecond},
		ScriptOptions{Clock: never()})
	if err != nil {
		t.Fatal(err)
	}
	if firstReport(t, tr) {
		t.Fatal("a script killed at its timeout passed")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the script did not record its child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the script's child %d still runs 5s after the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestScriptTrackerAppliesFallAndRise(t *testing.T) {
	result := filepath.Join(t.TempDir(), "result")
	set := func(code int) {
		if err := os.WriteFile(result, []byte(strconv.Itoa(code)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set(0)
	clk := clocktest.New(t0)
	tr, err := NewScriptTracker(config.TrackScript{
		Command:  []string{"/bin/sh", "-c", `exit $(cat "$0")`, result},
		Interval: 2 * time.Second, Timeout: 5 * time.Second, Fall: 2, Rise: 3,
	}, ScriptOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		reports []bool
	)
	stop := runtest.Start(t, func(ctx context.Context) error {
		return tr.Run(ctx, func(ok bool) {
			mu.Lock()
			reports = append(reports, ok)
			mu.Unlock()
		})
	})
	// The tracker arms its wait for the next check after each check and its
	// report.
	armed := func() bool { return clk.Pending() == 1 }
	poll.Until(t, 5*time.Second, "the wait for the second check", armed)
	for _, code := range []int{1, 0, 1, 1, 0, 0, 1, 0, 0, 0} {
		set(code)
		clk.Advance(2 * time.Second)
		poll.Until(t, 5*time.Second, "the wait for the next check", armed)
	}
	stop()
	// pass; fail once (fall 2: no change); pass; fail twice: down; pass
	// twice, fail (rise 3: no change); pass three times: up.
	if diff := cmp.Diff([]bool{true, false, true}, reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	for _, d := range clk.Durations() {
		if d != 2*time.Second {
			t.Fatalf("waited %s between checks, want the 2s interval", d)
		}
	}
}

func TestScriptTrackerRejectsAnUnknownUser(t *testing.T) {
	_, err := NewScriptTracker(config.TrackScript{Command: []string{"true"}}, ScriptOptions{User: "no-such-user-vrrplb"})
	if err == nil {
		t.Fatal("NewScriptTracker accepted an unknown user")
	}
}
