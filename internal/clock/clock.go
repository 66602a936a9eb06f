// Package clock is the time source of the daemon's timed logic: VRRP's
// protocol timers and track_script interval, the health checks' schedule,
// the proxy's drain timeouts and settle wait, BGP's graceful_shutdown wait.
// Each takes a Clock so that a test drives time with clocktest.Clock instead
// of sleeping; the daemon passes System. It is not for measuring real I/O
// (a check's duration, a socket deadline): those stay on the time package. The proxy's event loops keep their own timer heap on
// the epoll wait's deadline (proxy/timer_linux.go), which the Go runtime
// poller runs and a Clock cannot.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that delivers the time on C once, d from now
	// (at once for d <= 0).
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine once, d from now. The Timer's C
	// is nil.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a one-shot timer made by a Clock, with the time.Timer behaviour
// of Go 1.23 and later: after Stop or Reset, C delivers nothing stale.
type Timer interface {
	// C delivers the time the timer fired.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether it did: false
	// when the timer had already fired or been stopped.
	Stop() bool
	// Reset re-arms the timer d from now, whether or not it had fired. It
	// reports whether the timer was still armed.
	Reset(d time.Duration) bool
}

// System is the Clock of the time package.
var System Clock = system{}

type system struct{}

func (system) Now() time.Time { return time.Now() }

func (system) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

func (system) AfterFunc(d time.Duration, f func()) Timer {
	return systemTimer{time.AfterFunc(d, f)}
}

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }

func (t systemTimer) Stop() bool { return t.t.Stop() }

func (t systemTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// Or returns c, or System when c is nil: what a zero Options field means.
func Or(c Clock) Clock {
	if c == nil {
		return System
	}
	return c
}

// Sleep waits d on c, or until ctx ends. It reports whether d passed.
func Sleep(ctx context.Context, c Clock, d time.Duration) bool {
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}
