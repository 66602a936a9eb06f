package vrrp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/clock"
	"github.com/vrrplb/vrrplb/internal/runtest"
)

var vip = netip.MustParsePrefix("192.0.2.100/24")

func TestInstancesFailOverWhenTheMasterDisappears(t *testing.T) {
	h := newHarness(t)
	a := h.add(instanceConfig("a", 150), addrLow, nil)
	b := h.add(instanceConfig("b", 100), addrMid, nil)
	c := h.add(instanceConfig("c", 50), addrHigh, nil)
	h.start(a, b, c)
	h.advance(5 * time.Second)
	if diff := cmp.Diff([]string{"master", "backup", "backup"}, h.states()); diff != "" {
		t.Fatalf("states after start (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]netip.Prefix{{vip}, nil, nil}, [][]netip.Prefix{a.addrs.list(), b.addrs.list(), c.addrs.list()}, cmpopts.EquateComparable(netip.Prefix{}), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("VIPs after start (-want +got):\n%s", diff)
	}
	if got := b.in.Status().MasterIP; got != addrLow {
		t.Errorf("backup's MasterIP = %v, want %v", got, addrLow)
	}

	// a dies without a word: its last advert left at 5s or just before.
	a.transport.unplug()
	lastAdvert := a.transport.sentAdverts(t)
	last := lastAdvert[len(lastAdvert)-1].at
	takeover := last.Add(mdi(100))
	h.advance(takeover.Sub(h.clock.Now()) - time.Millisecond)
	if got := b.in.Status().State; got != "backup" {
		t.Fatalf("b became %s before Master_Down_Interval", got)
	}
	h.advance(2 * time.Millisecond)
	// a, cut off, still believes it is master; b and c see b as master.
	if diff := cmp.Diff([]string{"master", "backup"}, h.states()[1:]); diff != "" {
		t.Fatalf("states of b and c after failover (-want +got):\n%s", diff)
	}
	if got := c.in.Status().MasterIP; got != addrMid {
		t.Errorf("c's MasterIP = %v, want b's %v", got, addrMid)
	}
	if diff := cmp.Diff([]netip.Prefix{vip}, b.addrs.list(), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Fatalf("b's VIPs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b backup", "b master"}, b.notifier.got()); diff != "" {
		t.Errorf("b's notifications (-want +got):\n%s", diff)
	}
	if !strings.Contains(b.logs.String(), "reason=master_down") {
		t.Errorf("no transition log line with the reason:\n%s", b.logs.String())
	}
}

func TestGracefulShutdownHandsOverWithinSkewTime(t *testing.T) {
	h, a, b := electedPair(t)
	if diff := cmp.Diff([]string{"master", "backup"}, h.states()); diff != "" {
		t.Fatalf("states after start (-want +got):\n%s", diff)
	}
	h.advance(300 * time.Millisecond)
	if err := h.stop(a); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	h.settle()
	sent := a.transport.sentAdverts(t)
	if got := sent[len(sent)-1].priority; got != 0 {
		t.Fatalf("last advert of the stopped master has priority %d, want 0", got)
	}
	if got := a.addrs.list(); len(got) != 0 {
		t.Fatalf("stopped master still holds %v", got)
	}
	// Skew_Time of priority 100 at 1s adverts: 609.375ms.
	h.advance(609 * time.Millisecond)
	if got := b.in.Status().State; got != "backup" {
		t.Fatalf("b became %s before Skew_Time", got)
	}
	h.advance(time.Millisecond)
	if got := b.in.Status().State; got != "master" {
		t.Fatalf("b is %s one Skew_Time after the master left, want master", got)
	}
}

func TestMasterAnnouncesABurstThenRefreshes(t *testing.T) {
	h := newHarness(t)
	cfg := instanceConfig("a", 255)
	cfg.GARPRefresh = 10 * time.Second
	a := h.add(cfg, addrLow, nil)
	h.start(a)
	h.advance(25 * time.Second)
	want := []time.Time{at(0), at(100 * time.Millisecond), at(200 * time.Millisecond), at(10200 * time.Millisecond), at(20200 * time.Millisecond)}
	if diff := cmp.Diff(want, a.announcer.times()); diff != "" {
		t.Fatalf("announcements (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(h.metrics.garpSent.WithLabelValues("a")); got != 5 {
		t.Errorf("%s = %v, want 5", MetricGARPSent, got)
	}
}

func TestMasterHearingALowerPriorityAdvertisesAndAnnouncesAtOnce(t *testing.T) {
	h := newHarness(t)
	a := h.add(instanceConfig("a", 255), addrLow, nil)
	h.start(a)
	h.advance(2500 * time.Millisecond)
	before := len(a.transport.sentAdverts(t))
	inject(h, a, advertFrom(t, Advertisement{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip.Addr()}}, addrMid, GroupIPv4))
	sent := a.transport.sentAdverts(t)
	if len(sent) != before+1 || !sent[len(sent)-1].at.Equal(at(2500*time.Millisecond)) {
		t.Fatalf("no advert sent at once: %d before, sent %+v", before, sent)
	}
	if got := a.announcer.times(); !got[len(got)-1].Equal(at(2500 * time.Millisecond)) {
		t.Fatalf("no announcement at once: %v", got)
	}
}

func TestStaleVIPsAreRemovedAtStartAndOtherAddressesKept(t *testing.T) {
	h := newHarness(t)
	other := netip.MustParsePrefix("192.0.2.7/24")
	a := h.add(instanceConfig("a", 100), addrLow, nil, other, vip)
	h.start(a)
	if diff := cmp.Diff([]netip.Prefix{other}, a.addrs.list(), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Fatalf("addresses after start (-want +got):\n%s", diff)
	}
	if !strings.Contains(a.logs.String(), "left on the interface") {
		t.Errorf("no log line for the removed VIP:\n%s", a.logs.String())
	}
	if got := a.in.Status().State; got != "backup" {
		t.Errorf("state = %s, want backup", got)
	}
}

func TestAWeightZeroTrackerFailureMovesTheMasterToFault(t *testing.T) {
	h := newHarness(t)
	a := h.add(instanceConfig("a", 200), addrLow, []int{0, -50})
	b := h.add(instanceConfig("b", 100), addrMid, nil)
	h.start(a, b)
	h.advance(5 * time.Second)
	if diff := cmp.Diff([]string{"master", "backup"}, h.states()); diff != "" {
		t.Fatalf("states after start (-want +got):\n%s", diff)
	}

	a.trackers[1].set(t, false) // -50: 150 still beats 100
	h.settle()
	if got := a.in.Status(); got.State != "master" || got.EffectivePriority != 150 {
		t.Fatalf("after the weighted tracker failed: %s at %d, want master at 150", got.State, got.EffectivePriority)
	}
	if got := testutil.ToFloat64(h.metrics.priority.WithLabelValues("a")); got != 150 {
		t.Errorf("%s = %v, want the effective 150", MetricInstancePriority, got)
	}

	a.trackers[0].set(t, false)
	h.settle()
	sent := a.transport.sentAdverts(t)
	if got := sent[len(sent)-1]; got.priority != 0 || !got.at.Equal(h.clock.Now()) {
		t.Fatalf("last advert %+v, want priority 0 now", got)
	}
	if got := a.addrs.list(); len(got) != 0 {
		t.Fatalf("faulted master still holds %v", got)
	}
	h.advance(610 * time.Millisecond)
	if diff := cmp.Diff([]string{"fault", "master"}, h.states()); diff != "" {
		t.Fatalf("states after the fault (-want +got):\n%s", diff)
	}
	h.advance(10 * time.Second)
	if n := len(a.transport.sentAdverts(t)); n != len(sent) {
		t.Fatalf("an instance in fault sent %d adverts", n-len(sent))
	}
	if diff := cmp.Diff([]string{"a backup", "a master", "a fault"}, a.notifier.got()); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}
}

// pkt is a message with the IP facts it arrives with.
type pkt struct {
	msg  []byte
	info PacketInfo
}

func TestNewInstanceRejectsWhatTheEngineCannotRun(t *testing.T) {
	opts := func() InstanceOptions {
		return InstanceOptions{Transport: (&segment{}).join(&node{}, clock.System, addrLow), Addrs: &fakeAddrs{}}
	}
	tests := []struct {
		name string
		edit func(c *config.Instance, o *InstanceOptions)
	}{
		{"no transport", func(c *config.Instance, o *InstanceOptions) { o.Transport = nil }},
		{"version 4", func(c *config.Instance, o *InstanceOptions) { c.Version = 4 }},
		{"a v2 interval of 1.5s", func(c *config.Instance, o *InstanceOptions) {
			c.Version = 2
			c.AdvertInterval = 1500 * time.Millisecond
		}},
		{"an IPv6 VIP on an IPv4 source", func(c *config.Instance, o *InstanceOptions) {
			c.VirtualIPs = []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}
		}},
		{"no VIPs", func(c *config.Instance, o *InstanceOptions) { c.VirtualIPs = nil }},
		{"a 9-byte auth_pass", func(c *config.Instance, o *InstanceOptions) { c.Version = 2; c.AuthPass = "123456789" }},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is rejected", func(t *testing.T) {
			cfg, o := instanceConfig("a", 100), opts()
			tt.edit(&cfg, &o)
			if _, err := NewInstance(cfg, o); err == nil {
				t.Fatal("NewInstance succeeded")
			}
		})
	}
}

func TestReload(t *testing.T) {
	vip2 := netip.MustParsePrefix("192.0.2.101/24")
	t.Run("a master given a lower priority that still wins stays master, keeps its VIP and announces a new one", func(t *testing.T) {
		h, a, b := electedPair(t)
		cfg := instanceConfig("a", 150)
		cfg.VirtualIPs = []netip.Prefix{vip, vip2}
		before := len(a.announcer.times())
		if err := h.update(a, cfg); err != nil {
			t.Fatal(err)
		}
		sent := a.transport.sentAdverts(t)
		if got := sent[len(sent)-1]; got.priority != 150 || !got.at.Equal(h.clock.Now()) {
			t.Fatalf("last advert %+v, want priority 150 at once", got)
		}
		h.advance(10 * time.Second)
		if diff := cmp.Diff([]string{"master", "backup"}, h.states()); diff != "" {
			t.Fatalf("states (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]netip.Prefix{vip, vip2}, a.addrs.list(), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
			t.Fatalf("VIPs (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"add " + vip.String(), "add " + vip2.String()}, a.addrs.ops[len(a.addrs.ops)-2:]); diff != "" {
			t.Fatalf("last address operations (-want +got):\n%s", diff)
		}
		if got := len(a.announcer.times()) - before; got != 3 {
			t.Errorf("%d announcements after the reload, want a burst of 3", got)
		}
		if got := a.in.Status(); got.Priority != 150 || got.EffectivePriority != 150 || len(got.VirtualIPs) != 2 {
			t.Errorf("status after reload: %+v", got)
		}
		if got := b.notifier.got(); len(got) != 1 {
			t.Errorf("backup changed state during the reload: %v", got)
		}
	})
	t.Run("a master given a priority that loses hands over to the preempting backup", func(t *testing.T) {
		h, a, _ := electedPair(t)
		if err := h.update(a, instanceConfig("a", 50)); err != nil {
			t.Fatal(err)
		}
		h.advance(5 * time.Second)
		if diff := cmp.Diff([]string{"backup", "master"}, h.states()); diff != "" {
			t.Fatalf("states (-want +got):\n%s", diff)
		}
		if got := a.addrs.list(); len(got) != 0 {
			t.Fatalf("old master still holds %v", got)
		}
	})
	t.Run("a change of virtual router ID is refused", func(t *testing.T) {
		h := newHarness(t)
		a := h.add(instanceConfig("a", 200), addrLow, nil)
		h.start(a)
		cfg := instanceConfig("a", 200)
		cfg.VirtualRouterID = 52
		if err := a.in.Update(cfg); err == nil {
			t.Fatal("Update succeeded")
		}
	})
	t.Run("an instance not running refuses updates", func(t *testing.T) {
		h := newHarness(t)
		a := h.add(instanceConfig("a", 200), addrLow, nil)
		if err := a.in.Update(instanceConfig("a", 100)); err == nil {
			t.Fatal("Update succeeded before Run")
		}
		h.start(a)
		if err := h.stop(a); err != nil {
			t.Fatal(err)
		}
		if err := a.in.Update(instanceConfig("a", 100)); err == nil {
			t.Fatal("Update succeeded after Run returned")
		}
	})
}

// BenchmarkAdvertTimingAt10ms runs a master at 10 ms adverts on the real
// clock and reports how far the gaps between adverts stray from 10 ms.
// One iteration is one advert interval.
func BenchmarkAdvertTimingAt10ms(b *testing.B) {
	in, tr := fastOwner(b, 1024)
	defer runtest.Start(b, in.Run)()

	prev := <-tr.sends
	gaps := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		next := <-tr.sends
		gaps = append(gaps, next.Sub(prev))
		prev = next
	}
	b.StopTimer()
	dev := make([]time.Duration, len(gaps))
	for i, g := range gaps {
		dev[i] = (g - fastInterval).Abs()
	}
	slices.Sort(dev)
	b.ReportMetric(float64(dev[len(dev)/2].Microseconds()), "p50-jitter-us")
	b.ReportMetric(float64(dev[len(dev)*99/100].Microseconds()), "p99-jitter-us")
	b.ReportMetric(float64(dev[len(dev)-1].Microseconds()), "max-jitter-us")
}

func TestAnInstanceWaitsForItsTrackersFirstVerdictBeforeStarting(t *testing.T) {
	t.Run("an address owner whose weight-0 check fails at start never becomes master", func(t *testing.T) {
		h := newHarness(t)
		a := h.add(instanceConfig("a", 255), addrLow, []int{0})
		a.trackers[0].silent = true
		h.start(a)
		h.advance(500 * time.Millisecond)
		if got := a.in.Status().State; got != "init" {
			t.Fatalf("state before the tracker reported = %s, want init", got)
		}
		a.trackers[0].set(t, false)
		h.settle()
		h.advance(5 * time.Second)
		if got := a.in.Status().State; got != "fault" {
			t.Fatalf("state = %s, want fault", got)
		}
		if got := a.transport.sentAdverts(t); len(got) != 0 {
			t.Fatalf("sent %d adverts, want none", len(got))
		}
		for _, op := range a.addrs.ops {
			if strings.HasPrefix(op, "add") {
				t.Fatalf("VIP added although the check failed from the start: %v", a.addrs.ops)
			}
		}
	})
	t.Run("a tracker silent past the wait counts as passing", func(t *testing.T) {
		h := newHarness(t)
		a := h.add(instanceConfig("a", 255), addrLow, []int{0})
		a.trackers[0].silent = true
		h.start(a)
		h.advance(trackerStartWait - time.Millisecond)
		if got := a.in.Status().State; got != "init" {
			t.Fatalf("state before the wait ended = %s, want init", got)
		}
		h.advance(time.Millisecond)
		if got := a.in.Status().State; got != "master" {
			t.Fatalf("state after the wait = %s, want master", got)
		}
		if !strings.Contains(a.logs.String(), "has not reported yet") {
			t.Errorf("no warning about the silent tracker:\n%s", a.logs.String())
		}
	})
}

// A reload that changes only a tracker's weight, adds or removes a tracker,
// or changes the notifier is applied to the running instance: the master
// stays master without a transition, a kept tracker is not started again
// (fakeTracker.Run would close its ready channel twice), a new one runs and
// a removed one stops.
func TestUpdateWithChangesTrackersAndNotifierInPlace(t *testing.T) {
	h := newHarness(t)
	a := h.add(instanceConfig("a", 200), addrLow, []int{-10})
	b := h.add(instanceConfig("b", 150), addrMid, nil)
	h.start(a, b)
	h.advance(5 * time.Second)
	if diff := cmp.Diff([]string{"master", "backup"}, h.states()); diff != "" {
		t.Fatalf("states after start (-want +got):\n%s", diff)
	}
	kept := a.trackers[0]
	added := newFakeTracker("added", a.n)
	cfg := instanceConfig("a", 200)
	cfg.TrackInterfaces = []config.TrackInterface{{Name: "eth1", Weight: -20}}
	notifier := &fakeNotifier{}

	a.n.pending.Add(2) // the update and the new tracker's first report
	if err := a.in.UpdateWith(cfg, []WeightedTracker{{Tracker: kept, Weight: -20}, {Tracker: added, Weight: -5}}, notifier); err != nil {
		t.Fatal(err)
	}
	h.settle()
	kept.set(t, false) // -20: 180 still beats 150
	h.settle()
	if got := a.in.Status(); got.State != "master" || got.EffectivePriority != 180 {
		t.Fatalf("after the reweighted tracker failed: %s at %d, want master at 180", got.State, got.EffectivePriority)
	}
	added.set(t, false) // -5 more: 175
	h.settle()
	if got := a.in.Status().EffectivePriority; got != 175 {
		t.Fatalf("after the added tracker failed: priority %d, want 175", got)
	}

	// Dropping the kept tracker stops it and forgets its weight.
	a.n.pending.Add(1)
	if err := a.in.UpdateWith(cfg, []WeightedTracker{{Tracker: added, Weight: -5}}, notifier); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if got := a.in.Status().EffectivePriority; got != 195 {
		t.Fatalf("after the failing tracker was removed: priority %d, want 195", got)
	}
	h.advance(5 * time.Second)
	if diff := cmp.Diff([]string{"master", "backup"}, h.states()); diff != "" {
		t.Fatalf("states after the reloads (-want +got):\n%s", diff)
	}
	if got := a.notifier.got(); len(got) != 2 {
		t.Errorf("the old notifier heard %v after start, want only its two transitions", got)
	}
	if got := notifier.got(); len(got) != 0 {
		t.Errorf("the new notifier heard %v without a transition", got)
	}
	// Update without the trackers refuses a tracker change.
	cfg.TrackInterfaces = nil
	if err := a.in.Update(cfg); err == nil {
		t.Error("Update applied a tracker change it cannot carry")
	}
}
