package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vrrplb/vrrplb/config"
)

// TestMain lets the test binary be the VRRP engine too: the daemon under
// test starts /proc/self/exe vrrp-engine, which is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == engineCommand {
		os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// startTestEngine starts an engine process for a config without instances
// (which needs no privilege) and stops it when the test ends.
func startTestEngine(t *testing.T, toml string) (*engine, *syncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vrrplb.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	d := newDaemon(cfg, logs)
	e := &engine{d: d, verdicts: map[string]bool{}, forwarders: map[string]*forwarder{}}
	e.cfg = engineConfig{Path: path, TOML: []byte(toml)}
	e.started = true
	if err := e.spawn(); err != nil {
		t.Fatalf("spawn: %v\n%s", err, logs)
	}
	t.Cleanup(func() {
		e.mu.Lock()
		p := e.proc
		e.mu.Unlock()
		e.stop(p)
	})
	return e, logs
}

func TestEngineAnswersMetricsStatusAndConfigsOverItsSocket(t *testing.T) {
	e, logs := startTestEngine(t, "[log]\nlevel = \"debug\"\n")

	mfs, err := e.gatherMetrics()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{metricEngineGoroutines, metricEngineRealtime, metricEngineGCPauseMax, "vrrplb_vrrp_engine_process_open_fds"} {
		if !names[want] {
			t.Errorf("the engine's metrics lack %s; got %v", want, names)
		}
	}
	for name := range names {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			t.Errorf("the engine exports %s, which the daemon exports too", name)
		}
	}

	doc := statusDoc{}
	e.fillStatus(&doc)
	if len(doc.Instances) != 0 {
		t.Errorf("an engine without instances reports %v", doc.Instances)
	}

	// A verdict needs no reply: the next request is still answered.
	e.sendVerdict("apiserver", true)
	if _, err := e.gatherMetrics(); err != nil {
		t.Fatalf("metrics after a verdict: %v", err)
	}

	// A config the engine rejects comes back as the reload's error, and
	// the engine goes on.
	err = e.reload(nil, &config.Config{Path: e.cfg.Path, Source: []byte("[log]\nlevel = \"loud\"\n")})
	if err == nil || !strings.Contains(err.Error(), "level") {
		t.Errorf("reload of a bad config: got %v, want the engine's located error about level", err)
	}
	if _, err := e.gatherMetrics(); err != nil {
		t.Fatalf("metrics after a rejected config: %v", err)
	}
	if !strings.Contains(logs.String(), "process=vrrp-engine") {
		t.Errorf("the engine's log lines do not say which process wrote them:\n%s", logs)
	}
}

func TestEngineStopsWhenTheDaemonClosesItsSocket(t *testing.T) {
	e, _ := startTestEngine(t, "")
	e.mu.Lock()
	p := e.proc
	e.mu.Unlock()
	start := time.Now()
	e.stop(p)
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
		want     maintenanceSet
	}{
		{"on for one instance names it", "b", true, maintenanceSet{Names: []string{"b"}}},
		{"on for another adds it in order", "a", true, maintenanceSet{Names: []string{"a", "b"}}},
		{"on again changes nothing", "a", true, maintenanceSet{Names: []string{"a", "b"}}},
		{"off for one removes it", "b", false, maintenanceSet{Names: []string{"a"}}},
		{"on for every instance is all", "", true, maintenanceSet{All: true}},
		{"off for one of all leaves the others", "c", false, maintenanceSet{Names: []string{"a", "b"}}},
		{"off for every instance clears it", "", false, maintenanceSet{}},
	}
	var s maintenanceSet
	for _, st := range steps {
		s = s.set(st.instance, st.on, all)
		if diff := cmp.Diff(st.want, s, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", st.name, diff)
		}
	}
	if !(maintenanceSet{All: true}).has("new") {
		t.Error("with every instance in maintenance, one a reload adds is not")
	}
}
