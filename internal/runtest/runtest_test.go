package runtest

import (
	"context"
	"errors"
	"testing"
)

func TestStopCancelsRunAndWaitsForIt(t *testing.T) {
	started, returned := make(chan struct{}), false
	stop := Start(t, func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		returned = true
		return nil
	})
	<-started
	stop()
	if !returned {
		t.Error("stop returned before Run did")
	}
}

// errorRecorder records Errorf instead of failing the test.
type errorRecorder struct {
	testing.TB
	failed bool
}

func (r *errorRecorder) Helper()               {}
func (r *errorRecorder) Errorf(string, ...any) { r.failed = true }

func TestStopFailsTheTestWhenRunReturnsAnError(t *testing.T) {
	rec := &errorRecorder{TB: t}
	Start(rec, func(ctx context.Context) error {
		<-ctx.Done()
		return errors.New("broken")
	})()
	if !rec.failed {
		t.Error("Run returned an error and the test did not fail")
	}
}
