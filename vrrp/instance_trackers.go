package vrrp

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// trackerRun is one running tracker: its reports name it, so a report of a
// tracker a reload removed is told apart and dropped.
type trackerRun struct {
	cancel context.CancelFunc
}

type trackerReport struct {
	run *trackerRun
	ok  bool
}

// trackerIndex is where the tracker of r is now, or -1 if a reload removed it.
func (in *Instance) trackerIndex(r *trackerRun) int {
	return slices.Index(in.trackerRuns, r)
}

// startTracker runs tracker i until it is stopped or the instance stops.
func (in *Instance) startTracker(i int) {
	ctx, cancel := context.WithCancel(in.trackCtx)
	run := &trackerRun{cancel: cancel}
	in.trackerRuns[i] = run
	t := in.trackers[i]
	in.trackWG.Go(func() { in.runTracker(ctx, run, t, in.trackC) })
}

// trackerStartWait is how long an instance waits in Init for its trackers'
// first verdicts, beyond the longest track_script timeout.
const trackerStartWait = 2 * time.Second

// awaitTrackers holds the instance in Init until every tracker has reported
// once, so that a failing check at start never puts it in Master, not even
// for a moment (an address owner would otherwise take the VIP and give it
// back). A tracker still silent after the wait counts as passing. It returns
// false if ctx ends first.
func (in *Instance) awaitTrackers(ctx context.Context, trackC <-chan trackerReport) bool {
	if len(in.trackers) == 0 {
		return true
	}
	wait := trackerStartWait
	for _, s := range in.cfg.TrackScripts {
		wait = max(wait, trackerStartWait+s.Timeout)
	}
	timer := in.clock.NewTimer(wait)
	defer timer.Stop()
	heard := map[*trackerRun]bool{}
	silent := func() []int {
		var out []int
		for i, r := range in.trackerRuns {
			if !heard[r] {
				out = append(out, i)
			}
		}
		return out
	}
	// The event that ends the wait is reported done with the startup.
	in.eventDone()
	for {
		select {
		case <-ctx.Done():
			return false
		case r := <-trackC:
			heard[r.run] = true
			in.trackerReport(r)
			if len(silent()) == 0 {
				return true
			}
		case u := <-in.updates:
			in.reconfigure(u)
			u.reply <- nil
			if len(silent()) == 0 {
				return true
			}
		case y := <-in.yields:
			in.setYield(y)
		case <-timer.C():
			for _, i := range silent() {
				in.log.Warn("tracker has not reported yet, counting it as passing", "tracker", in.trackers[i].Tracker.Name(), "waited", wait)
			}
			return true
		}
		in.eventDone()
	}
}

// runTracker runs one tracker and forwards its verdicts. A tracker that
// stops with an error before the instance stops counts as failing.
func (in *Instance) runTracker(ctx context.Context, run *trackerRun, t WeightedTracker, out chan<- trackerReport) {
	report := func(ok bool) {
		select {
		case out <- trackerReport{run: run, ok: ok}:
		case <-ctx.Done():
		}
	}
	err := t.Tracker.Run(ctx, report)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		err = errors.New("stopped")
	}
	in.log.Error("tracker stopped, counting it as failing", "tracker", t.Tracker.Name(), "err", err)
	report(false)
}

func (in *Instance) trackerReport(r trackerReport) {
	i := in.trackerIndex(r.run)
	if i < 0 || in.trackerStates[i].OK == r.ok {
		return // removed by a reload, or no change
	}
	in.trackerStates[i].OK = r.ok
	in.log.Info("tracker changed", "tracker", in.trackers[i].Tracker.Name(), "ok", r.ok, "weight", in.trackers[i].Weight)
	in.updatePriority()
}

// replaceTrackers makes next the trackers: one equal (==) to a running
// tracker keeps running with its state and takes its new weight; the
// others start, counted passing until they report; those not in next stop.
func (in *Instance) replaceTrackers(next []WeightedTracker) {
	runs := make([]*trackerRun, len(next))
	states := make([]TrackerState, len(next))
	kept := map[int]bool{}
	for j, t := range next {
		states[j] = TrackerState{Weight: t.Weight, OK: true, Yield: t.Yield}
		for i, old := range in.trackers {
			if !kept[i] && sameTracker(old.Tracker, t.Tracker) {
				kept[i] = true
				runs[j] = in.trackerRuns[i]
				states[j].OK = in.trackerStates[i].OK
				break
			}
		}
	}
	for i, r := range in.trackerRuns {
		if !kept[i] && r != nil {
			r.cancel()
		}
	}
	in.trackers, in.trackerStates, in.trackerRuns = slices.Clone(next), states, runs
	for j, r := range runs {
		if r == nil && in.trackWG != nil {
			in.startTracker(j)
		}
	}
}

// sameTracker reports whether a and b are the one tracker.
func sameTracker(a, b Tracker) bool {
	if a == nil || b == nil || reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	return a == b
}

// updatePriority feeds the trackers' verdict and the yield causes to the machine.
func (in *Instance) updatePriority() {
	prio, fault := EffectivePriority(in.cfg.Priority, in.trackerStates)
	in.handle(Event{Kind: EventTrack, Fault: fault, Yield: in.yielding(), EffectivePriority: prio})
}

// SetYield sets (on) or clears a cause for the instance to yield: while any
// cause is set, or a weight-0 track_frontend has no healthy backend, a
// master hands the VIP over as for FAULT (one priority-0 advert, VIPs
// removed), and the instance stays in the election at PriorityLowest, so it
// holds the VIP only when no other router will, and loses it to any router
// that does not yield, even with preempt off. Its state stays backup or
// master, and notify commands hear those. A cause such as "maintenance" is
// shown in Status().Yielding. SetYield waits for the protocol loop; given
// before Run, it holds from the start. It returns an error once Run has
// returned.
func (in *Instance) SetYield(cause string, on bool) error {
	in.mu.Lock()
	if !in.started.Load() {
		if in.yieldAtStart == nil {
			in.yieldAtStart = map[string]bool{}
		}
		in.yieldAtStart[cause] = on
		in.mu.Unlock()
		return nil
	}
	in.mu.Unlock()
	y := yieldRequest{cause: cause, on: on, done: make(chan struct{})}
	select {
	case in.yields <- y:
		<-y.done
		return nil
	case <-in.exited:
		return fmt.Errorf("instance %q: not running", in.name)
	}
}

// setYield is SetYield inside the protocol loop.
func (in *Instance) setYield(y yieldRequest) {
	defer close(y.done)
	if in.yieldCauses[y.cause] == y.on {
		return
	}
	if y.on {
		in.yieldCauses[y.cause] = true
	} else {
		delete(in.yieldCauses, y.cause)
	}
	in.log.Info("yield changed", "cause", y.cause, "yield", y.on)
	in.updatePriority()
}

// yielding reports whether the instance yields, and records why for Status.
func (in *Instance) yielding() bool {
	var why []string
	for i, t := range in.trackerStates {
		if t.Weight == 0 && t.Yield && !t.OK {
			why = append(why, in.trackers[i].Tracker.Name())
		}
	}
	for c := range in.yieldCauses {
		why = append(why, c)
	}
	slices.Sort(why)
	in.mu.Lock()
	in.status.Yielding = why
	in.mu.Unlock()
	return len(why) > 0
}
