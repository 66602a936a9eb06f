// Package poll is how a test waits for a state that another goroutine or
// process brings about: it checks a condition every few milliseconds until
// it holds or a deadline passes, or waits for a value on a channel until a
// deadline, instead of sleeping for a guessed time. It is for tests: the
// daemon does not use it.
package poll

import (
	"testing"
	"time"
)

// Interval is how often Until checks its condition.
const Interval = 2 * time.Millisecond

// Until checks cond every Interval until it holds. If it still does not
// hold after timeout, it fails t at once, naming what it waited for.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting: %s", timeout, what)
		}
		time.Sleep(Interval)
	}
}

// Receive returns the next value from ch. If none comes within timeout, it
// fails t at once, naming what it waited for.
func Receive[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting: %s", timeout, what)
		var zero T
		return zero
	}
}
