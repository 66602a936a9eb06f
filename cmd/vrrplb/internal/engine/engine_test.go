package engine

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/syncbuf"
	"github.com/vrrplb/vrrplb/vrrp"
)

// TestMain lets the test binary be the VRRP engine too: the client under
// test starts /proc/self/exe vrrp-engine, which is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "held-engine" {
		heldEngine()
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == Command {
		if err := Main(os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// syncBuffer is a log sink that tests read while the code under test writes.
type syncBuffer = syncbuf.Buffer

// startTestEngine starts an engine process for a config without instances
// (which needs no privilege) and stops it when the test ends.
func startTestEngine(t *testing.T, toml string, opts ClientOptions) (*Client, *syncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vrrplb.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	opts.LogOut = logs
	c, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	// A config without instances starts no engine: start it as a
	// config with instances would.
	p, err := c.spawn(configFile{Path: path, TOML: []byte(toml)})
	if err == nil {
		err = p.configRequest(request{Commit: true}, commitTimeout)
	}
	if err != nil {
		t.Fatalf("spawn: %v\n%s", err, logs)
	}
	c.mu.Lock()
	c.proc, c.running, c.cfg = p, true, configFile{Path: path, TOML: []byte(toml)}
	c.mu.Unlock()
	t.Cleanup(func() { c.stop(p) })
	return c, logs
}

func TestEngineAnswersMetricsStatusAndConfigsOverItsSocket(t *testing.T) {
	c, logs := startTestEngine(t, "[log]\nlevel = \"debug\"\n", ClientOptions{})

	mfs, err := c.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{MetricGoroutines, MetricRealtime, MetricGCPauseMax, MetricProcessOpenFD} {
		if !names[want] {
			t.Errorf("the engine's metrics lack %s; got %v", want, names)
		}
	}
	for name := range names {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			t.Errorf("the engine exports %s, which the daemon exports too", name)
		}
	}

	snap, fresh, err := c.Snapshot(context.Background())
	if err != nil || !fresh {
		t.Fatalf("snapshot: fresh %v, %v", fresh, err)
	}
	if len(snap.Instances) != 0 {
		t.Errorf("an engine without instances reports %v", snap.Instances)
	}

	// A verdict needs no reply: the next request is still answered.
	c.SetVerdict("apiserver", true)
	c.snaps.invalidate()
	if _, err := c.Gather(); err != nil {
		t.Fatalf("metrics after a verdict: %v", err)
	}

	// A config the engine rejects comes back as the reload's error, and
	// the engine goes on.
	_, err = c.Prepare(&config.Config{Path: c.cfg.Path, Source: []byte("[log]\nlevel = \"loud\"\n")})
	if err == nil || !strings.Contains(err.Error(), "level") {
		t.Errorf("reload of a bad config: got %v, want the engine's located error about level", err)
	}
	c.snaps.invalidate()
	if _, err := c.Gather(); err != nil {
		t.Fatalf("metrics after a rejected config: %v", err)
	}
	if !strings.Contains(logs.String(), "process=vrrp-engine") {
		t.Errorf("the engine's log lines do not say which process wrote them:\n%s", logs)
	}
}

// heldEngine is an engine that holds every snapshot until the daemon sends
// the verdict "release" (up), then answers all held ones; it answers the
// rest at once.
func heldEngine() {
	f := os.NewFile(3, Command)
	c, err := net.FileConn(f)
	if err != nil {
		os.Exit(1)
	}
	dec, enc := json.NewDecoder(c), json.NewEncoder(c)
	var held []uint64
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			return
		}
		switch {
		case req.Verdict != nil && req.Verdict.Name == "release":
			for _, id := range held {
				_ = enc.Encode(reply{ID: id, Instances: []vrrp.InstanceStatus{{Name: "held", State: "master"}}})
			}
			held = nil
		case req.Verdict != nil:
		case req.Snapshot:
			held = append(held, req.ID)
		default:
			_ = enc.Encode(reply{ID: req.ID})
		}
	}
}

// startHeldEngine runs heldEngine behind a client.
func startHeldEngine(t *testing.T) *Client {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientOptions{Path: exe, Args: []string{exe, "held-engine"}, SnapshotInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.spawn(configFile{Path: "held.toml"})
	if err == nil {
		err = p.configRequest(request{Commit: true}, commitTimeout)
	}
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.proc, c.running = p, true
	c.mu.Unlock()
	t.Cleanup(func() { p.kill() })
	return c
}

// waitInflight waits until a request has gone to the engine and waits for
// its reply.
func waitInflight(t *testing.T, c *Client) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p := c.current()
		p.mu.Lock()
		n := len(p.inflight)
		p.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Error("no request reached the engine")
}

// A verdict goes out while a request waits for its reply: no lock is held
// across the engine socket. (With the request holding the socket until its
// reply, the verdict that releases the reply would wait behind it.)
func TestAVerdictDoesNotWaitBehindARequest(t *testing.T) {
	c := startHeldEngine(t)
	got := make(chan Snapshot, 1)
	go func() {
		snap, _, _ := c.Snapshot(context.Background())
		got <- snap
	}()
	waitInflight(t, c)
	sent := make(chan struct{})
	go func() {
		c.SetVerdict("release", true)
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(2 * time.Second):
		t.Fatal("SetVerdict waited behind a request in flight")
	}
	select {
	case snap := <-got:
		if len(snap.Instances) != 1 || snap.Instances[0].Name != "held" {
			t.Errorf("snapshot %+v, want the held engine's instance", snap)
		}
	case <-time.After(queryTimeout + time.Second):
		t.Fatal("the snapshot was never answered")
	}
}

// /status waits for the engine no longer than its deadline: then it gets
// the last snapshot, marked not fresh.
func TestASnapshotWaitsNoLongerThanItsDeadline(t *testing.T) {
	c := startHeldEngine(t)
	go func() {
		waitInflight(t, c)
		c.SetVerdict("release", true)
	}()
	if _, fresh, err := c.Snapshot(context.Background()); !fresh || err != nil {
		t.Fatalf("first snapshot: fresh %v, %v", fresh, err)
	}
	time.Sleep(5 * time.Millisecond) // past the 1 ms interval
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	snap, fresh, err := c.Snapshot(ctx)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Snapshot took %s with a 200ms deadline", took)
	}
	if fresh || err == nil {
		t.Errorf("a held engine gave a fresh snapshot (%v)", err)
	}
	if len(snap.Instances) != 1 || snap.At.IsZero() {
		t.Errorf("stale snapshot %+v, want the last answer with its time", snap)
	}
	c.SetVerdict("release", true)
}

// However many scrape at once, the engine is asked at most once per
// snapshot interval.
func TestScrapesReachTheEngineAtABoundedRate(t *testing.T) {
	c, _ := startTestEngine(t, "", ClientOptions{SnapshotInterval: 100 * time.Millisecond})
	stop := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	var scrapes atomic.Int64
	for range 20 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if _, err := c.Gather(); err != nil {
					t.Error(err)
					return
				}
				scrapes.Add(1)
			}
		})
	}
	wg.Wait()
	c.snaps.mu.Lock()
	asked := c.snaps.requests
	c.snaps.mu.Unlock()
	if asked > 12 || scrapes.Load() < 100 {
		t.Errorf("%d scrapes in 1 s asked the engine %d times, want at most 12 (one per 100 ms)", scrapes.Load(), asked)
	}
	t.Logf("%d scrapes, %d engine requests", scrapes.Load(), asked)
}

func TestEngineStopsWhenTheDaemonClosesItsSocket(t *testing.T) {
	c, _ := startTestEngine(t, "", ClientOptions{})
	p := c.current()
	start := time.Now()
	c.stop(p)
	select {
	case <-p.done:
	default:
		t.Fatal("stop returned before the engine exited")
	}
	if p.err != nil {
		t.Errorf("the engine exited with %v, want status 0", p.err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the engine took %s to stop", took)
	}
}

func TestFrontendVerdictsReportTheFirstVerdictThenEveryChange(t *testing.T) {
	hub := newVerdictHub()
	tr, _ := hub.tracker("api")
	if tr.Name() != "frontend api" {
		t.Errorf("Name() = %q", tr.Name())
	}
	got := make(chan bool, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx, func(ok bool) { got <- ok }) }()

	quiet := func(why string) {
		t.Helper()
		select {
		case v := <-got:
			t.Fatalf("reported %v %s", v, why)
		case <-time.After(50 * time.Millisecond):
		}
	}
	expect := func(want bool) {
		t.Helper()
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("reported %v, want %v", v, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("no report of %v", want)
		}
	}
	hub.set("other", true)
	quiet("before the frontend had a verdict")
	hub.set("api", false)
	expect(false)
	hub.set("api", false)
	quiet("for an unchanged verdict")
	hub.set("api", true)
	expect(true)
	hub.set("api", true)
	quiet("for an unchanged verdict")
	hub.set("api", false)
	expect(false)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMaintenanceSetFollowsTheCommands(t *testing.T) {
	all := []string{"a", "b", "c"}
	steps := []struct {
		name     string
		instance string
		on       bool
		want     MaintenanceSet
	}{
		{"on for one instance names it", "b", true, MaintenanceSet{Names: []string{"b"}}},
		{"on for another adds it in order", "a", true, MaintenanceSet{Names: []string{"a", "b"}}},
		{"on again changes nothing", "a", true, MaintenanceSet{Names: []string{"a", "b"}}},
		{"off for one removes it", "b", false, MaintenanceSet{Names: []string{"a"}}},
		{"on for every instance is all", "", true, MaintenanceSet{All: true}},
		{"off for one of all leaves the others", "c", false, MaintenanceSet{Names: []string{"a", "b"}}},
		{"off for every instance clears it", "", false, MaintenanceSet{}},
	}
	var s MaintenanceSet
	for _, st := range steps {
		s = s.With(st.instance, st.on, all)
		if diff := cmp.Diff(st.want, s, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", st.name, diff)
		}
	}
	if !(MaintenanceSet{All: true}).Has("new") {
		t.Error("with every instance in maintenance, one a reload adds is not")
	}
}
