package vrrp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/runtest"
)

// setLog records what a Set does to its fake members.
type setLog struct {
	mu     sync.Mutex
	events []string
}

func (l *setLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
}

func (l *setLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	slices.Sort(e)
	return e
}

// fakeMember is a Member that records its life; build number n tells
// replaced members apart.
type fakeMember struct {
	log     *setLog
	id      string
	cfg     config.Instance
	started chan struct{}
}

func (m *fakeMember) Run(ctx context.Context) error {
	m.log.add("run %s", m.id)
	close(m.started)
	<-ctx.Done()
	m.log.add("stop %s", m.id)
	return nil
}

func (m *fakeMember) Status() InstanceStatus {
	return InstanceStatus{Name: m.cfg.Name, Priority: m.cfg.Priority, State: "backup"}
}

func (m *fakeMember) Prepare(cfg config.Instance, _ config.Scripts) (func() error, error) {
	if cfg.AuthPass == "refuse" {
		return nil, fmt.Errorf("instance %q: refused", cfg.Name)
	}
	return func() error {
		m.log.add("update %s priority %d", m.id, cfg.Priority)
		m.cfg = cfg
		return nil
	}, nil
}

func (m *fakeMember) Discard() { m.log.add("discard %s", m.id) }

func (m *fakeMember) SetYield(cause string, on bool) error {
	m.log.add("yield %s %s %v", m.id, cause, on)
	return nil
}

// newRunningAB is a fake set running instances a (VRID 1) and b (VRID 2),
// both started, its log emptied.
func newRunningAB(t *testing.T) (s *Set, log *setLog, members map[string]*fakeMember, a, b config.Instance) {
	t.Helper()
	s, log, members = newFakeSet(t)
	a, b = withVRID(instanceConfig("a", 100), 1), withVRID(instanceConfig("b", 100), 2)
	if err := s.Apply(setConfig(a, b)); err != nil {
		t.Fatal(err)
	}
	<-members["a#1"].started
	<-members["b#1"].started
	log.take()
	return s, log, members, a, b
}

// newFakeSet returns a running Set of fake members; a config whose
// instance's interface is "missing" fails to build, as a real one would.
func newFakeSet(t *testing.T) (*Set, *setLog, map[string]*fakeMember) {
	t.Helper()
	log := &setLog{}
	var mu sync.Mutex
	built := map[string]int{}
	members := map[string]*fakeMember{}
	s, err := NewSet(SetOptions{New: func(ic config.Instance, _ config.Scripts) (Member, error) {
		if ic.Interface == "missing" {
			return nil, fmt.Errorf("instance %q: no interface %q", ic.Name, ic.Interface)
		}
		mu.Lock()
		defer mu.Unlock()
		built[ic.Name]++
		id := fmt.Sprintf("%s#%d", ic.Name, built[ic.Name])
		m := &fakeMember{log: log, id: id, cfg: ic, started: make(chan struct{})}
		members[id] = m
		log.add("build %s", id)
		return m, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(runtest.Start(t, s.Run))
	return s, log, members
}

func setConfig(ins ...config.Instance) *config.Config { return &config.Config{Instances: ins} }

func withVRID(ic config.Instance, vrid uint8) config.Instance {
	ic.VirtualRouterID = vrid
	return ic
}

func TestSetAppliesAReloadByDiff(t *testing.T) {
	s, log, members := newFakeSet(t)
	a, b, c := withVRID(instanceConfig("a", 100), 1), withVRID(instanceConfig("b", 100), 2), withVRID(instanceConfig("c", 100), 3)
	if err := s.Apply(setConfig(a, b, c)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a#1", "b#1", "c#1"} {
		<-members[id].started
	}
	if diff := cmp.Diff([]string{"build a#1", "build b#1", "build c#1", "run a#1", "run b#1", "run c#1"}, log.take()); diff != "" {
		t.Fatalf("start (-want +got):\n%s", diff)
	}

	// a matched unchanged; b updated in place (priority); c replaced (a
	// new source_ip); d added; and a removed instance e is not there.
	b2 := b
	b2.Priority = 150
	c2 := c
	c2.SourceIP = c.VirtualIPs[0].Addr().Next()
	d := withVRID(instanceConfig("d", 100), 4)
	if err := s.Apply(setConfig(a, b2, c2, d)); err != nil {
		t.Fatal(err)
	}
	<-members["c#2"].started
	<-members["d#1"].started
	if diff := cmp.Diff([]string{"build c#2", "build d#1", "run c#2", "run d#1", "stop c#1", "update b#1 priority 150"}, log.take()); diff != "" {
		t.Errorf("reload (-want +got):\n%s", diff)
	}
	var names []string
	for _, st := range s.Status() {
		names = append(names, fmt.Sprintf("%s/%d", st.Name, st.Priority))
	}
	if diff := cmp.Diff([]string{"a/100", "b/150", "c/100", "d/100"}, names); diff != "" {
		t.Errorf("status in config order (-want +got):\n%s", diff)
	}

	// Removing c and d stops them; a and b are untouched.
	if err := s.Apply(setConfig(a, b2)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"stop c#2", "stop d#1"}, log.take()); diff != "" {
		t.Errorf("removal (-want +got):\n%s", diff)
	}
}

func TestSetRejectedReloadChangesNothing(t *testing.T) {
	s, log, _, a, b := newRunningAB(t)

	tests := []struct {
		name string
		next *config.Config
	}{
		{"a new instance that cannot be built", func() *config.Config {
			bad := withVRID(instanceConfig("new", 100), 9)
			bad.Interface = "missing"
			b2 := b
			b2.Priority = 50
			return setConfig(a, b2, withVRID(instanceConfig("added", 100), 8), bad)
		}()},
		{"an update the instance refuses", func() *config.Config {
			a2 := a
			a2.AuthPass = "refuse"
			c2 := withVRID(instanceConfig("c", 100), 3)
			return setConfig(a2, c2)
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Apply(tt.next); err == nil {
				t.Fatal("Apply succeeded")
			}
			for _, e := range log.take() {
				if e != "build added#1" && e != "discard added#1" && e != "build c#1" && e != "discard c#1" {
					t.Errorf("a rejected reload did %q", e)
				}
			}
			var got []string
			for _, st := range s.Status() {
				got = append(got, fmt.Sprintf("%s/%d", st.Name, st.Priority))
			}
			if diff := cmp.Diff([]string{"a/100", "b/100"}, got); diff != "" {
				t.Errorf("instances after a rejected reload (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNeedsNewInstanceIsTheOneReplaceRule(t *testing.T) {
	base := instanceConfig("a", 100)
	tests := []struct {
		name    string
		change  func(*config.Instance)
		replace bool
	}{
		{"a new priority is applied in place", func(c *config.Instance) { c.Priority = 20 }, false},
		{"new virtual IPs are applied in place", func(c *config.Instance) { c.VirtualIPs = append(c.VirtualIPs, c.VirtualIPs[0]) }, false},
		{"a new name needs a new instance", func(c *config.Instance) { c.Name = "b" }, true},
		{"a new source_ip needs a new instance", func(c *config.Instance) { c.SourceIP = c.VirtualIPs[0].Addr() }, true},
		{"moving from multicast to unicast needs a new instance", func(c *config.Instance) { c.UnicastPeers = []netip.Addr{c.VirtualIPs[0].Addr()} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base
			tt.change(&next)
			if got := NeedsNewInstance(base, next) != ""; got != tt.replace {
				t.Errorf("NeedsNewInstance = %q, want replace %v", NeedsNewInstance(base, next), tt.replace)
			}
		})
	}
}

func TestSetYieldCoversTheNamedInstancesAndThoseAReloadAdds(t *testing.T) {
	s, log, members, a, b := newRunningAB(t)
	if err := s.SetYield("maintenance", func(name string) bool { return name != "b" }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"yield a#1 maintenance true", "yield b#1 maintenance false"}, log.take()); diff != "" {
		t.Errorf("SetYield (-want +got):\n%s", diff)
	}
	c := withVRID(instanceConfig("c", 100), 3)
	if err := s.Apply(setConfig(a, b, c)); err != nil {
		t.Fatal(err)
	}
	<-members["c#1"].started
	if diff := cmp.Diff([]string{"build c#1", "run c#1", "yield c#1 maintenance true"}, log.take()); diff != "" {
		t.Errorf("an instance a reload adds (-want +got):\n%s", diff)
	}
	if err := s.SetYield("maintenance", nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"yield a#1 maintenance false", "yield b#1 maintenance false", "yield c#1 maintenance false"}, log.take()); diff != "" {
		t.Errorf("clearing (-want +got):\n%s", diff)
	}
}

// Issue 15: a reload that only reweights a tracker, adds or removes
// trackers, or changes notify or the scripts user, must not restart the
// instance (a restarted master hands the VIP to a peer and takes it back).
func TestSetAppliesTrackerAndNotifyChangesInPlace(t *testing.T) {
	base := withVRID(instanceConfig("a", 100), 1)
	base.TrackScripts = []config.TrackScript{{Command: []string{"/bin/true"}, Interval: time.Second, Timeout: time.Second, Fall: 1, Rise: 1, Weight: -10}}
	changes := []struct {
		name   string
		change func(*config.Config)
	}{
		{"a tracker's weight", func(c *config.Config) { c.Instances[0].TrackScripts[0].Weight = -30 }},
		{"an added tracker", func(c *config.Config) {
			c.Instances[0].TrackInterfaces = []config.TrackInterface{{Name: "eth1", Weight: -5}}
		}},
		{"a removed tracker", func(c *config.Config) { c.Instances[0].TrackScripts = nil }},
		{"a new notify command", func(c *config.Config) { c.Instances[0].Notify = []string{"/bin/true"} }},
		{"a new scripts user", func(c *config.Config) { c.Scripts.User = "nobody" }},
	}
	for _, tt := range changes {
		t.Run(tt.name, func(t *testing.T) {
			s, log, members := newFakeSet(t)
			if err := s.Apply(setConfig(base)); err != nil {
				t.Fatal(err)
			}
			<-members["a#1"].started
			log.take()
			next := setConfig(base)
			next.Instances[0].TrackScripts = slices.Clone(base.TrackScripts)
			tt.change(next)
			if err := s.Apply(next); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"update a#1 priority 100"}, log.take()); diff != "" {
				t.Errorf("reload (-want +got):\n%s", diff)
			}
		})
	}
}
