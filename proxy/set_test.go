package proxy

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/freeaddr"
	"github.com/vrrplb/vrrplb/internal/runtest"
)

// setChecker is a Checker that records what a Set does with it.
type setChecker struct {
	*fakeHealth
	name    string
	mu      sync.Mutex
	runs    int
	updates int
	stopped bool
}

func (c *setChecker) Run(ctx context.Context) error {
	c.mu.Lock()
	c.runs++
	c.mu.Unlock()
	<-ctx.Done()
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	return nil
}

func (c *setChecker) CheckUpdate(cfg config.Health, _ []string) error {
	if cfg.Path == "refuse" {
		return fmt.Errorf("frontend %q: health: refused", c.name)
	}
	return nil
}

func (c *setChecker) Update(cfg config.Health, b []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updates++
	return nil
}

func (c *setChecker) state() (runs, updates int, stopped bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs, c.updates, c.stopped
}

func setFrontendConfig(t *testing.T, name string, backends ...string) config.Frontend {
	fe := testFrontend(backends...)
	fe.Name, fe.Listen, fe.DrainTimeout = name, freeaddr.Loopback(t).String(), 100*time.Millisecond
	return fe
}

// newTestSet runs a Set whose checkers are setCheckers; a frontend whose
// health type is "https" fails to build one, as an unreadable ca_file does.
func newTestSet(t *testing.T) (*Set[*setChecker], func(name string) *setChecker) {
	t.Helper()
	var mu sync.Mutex
	built := map[string]*setChecker{}
	s, err := NewSet(SetOptions[*setChecker]{NewChecker: func(fe config.Frontend) (*setChecker, error) {
		if fe.Health.Type == config.CheckHTTPS {
			return nil, fmt.Errorf("frontend %q: health ca_file: unreadable", fe.Name)
		}
		c := &setChecker{fakeHealth: newFakeHealth(), name: fe.Name}
		mu.Lock()
		built[fe.Name] = c
		mu.Unlock()
		return c, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(runtest.Start(t, s.Run))
	return s, func(name string) *setChecker {
		mu.Lock()
		defer mu.Unlock()
		return built[name]
	}
}

func members(s *Set[*setChecker]) map[string]SetMember[*setChecker] {
	out := map[string]SetMember[*setChecker]{}
	for _, m := range s.Members() {
		out[m.Name] = m
	}
	return out
}

// listening waits until f accepts on its address.
func listening(t *testing.T, f *Frontend) {
	t.Helper()
	waitFor(t, "the frontend listens", func() bool { return f.Addr() != nil })
}

func TestSetAppliesAReloadByDiff(t *testing.T) {
	s, checker := newTestSet(t)
	be := startBackend(t, echoServer)
	matched, updated, replaced, removed := setFrontendConfig(t, "matched", be.Addr), setFrontendConfig(t, "updated", be.Addr),
		setFrontendConfig(t, "replaced", be.Addr), setFrontendConfig(t, "removed", be.Addr)
	if err := s.Apply(&config.Config{Frontends: []config.Frontend{matched, updated, replaced, removed}}); err != nil {
		t.Fatal(err)
	}
	before := members(s)
	for _, m := range before {
		listening(t, m.Frontend)
	}

	updated2 := updated
	updated2.Backends = []string{be.Addr, "127.0.0.1:1"}
	replaced2 := replaced
	replaced2.Listen = freeaddr.Loopback(t).String()
	added := setFrontendConfig(t, "added", be.Addr)
	if err := s.Apply(&config.Config{Frontends: []config.Frontend{matched, updated2, replaced2, added}}); err != nil {
		t.Fatal(err)
	}
	after := members(s)
	if got := len(after); got != 4 || after["removed"].Frontend != nil {
		t.Errorf("frontends after the reload: %v, want matched, updated, replaced, added", s.Members())
	}
	if after["matched"].Frontend != before["matched"].Frontend {
		t.Error("the unchanged frontend was replaced")
	}
	if after["updated"].Frontend != before["updated"].Frontend || len(after["updated"].Frontend.Status().Backends) != 2 {
		t.Error("the frontend with a new backend was not updated in place")
	}
	if after["replaced"].Frontend == before["replaced"].Frontend || after["replaced"].Checker != before["replaced"].Checker {
		t.Error("the frontend with a new listen address was not replaced, keeping its checker")
	}
	listening(t, after["replaced"].Frontend)
	listening(t, after["added"].Frontend)
	if runs, _, _ := checker("replaced").state(); runs != 1 {
		t.Errorf("the kept checker ran %d times, want once", runs)
	}
	if runs, _, _ := checker("added").state(); runs != 1 {
		t.Errorf("the added frontend's checker ran %d times", runs)
	}
	waitFor(t, "the removed frontend's checker stops", func() bool { _, _, stopped := checker("removed").state(); return stopped })
	waitFor(t, "the replaced frontend's old address closes", func() bool {
		c, err := net.Dial("tcp", replaced.Listen)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

func TestSetRejectedReloadChangesNothing(t *testing.T) {
	s, _ := newTestSet(t)
	be := startBackend(t, echoServer)
	a := setFrontendConfig(t, "a", be.Addr)
	if err := s.Apply(&config.Config{Frontends: []config.Frontend{a}}); err != nil {
		t.Fatal(err)
	}
	before := members(s)
	listening(t, before["a"].Frontend)

	a2 := a
	a2.Backends = []string{be.Addr, "127.0.0.1:1"}
	bad := setFrontendConfig(t, "bad", be.Addr)
	bad.Health.Type = config.CheckHTTPS
	refusedUpdate := a2
	refusedUpdate.Health.Path = "refuse"
	for _, next := range [][]config.Frontend{{a2, bad}, {refusedUpdate}} {
		err := s.Apply(&config.Config{Frontends: next})
		if err == nil {
			t.Fatal("Apply succeeded")
		}
		after := members(s)
		if len(after) != 1 || after["a"].Frontend != before["a"].Frontend || len(after["a"].Frontend.Status().Backends) != 1 {
			t.Errorf("a rejected reload (%v) changed the set: %v", err, s.Members())
		}
	}
}
