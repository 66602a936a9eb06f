package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/clock/clocktest"
	"github.com/vrrplb/vrrplb/internal/metricstest"
	"github.com/vrrplb/vrrplb/internal/poll"
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

func droppedCounts(h *harness, instance string) map[Reason]float64 {
	out := map[Reason]float64{}
	for _, r := range dropReasons {
		if v := testutil.ToFloat64(h.metrics.dropped.WithLabelValues(instance, string(r))); v != 0 {
			out[r] = v
		}
	}
	return out
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
