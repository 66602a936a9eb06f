package proxy

import (
	"slices"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/internal/clock/clocktest"
)

// startOnFakeClock starts a frontend to backends whose drain_timeout is an
// hour of a fake clock, with one client connection already answered by the
// first backend.
func startOnFakeClock(t *testing.T, backends ...string) (*running, *clocktest.Clock, *lineClient) {
	t.Helper()
	fe := testFrontend(backends...)
	fe.DrainTimeout = time.Hour
	c := clocktest.New(time.Now())
	r := startFrontend(t, fe, Options{Clock: c})
	live := dialLine(t, r.addr)
	if _, err := live.ask("hi"); err != nil {
		t.Fatal(err)
	}
	return r, c, live
}

// waitDrainArmed waits until c has a timer armed for drain_timeout.
func waitDrainArmed(t *testing.T, c *clocktest.Clock) {
	t.Helper()
	waitFor(t, "the drain timer is armed", func() bool { return slices.Contains(c.Durations(), time.Hour) })
}

// drain_timeout is measured on the frontend's clock: a connection outlives
// it by any real time until the clock reaches it.
func TestDrainTimeoutRunsOnTheFrontendsClock(t *testing.T) {
	t.Run("a removed backend's connections close when the clock reaches drain_timeout", func(t *testing.T) {
		a, b := startBackend(t, nil), startBackend(t, nil)
		r, c, onA := startOnFakeClock(t, a.Addr)
		fe := r.f.state.Load().cfg
		fe.Backends = []string{b.Addr}
		if err := r.f.Update(fe); err != nil {
			t.Fatal(err)
		}
		waitDrainArmed(t, c)
		c.Advance(time.Hour - time.Nanosecond)
		if _, err := onA.ask("before drain_timeout"); err != nil {
			t.Fatalf("connection to the removed backend before drain_timeout: %v", err)
		}
		c.Advance(time.Nanosecond)
		if !closedByPeer(onA.c, 5*time.Second) {
			t.Fatal("connection to the removed backend still open once the clock reached drain_timeout")
		}
	})
	t.Run("a stopping frontend closes what is left when the clock reaches drain_timeout", func(t *testing.T) {
		r, c, live := startOnFakeClock(t, startBackend(t, nil).Addr)
		r.cancel()
		waitDrainArmed(t, c)
		if _, err := live.ask("during drain"); err != nil {
			t.Fatalf("live connection during drain: %v", err)
		}
		if len(r.done) > 0 {
			t.Fatal("Run returned before drain_timeout with a connection live")
		}
		c.Advance(time.Hour)
		if !closedByPeer(live.c, 5*time.Second) {
			t.Fatal("connection still open once the clock reached drain_timeout")
		}
		waitFor(t, "Run returns after drain_timeout", func() bool { return len(r.done) > 0 })
	})
}
