// Package clocktest is a clock.Clock whose time moves only when a test moves
// it, for the tests of every package that takes a clock. The daemon does not
// use it.
package clocktest

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vrrplb/vrrplb/internal/clock"
)

// Clock is a fake clock.Clock. Its timers fire, in deadline order, when
// Advance moves the time past their deadline; a timer made for d <= 0 fires
// at once. It is safe for concurrent use.
type Clock struct {
	mu        sync.Mutex
	now       time.Time
	armed     []*timer
	durations []time.Duration
}

// New returns a Clock that reads start until a test advances it.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires once the fake time reaches d from now.
func (c *Clock) NewTimer(d time.Duration) clock.Timer { return c.newTimer(d, nil, nil) }

// AfterFunc calls f in its own goroutine once the fake time reaches d from
// now.
func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer { return c.newTimer(d, f, nil) }

// Counting returns a view of c whose timers (not AfterFunc's) add one to n
// when they fire and take it back when Stop or Reset discards a fire not yet received: a test
// counts the events it has handed to a loop and waits until the loop is done.
func (c *Clock) Counting(n *atomic.Int64) clock.Clock { return counting{c, n} }

type counting struct {
	c *Clock
	n *atomic.Int64
}

func (v counting) Now() time.Time { return v.c.Now() }

func (v counting) NewTimer(d time.Duration) clock.Timer { return v.c.newTimer(d, nil, v.n) }

func (v counting) AfterFunc(d time.Duration, f func()) clock.Timer { return v.c.newTimer(d, f, v.n) }

// Advance moves the fake time forward by d and fires every timer due by
// then, earliest first.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	due := slices.DeleteFunc(slices.Clone(c.armed), func(t *timer) bool { return t.when.After(c.now) })
	slices.SortStableFunc(due, func(a, b *timer) int { return a.when.Compare(b.when) })
	for _, t := range due {
		c.fire(t)
	}
}

// Next returns the earliest deadline of the armed timers, if there is one.
func (c *Clock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first time.Time
	for _, t := range c.armed {
		if first.IsZero() || t.when.Before(first) {
			first = t.when
		}
	}
	return first, !first.IsZero()
}

// Pending returns how many timers are armed.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.armed)
}

// Durations returns the d of every timer armed so far (by NewTimer,
// AfterFunc or Reset), in order.
func (c *Clock) Durations() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.durations)
}

type timer struct {
	c     *Clock
	when  time.Time
	ch    chan time.Time // nil for an AfterFunc timer
	f     func()
	count *atomic.Int64 // nil unless made through Counting
}

func (c *Clock) newTimer(d time.Duration, f func(), count *atomic.Int64) *timer {
	t := &timer{c: c, f: f, count: count}
	if f == nil {
		t.ch = make(chan time.Time, 1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arm(t, d)
	return t
}

// arm sets t to fire d from now, at once for d <= 0. c.mu is held.
func (c *Clock) arm(t *timer, d time.Duration) {
	c.durations = append(c.durations, d)
	t.when = c.now.Add(d)
	c.armed = append(c.armed, t)
	if d <= 0 {
		c.fire(t)
	}
}

// fire disarms t and delivers it. c.mu is held.
func (c *Clock) fire(t *timer) {
	c.armed = slices.DeleteFunc(c.armed, func(o *timer) bool { return o == t })
	if t.f != nil {
		go t.f()
		return
	}
	if t.count != nil {
		t.count.Add(1)
	}
	t.ch <- t.when
}

// disarm stops t and takes back a fire not yet received. It reports whether
// t was armed or its fire was taken back. c.mu is held.
func (c *Clock) disarm(t *timer) bool {
	n := len(c.armed)
	c.armed = slices.DeleteFunc(c.armed, func(o *timer) bool { return o == t })
	stopped := len(c.armed) < n
	select {
	case <-t.ch: // a nil channel (AfterFunc) never delivers
		if t.count != nil {
			t.count.Add(-1)
		}
		stopped = true
	default:
	}
	return stopped
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.c.disarm(t)
}

func (t *timer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	armed := t.c.disarm(t)
	t.c.arm(t, d)
	return armed
}
