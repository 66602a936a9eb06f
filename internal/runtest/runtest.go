// Package runtest runs a component's Run(ctx) in the background of a test
// and stops it again: cancel its context, wait for Run to return, fail the
// test if Run returned an error. It is for tests: the daemon does not use it.
package runtest

import (
	"context"
	"testing"
)

// Start runs run in a goroutine under a context of its own and returns
// stop, which cancels that context, waits for run to return and fails t if
// it returned an error. Call stop once: from t.Cleanup, a defer, or where the
// test stops the component.
func Start(t testing.TB, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}
