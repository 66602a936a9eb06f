package vrrp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// yieldEv is a tracker verdict that makes the instance yield (a weight-0
// track_frontend without a healthy backend, or maintenance) or stop.
func yieldEv(yield bool, prio uint8) Event {
	return Event{Kind: EventTrack, Yield: yield, EffectivePriority: prio}
}

// masters lists the nodes that are master.
func (n *simNet) masters() []int {
	var out []int
	for i, m := range n.nodes {
		if m.State() == StateMaster {
			out = append(out, i)
		}
	}
	return out
}

// watch runs the network from now to end in steps of 10 ms and returns the
// sequence of distinct master sets seen ("-" when none), so a test can count
// how often the VIP moved.
func (n *simNet) watch(from, end time.Time) []string {
	var seen []string
	for now := from; !now.After(end); now = now.Add(10 * time.Millisecond) {
		n.runUntil(now)
		s := fmt.Sprint(n.masters())
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
	}
	return seen
}

// twoHosts is A (priority 200, address low) and B (100, high), both up and
// A master after 10 s.
func twoHosts(t *testing.T, preempt bool) *simNet {
	t.Helper()
	n := startedPair(t, preempt)
	if diff := cmp.Diff([]State{StateMaster, StateBackup}, n.states()); diff != "" {
		t.Fatalf("states before the test (-want +got):\n%s", diff)
	}
	return n
}

func bothPreempts(t *testing.T, f func(t *testing.T, preempt bool)) {
	for _, preempt := range []bool{true, false} {
		t.Run(fmt.Sprintf("preempt %v", preempt), func(t *testing.T) { f(t, preempt) })
	}
}

func TestAYieldingMasterHandsOverWithinSkewTimeAndStaysInTheElection(t *testing.T) {
	bothPreempts(t, func(t *testing.T, preempt bool) {
		n := twoHosts(t, preempt)
		start := at(10*time.Second + time.Millisecond)
		n.schedule(start, 0, yieldEv(true, 200))
		// Skew_Time of priority 100 at 1 s is 609.375 ms.
		n.runUntil(start.Add(200*time.Microsecond + 610*time.Millisecond))
		if diff := cmp.Diff([]State{StateBackup, StateMaster}, n.states()); diff != "" {
			t.Fatalf("states right after B's Skew_Time (-want +got):\n%s", diff)
		}
		if got := n.nodes[0].Priority(); got != PriorityLowest {
			t.Errorf("the yielding instance has priority %d, want %d", got, PriorityLowest)
		}
		// It stays backup while B holds the VIP.
		n.runUntil(at(40 * time.Second))
		if diff := cmp.Diff([]State{StateBackup, StateMaster}, n.states()); diff != "" {
			t.Fatalf("states 30 s later (-want +got):\n%s", diff)
		}
	})
}

func TestWhenEveryHostYieldsExactlyOneHoldsTheVIP(t *testing.T) {
	bothPreempts(t, func(t *testing.T, preempt bool) {
		n := twoHosts(t, preempt)
		// B first, then the master: the VIP moves to B, then B hands it on.
		n.schedule(at(10*time.Second), 1, yieldEv(true, 100))
		n.schedule(at(10*time.Second+300*time.Millisecond), 0, yieldEv(true, 200))
		n.runUntil(at(10*time.Second + 300*time.Millisecond + mdi(PriorityLowest)))
		if got := n.masters(); len(got) != 1 {
			t.Fatalf("one Master_Down_Interval after every host yields, masters are %v, want exactly one", got)
		}
		seen := n.watch(at(15*time.Second), at(60*time.Second))
		if len(seen) != 1 {
			t.Errorf("the master changed while every host yields: %v", seen)
		}
	})
}

func TestALoneYieldingHostTakesTheVIPBackWithinAMasterDownInterval(t *testing.T) {
	n := newSimNet(t, 200*time.Microsecond, MachineConfig{Version: 3, Priority: 100, AdvertInterval: time.Second, Preempt: true, LocalAddr: addrLow})
	n.schedule(t0, 0, startup())
	n.runUntil(at(10 * time.Second))
	n.schedule(at(10*time.Second), 0, yieldEv(true, 100))
	n.runUntil(at(10*time.Second + mdi(PriorityLowest)))
	if diff := cmp.Diff([]State{StateMaster}, n.states()); diff != "" {
		t.Fatalf("states one Master_Down_Interval later (-want +got):\n%s", diff)
	}
}

func TestAHostThatStopsYieldingTakesTheVIPFromAYieldingMaster(t *testing.T) {
	for _, who := range []int{0, 1} {
		bothPreempts(t, func(t *testing.T, preempt bool) {
			n := twoHosts(t, preempt)
			n.schedule(at(10*time.Second), 0, yieldEv(true, 200))
			n.schedule(at(10*time.Second+300*time.Millisecond), 1, yieldEv(true, 100))
			n.runUntil(at(20 * time.Second))
			holder := n.masters()
			if len(holder) != 1 {
				t.Fatalf("masters while both yield: %v", holder)
			}
			healthy := 1 - holder[0] // the backup becomes healthy
			if who == 1 {
				healthy = holder[0] // the master itself becomes healthy
			}
			prio := []uint8{200, 100}[healthy]
			n.schedule(at(20*time.Second), healthy, yieldEv(false, prio))
			n.runUntil(at(20*time.Second + mdi(int(prio)) + time.Second))
			if got := n.masters(); !cmp.Equal(got, []int{healthy}) {
				t.Fatalf("masters after host %d stopped yielding: %v, want [%d]", healthy, got, healthy)
			}
			if got := n.nodes[healthy].Priority(); got != prio {
				t.Errorf("priority %d after it stopped yielding, want %d", got, prio)
			}
		})
	}
}

func TestAYieldingAddressOwnerStartsAsBackupAtTheLowestPriority(t *testing.T) {
	m := NewMachine(v3(PriorityOwner))
	m.Handle(t0, yieldEv(true, PriorityOwner), nil)
	got := m.Handle(t0, startup(), nil)
	want := []Action{removeOld, setTimer(mdi(PriorityLowest)), moved(StateInit, StateBackup, WhyStartup)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("actions (-want +got):\n%s", diff)
	}
	if m.Priority() != PriorityLowest {
		t.Errorf("priority %d, want %d", m.Priority(), PriorityLowest)
	}
	// It stops yielding: the owner preempts again.
	m.Handle(at(time.Second), advert(addrHigh, 100, time.Second), nil)
	m.Handle(at(2*time.Second), yieldEv(false, PriorityOwner), nil)
	got = m.Handle(at(3*time.Second), advert(addrHigh, 100, time.Second), nil)
	if len(got) != 0 {
		t.Errorf("the owner accepted a lower master's advert: %v", got)
	}
}

func TestTheYieldHandoverIsOnePriorityZeroAdvertAndTheVIPsRemoved(t *testing.T) {
	m := NewMachine(v3(100))
	m.Handle(t0, startup(), nil)
	m.Handle(at(mdi(100)), timer(), nil)
	now := mdi(100) + 500*time.Millisecond
	got := m.Handle(at(now), yieldEv(true, 100), nil)
	want := []Action{send(PriorityLeaving), removeVIPs, setTimer(now + mdi(PriorityLowest)), moved(StateMaster, StateBackup, WhyYield)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("actions (-want +got):\n%s", diff)
	}
	// Weight-0 scripts and interfaces keep FAULT.
	got = m.Handle(at(now+time.Second), Event{Kind: EventTrack, Fault: true, Yield: true, EffectivePriority: 100}, nil)
	if diff := cmp.Diff([]Action{stopTimer, moved(StateBackup, StateFault, WhyFault)}, got); diff != "" {
		t.Fatalf("a fault while yielding (-want +got):\n%s", diff)
	}
}

// A (200) and B (100) fail together and recover apart, the lower first: the
// VIP moves at most once, not to B and then back to A.
func TestRecoveryThatEveryHostSharesSettlesOnOneMove(t *testing.T) {
	down := func(fault bool, prio uint8) Event {
		return Event{Kind: EventTrack, Fault: fault, Yield: !fault, EffectivePriority: prio}
	}
	up := func(prio uint8) Event { return Event{Kind: EventTrack, EffectivePriority: prio} }
	for _, fault := range []bool{false, true} {
		name := "no healthy backend"
		if fault {
			name = "fault"
		}
		// B fails before it takes the VIP over from A, or after. In FAULT,
		// only the second leaves a sign that A can read (B's priority-0
		// advert): a backup goes to FAULT in silence.
		gaps := []time.Duration{200 * time.Millisecond, time.Second}
		if fault {
			gaps = gaps[1:]
		}
		for _, gap := range gaps {
			for _, lag := range []time.Duration{300 * time.Millisecond, 950 * time.Millisecond, 2 * time.Second, 4 * time.Second, 5 * time.Second} {
				t.Run(fmt.Sprintf("%s, B fails %v after A, A recovers %v after B", name, gap, lag), func(t *testing.T) {
					n := twoHosts(t, true)
					n.schedule(at(10*time.Second), 0, down(fault, 200))
					n.schedule(at(10*time.Second+gap), 1, down(fault, 100))
					n.runUntil(at(20 * time.Second))
					n.schedule(at(20*time.Second), 1, up(100))
					n.schedule(at(20*time.Second+lag), 0, up(200))
					seen := n.watch(at(20*time.Second), at(60*time.Second))
					// One move at most, and then one holder.
					if len(seen) > 2 {
						t.Errorf("recovery moved the VIP more than once: %v", seen)
					}
					if got := n.masters(); len(got) != 1 {
						t.Errorf("masters after recovery: %v", got)
					}
				})
			}
		}
	}
}

func TestAHostBackFromAFailureOfItsOwnStillPreemptsTheOneThatTookOver(t *testing.T) {
	for _, fault := range []bool{false, true} {
		t.Run(fmt.Sprintf("fault %v", fault), func(t *testing.T) {
			n := twoHosts(t, true)
			n.schedule(at(10*time.Second), 0, Event{Kind: EventTrack, Fault: fault, Yield: !fault, EffectivePriority: 200})
			n.runUntil(at(11 * time.Second))
			if diff := cmp.Diff([]int{1}, n.masters()); diff != "" {
				t.Fatalf("masters after A's failure (-want +got):\n%s", diff)
			}
			n.schedule(at(11*time.Second), 0, Event{Kind: EventTrack, EffectivePriority: 200})
			n.runUntil(at(11*time.Second + 2*mdi(200)))
			if diff := cmp.Diff([]int{0}, n.masters()); diff != "" {
				t.Fatalf("masters after A is back (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAFrontendWithoutHealthyBackendHandsTheVIPOverButNeverFaults(t *testing.T) {
	h := newHarness(t)
	a := h.addTracked(instanceConfig("a", 200), addrLow, []trackerSpec{{weight: 0, yield: true}})
	b := h.addTracked(instanceConfig("b", 100), addrMid, []trackerSpec{{weight: 0, yield: true}})
	h.start(a, b)
	h.advance(5 * time.Second)
	if diff := cmp.Diff([]string{"master", "backup"}, h.states()); diff != "" {
		t.Fatalf("states after start (-want +got):\n%s", diff)
	}

	a.trackers[0].set(t, false)
	h.settle()
	sent := a.transport.sentAdverts(t)
	if got := sent[len(sent)-1]; got.priority != PriorityLeaving || !got.at.Equal(h.clock.Now()) {
		t.Fatalf("last advert %+v, want priority 0 now", got)
	}
	if got := a.addrs.list(); len(got) != 0 {
		t.Fatalf("the yielding master still holds %v", got)
	}
	h.advance(610 * time.Millisecond)
	if diff := cmp.Diff([]string{"backup", "master"}, h.states()); diff != "" {
		t.Fatalf("states after A's frontend lost its backends (-want +got):\n%s", diff)
	}
	st := a.in.Status()
	if st.EffectivePriority != PriorityLowest || !cmp.Equal(st.Yielding, []string{"check0"}) {
		t.Errorf("status %+v, want priority %d yielding for check0", st, PriorityLowest)
	}

	// B loses its backends too: one of them still holds the VIP.
	b.trackers[0].set(t, false)
	h.advance(5 * time.Second)
	if got := h.states(); !cmp.Equal(got, []string{"master", "backup"}) && !cmp.Equal(got, []string{"backup", "master"}) {
		t.Fatalf("states with no healthy backend anywhere: %v, want one master", got)
	}
	for _, ho := range []*host{a, b} {
		if strings.Contains(strings.Join(ho.notifier.got(), ","), "fault") {
			t.Errorf("%s was told of fault: %v", ho.name, ho.notifier.got())
		}
	}
}

func TestSetYieldHandsOverAndClearingItTakesTheVIPBack(t *testing.T) {
	h, a, _ := electedPair(t)

	setYield := func(on bool) {
		t.Helper()
		a.n.pending.Add(1)
		if err := a.in.SetYield("maintenance", on); err != nil {
			t.Fatal(err)
		}
		h.settle()
	}
	setYield(true)
	h.advance(610 * time.Millisecond)
	if diff := cmp.Diff([]string{"backup", "master"}, h.states()); diff != "" {
		t.Fatalf("states in maintenance (-want +got):\n%s", diff)
	}
	if got := a.in.Status().Yielding; !cmp.Equal(got, []string{"maintenance"}) {
		t.Errorf("Yielding = %v, want [maintenance]", got)
	}
	setYield(false)
	h.advance(5 * time.Second)
	if diff := cmp.Diff([]string{"master", "backup"}, h.states()); diff != "" {
		t.Fatalf("states after maintenance (-want +got):\n%s", diff)
	}
	if got := a.in.Status().Yielding; len(got) != 0 {
		t.Errorf("Yielding = %v after it was cleared", got)
	}
}

// A yield cause set before Run (an instance a reload replaces while the
// host is in maintenance) holds from the start: the instance never takes
// the VIP at its own priority.
func TestSetYieldBeforeRunStartsTheInstanceYielding(t *testing.T) {
	h := newHarness(t)
	a := h.add(instanceConfig("a", 200), addrLow, nil)
	b := h.add(instanceConfig("b", 100), addrMid, nil)
	if err := a.in.SetYield("maintenance", true); err != nil {
		t.Fatalf("SetYield before Run: %v", err)
	}
	h.start(a, b)
	h.advance(5 * time.Second)
	if diff := cmp.Diff([]string{"backup", "master"}, h.states()); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	if got := strings.Join(a.notifier.got(), ","); strings.Contains(got, "master") {
		t.Errorf("a, in maintenance from the start, was master: %v", got)
	}
	if st := a.in.Status(); !cmp.Equal(st.Yielding, []string{"maintenance"}) || st.EffectivePriority != PriorityLowest {
		t.Errorf("a's status %+v, want yielding for maintenance at priority %d", st, PriorityLowest)
	}
}
