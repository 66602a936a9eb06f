package k8s

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/e2e"
)

// How many client-go watches and kubectl get -w TestWatchesAcrossLBFailover holds.
const (
	failoverWatches  = 6
	failoverKubectls = 2
)

// Watches through the VIP across each way the VIP moves between the LB
// hosts (issue 21): a graceful stop of the master, its return
// (preemption), `vrrplb maintenance on` and `off` (a preemption again),
// and a crash. Six client-go watches, each on its own connection, two
// `kubectl get -w` (each run again when it exits, as a script would) and an
// informer hold the VIP's connections; objects are created straight at
// apiserver-1, not through the VIP, about 15 a second, so every watch
// receives data all the time. The test measures, for each move, the time
// from the VIP appearing on its new master to every watch receiving data
// again on a connection opened after that moment (through the new
// master), and asserts issue 21's goal: ≤ 1 s after a handover. A request
// loop of lists (idempotent; client-go retries a GET on a reset
// connection until its answer starts) runs through the VIP all along:
// none fails but one caught in flight by a handover's reset, which is
// reported (issue 21's goal of 0 is not met for those). At the end the
// informer has received every object created meanwhile, once. Measured
// before the old master reset its clients' connections on a handover: the
// watches received data again 29.9-30.1 s after each move (client-go's
// HTTP/2 ping), and a list failed (a TLS handshake timeout).
//
// After a crash (h1's cable pulled, then vrrplb killed) the new master
// prompts the clients the old one streamed to it (takeover_key_file) into
// a reset; goal ≤ 1.5 s after the VIP moved. Before each move every watch
// has been open for a second: one opened after the stream's last snapshot
// would learn of a crash only at its ping (the stream's documented limit). Measured before it could:
// 29.6-31.2 s, when client-go's HTTP/2 health check, a ping after 30 s
// without a frame, got the new master's kernel's reset.
func TestWatchesAcrossLBFailover(t *testing.T) {
	// A fall of 6: a check timing out twice on this loaded machine must
	// not move the VIP between the moves this test makes.
	c := NewCluster(t, Options{HealthFall: 6, Takeover: true})
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
	// kubectl get -w ends when its connection does: run again at once,
	// as a script would.
	kubectl := c.Client("kubectl", "repeat", "--count", fmt.Sprint(failoverKubectls), "--",
		filepath.Join(c.bins, "kubectl"), "--kubeconfig", c.Kubeconfig, "--cache-dir", filepath.Join(c.Lab.LogDir, "kubectl-cache"),
		"get", "configmaps", "--watch", "--watch-only", "-o", "name")
	clients := []watchClient{
		{name: "watch", ev: watches, n: nWatches, data: "got"},
		{name: "kubectl", ev: kubectl, n: failoverKubectls, data: "got"},
		{name: "the informer", ev: inf, data: "add"},
	}

	h1, h2 := c.Host(lb1), c.Host(lb2)
	failover := func(name string, to *e2e.Host, goal time.Duration, move func()) {
		t.Helper()
		// Every watch receives data through the master first.
		// The other host is master, and every watch has been open for a
		// while (the takeover stream sends its snapshot every 200 ms: a
		// connection younger than that is not in the new master's) and
		// receives data through it.
		from := h1
		if to == h1 {
			from = h2
		}
		c.Lab.WaitMaster(t, from, VIP(), 30*time.Second)
		before := time.Now()
		e2e.Eventually(t, 30*time.Second, func() (bool, string) {
			r := resumed(clients, time.Time{}, before)
			young := openedSince(clients, time.Now().Add(-time.Second))
			return len(r.pending) == 0 && len(young) == 0, fmt.Sprintf("before %s: %v have no data yet, %v were opened less than 1s ago", name, r.pending, young)
		})
		start := time.Now()
		move()
		moved := waitHolds(t, to, 60*time.Second)
		// Its log says when to the millisecond; the look above only
		// that it happened since the look before.
		if logged, ok := becameMaster(c.LBs[slices.Index([]*e2e.Host{h1, h2}, to)], start); ok && logged.Before(moved) {
			moved = logged
		}
		var r resumption
		e2e.Eventually(t, max(goal, 5*time.Second)+30*time.Second, func() (bool, string) {
			r = resumed(clients, start, moved)
			return len(r.pending) == 0, fmt.Sprintf("%s: %v have no data through %s since it took the VIP %v ago", name, r.pending, to.Name, time.Since(moved).Round(time.Millisecond))
		})
		c.Lab.WaitMaster(t, to, VIP(), 10*time.Second)
		failed := 0
		for _, e := range reads.All() {
			if e.Event == "error" && e.Time().After(start) {
				failed++
			}
		}
		ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
		line := fmt.Sprintf("%s: VIP on %s %v after the trigger; every watch receiving data again through it %v after the VIP moved (goal ≤ %v; %d client-go watches %v, %d kubectl get -w %v, the informer %v); lists through the VIP failed meanwhile: %d",
			name, to.Name, ms(moved.Sub(start)), ms(r.worst), goal, nWatches, ms(r.each[0]), failoverKubectls, ms(r.each[1]), ms(r.each[2]), failed)
		t.Log(line)
		figures = append(figures, line)
		if r.worst > goal {
			t.Errorf("%s: the watches received data again %v after the VIP moved (%s the last), want ≤ %v", name, ms(r.worst), r.last, goal)
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
	failover("crash of the master", h2, 1500*time.Millisecond, func() { c.Lab.Crash(h1, c.LBs[0]) })

	reads.Stop(t)
	sum := reads.Wait(t, time.Second, "the summary", func(e Event) bool { return e.Event == "summary" })
	ran := time.Since(readStart)
	line := fmt.Sprintf("lists through the VIP across the five moves: %d ok, %d failed", sum.OK, sum.Fail)
	t.Log(line)
	figures = append(figures, line)
	// The handover resets a connection whatever it carries: a list whose
	// answer is being read (client-go retries a GET only before the
	// answer starts: "unexpected error when reading response body") or
	// whose request is being written (EPIPE, not retried) fails. Seen: 2
	// lists at one preemption, 1 at one maintenance, in about 12 runs of
	// 5 moves. Such cuts are reported, one a move at most; any other
	// failure (a refusal, a timeout: the VIP black-holed) fails the test.
	var cut []string
	for _, e := range reads.All() {
		if e.Event != "error" {
			continue
		}
		if strings.HasSuffix(e.Err, "connection reset by peer") || strings.HasSuffix(e.Err, "write: broken pipe") {
			cut = append(cut, e.Time().Format("15:04:05.000")+" "+e.Err)
			continue
		}
		t.Errorf("%s failed at %s: %s", e.Op, e.Time().Format("15:04:05.000"), e.Err)
	}
	if len(cut) > 0 {
		line := fmt.Sprintf("lists cut by a handover's reset while in flight: %d (%s)", len(cut), strings.Join(cut, "; "))
		t.Log(line)
		figures = append(figures, line)
	}
	if len(cut) > 5 {
		t.Errorf("%d lists cut by resets across 5 moves, want at most one a move", len(cut))
	}
	// Its first second is its start: connecting, TLS, discovery.
	if want := int((ran.Seconds() - 1) * 20 * 0.8); sum.OK < want {
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

// watchClient is a kclient whose watches say "watching" (id) when one
// opens and data (id) for what it receives.
type watchClient struct {
	name string
	ev   *Events
	n    int    // ids 0..n-1; 0: one watch, whose events carry no id
	data string // the event that is data
}

// openedSince lists the watches last opened after since.
func openedSince(clients []watchClient, since time.Time) []string {
	var young []string
	for _, c := range clients {
		last := map[int]time.Time{}
		for _, e := range c.ev.All() {
			if e.Event == "watching" {
				last[e.ID] = e.Time()
			}
		}
		for id, at := range last {
			if at.After(since) {
				young = append(young, fmt.Sprintf("%s %d", c.name, id))
			}
		}
	}
	return young
}

// becameMaster is when vrrplb p logged its last transition to master at or
// after since, to the millisecond.
func becameMaster(p *e2e.Proc, since time.Time) (time.Time, bool) {
	var at time.Time
	found := false
	for _, line := range strings.Split(p.Output(), "\n") {
		if !strings.Contains(line, "msg=transition") || !strings.Contains(line, " to=master ") {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "time=") {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
		if err == nil && !ts.Before(since.Truncate(time.Millisecond)) {
			at, found = ts, true
		}
	}
	return at, found
}

// resumption is how the watches came back after a moment.
type resumption struct {
	pending []string        // watches with no data on a connection opened since
	worst   time.Duration   // the longest wait for that data
	last    string          // which watch waited longest
	each    []time.Duration // the longest wait of each client
}

// resumed finds, for each watch of each client, the first data received
// after since on a watch opened after opened (the move's trigger: a
// watch reset by the move opens again through the new master), and how
// long after since it came.
func resumed(clients []watchClient, opened, since time.Time) resumption {
	r := resumption{each: make([]time.Duration, len(clients))}
	for i, c := range clients {
		evs := c.ev.All()
		for id := range max(c.n, 1) {
			name := c.name
			if c.n > 0 {
				name = fmt.Sprintf("%s %d", c.name, id)
			}
			open, found := opened.IsZero(), false
			for _, e := range evs {
				if (c.n > 0 && e.ID != id) || !e.Time().After(opened) {
					continue
				}
				if e.Event == "watching" {
					open = true
				}
				if e.Event == c.data && open && e.Time().After(since) {
					d := e.Time().Sub(since)
					if d > r.worst {
						r.worst, r.last = d, name
					}
					r.each[i] = max(r.each[i], d)
					found = true
					break
				}
			}
			if !found {
				r.pending = append(r.pending, name)
			}
		}
	}
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
