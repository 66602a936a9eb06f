package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/clock"
	"github.com/vrrplb/vrrplb/internal/clock/clocktest"
	"github.com/vrrplb/vrrplb/internal/metricstest"
	"github.com/vrrplb/vrrplb/internal/poll"
	"github.com/vrrplb/vrrplb/internal/runtest"
	"github.com/vrrplb/vrrplb/internal/syncbuf"
)

// harness runs instances on one segment with one fake clock.
type harness struct {
	t       *testing.T
	clock   *clocktest.Clock
	seg     *segment
	reg     *prometheus.Registry
	metrics *Metrics
	hosts   []*host
}

// host is one running instance and its fakes.
type host struct {
	name      string
	in        *Instance
	n         *node
	transport *fakeTransport
	addrs     *fakeAddrs
	announcer *fakeAnnouncer
	notifier  *fakeNotifier
	trackers  []*fakeTracker
	logs      *syncBuffer
	cancel    context.CancelFunc
	done      chan error
	stopped   bool
}

// syncBuffer is a log sink that tests read while the code under test writes.
type syncBuffer = syncbuf.Buffer

func newHarness(t *testing.T) *harness {
	m, reg := metricstest.New(t, NewMetrics)
	return &harness{t: t, clock: clocktest.New(t0), seg: &segment{}, reg: reg, metrics: m}
}

func instanceConfig(name string, prio uint8) config.Instance {
	return config.Instance{
		Name:            name,
		Interface:       "eth0",
		VirtualRouterID: 51,
		Priority:        prio,
		Version:         3,
		AdvertInterval:  time.Second,
		Preempt:         true,
		VirtualIPs:      []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")},
		Family:          config.IPv4,
		GARPRepeat:      3,
		GARPInterval:    100 * time.Millisecond,
	}
}

// add builds a host on the segment; trackers are weights of fake trackers.
// preset are addresses already on its interface.
func (h *harness) add(cfg config.Instance, local netip.Addr, trackerWeights []int, preset ...netip.Prefix) *host {
	h.t.Helper()
	var specs []trackerSpec
	for _, w := range trackerWeights {
		specs = append(specs, trackerSpec{weight: w})
	}
	return h.addTracked(cfg, local, specs, preset...)
}

// trackerSpec is a fake tracker's weight and whether it yields.
type trackerSpec struct {
	weight int
	yield  bool
}

// addTracked is add with trackers that may yield.
func (h *harness) addTracked(cfg config.Instance, local netip.Addr, specs []trackerSpec, preset ...netip.Prefix) *host {
	h.t.Helper()
	n := &node{}
	clk := h.clock.Counting(&n.pending)
	ho := &host{
		name:      cfg.Name,
		n:         n,
		transport: h.seg.join(n, clk, local),
		addrs:     &fakeAddrs{addrs: preset},
		announcer: &fakeAnnouncer{clock: clk},
		notifier:  &fakeNotifier{},
		logs:      &syncBuffer{},
	}
	var wts []WeightedTracker
	for i, sp := range specs {
		ft := newFakeTracker(fmt.Sprintf("check%d", i), n)
		ho.trackers = append(ho.trackers, ft)
		wts = append(wts, WeightedTracker{Tracker: ft, Weight: sp.weight, Yield: sp.yield})
	}
	in, err := NewInstance(cfg, InstanceOptions{
		Logger:    slog.New(slog.NewTextHandler(ho.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:   h.metrics,
		Transport: ho.transport,
		Addrs:     ho.addrs,
		Announcer: ho.announcer,
		Trackers:  wts,
		Notifier:  ho.notifier,
		Clock:     clk,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	in.onEvent = func() { n.pending.Add(-1) }
	ho.in = in
	h.hosts = append(h.hosts, ho)
	return ho
}

// start runs every host not yet started, at the current fake time.
func (h *harness) start(hosts ...*host) {
	for _, ho := range hosts {
		ctx, cancel := context.WithCancel(context.Background())
		ho.cancel = cancel
		ho.done = make(chan error, 1)
		ho.n.pending.Add(1) // the startup event
		for _, ft := range ho.trackers {
			if !ft.silent {
				ho.n.pending.Add(1) // its first report
			}
		}
		go func() { ho.done <- ho.in.Run(ctx) }()
		h.t.Cleanup(func() { h.stop(ho) })
	}
	h.settle()
}

// electedPair runs a (priority 200) and b (100) for five seconds: a is
// master, b backup.
func electedPair(t *testing.T) (h *harness, a, b *host) {
	h = newHarness(t)
	a = h.add(instanceConfig("a", 200), addrLow, nil)
	b = h.add(instanceConfig("b", 100), addrMid, nil)
	h.start(a, b)
	h.advance(5 * time.Second)
	return h, a, b
}

// stop ends a host's Run and returns its result.
func (h *harness) stop(ho *host) error {
	if ho.stopped {
		return nil
	}
	ho.stopped = true
	ho.cancel()
	return poll.Receive(h.t, ho.done, 10*time.Second, ho.name+": Run to return after its context ended")
}

// settle waits until every running instance has handled all it was given.
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		idle := true
		for _, ho := range h.hosts {
			if !ho.stopped && ho.n.pending.Load() != 0 {
				idle = false
			}
		}
		if idle {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatal("instances did not settle")
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// advance moves fake time by d, firing the timers in order and letting the
// instances react to each before the next.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	end := h.clock.Now().Add(d)
	for range 100000 {
		h.settle()
		next, ok := h.clock.Next()
		if !ok || next.After(end) {
			break
		}
		h.clock.Advance(next.Sub(h.clock.Now()))
	}
	h.clock.Advance(end.Sub(h.clock.Now()))
	h.settle()
}

func (h *harness) states() []string {
	var out []string
	for _, ho := range h.hosts {
		out = append(out, ho.in.Status().State)
	}
	return out
}

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

// inject hands one packet to host ho as if it arrived, and waits for it to be handled.
func inject(h *harness, ho *host, p pkt) {
	h.t.Helper()
	ho.transport.deliver(p.msg, p.info)
	h.settle()
}

// advertFrom encodes a as sent from src to dst and returns it with its IP facts.
func advertFrom(t *testing.T, a Advertisement, src, dst netip.Addr) pkt {
	t.Helper()
	return pkt{mustAppend(t, a, src, dst), PacketInfo{Src: src, Dst: dst, HopLimit: TTL}}
}

// pkt is a message with the IP facts it arrives with.
type pkt struct {
	msg  []byte
	info PacketInfo
}

func TestReceivedPacketsAreDroppedAndCountedByReason(t *testing.T) {
	good := Advertisement{Version: 2, VRID: 51, Priority: 200, Interval: time.Second, AuthType: AuthSimpleText,
		AuthData: [8]byte{'s', 'e', 'c', 'r', 'e', 't'}, Addrs: []netip.Addr{vip.Addr()}}
	with := func(f func(a *Advertisement)) Advertisement {
		a := good
		f(&a)
		return a
	}
	tests := []struct {
		reason Reason
		msg    func(t *testing.T) pkt
	}{
		{ReasonTTL, func(t *testing.T) pkt {
			p := advertFrom(t, good, addrMid, GroupIPv4)
			p.info.HopLimit = 254
			return p
		}},
		{ReasonVersion, func(t *testing.T) pkt {
			return advertFrom(t, with(func(a *Advertisement) { a.Version = 3 }), addrMid, GroupIPv4)
		}},
		{ReasonLength, func(t *testing.T) pkt {
			p := advertFrom(t, good, addrMid, GroupIPv4)
			p.msg = p.msg[:10]
			return p
		}},
		{ReasonChecksum, func(t *testing.T) pkt {
			p := advertFrom(t, good, addrMid, GroupIPv4)
			p.msg[2]++
			return p
		}},
		{ReasonType, func(t *testing.T) pkt {
			p := advertFrom(t, good, addrMid, GroupIPv4)
			p.msg[0] = 0x22
			fixChecksum(p.msg, addrMid, GroupIPv4)
			return p
		}},
		{ReasonVRID, func(t *testing.T) pkt {
			return advertFrom(t, with(func(a *Advertisement) { a.VRID = 52 }), addrMid, GroupIPv4)
		}},
		{ReasonAuth, func(t *testing.T) pkt {
			return advertFrom(t, with(func(a *Advertisement) { a.AuthData[0] = 'S' }), addrMid, GroupIPv4)
		}},
		{ReasonAuth, func(t *testing.T) pkt {
			return advertFrom(t, with(func(a *Advertisement) { a.AuthType = AuthNone; a.AuthData = [8]byte{} }), addrMid, GroupIPv4)
		}},
		{ReasonInterval, func(t *testing.T) pkt {
			return advertFrom(t, with(func(a *Advertisement) { a.Interval = 2 * time.Second }), addrMid, GroupIPv4)
		}},
		{ReasonSelf, func(t *testing.T) pkt {
			return advertFrom(t, good, addrLow, GroupIPv4)
		}},
	}
	h := newHarness(t)
	cfg := instanceConfig("a", 100)
	cfg.Version = 2
	cfg.AuthPass = "secret"
	a := h.add(cfg, addrLow, nil)
	h.start(a)
	want := map[Reason]float64{}
	for _, tt := range tests {
		t.Run("a packet with a bad "+string(tt.reason)+" is dropped and counted", func(t *testing.T) {
			inject(h, a, tt.msg(t))
			want[tt.reason]++
			for _, r := range dropReasons {
				if got := testutil.ToFloat64(h.metrics.dropped.WithLabelValues("a", string(r))); got != want[r] {
					t.Errorf("%s{reason=%q} = %v, want %v", MetricPacketsDropped, r, got, want[r])
				}
			}
			if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("a")); got != 0 {
				t.Errorf("%s = %v, want 0", MetricAdvertsReceived, got)
			}
		})
	}
	t.Run("a good advert is received, not dropped, and followed", func(t *testing.T) {
		inject(h, a, advertFrom(t, good, addrMid, GroupIPv4))
		if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("a")); got != 1 {
			t.Errorf("%s = %v, want 1", MetricAdvertsReceived, got)
		}
		if got := a.in.Status().MasterIP; got != addrMid {
			t.Errorf("MasterIP = %v, want %v", got, addrMid)
		}
	})
	t.Run("an advert listing other addresses is logged, not dropped", func(t *testing.T) {
		inject(h, a, advertFrom(t, with(func(a *Advertisement) { a.Addrs = addrs("192.0.2.200") }), addrMid, GroupIPv4))
		if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("a")); got != 2 {
			t.Errorf("%s = %v, want 2", MetricAdvertsReceived, got)
		}
		if !strings.Contains(a.logs.String(), "advert lists other virtual IPs") {
			t.Errorf("no log line about the address list:\n%s", a.logs.String())
		}
	})
	t.Run("a unicast advert is held to TTL 255 too", func(t *testing.T) {
		p := advertFrom(t, good, addrMid, addrLow)
		p.info.HopLimit = 64
		inject(h, a, p)
		if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("a")); got != 2 {
			t.Errorf("%s = %v, want 2", MetricAdvertsReceived, got)
		}
		if got := testutil.ToFloat64(h.metrics.dropped.WithLabelValues("a", string(ReasonTTL))); got != want[ReasonTTL]+1 {
			t.Errorf("%s{reason=\"ttl\"} = %v, want %v", MetricPacketsDropped, got, want[ReasonTTL]+1)
		}
	})
}

func TestUnicastAdvertsGoToEveryPeerWithTheirOwnChecksum(t *testing.T) {
	h := newHarness(t)
	cfg := instanceConfig("a", 255)
	cfg.UnicastPeers = []netip.Addr{addrMid, addrHigh}
	a := h.add(cfg, addrLow, nil)
	h.start(a)
	sent := a.transport.sentAdverts(t) // decoding checks each checksum against its destination
	var dsts []netip.Addr
	for _, s := range sent {
		dsts = append(dsts, s.dst)
	}
	if diff := cmp.Diff([]netip.Addr{addrMid, addrHigh}, dsts, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Fatalf("destinations (-want +got):\n%s", diff)
	}
}

func TestMetricsShowStatePriorityAndTransitions(t *testing.T) {
	h := newHarness(t)
	a := h.add(instanceConfig("a", 255), addrLow, nil)
	h.start(a)
	h.advance(1500 * time.Millisecond)
	want := `
# HELP vrrplb_instance_state VRRP instance state: 1 for the current state (init, backup, master, fault), 0 for the others.
# TYPE vrrplb_instance_state gauge
vrrplb_instance_state{state="backup",vrrp_instance="a"} 0
vrrplb_instance_state{state="fault",vrrp_instance="a"} 0
vrrplb_instance_state{state="init",vrrp_instance="a"} 0
vrrplb_instance_state{state="master",vrrp_instance="a"} 1
# HELP vrrplb_instance_priority VRRP instance effective priority: configured priority with tracker weights applied.
# TYPE vrrplb_instance_priority gauge
vrrplb_instance_priority{vrrp_instance="a"} 255
# HELP vrrplb_instance_transitions_total VRRP state transitions, by new state.
# TYPE vrrplb_instance_transitions_total counter
vrrplb_instance_transitions_total{to="backup",vrrp_instance="a"} 0
vrrplb_instance_transitions_total{to="fault",vrrp_instance="a"} 0
vrrplb_instance_transitions_total{to="init",vrrp_instance="a"} 0
vrrplb_instance_transitions_total{to="master",vrrp_instance="a"} 1
# HELP vrrplb_adverts_sent_total VRRP advertisements sent (one per destination).
# TYPE vrrplb_adverts_sent_total counter
vrrplb_adverts_sent_total{vrrp_instance="a"} 2
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want),
		MetricInstanceState, MetricInstancePriority, MetricInstanceTransitions, MetricAdvertsSent); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(h.reg, MetricPacketsDropped); err != nil || n != len(dropReasons) {
		t.Fatalf("%s series = %d (%v), want one per reason, %d", MetricPacketsDropped, n, err, len(dropReasons))
	}
}

func TestDeleteInstanceRemovesItsSeriesOnly(t *testing.T) {
	m, reg := metricstest.New(t, NewMetrics)
	m.forInstance("a")
	m.forInstance("b")
	m.DeleteInstance("a")
	for _, name := range []string{MetricInstanceState, MetricInstancePriority, MetricInstanceTransitions, MetricAdvertsSent,
		MetricAdvertsReceived, MetricPacketsDropped, MetricGARPSent} {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
			found = true
			for _, s := range f.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == LabelInstance && l.GetValue() != "b" {
						t.Errorf("%s still has a series of instance %q", name, l.GetValue())
					}
				}
			}
		}
		if !found {
			t.Errorf("%s lost the series of instance b", name)
		}
	}
}

// Prometheus keeps "instance" for the scraped target and would store a VRRP
// label of that name as exported_instance: every VRRP series says
// vrrp_instance, and none says instance.
func TestVRRPSeriesLabelTheInstanceVrrpInstance(t *testing.T) {
	m, reg := metricstest.New(t, NewMetrics)
	m.forInstance("vip")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["vrrp_instance"] != "vip" {
				t.Errorf("%s has labels %v, want vrrp_instance=\"vip\"", f.GetName(), labels)
			}
			if _, ok := labels["instance"]; ok {
				t.Errorf("%s has an instance label, which Prometheus renames to exported_instance", f.GetName())
			}
		}
	}
}

// One contract for the three packages' metrics: a second NewMetrics on one
// registry is an error, as in proxy and health (it used to share silently).
func TestNewMetricsTwiceOnOneRegistryFails(t *testing.T) {
	metricstest.SecondOnOneRegistryFails(t, NewMetrics, "register vrrp metrics: ")
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

// update reloads ho with cfg, counting it as the instance's work.
func (h *harness) update(ho *host, cfg config.Instance) error {
	h.t.Helper()
	ho.n.pending.Add(1)
	err := ho.in.Update(cfg)
	if err != nil {
		ho.n.pending.Add(-1)
	}
	h.settle()
	return err
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

func TestKeepalivedAdvertsAreAcceptedByAMatchingInstance(t *testing.T) {
	captures := readCaptures(t)
	tests := []struct {
		capture string
		cfg     func() config.Instance
		local   netip.Addr
	}{
		{"v2_pass", func() config.Instance {
			c := instanceConfig("k", 100)
			c.Version, c.AuthPass = 2, "vrrplb12"
			return c
		}, netip.MustParseAddr("192.0.2.9")},
		{"v3_ipv4", func() config.Instance {
			c := instanceConfig("k", 100)
			c.VirtualRouterID = 52
			c.VirtualIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.101/24"), netip.MustParsePrefix("192.0.2.102/24")}
			return c
		}, netip.MustParseAddr("192.0.2.9")},
		{"v3_ipv6", func() config.Instance {
			c := instanceConfig("k", 100)
			c.VirtualRouterID = 53
			c.Family = config.IPv6
			c.VirtualIPs = []netip.Prefix{netip.MustParsePrefix("fe80::53/64"), netip.MustParsePrefix("2001:db8::53/64")}
			return c
		}, netip.MustParseAddr("fe80::9")},
		{"v3_unicast", func() config.Instance {
			c := instanceConfig("k", 100)
			c.VirtualRouterID = 54
			c.UnicastPeers = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
			c.VirtualIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.104/24")}
			return c
		}, netip.MustParseAddr("192.0.2.2")},
	}
	for _, tt := range tests {
		t.Run("keepalived's "+tt.capture+" advert is followed by a backup", func(t *testing.T) {
			h := newHarness(t)
			k := h.add(tt.cfg(), tt.local, nil)
			h.start(k)
			c := captures[tt.capture]
			inject(h, k, pkt{c.msg, PacketInfo{Src: c.src, Dst: c.dst, HopLimit: TTL}})
			if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("k")); got != 1 {
				t.Fatalf("%s = %v, want 1 (dropped: %v)", MetricAdvertsReceived, got, droppedCounts(h, "k"))
			}
			if got := k.in.Status().MasterIP; got != c.src {
				t.Errorf("MasterIP = %v, want keepalived's %v", got, c.src)
			}
			if strings.Contains(k.logs.String(), "other virtual IPs") {
				t.Errorf("keepalived's address list was taken for another:\n%s", k.logs.String())
			}
		})
	}
}

func droppedCounts(h *harness, instance string) map[Reason]float64 {
	out := map[Reason]float64{}
	for _, r := range dropReasons {
		if v := testutil.ToFloat64(h.metrics.dropped.WithLabelValues(instance, string(r))); v != 0 {
			out[r] = v
		}
	}
	return out
}

func TestIPv6InstancesConvergeOnTheHigherPriority(t *testing.T) {
	h := newHarness(t)
	cfg := func(name string, prio uint8) config.Instance {
		c := instanceConfig(name, prio)
		c.Family = config.IPv6
		c.AdvertInterval = 100 * time.Millisecond
		c.VirtualIPs = []netip.Prefix{netip.MustParsePrefix("2001:db8::100/64")}
		return c
	}
	a := h.add(cfg("a", 100), netip.MustParseAddr("fe80::1"), nil)
	b := h.add(cfg("b", 200), netip.MustParseAddr("fe80::2"), nil)
	h.start(a, b)
	h.advance(2 * time.Second)
	if diff := cmp.Diff([]string{"backup", "master"}, h.states()); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	if got := a.in.Status().MasterIP; got != netip.MustParseAddr("fe80::2") {
		t.Errorf("a's MasterIP = %v", got)
	}
	if got := testutil.ToFloat64(h.metrics.advertsReceived.WithLabelValues("a")); got < 10 {
		t.Errorf("a received %v adverts in 2s at 100ms, want at least 10", got)
	}

	// Its own advert looped back, reported with a zone, is ignored as self.
	own := Advertisement{Version: 3, VRID: 51, Priority: 100, Interval: 100 * time.Millisecond, Addrs: addrs("2001:db8::100")}
	p := advertFrom(t, own, netip.MustParseAddr("fe80::1"), GroupIPv6)
	p.info.Src = p.info.Src.WithZone("eth0")
	inject(h, a, p)
	if got := droppedCounts(h, "a"); got[ReasonSelf] != 1 {
		t.Errorf("drops after our own looped-back advert: %v, want self 1", got)
	}
}

// timingTransport records when adverts are sent, on the real clock.
type timingTransport struct {
	local  netip.Addr
	sends  chan time.Time
	closed chan struct{}
	once   sync.Once
}

func (t *timingTransport) Send(msg []byte, dst netip.Addr) error {
	select {
	case t.sends <- time.Now():
	default:
	}
	return nil
}

func (t *timingTransport) Receive(buf []byte) (int, PacketInfo, error) {
	<-t.closed
	return 0, PacketInfo{}, fmt.Errorf("closed")
}

func (t *timingTransport) LocalAddr() netip.Addr { return t.local }

func (t *timingTransport) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

// fastInterval is the advert interval of fastOwner.
const fastInterval = 10 * time.Millisecond

// fastOwner is an address owner that advertises every fastInterval on the
// real clock through a timingTransport whose sends holds that many.
func fastOwner(tb testing.TB, sends int) (*Instance, *timingTransport) {
	tb.Helper()
	cfg := instanceConfig("a", 255)
	cfg.AdvertInterval = fastInterval
	cfg.GARPRepeat = 0
	tr := &timingTransport{local: addrLow, sends: make(chan time.Time, sends), closed: make(chan struct{})}
	in, err := NewInstance(cfg, InstanceOptions{Transport: tr, Addrs: &fakeAddrs{}})
	if err != nil {
		tb.Fatal(err)
	}
	return in, tr
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

func TestAMasterFollowsItsTransportToANewSourceAddress(t *testing.T) {
	h := newHarness(t)
	a := h.add(instanceConfig("a", 255), addrLow, nil)
	h.start(a)
	h.advance(1500 * time.Millisecond)
	moved := netip.MustParseAddr("192.0.2.50")
	a.transport.setLocal(moved)
	h.advance(time.Second)
	// sentAdverts checks each checksum against the source it left from.
	sent := a.transport.sentAdverts(t)
	if got := sent[len(sent)-1]; got.priority != 255 {
		t.Fatalf("last advert %+v", got)
	}
	if got := a.in.Status().MasterIP; got != moved {
		t.Errorf("MasterIP = %v, want the new source %v", got, moved)
	}
	if !strings.Contains(a.logs.String(), "source address changed") {
		t.Errorf("no log line for the new source:\n%s", a.logs.String())
	}
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

func TestStatusIsSafeWhileTheInstanceRuns(t *testing.T) {
	h := newHarness(t)
	a := h.add(instanceConfig("a", 150), addrLow, nil)
	b := h.add(instanceConfig("b", 100), addrMid, nil)
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			for _, ho := range []*host{a, b} {
				s := ho.in.Status()
				if s.Name != ho.name || len(s.VirtualIPs) != 1 {
					t.Errorf("status %+v", s)
				}
			}
			n++
			if n > 1e6 {
				done <- n
				return
			}
		}
	}()
	h.start(a, b)
	h.advance(10 * time.Second)
	close(stop)
	if n := <-done; n == 0 {
		t.Fatal("Status was never read")
	}
	if diff := cmp.Diff([]string{"master", "backup"}, h.states()); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
}

// A master's advert (the timer firing, the advert encoded and sent, the
// timer re-armed) allocates nothing on the system clock, so that a busy
// garbage collector has no work from the VRRP path.
func TestMasterAdvertDoesNotAllocate(t *testing.T) {
	in, tr := fastOwner(t, 1)
	defer in.setTimer(-1)
	in.handle(Event{Kind: EventStartup})
	if got := in.Status().State; got != "master" {
		t.Fatalf("the address owner is %s after startup, want master", got)
	}
	<-tr.sends
	// A stuck advert ends the test instead of hanging it.
	timeout := make(chan struct{})
	watchdog := time.AfterFunc(10*time.Second, func() { close(timeout) })
	defer watchdog.Stop()
	sent := 0
	allocs := testing.AllocsPerRun(100, func() {
		select { // as Run does: the timer fires, then the machine acts
		case <-in.timerC:
		case <-timeout:
			return
		}
		in.timerC = nil
		in.handle(Event{Kind: EventTimer})
		select {
		case <-tr.sends:
			sent++
		case <-timeout:
		}
	})
	if sent != 101 {
		t.Fatalf("%d adverts sent in 101 intervals", sent)
	}
	if allocs != 0 {
		t.Errorf("an advert allocates %.1f times, want 0", allocs)
	}
}

// Status says which virtual IPs the host holds apart from the configured
// ones: a master holds them, and an instance in FAULT holds none though
// they stay configured.
func TestStatusShowsTheVIPsHeldApartFromTheConfiguredOnes(t *testing.T) {
	h := newHarness(t)
	a := h.add(instanceConfig("a", 200), addrHigh, []int{0})
	h.start(a)
	h.advance(5 * time.Second)
	vips := instanceConfig("a", 200).VirtualIPs
	st := a.in.Status()
	if st.State != "master" || !slices.Equal(st.HeldIPs, vips) || !slices.Equal(st.VirtualIPs, vips) {
		t.Fatalf("master: %s holding %v of %v, want master holding %v", st.State, st.HeldIPs, st.VirtualIPs, vips)
	}
	a.trackers[0].set(t, false)
	h.settle()
	st = a.in.Status()
	if st.State != "fault" || len(st.HeldIPs) != 0 || !slices.Equal(st.VirtualIPs, vips) {
		t.Fatalf("fault: %s holding %v of %v, want fault holding none of %v", st.State, st.HeldIPs, st.VirtualIPs, vips)
	}
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
