package poll

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	Until(t, 10*time.Second, "the third check", func() bool { return calls.Add(1) >= 3 })
	if got := calls.Load(); got != 3 {
		t.Errorf("cond called %d times, want 3", got)
	}
}

// fatalRecorder records Fatalf instead of ending the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = format
	panic(f)
}

func TestUntilFailsAfterTheTimeout(t *testing.T) {
	failsJustAfter50ms(t, func(tb testing.TB) {
		Until(tb, 50*time.Millisecond, "never", func() bool { return false })
	})
}

// failsJustAfter50ms checks that wait, given a 50ms timeout that passes,
// fails the test at once when it has passed.
func failsJustAfter50ms(t *testing.T, wait func(testing.TB)) {
	t.Helper()
	rec := &fatalRecorder{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != rec {
				panic(r)
			}
		}()
		wait(rec)
	}()
	if rec.msg == "" {
		t.Fatal("the wait returned without failing")
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("failed after %v, want just after 50ms", d)
	}
}

func TestReceiveReturnsTheValueSent(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if got := Receive(t, ch, 10*time.Second, "the seven"); got != 7 {
		t.Errorf("Receive = %d, want 7", got)
	}
}

func TestReceiveFailsAfterTheTimeout(t *testing.T) {
	failsJustAfter50ms(t, func(tb testing.TB) {
		Receive(tb, make(chan int), 50*time.Millisecond, "nothing")
	})
}
