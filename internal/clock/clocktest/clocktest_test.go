package clocktest

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fired reports whether ch has delivered, without waiting.
func fired(ch <-chan time.Time) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestTimersFireWhenTheTimeReachesThem(t *testing.T) {
	c := New(t0)
	a, b := c.NewTimer(2*time.Second), c.NewTimer(time.Second)
	if next, ok := c.Next(); !ok || !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("Next() = %v, %v; want %v", next, ok, t0.Add(time.Second))
	}
	c.Advance(time.Second - time.Nanosecond)
	if fired(a.C()) || fired(b.C()) {
		t.Fatal("a timer fired before its deadline")
	}
	c.Advance(time.Nanosecond)
	if got := <-b.C(); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("b delivered %v, want its deadline %v", got, t0.Add(time.Second))
	}
	if fired(a.C()) {
		t.Fatal("a fired a second early")
	}
	if got := c.Pending(); got != 1 {
		t.Errorf("Pending() = %d, want 1", got)
	}
	c.Advance(time.Second)
	if !fired(a.C()) {
		t.Fatal("a did not fire at its deadline")
	}
	if _, ok := c.Next(); ok {
		t.Error("Next() reports a timer after all fired")
	}
}

func TestATimerForNoTimeFiresAtOnce(t *testing.T) {
	c := New(t0)
	if !fired(c.NewTimer(0).C()) || !fired(c.NewTimer(-time.Second).C()) {
		t.Fatal("a timer for d <= 0 did not fire at once")
	}
}

func TestStopAndResetLeaveNoStaleFire(t *testing.T) {
	var n atomic.Int64
	c := New(t0)
	v := c.Counting(&n)
	tm := v.NewTimer(time.Second)
	c.Advance(time.Second)
	if got := n.Load(); got != 1 {
		t.Fatalf("count after a fire = %d, want 1", got)
	}
	if !tm.Stop() {
		t.Error("Stop of a fire not yet received = false, want true")
	}
	if fired(tm.C()) || n.Load() != 0 {
		t.Fatalf("after Stop: a stale fire, or count %d, want 0", n.Load())
	}
	if tm.Stop() {
		t.Error("a second Stop = true, want false")
	}
	if tm.Reset(time.Second) {
		t.Error("Reset of a stopped timer = true, want false")
	}
	c.Advance(500 * time.Millisecond)
	if !tm.Reset(time.Second) {
		t.Error("Reset of an armed timer = false, want true")
	}
	c.Advance(900 * time.Millisecond)
	if fired(tm.C()) {
		t.Fatal("fired at the deadline it had before Reset")
	}
	c.Advance(100 * time.Millisecond)
	if !fired(tm.C()) {
		t.Fatal("did not fire a second after Reset")
	}
	want := []time.Duration{time.Second, time.Second, time.Second}
	if diff := cmp.Diff(want, c.Durations()); diff != "" {
		t.Errorf("Durations() (-want +got):\n%s", diff)
	}
}

func TestAfterFuncRunsOnceDue(t *testing.T) {
	c := New(t0)
	ran := make(chan struct{})
	tm := c.AfterFunc(time.Second, func() { close(ran) })
	if tm.C() != nil {
		t.Error("an AfterFunc timer has a channel")
	}
	stopped := c.AfterFunc(time.Second, func() { t.Error("a stopped AfterFunc ran") })
	if !stopped.Stop() {
		t.Error("Stop of an armed AfterFunc = false, want true")
	}
	c.Advance(time.Second)
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("f did not run once due")
	}
}
