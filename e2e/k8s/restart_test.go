package k8s

import (
	"fmt"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/e2e"
)

// A rolling restart of the three apiservers, each stopped gracefully, under
// a request loop of 20 requests/s (half of them creates, which client-go
// never retries) over six connections, with 30 watches each on its own
// connection: no request fails, the watches a stopping apiserver held
// reconnect elsewhere, and the test reports how the connections spread
// over the apiservers after each restart (nothing moves them back).
func TestRollingRestartUnderLoad(t *testing.T) {
	c := NewCluster(t, Options{})
	const nWatches = 30
	w := c.Client("watches", "watches", "--count", fmt.Sprint(nWatches))
	e2e.Eventually(t, 60*time.Second, func() (bool, string) {
		n := len(watching(w.All()))
		return n == nWatches, fmt.Sprintf("%d of %d watches open", n, nWatches)
	})
	report := func(when string) map[string]int {
		conns := c.Connections(lb1)
		line := fmt.Sprintf("connections per apiserver on h1 %s: %s %d, %s %d, %s %d", when,
			APIAddr(0), conns[APIAddr(0).String()], APIAddr(1), conns[APIAddr(1).String()], APIAddr(2), conns[APIAddr(2).String()])
		t.Log(line)
		figures = append(figures, line)
		return conns
	}
	// How leastconn spread them is TestWatchesSpreadByLeastconn's.
	report(fmt.Sprintf("with %d watches", nWatches))

	load := c.Client("load", "load", "--rate", "20", "--workers", "6", "--prefix", "roll")
	load.Wait(t, 30*time.Second, "a create", func(e Event) bool { return e.Event == "created" })
	loadStart := time.Now()
	// A stopping apiserver serves its watches on until it exits: after
	// its shutdown delay (5 s) it waits up to its request timeout (60 s)
	// for them. The LB cuts a down backend's connections only when they are
	// quiet; these watches carry the loop's creates, so they move when the
	// apiserver exits at the latest.
	const moveBound = 5*time.Second + 60*time.Second + 10*time.Second
	for n := range 3 {
		before := c.Connections(lb1)[APIAddr(n).String()]
		stopped := time.Now()
		c.StopAPIServer(n)
		// Its watches ended and every watch is open again, elsewhere.
		e2e.Eventually(t, moveBound+30*time.Second, func() (bool, string) {
			open := watching(w.All())
			conns := c.Connections(lb1)
			return len(open) == nWatches && conns[APIAddr(n).String()] == 0,
				fmt.Sprintf("after apiserver-%d's SIGTERM: %d of %d watches open, connections %v", n+1, len(open), nWatches, conns)
		})
		moved := time.Since(stopped)
		if err := c.WaitAPIExit(n); err != nil {
			t.Errorf("apiserver-%d after SIGTERM: %v", n+1, err)
		}
		exited := time.Since(stopped)
		line := fmt.Sprintf("apiserver-%d stopped (SIGTERM, exit after %v): its %d connections through h1 moved elsewhere %v after the SIGTERM",
			n+1, exited.Round(time.Millisecond), before, moved.Round(time.Millisecond))
		t.Log(line)
		figures = append(figures, line)
		if moved > moveBound {
			t.Errorf("apiserver-%d's watches took %v to move, want ≤ %v", n+1, moved, moveBound)
		}
		c.StartAPIServer(n)
		ready := c.WaitAPIReady(n, 3*time.Minute)
		c.WaitBackendsUp(lb1, 3, 30*time.Second)
		t.Logf("apiserver-%d ready again %v after its start", n+1, ready.Round(time.Millisecond))
		report(fmt.Sprintf("after apiserver-%d restarted", n+1))
	}
	load.Stop(t)
	ran := time.Since(loadStart)
	sum := load.Wait(t, time.Second, "the summary", func(e Event) bool { return e.Event == "summary" })
	figures = append(figures, fmt.Sprintf("rolling restart under 20 req/s: %d requests ok, %d failed", sum.OK, sum.Fail))
	t.Logf("request loop across the rolling restart: %d ok, %d failed", sum.OK, sum.Fail)
	for _, e := range load.All() {
		if e.Event == "error" {
			t.Errorf("%s %s failed at %s: %s", e.Op, e.Name, e.Time().Format("15:04:05.000"), e.Err)
		}
	}
	if want := int(ran.Seconds() * 20 * 0.8); sum.OK < want {
		t.Errorf("%d requests succeeded in %v, want at least %d: the loop did not keep its rate", sum.OK, ran.Round(time.Second), want)
	}
}

// 30 watches, each on its own connection, opened together: leastconn gives
// each apiserver its share.
func TestWatchesSpreadByLeastconn(t *testing.T) {
	c := NewCluster(t, Options{})
	const nWatches = 30
	w := c.Client("watches", "watches", "--count", fmt.Sprint(nWatches))
	e2e.Eventually(t, 60*time.Second, func() (bool, string) {
		n := len(watching(w.All()))
		return n == nWatches, fmt.Sprintf("%d of %d watches open", n, nWatches)
	})
	conns := c.Connections(lb1)
	t.Logf("%d watches opened together: connections per apiserver on h1 %v", nWatches, conns)
	for n := range 3 {
		if got := conns[APIAddr(n).String()]; got < nWatches/3-2 || got > nWatches/3+2 {
			t.Errorf("leastconn put %d of %d watches on %s, want %d±2", got, nWatches, APIAddr(n), nWatches/3)
		}
	}
}

// watching is the set of watch ids whose latest event is "watching".
func watching(evs []Event) map[int]bool {
	open := map[int]bool{}
	for _, e := range evs {
		switch e.Event {
		case "watching":
			open[e.ID] = true
		case "ended":
			delete(open, e.ID)
		}
	}
	return open
}
