package vrrp

import (
	"container/heap"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A discrete-event network of machines: adverts reach every other machine
// after a propagation delay, timers fire at their deadlines.

type simEvent struct {
	when time.Time
	seq  int
	node int
	ev   Event
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if !q[i].when.Equal(q[j].when) {
		return q[i].when.Before(q[j].when)
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simNet struct {
	t     *testing.T
	delay time.Duration
	nodes []*Machine
	addrs []netip.Addr
	down  []bool
	q     simQueue
	seq   int
}

func newSimNet(t *testing.T, delay time.Duration, cfgs ...MachineConfig) *simNet {
	n := &simNet{t: t, delay: delay}
	for _, c := range cfgs {
		n.nodes = append(n.nodes, NewMachine(c))
		n.addrs = append(n.addrs, c.LocalAddr)
		n.down = append(n.down, false)
	}
	return n
}

func (n *simNet) schedule(when time.Time, node int, ev Event) {
	n.seq++
	heap.Push(&n.q, simEvent{when: when, seq: n.seq, node: node, ev: ev})
}

// runUntil processes events up to and including end.
func (n *simNet) runUntil(end time.Time) {
	for steps := 0; n.q.Len() > 0 && !n.q[0].when.After(end); steps++ {
		if steps > 100000 {
			n.t.Fatal("simulation did not settle: too many events")
		}
		e := heap.Pop(&n.q).(simEvent)
		if n.down[e.node] {
			continue
		}
		m := n.nodes[e.node]
		for _, a := range m.Handle(e.when, e.ev, nil) {
			switch a.Kind {
			case ActionSendAdvert:
				for i := range n.nodes {
					if i != e.node {
						n.schedule(e.when.Add(n.delay), i, Event{Kind: EventAdvert, From: n.addrs[e.node], Priority: a.Priority, Interval: m.cfg.AdvertInterval})
					}
				}
			case ActionSetTimer:
				n.schedule(a.Deadline, e.node, Event{Kind: EventTimer})
			}
		}
	}
}

func (n *simNet) states() []State {
	var out []State
	for _, m := range n.nodes {
		out = append(out, m.State())
	}
	return out
}

func TestMachinesStartedAtTheSameInstantConvergeOnOneMaster(t *testing.T) {
	cfg := func(prio uint8, addr netip.Addr) MachineConfig {
		return MachineConfig{Version: 3, Priority: prio, AdvertInterval: time.Second, Preempt: true, LocalAddr: addr}
	}
	tests := []struct {
		name string
		cfgs []MachineConfig
		want []State
	}{
		{
			name: "the highest priority becomes the only master",
			cfgs: []MachineConfig{cfg(100, addrLow), cfg(150, addrMid), cfg(120, addrHigh)},
			want: []State{StateBackup, StateMaster, StateBackup},
		},
		{
			name: "equal priorities leave the higher address the only master",
			cfgs: []MachineConfig{cfg(100, addrMid), cfg(100, addrHigh), cfg(100, addrLow)},
			want: []State{StateBackup, StateMaster, StateBackup},
		},
		{
			name: "equal priorities at 10 ms adverts leave the higher address the only master",
			cfgs: []MachineConfig{
				{Version: 3, Priority: 100, AdvertInterval: 10 * time.Millisecond, Preempt: true, LocalAddr: addrHigh},
				{Version: 3, Priority: 100, AdvertInterval: 10 * time.Millisecond, Preempt: true, LocalAddr: addrLow},
				{Version: 3, Priority: 100, AdvertInterval: 10 * time.Millisecond, Preempt: true, LocalAddr: addrMid},
			},
			want: []State{StateMaster, StateBackup, StateBackup},
		},
		{
			name: "version 2 routers converge on the highest priority",
			cfgs: []MachineConfig{
				{Version: 2, Priority: 200, AdvertInterval: time.Second, Preempt: true, LocalAddr: addrLow},
				{Version: 2, Priority: 100, AdvertInterval: time.Second, Preempt: true, LocalAddr: addrMid},
				{Version: 2, Priority: 100, AdvertInterval: time.Second, Preempt: true, LocalAddr: addrHigh},
			},
			want: []State{StateMaster, StateBackup, StateBackup},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newSimNet(t, 200*time.Microsecond, tt.cfgs...)
			for i := range n.nodes {
				n.schedule(t0, i, startup())
			}
			// Converged by 5 s, and stays so for another 20 s.
			n.runUntil(at(5 * time.Second))
			if diff := cmp.Diff(tt.want, n.states()); diff != "" {
				t.Fatalf("states after 5s (-want +got):\n%s", diff)
			}
			for s := 6; s <= 25; s++ {
				n.runUntil(at(time.Duration(s) * time.Second))
				if diff := cmp.Diff(tt.want, n.states()); diff != "" {
					t.Fatalf("states after %ds (-want +got):\n%s", s, diff)
				}
			}
		})
	}
}

func TestLateHigherPriorityStarterTakesOverOnlyWithPreempt(t *testing.T) {
	for _, preempt := range []bool{true, false} {
		t.Run(fmt.Sprintf("preempt %v", preempt), func(t *testing.T) {
			n := newSimNet(t, 200*time.Microsecond,
				MachineConfig{Version: 3, Priority: 100, AdvertInterval: time.Second, Preempt: preempt, LocalAddr: addrLow},
				MachineConfig{Version: 3, Priority: 200, AdvertInterval: time.Second, Preempt: preempt, LocalAddr: addrHigh},
			)
			n.schedule(t0, 0, startup())
			n.runUntil(at(10 * time.Second))
			n.schedule(at(10*time.Second), 1, startup())
			n.runUntil(at(30 * time.Second))
			want := []State{StateMaster, StateBackup}
			if preempt {
				want = []State{StateBackup, StateMaster}
			}
			if diff := cmp.Diff(want, n.states()); diff != "" {
				t.Fatalf("states (-want +got):\n%s", diff)
			}
		})
	}
}

// startedPair is two version 3 routers at 1 s adverts, 200 µs apart: node
// 0 at priority 200 (address low), node 1 at 100 (high), run for their
// first 10 s.
func startedPair(t *testing.T, preempt bool) *simNet {
	t.Helper()
	n := newSimNet(t, 200*time.Microsecond,
		MachineConfig{Version: 3, Priority: 200, AdvertInterval: time.Second, Preempt: preempt, LocalAddr: addrLow},
		MachineConfig{Version: 3, Priority: 100, AdvertInterval: time.Second, Preempt: preempt, LocalAddr: addrHigh},
	)
	n.schedule(t0, 0, startup())
	n.schedule(t0, 1, startup())
	n.runUntil(at(10 * time.Second))
	return n
}

func TestMasterShutdownHandsOverWithinSkewTime(t *testing.T) {
	n := startedPair(t, true)
	if diff := cmp.Diff([]State{StateMaster, StateBackup}, n.states()); diff != "" {
		t.Fatalf("states before shutdown (-want +got):\n%s", diff)
	}
	n.schedule(at(10*time.Second+time.Millisecond), 0, shutdown())
	// Skew_Time of priority 100 at 1 s is 609.375 ms: master just after it.
	n.runUntil(at(10*time.Second + time.Millisecond + 200*time.Microsecond + 609*time.Millisecond))
	if n.nodes[1].State() != StateBackup {
		t.Fatalf("backup took over before Skew_Time: %v", n.states())
	}
	n.runUntil(at(10*time.Second + time.Millisecond + 200*time.Microsecond + 610*time.Millisecond))
	if diff := cmp.Diff([]State{StateInit, StateMaster}, n.states()); diff != "" {
		t.Fatalf("states right after Skew_Time (-want +got):\n%s", diff)
	}
}

func TestPausedMasterSettlesWithinOneAdvertIntervalOfResuming(t *testing.T) {
	n := startedPair(t, true)
	n.down[0] = true // paused: its events are lost, like a stopped process's timers
	n.runUntil(at(20 * time.Second))
	if diff := cmp.Diff([]State{StateMaster, StateMaster}, n.states()); diff != "" {
		t.Fatalf("while paused (-want +got):\n%s", diff)
	}
	n.down[0] = false
	n.schedule(at(20*time.Second), 0, timer()) // its late Adver_Timer
	n.runUntil(at(21 * time.Second))
	if diff := cmp.Diff([]State{StateMaster, StateBackup}, n.states()); diff != "" {
		t.Fatalf("one interval after resuming (-want +got):\n%s", diff)
	}
}
