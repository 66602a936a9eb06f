package vrrp

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vrrplb/vrrplb/internal/metricstest"
)

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
