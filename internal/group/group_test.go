package group

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/internal/poll"
)

// run starts g.Run in the background with start as its startLocked.
func run(ctx context.Context, g *Group, mu *sync.Mutex, start func()) chan error {
	ended := make(chan error, 1)
	go func() { ended <- g.Run(ctx, mu, start) }()
	return ended
}

// waitRunning polls until g's Run has begun.
func waitRunning(t *testing.T, g *Group, mu *sync.Mutex) {
	t.Helper()
	poll.Until(t, 10*time.Second, "Run to start", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return g.Running()
	})
}

func waitEnd(t *testing.T, ended chan error) error {
	t.Helper()
	select {
	case err := <-ended:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

func TestATaskThatFailsEndsRunAndStopsTheOthers(t *testing.T) {
	var mu sync.Mutex
	g := New("test set")
	var quiet, failing Task
	stopped := make(chan struct{})
	fail := make(chan struct{})
	ended := run(context.Background(), g, &mu, func() {
		g.Go(&quiet, "quiet", func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil })
		g.Go(&failing, "failing", func(ctx context.Context) error { <-fail; return errors.New("broke") })
	})
	close(fail)
	err := waitEnd(t, ended)
	if err == nil || err.Error() != "failing: broke" {
		t.Errorf("Run: %v, want failing: broke", err)
	}
	select {
	case <-stopped:
	default:
		t.Error("Run returned before the other task stopped")
	}
}

func TestATaskThatReturnsOnItsOwnIsAFailure(t *testing.T) {
	var mu sync.Mutex
	g := New("test set")
	var task Task
	ended := run(context.Background(), g, &mu, func() {
		g.Go(&task, "early", func(ctx context.Context) error { return nil })
	})
	if err := waitEnd(t, ended); err == nil || err.Error() != "early: stopped on its own" {
		t.Errorf("Run: %v, want early: stopped on its own", err)
	}
}

func TestAStoppedTaskIsNoFailureAndRunEndsWithItsContext(t *testing.T) {
	var mu sync.Mutex
	g := New("test set")
	var first, later Task
	ctx, cancel := context.WithCancel(context.Background())
	ended := run(ctx, g, &mu, func() {
		g.Go(&first, "first", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	})
	// A task added while Run runs.
	waitRunning(t, g, &mu)
	mu.Lock()
	g.Go(&later, "later", func(ctx context.Context) error { <-ctx.Done(); return nil })
	mu.Unlock()
	first.Stop()
	if !first.Started() || !later.Started() {
		t.Error("a task Go ran does not say it started")
	}
	cancel()
	if err := waitEnd(t, ended); err != nil {
		t.Errorf("Run after a task was stopped and ctx ended: %v, want nil", err)
	}
	later.Stop() // returns at once: Run stopped it
}

func TestRunTwiceAndANeverStartedTask(t *testing.T) {
	var mu sync.Mutex
	g := New("test set")
	ctx, cancel := context.WithCancel(context.Background())
	ended := run(ctx, g, &mu, func() {})
	waitRunning(t, g, &mu)
	if err := g.Run(ctx, &mu, func() { t.Error("a second Run started tasks") }); err == nil || err.Error() != "test set: Run called twice" {
		t.Errorf("second Run: %v", err)
	}
	var never Task
	never.Stop()
	var nilTask *Task
	nilTask.Stop()
	if never.Started() || nilTask.Started() {
		t.Error("a task never started says it started")
	}
	cancel()
	if err := waitEnd(t, ended); err != nil {
		t.Errorf("Run: %v", err)
	}
}
