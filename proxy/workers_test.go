package proxy

import (
	"runtime"
	"sync"
	"testing"
)

func TestWorkersAreReusedThenTrimmed(t *testing.T) {
	w := newWorkers()
	defer w.stop()
	var wg sync.WaitGroup
	wg.Add(1)
	w.run(wg.Done)
	wg.Wait()
	waitFor(t, "the worker waits for the next task", func() bool { return w.idle.Load() == 1 })

	// The worker counts itself idle just before it waits: a task sent in
	// between starts a goroutine of its own, so try a few times.
	for range 100 {
		wg.Add(1)
		w.run(wg.Done)
		wg.Wait()
		if w.used.Load() {
			break
		}
	}
	if !w.used.Load() {
		t.Error("every later task started a new goroutine, want the waiting worker")
	}
	waitFor(t, "the worker waits again", func() bool { return w.idle.Load() >= 1 })

	w.trim() // the worker was used since the last trim: it stays
	if got := w.idle.Load(); got < 1 {
		t.Errorf("after a trim that follows use: %d idle workers, want at least 1", got)
	}
	w.trim() // unused since: it ends
	waitFor(t, "the unused worker ends", func() bool { return w.idle.Load() == 0 })
}

func TestWorkersStopEndsWaitingAndBusyWorkers(t *testing.T) {
	base := runtime.NumGoroutine()
	w := newWorkers()
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(2)
	w.run(started.Done)
	w.run(func() { started.Done(); <-release })
	started.Wait()
	waitFor(t, "one worker waits", func() bool { return w.idle.Load() == 1 })
	// One worker waits, the other is busy; stop must end both.
	w.stop()
	close(release)
	waitFor(t, "both workers end", func() bool { return runtime.NumGoroutine() <= base })
}
