package k8s

import (
	"fmt"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/e2e"
)

// failoverWatches is how many client-go watches TestWatchesAcrossLBFailover holds.
const failoverWatches = 6

// Watches through the VIP across each way the VIP moves between the LB
// hosts (issue 21): a graceful stop of the master, its return
// (preemption), `vrrplb maintenance on` and `off` (a preemption again),
// and a crash. Six client-go watches, each on its own connection, and an
// informer hold the VIP's connections; objects are created straight at
// apiserver-1, not through the VIP, about 15 a second, so every watch
// receives data all the time. The test measures, for each move, the time
// from the VIP appearing on its new master to every watch receiving data
// again on a connection opened after that moment (through the new
// master), and asserts issue 21's goal: ≤ 1 s after a handover. A request
// loop of lists (idempotent; client-go retries a GET on a reset
// connection) runs through the VIP all along: none fails. At the end the
// informer has received every object created meanwhile, once.
//
// A crash resets nothing today: a watch through the crashed master learns
// only at client-go's HTTP/2 health check, a ping after 30 s without a
// frame (ReadIdleTimeout) that fails at once (the new master's kernel
// answers with a reset) or after 15 s more (PingTimeout). Its bound is
// those 45 s and slack until the new master can reset them (issue 21's
// tuple stream; goal ≤ 1.5 s).
func TestWatchesAcrossLBFailover(t *testing.T) {
	c := NewCluster(t, Options{})
	const nWatches = failoverWatches
	watches := c.Client("watches", "watches", "--count", fmt.Sprint(nWatches), "--events")
	inf := c.Client("informer", "informer")
	inf.Wait(t, 60*time.Second, "synced", func(e Event) bool { return e.Event == "synced" })
	e2e.Eventually(t, 60*time.Second, func() (bool, string) {
		n := len(watching(watches.All()))
		return n == nWatches, fmt.Sprintf("%d of %d watches open", n, nWatches)
	})
	direct := c.WriteKubeconfig("kubeconfig-apiserver-1", APIAddr(0))
	creator := c.ClientVia(direct, "creator", "load", "--rate", "30", "--workers", "2", "--prefix", "cm")
	creator.Wait(t, 30*time.Second, "a create", func(e Event) bool { return e.Event == "created" })
	reads := c.Client("reads", "load", "--reads", "--rate", "20", "--workers", "4")
	readStart := time.Now()

	h1, h2 := c.Host(lb1), c.Host(lb2)
	failover := func(name string, to *e2e.Host, goal time.Duration, move func()) {
		t.Helper()
		// Every watch receives data through the master first.
		before := time.Now()
		e2e.Eventually(t, 30*time.Second, func() (bool, string) {
			r := resumed(watches.All(), inf.All(), before, nWatches, false)
			return len(r.pending) == 0, fmt.Sprintf("before %s: watches %v have no data yet", name, r.pending)
		})
		start := time.Now()
		move()
		moved := waitHolds(t, to, 60*time.Second)
		var r resumption
		e2e.Eventually(t, max(goal, 5*time.Second)+30*time.Second, func() (bool, string) {
			r = resumed(watches.All(), inf.All(), moved, nWatches, true)
			return len(r.pending) == 0, fmt.Sprintf("%s: watches %v have no data through %s since it took the VIP %v ago", name, r.pending, to.Name, time.Since(moved).Round(time.Millisecond))
		})
		failed := 0
		for _, e := range reads.All() {
			if e.Event == "error" && e.Time().After(start) {
				failed++
			}
		}
		line := fmt.Sprintf("%s: VIP on %s %v after the trigger; every watch (%d and the informer) receiving data again through it %v after the VIP moved (last: %s; goal ≤ %v); lists through the VIP failed meanwhile: %d",
			name, to.Name, moved.Sub(start).Round(time.Millisecond), nWatches, r.worst.Round(time.Millisecond), r.last, goal, failed)
		t.Log(line)
		figures = append(figures, line)
		if r.worst > goal {
			t.Errorf("%s: the watches received data again %v after the VIP moved, want ≤ %v", name, r.worst.Round(time.Millisecond), goal)
		}
	}

	failover("graceful stop of the master", h2, time.Second, func() { c.LBs[0].Signal(syscall.SIGTERM) })
	if err := c.LBs[0].WaitExit(30 * time.Second); err != nil {
		t.Errorf("vrrplb on h1 after SIGTERM: %v", err)
	}
	failover("the master's return (preemption)", h1, time.Second, func() { c.StartLB(lb1) })
	failover("maintenance on the master", h2, time.Second, func() {
		if out, err := h1.Exec(e2e.Binary(t), "maintenance", "on", "--socket", c.AdminSocket(lb1)); err != nil {
			t.Fatalf("vrrplb maintenance on: %v\n%s", err, out)
		}
	})
	failover("maintenance off (preemption)", h1, time.Second, func() {
		if out, err := h1.Exec(e2e.Binary(t), "maintenance", "off", "--socket", c.AdminSocket(lb1)); err != nil {
			t.Fatalf("vrrplb maintenance off: %v\n%s", err, out)
		}
	})
	failover("crash of the master", h2, 45*time.Second+10*time.Second, func() { c.Lab.Crash(h1, c.LBs[0]) })

	reads.Stop(t)
	sum := reads.Wait(t, time.Second, "the summary", func(e Event) bool { return e.Event == "summary" })
	ran := time.Since(readStart)
	t.Logf("lists through the VIP across the five moves: %d ok, %d failed", sum.OK, sum.Fail)
	for _, e := range reads.All() {
		if e.Event == "error" {
			t.Errorf("%s failed at %s: %s", e.Op, e.Time().Format("15:04:05.000"), e.Err)
		}
	}
	if want := int(ran.Seconds() * 20 * 0.8); sum.OK < want {
		t.Errorf("%d lists succeeded in %v, want at least %d: the loop did not keep its rate", sum.OK, ran.Round(time.Second), want)
	}
	creator.Stop(t)
	informerGotEachOnce(t, inf, creator)
}

// waitHolds waits until h holds the VIP and returns when it took it: the
// end of the last look that did not find it there, so never later than
// the move.
func waitHolds(t *testing.T, h *e2e.Host, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	notYet := time.Now()
	for !h.HasAddr(VIP()) {
		notYet = time.Now()
		if notYet.After(deadline) {
			t.Fatalf("%s does not hold the VIP after %v", h.Name, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return notYet
}

// resumption is how the watches came back after a moment.
type resumption struct {
	pending []int         // watches with no data on a connection opened since (-1: the informer)
	worst   time.Duration // the longest wait for that data
	last    string        // which watch waited longest
}

// resumed finds, for each of the n watches (ids 0..n-1) and the informer,
// the first data received after since; with reopened, on a watch
// connection opened after since.
func resumed(watchEvs, infEvs []Event, since time.Time, n int, reopened bool) resumption {
	var r resumption
	check := func(id int, evs []Event, data string) {
		opened := !reopened
		for _, e := range evs {
			if e.ID != id || !e.Time().After(since) {
				continue
			}
			switch {
			case e.Event == "watching":
				opened = true
			case e.Event == data && opened:
				if d := e.Time().Sub(since); d > r.worst {
					r.worst = d
					r.last = fmt.Sprintf("watch %d", id)
					if id < 0 {
						r.last = "the informer"
					}
				}
				return
			}
		}
		r.pending = append(r.pending, id)
	}
	for id := range n {
		check(id, watchEvs, "got")
	}
	// The informer's events carry no id: its "watching" lines say -1.
	var inf []Event
	for _, e := range infEvs {
		e.ID = -1
		inf = append(inf, e)
	}
	check(-1, inf, "add")
	slices.Sort(r.pending)
	return r
}

// informerGotEachOnce checks that the informer added every object the
// creator made, once, at the resourceVersion it was made at.
func informerGotEachOnce(t *testing.T, inf, creator *Events) {
	t.Helper()
	created := map[string]string{}
	for _, e := range creator.All() {
		if e.Event == "created" {
			created[e.Name] = e.RV
		}
	}
	e2e.Eventually(t, 60*time.Second, func() (bool, string) {
		seen := map[string]bool{}
		for _, e := range inf.All() {
			if e.Event == "add" {
				seen[e.Name] = true
			}
		}
		var missing []string
		for name := range created {
			if !seen[name] {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		return len(missing) == 0, fmt.Sprintf("the informer never saw %d of %d objects created: %v", len(missing), len(created), missing)
	})
	adds, rvs := map[string]int{}, map[string]int{}
	for _, e := range inf.All() {
		if e.Event == "add" {
			adds[e.Name]++
			rvs[e.RV]++
		}
		if e.Event == "delete" {
			t.Errorf("the informer saw %s deleted; nothing was", e.Name)
		}
	}
	for name, n := range adds {
		if n > 1 {
			t.Errorf("the informer added %s %d times", name, n)
		}
	}
	for rv, n := range rvs {
		if n > 1 {
			t.Errorf("the informer saw resourceVersion %s %d times", rv, n)
		}
	}
	for name, rv := range created {
		if got := findAdd(inf.All(), name); got != rv {
			t.Errorf("%s: created at resourceVersion %s, the informer added it at %s", name, rv, got)
		}
	}
	t.Logf("%d objects created across the moves, each received once by the informer", len(created))
}
