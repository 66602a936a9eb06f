package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/internal/poll"
)

// fakeResetter notes each reset among the address operations of its host,
// so that a test sees whether it came before the removal.
type fakeResetter struct{ addrs *fakeAddrs }

func (f fakeResetter) Reset(a netip.Addr) (int, error) {
	f.addrs.mu.Lock()
	defer f.addrs.mu.Unlock()
	f.addrs.ops = append(f.addrs.ops, "reset "+a.String())
	return 1, nil
}

// opsSince are the address operations of ho after the first n.
func opsSince(ho *host, n int) []string {
	ho.addrs.mu.Lock()
	defer ho.addrs.mu.Unlock()
	return slices.Clone(ho.addrs.ops[n:])
}

func opCount(ho *host) int {
	ho.addrs.mu.Lock()
	defer ho.addrs.mu.Unlock()
	return len(ho.addrs.ops)
}

// A master that gives its VIP up keeps it until the new master has
// advertised (plus handoverGrace for its gratuitous ARPs), then resets the
// connections on it, then removes it: on stop, on yield (maintenance, a
// weight-0 track_frontend) and when preempted.
func TestALeavingMasterHoldsItsVIPUntilTheNewMasterThenResetsAndRemovesIt(t *testing.T) {
	// b's Skew_Time at priority 100 and 1 s adverts: 609.375 ms.
	const skew = 609375 * time.Microsecond
	want := []string{"reset 192.0.2.100", "remove 192.0.2.100/24"}
	for _, how := range []string{"stop", "yield", "preempted"} {
		t.Run("on "+how, func(t *testing.T) {
			h := newHarness(t)
			aPrio := uint8(200)
			if how == "preempted" {
				aPrio = 50
			}
			a := h.add(instanceConfig("a", aPrio), addrLow, nil)
			a.in.resetter = fakeResetter{a.addrs}
			var b *host
			if how != "preempted" {
				b = h.add(instanceConfig("b", 100), addrMid, nil)
				h.start(a, b)
			} else {
				h.start(a) // b comes later
			}
			h.advance(5 * time.Second)
			if got := a.in.Status().State; got != "master" {
				t.Fatalf("a is %s, want master", got)
			}
			before := opCount(a)
			switch how {
			case "stop":
				stopAndWaitLeft(t, a)
			case "yield":
				a.n.pending.Add(1)
				if err := a.in.SetYield("maintenance", true); err != nil {
					t.Fatal(err)
				}
			case "preempted":
				b = h.add(instanceConfig("b", 100), addrMid, nil)
				h.start(b)
			}
			h.settle()
			if got := opsSince(a, before); len(got) != 0 {
				t.Fatalf("a touched its VIP before a new master advertised: %v", got)
			}
			// b advertises as master: at Skew_Time after a's priority-0
			// advert, or at once when it preempts a lower master.
			if how != "preempted" {
				h.advance(skew)
			}
			if got := b.in.Status().State; got != "master" && how != "preempted" {
				t.Fatalf("b is %s, want master", got)
			}
			if got := opsSince(a, before); len(got) != 0 {
				t.Fatalf("a touched its VIP before handoverGrace: %v", got)
			}
			h.advance(handoverGrace)
			if how == "preempted" {
				// b waits Master_Down_Interval before preempting.
				h.advance(4 * time.Second)
			}
			if diff := cmp.Diff(want, opsSince(a, before)); diff != "" {
				t.Errorf("a's VIP operations (-want +got):\n%s", diff)
			}
			if how == "stop" {
				waitRunReturned(t, a)
			}
		})
	}
}

// stopAndWaitLeft ends a's Run and waits until it has left (sent its
// priority-0 advert); waitRunReturned then takes Run's result.
func stopAndWaitLeft(t *testing.T, a *host) {
	t.Helper()
	a.cancel()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(a.logs.String(), "to=init") {
		if time.Now().After(deadline) {
			t.Fatal("a did not leave")
		}
		time.Sleep(time.Millisecond)
	}
}

func waitRunReturned(t *testing.T, a *host) {
	t.Helper()
	err := poll.Receive(t, a.done, 5*time.Second, "Run to return after the handover")
	a.stopped = true
	if err != nil {
		t.Errorf("Run returned %v", err)
	}
}

// Alone, a stopping master hears no new master: it resets and removes its
// VIP two advert intervals, at most maxHandoverHold, (plus handoverGrace)
// after its priority-0 advert.
func TestAStoppingMasterAloneReleasesItsVIPAfterTwoAdvertIntervals(t *testing.T) {
	for _, tc := range []struct {
		interval, hold time.Duration
	}{
		{time.Second, 2 * time.Second},
		{10 * time.Second, maxHandoverHold},
	} {
		t.Run(fmt.Sprintf("at %v adverts it holds %v", tc.interval, tc.hold), func(t *testing.T) {
			h := newHarness(t)
			cfg := instanceConfig("a", 200)
			cfg.AdvertInterval = tc.interval
			a := h.add(cfg, addrLow, nil)
			a.in.resetter = fakeResetter{a.addrs}
			h.start(a)
			h.advance(5 * tc.interval)
			before := opCount(a)
			stopAndWaitLeft(t, a)
			h.clock.Advance(tc.hold + handoverGrace - time.Millisecond)
			if got := opsSince(a, before); len(got) != 0 {
				t.Fatalf("a touched its VIP before the hold ended: %v", got)
			}
			h.clock.Advance(time.Millisecond)
			waitRunReturned(t, a)
			if diff := cmp.Diff([]string{"reset 192.0.2.100", "remove 192.0.2.100/24"}, opsSince(a, before)); diff != "" {
				t.Errorf("a's VIP operations (-want +got):\n%s", diff)
			}
		})
	}
}
