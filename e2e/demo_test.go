package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoRunsToTheEndAndLeavesNothing runs the demo program (make demo) as
// a user would, with the binaries the suite built, and checks it finished
// in time, showed the failover gap and the traffic split, and removed its lab.
func TestDemoRunsToTheEndAndLeavesNothing(t *testing.T) {
	requireRoot(t)
	requireCommand(t, "ip", "iproute2")
	out := runDemo(t)
	demoShowed(t, out,
		`failover gap: \d+ ms`,
		`traffic split over 12 requests: apiserver-1 0, apiserver-2 [1-9]\d*, apiserver-3 [1-9]\d*\n`,
		`fail open: 12 of 12 requests through the VIP answered`,
		`nothing is left\.`,
	)
}

// runDemo runs the demo program with args, and the binaries the suite
// built, as a user would, and returns what it printed; it fails the test
// unless the demo ended well within 60s.
func runDemo(t *testing.T, args ...string) string {
	t.Helper()
	demo := Build(t, "github.com/vrrplb/vrrplb/e2e/demo")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, demo, append(args,
		"-vrrplb", Binary(t), "-fakeapiserver", Build(t, "github.com/vrrplb/vrrplb/e2e/fakeapiserver"))...)
	// Out of time, the demo is interrupted as a user would: it tears its lab
	// down before it exits.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 20 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	out := stdout.String()
	if ctx.Err() != nil {
		t.Errorf("the demo did not finish within 60s")
	}
	if err != nil || t.Failed() {
		t.Fatalf("demo %v failed after %s: %v\n---- stdout ----\n%s---- stderr ----\n%s", args, took.Round(time.Millisecond), err, out, stderr.String())
	}
	t.Logf("the demo took %s", took.Round(time.Millisecond))
	return out
}

// demoShowed checks that the demo's output matches every one of the
// patterns and that the demo removed its lab.
func demoShowed(t *testing.T, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if want := regexp.MustCompile(p); !want.MatchString(out) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
	id := regexp.MustCompile(`lab id ([0-9a-f]+)`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("the demo's output does not name its lab:\n%s", out)
	}
	if ns := must(t, "ip", "netns", "list"); strings.Contains(ns, "e2e"+id[1]) {
		t.Errorf("the demo left namespaces behind:\n%s", ns)
	}
}
