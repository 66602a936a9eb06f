package health

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/poll"
)

const testFrontend = "apiserver"

// What the proxy (proxy.Health) and VRRP (vrrp.Tracker) need of this package.
var (
	_ interface {
		Healthy(backend string) bool
		ReportFault(backend string)
		Subscribe(fn func(backend string, healthy bool)) (cancel func())
	} = (*Checker)(nil)
	_ interface {
		Name() string
		Run(ctx context.Context, report func(ok bool)) error
	} = FrontendTracker{}
)

// harness runs one Checker on a fake clock with metrics, captured logs and
// a recording subscriber.
type harness struct {
	t     *testing.T
	clock *fakeClock
	c     *Checker
	m     *Metrics
	reg   *prometheus.Registry
	logs  *logCapture

	mu     sync.Mutex
	events []string // "backend up" or "backend down", in delivery order
}

func newHarness(t *testing.T, cfg config.Health, backends []string) *harness {
	return newHarnessWith(t, cfg, backends, func(d time.Duration) time.Duration { return d })
}

func newHarnessWith(t *testing.T, cfg config.Health, backends []string, jitter func(time.Duration) time.Duration) *harness {
	t.Helper()
	h := &harness{t: t, clock: newFakeClock(), reg: prometheus.NewRegistry(), logs: &logCapture{}}
	m, err := NewMetrics(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	h.c, err = New(testFrontend, cfg, backends, Options{
		Logger:  slog.New(h.logs),
		Metrics: m,
		Clock:   h.clock,
		Jitter:  jitter,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.c.Subscribe(func(backend string, healthy bool) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.events = append(h.events, fmt.Sprintf("%s %v", backend, map[bool]string{true: "up", false: "down"}[healthy]))
	})
	return h
}

// run starts the checker; cleanup stops it and waits for Run to return.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.c.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := poll.Receive(h.t, done, 5*time.Second, "Run to return after its context ended"); err != nil {
			h.t.Errorf("Run returned %v", err)
		}
	})
}

func (h *harness) gotEvents() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

// waitEvents waits until the subscriber has received want, then compares.
func (h *harness) waitEvents(want ...string) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("%d subscriber calls", len(want)), func() bool { return len(h.gotEvents()) >= len(want) })
	if diff := cmp.Diff(want, h.gotEvents()); diff != "" {
		h.t.Errorf("subscriber calls (-want +got):\n%s", diff)
	}
}

// stateChanges returns the captured state change log lines as
// "msg backend from→to: reason".
func (h *harness) stateChanges() []string {
	var out []string
	for _, r := range h.logs.all() {
		if r.attrs["frontend"] != testFrontend {
			h.t.Errorf("log line %q has frontend %q", r.msg, r.attrs["frontend"])
		}
		out = append(out, fmt.Sprintf("%s %s %s→%s: %s", r.msg, r.attrs["backend"], r.attrs["from"], r.attrs["to"], r.attrs["reason"]))
	}
	return out
}

// series returns the value of every series of the named metric, keyed by its
// label values other than frontend, joined by spaces; a histogram's value is
// its sample count.
func (h *harness) series(name string) map[string]float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var key []string
			for _, l := range m.GetLabel() {
				if l.GetName() != "frontend" {
					key = append(key, l.GetValue())
				}
			}
			var v float64
			switch {
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				v = float64(m.GetHistogram().GetSampleCount())
			}
			out[strings.Join(key, " ")] = v
		}
	}
	return out
}

func (h *harness) checks(backend, result string) float64 {
	return testutil.ToFloat64(h.m.checks.WithLabelValues(testFrontend, backend, result))
}

func (h *harness) up(backend string) float64 {
	return testutil.ToFloat64(h.m.up.WithLabelValues(testFrontend, backend))
}

func TestRiseAndFallThroughSubscribeHealthyAndMetrics(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	b := srv.addr()
	h := newHarness(t, httpsCheck(nil), []string{b}) // rise 2, fall 2, interval 1s
	if h.c.Healthy(b) || h.up(b) != 0 {
		t.Fatalf("a backend is healthy before its first check")
	}
	h.run()

	steps := []struct {
		mode        int
		wantHealthy bool
	}{
		{modeReady, true},    // the first success decides
		{modeUnready, true},  // one failure of fall 2
		{modeUnready, false}, // two
		{modeReady, false},   // one success of rise 2
		{modeReady, true},    // two
	}
	for i, st := range steps {
		srv.set(st.mode)
		if i > 0 {
			h.clock.Advance(time.Second)
		}
		h.clock.waitPending(t, 1)
		if got := h.c.Healthy(b); got != st.wantHealthy {
			t.Fatalf("after check %d: Healthy = %v, want %v", i+1, got, st.wantHealthy)
		}
		if got := h.c.anyHealthy(); got != st.wantHealthy {
			t.Fatalf("after check %d: AnyHealthy = %v, want %v", i+1, got, st.wantHealthy)
		}
		want := map[bool]float64{true: 1, false: 0}[st.wantHealthy]
		if got := h.up(b); got != want {
			t.Fatalf("after check %d: %s = %v, want %v", i+1, MetricBackendUp, got, want)
		}
	}

	h.waitEvents(b+" up", b+" down", b+" up")
	wantLog := []string{
		"backend up " + b + " unknown→up: status 200",
		"backend down " + b + " up→down: status 500",
		"backend up " + b + " down→up: status 200",
	}
	if diff := cmp.Diff(wantLog, h.stateChanges()); diff != "" {
		t.Errorf("state change log lines (-want +got):\n%s", diff)
	}
	wantChecks := map[string]float64{
		b + " success": 3, b + " status": 2,
		b + " timeout": 0, b + " refused": 0, b + " tls": 0, b + " error": 0, b + " auth": 0, b + " local_error": 0,
	}
	if diff := cmp.Diff(wantChecks, h.series(MetricChecks)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", MetricChecks, diff)
	}
	if diff := cmp.Diff(map[string]float64{b: 5}, h.series(MetricCheckDuration)); diff != "" {
		t.Errorf("%s sample count (-want +got):\n%s", MetricCheckDuration, diff)
	}
	if diff := cmp.Diff([]BackendStatus{{Address: b, Healthy: true, State: Up, Reason: "status 200"}}, h.c.Status()); diff != "" {
		t.Errorf("Status (-want +got):\n%s", diff)
	}
}

func TestFirstCheckDecides(t *testing.T) {
	tests := []struct {
		name       string
		mode       int
		wantState  State
		wantEvents []string
		wantLog    string
	}{
		{
			name: "a first success brings a backend up although rise is 3",
			mode: modeReady, wantState: Up,
			wantEvents: []string{"%s up"}, wantLog: "backend up %s unknown→up: status 200",
		},
		{
			name: "a first failure takes a backend down although fall is 3, without a health change",
			mode: modeUnready, wantState: Down,
			wantEvents: nil, wantLog: "backend down %s unknown→down: status 500",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAPIServer(t, true)
			srv.set(tt.mode)
			b := srv.addr()
			h := newHarness(t, httpsCheck(func(c *config.Health) { c.Rise, c.Fall = 3, 3 }), []string{b})
			if diff := cmp.Diff([]BackendStatus{{Address: b, State: Unknown}}, h.c.Status()); diff != "" {
				t.Errorf("Status before Run (-want +got):\n%s", diff)
			}
			h.run()
			h.clock.waitPending(t, 1)
			if got := h.c.Status()[0].State; got != tt.wantState {
				t.Errorf("state after the first check = %v, want %v", got, tt.wantState)
			}
			var wantEvents []string
			for _, e := range tt.wantEvents {
				wantEvents = append(wantEvents, fmt.Sprintf(e, b))
			}
			h.waitEvents(wantEvents...)
			if diff := cmp.Diff([]string{fmt.Sprintf(tt.wantLog, b)}, h.stateChanges()); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStateChangeLogSaysWhy(t *testing.T) {
	tlsSrv := newFakeAPIServer(t, true)
	tlsSrv.set(modeReady)
	hung := newFakeAPIServer(t, true)
	hung.set(modeHang)
	unready := newFakeAPIServer(t, true)
	unready.set(modeUnready)
	refused := refusedAddr(t)
	otherCA := otherCAFile(t)

	tests := []struct {
		name    string
		cfg     config.Health
		backend string
		want    string
	}{
		{name: "an unready apiserver is down for its status", cfg: httpsCheck(nil), backend: unready.addr(), want: "status 500"},
		{name: "a hung apiserver is down for a timeout", cfg: httpsCheck(nil), backend: hung.addr(), want: "timeout after 300ms"},
		{name: "a stopped apiserver is down for a refused connection", cfg: httpsCheck(nil), backend: refused, want: "connection refused"},
		{
			name:    "an apiserver with a certificate from another CA is down for x509",
			cfg:     httpsCheck(func(c *config.Health) { c.CAFile = otherCA }),
			backend: tlsSrv.addr(),
			want:    "tls: failed to verify certificate: x509: certificate signed by unknown authority",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg, []string{tt.backend})
			h.run()
			h.clock.waitPending(t, 1)
			recs := h.logs.all()
			if len(recs) != 1 {
				t.Fatalf("got %d log lines, want 1: %v", len(recs), recs)
			}
			r := recs[0]
			got := []string{r.level.String(), r.msg, r.attrs["frontend"], r.attrs["backend"], r.attrs["from"], r.attrs["to"], r.attrs["reason"]}
			want := []string{"WARN", "backend down", testFrontend, tt.backend, "unknown", "down", tt.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("level, msg, frontend, backend, from, to, reason (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReportFault(t *testing.T) {
	t.Run("a fault a quarter interval after the last check is checked at once", func(t *testing.T) {
		srv := newFakeAPIServer(t, true)
		h := newHarness(t, httpsCheck(nil), []string{srv.addr()})
		h.run()
		h.clock.waitPending(t, 1)
		h.clock.Advance(250 * time.Millisecond) // the regular check is due at 1s
		h.c.ReportFault(srv.addr())
		waitFor(t, "the fault's check", func() bool { return srv.requests.Load() == 2 })
		h.clock.waitPending(t, 1)
		if got := h.clock.lastDuration(); got != time.Second {
			t.Errorf("after the fault's check the next one is due in %v, want the interval 1s", got)
		}
	})

	t.Run("a fault right after a check waits a quarter interval", func(t *testing.T) {
		srv := newFakeAPIServer(t, true)
		h := newHarness(t, httpsCheck(nil), []string{srv.addr()})
		h.run()
		h.clock.waitPending(t, 1)
		h.c.ReportFault(srv.addr())
		waitFor(t, "the check brought forward", func() bool {
			return h.clock.lastDuration() == 250*time.Millisecond && h.clock.Pending() == 1
		})
		if got := srv.requests.Load(); got != 1 {
			t.Fatalf("server saw %d requests before the quarter interval passed, want 1", got)
		}
		h.clock.Advance(250 * time.Millisecond)
		waitFor(t, "the fault's check", func() bool { return srv.requests.Load() == 2 })
	})

	t.Run("faults during a check coalesce into one more check, never two in flight", func(t *testing.T) {
		srv := newFakeAPIServer(t, true)
		srv.set(modeHang)
		b := srv.addr()
		h := newHarness(t, httpsCheck(nil), []string{b})
		h.run()
		waitFor(t, "the first check in flight", func() bool { return srv.inflight.Load() == 1 })
		for range 50 {
			h.c.ReportFault(b)
		}
		srv.set(modeReady)
		// The hung check times out; the faults it could not answer bring
		// the next check forward to a quarter interval after it.
		waitFor(t, "the check brought forward", func() bool {
			return h.clock.lastDuration() == 250*time.Millisecond && h.clock.Pending() == 1
		})
		h.clock.Advance(250 * time.Millisecond)
		waitFor(t, "the fault's check", func() bool { return h.checks(b, ResultSuccess) == 1 })
		h.clock.waitPending(t, 1)
		got := []any{srv.requests.Load(), srv.maxIn.Load(), h.checks(b, ResultTimeout), h.clock.lastDuration()}
		want := []any{int32(2), int32(1), 1.0, time.Second}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("requests, most in flight, timeouts, next wait (-want +got):\n%s", diff)
		}
	})

	t.Run("a fault for an address that is not a backend is ignored", func(t *testing.T) {
		srv := newFakeAPIServer(t, true)
		h := newHarness(t, httpsCheck(nil), []string{srv.addr()})
		h.run()
		h.clock.waitPending(t, 1)
		h.c.ReportFault("127.0.0.1:1")
		if got := h.clock.lastDuration(); got != time.Second {
			t.Errorf("next check due in %v, want 1s", got)
		}
	})
}

func TestUpdate(t *testing.T) {
	ready := newFakeAPIServer(t, true)
	unready := newFakeAPIServer(t, true)
	unready.set(modeUnready)
	added := newFakeAPIServer(t, true)
	a, b, c := ready.addr(), unready.addr(), added.addr()

	h := newHarness(t, httpsCheck(nil), []string{a, b})
	h.run()
	h.clock.waitPending(t, 2)
	if !h.c.Healthy(a) || h.c.Healthy(b) {
		t.Fatalf("before Update: Healthy(a) = %v, Healthy(b) = %v, want true, false", h.c.Healthy(a), h.c.Healthy(b))
	}

	if err := h.c.Update(httpsCheck(nil), []string{a, c}); err != nil {
		t.Fatal(err)
	}
	// The kept backend keeps its state without a new check; the new one
	// starts unknown.
	if !h.c.Healthy(a) || ready.requests.Load() != 1 {
		t.Errorf("kept backend: Healthy = %v after %d checks, want true after 1", h.c.Healthy(a), ready.requests.Load())
	}
	waitFor(t, "the added backend's first check", func() bool { return h.c.Healthy(c) })
	h.clock.waitPending(t, 2)
	if diff := cmp.Diff([]BackendStatus{
		{Address: a, Healthy: true, State: Up, Reason: "status 200"},
		{Address: c, Healthy: true, State: Up, Reason: "status 200"},
	}, h.c.Status()); diff != "" {
		t.Errorf("Status after Update (-want +got):\n%s", diff)
	}
	if h.c.Healthy(b) {
		t.Errorf("a removed backend is healthy")
	}
	if diff := cmp.Diff(map[string]float64{a: 1, c: 1}, h.series(MetricBackendUp)); diff != "" {
		t.Errorf("%s after removing %s (-want +got):\n%s", MetricBackendUp, b, diff)
	}
	for _, name := range []string{MetricChecks, MetricCheckDuration} {
		for key := range h.series(name) {
			if strings.HasPrefix(key, b) {
				t.Errorf("%s still has a series for the removed backend: %q", name, key)
			}
		}
	}

	// The removed backend is no longer checked.
	h.clock.Advance(time.Second)
	h.clock.waitPending(t, 2)
	if got := []int32{ready.requests.Load(), unready.requests.Load(), added.requests.Load()}; !cmp.Equal(got, []int32{2, 1, 2}) {
		t.Errorf("requests to kept, removed, added = %v, want [2 1 2]", got)
	}
	h.waitEvents(a+" up", c+" up")

	// A changed check brings the next check forward for kept backends.
	if err := h.c.Update(httpsCheck(func(c *config.Health) { c.Path = "/livez" }), []string{a, c}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the changed check scheduled", func() bool {
		return h.clock.lastDuration() == 250*time.Millisecond && h.clock.Pending() == 2
	})
	h.clock.Advance(250 * time.Millisecond)
	h.clock.waitPending(t, 2)
	ready.mu.Lock()
	last := ready.paths[len(ready.paths)-1]
	ready.mu.Unlock()
	if last != "/livez" {
		t.Errorf("the kept backend was checked at %s after the reload, want /livez", last)
	}
}

func TestUpdateRejectsABadConfigAndKeepsTheOld(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	h := newHarness(t, httpsCheck(nil), []string{srv.addr()})
	h.run()
	h.clock.waitPending(t, 1)
	err := h.c.Update(httpsCheck(func(c *config.Health) { c.CAFile = "/nonexistent/ca.pem" }), nil)
	if err == nil || !strings.HasPrefix(err.Error(), `frontend "apiserver": health ca_file: open /nonexistent/ca.pem`) {
		t.Fatalf("Update error = %v", err)
	}
	if diff := cmp.Diff([]BackendStatus{{Address: srv.addr(), Healthy: true, State: Up, Reason: "status 200"}}, h.c.Status()); diff != "" {
		t.Errorf("Status after a rejected Update (-want +got):\n%s", diff)
	}
}

func TestTypeNone(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	refused := refusedAddr(t)
	none := config.Health{Type: config.CheckNone}
	h := newHarness(t, none, []string{srv.addr(), refused})
	h.run()
	h.c.ReportFault(refused)
	if !h.c.Healthy(srv.addr()) || !h.c.Healthy(refused) || !h.c.anyHealthy() {
		t.Errorf("type none: Healthy = %v, %v, AnyHealthy = %v, want all true",
			h.c.Healthy(srv.addr()), h.c.Healthy(refused), h.c.anyHealthy())
	}
	if diff := cmp.Diff(map[string]float64{srv.addr(): 1, refused: 1}, h.series(MetricBackendUp)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", MetricBackendUp, diff)
	}
	h.clock.Advance(time.Hour)
	if got := []any{h.clock.Pending(), srv.requests.Load()}; !cmp.Equal(got, []any{0, int32(0)}) {
		t.Errorf("type none: armed timers, requests = %v, want no check at all", got)
	}
}

func TestUpdateChangesType(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	srv.set(modeUnready)
	b := srv.addr()

	h := newHarness(t, httpsCheck(nil), []string{b})
	h.run()
	h.clock.waitPending(t, 1)
	if h.c.Healthy(b) {
		t.Fatal("an unready backend is healthy")
	}

	if err := h.c.Update(config.Health{Type: config.CheckNone}, []string{b}); err != nil {
		t.Fatal(err)
	}
	if !h.c.Healthy(b) {
		t.Error("after switching to type none the backend is not healthy")
	}
	h.waitEvents(b + " up")
	waitFor(t, "the check loop to stop", func() bool { return h.clock.Pending() == 0 })

	// Back to a real check: the backend stays up until fall checks fail,
	// and the first check runs at once.
	if err := h.c.Update(httpsCheck(nil), []string{b}); err != nil {
		t.Fatal(err)
	}
	h.clock.waitPending(t, 1)
	if !h.c.Healthy(b) || srv.requests.Load() != 2 {
		t.Errorf("after one failed check: Healthy = %v after %d requests, want true after 2", h.c.Healthy(b), srv.requests.Load())
	}
	h.clock.Advance(time.Second)
	waitFor(t, "the second failure", func() bool { return !h.c.Healthy(b) })
	h.waitEvents(b+" up", b+" down")
	want := []string{
		"backend down " + b + " unknown→down: status 500",
		"backend up " + b + " down→up: health check type none",
		"backend down " + b + " up→down: status 500",
	}
	waitFor(t, "three log lines", func() bool { return len(h.logs.all()) == 3 })
	if diff := cmp.Diff(want, h.stateChanges()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestTrack(t *testing.T) {
	fast := newFakeAPIServer(t, true)
	fast.set(modeUnready)
	slow := newFakeAPIServer(t, true)
	slow.set(modeHang)
	a, b := fast.addr(), slow.addr()
	h := newHarness(t, httpsCheck(nil), []string{a, b})

	var mu sync.Mutex
	var reports []bool
	got := func() []bool {
		mu.Lock()
		defer mu.Unlock()
		return append([]bool(nil), reports...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- h.c.Track(ctx, func(ok bool) {
			mu.Lock()
			defer mu.Unlock()
			reports = append(reports, ok)
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Track returned %v", err)
		}
	})
	h.run()

	// One backend is down, the other still in its first check: no verdict yet.
	waitFor(t, "the slow backend's first check in flight", func() bool { return slow.inflight.Load() == 1 })
	waitFor(t, "the fast backend down", func() bool { return h.c.Status()[0].State == Down })
	if r := got(); len(r) != 0 {
		t.Fatalf("Track reported %v before every backend had a first result", r)
	}
	waitFor(t, "the first report", func() bool { return len(got()) == 1 })
	h.clock.waitPending(t, 2)

	fast.set(modeReady)
	for range 2 { // rise 2
		h.clock.Advance(time.Second)
		h.clock.waitPending(t, 2)
	}
	waitFor(t, "the second report", func() bool { return len(got()) == 2 })

	// Removing the only healthy backend is no subscriber event, but Track sees it.
	if err := h.c.Update(httpsCheck(nil), []string{b}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the third report", func() bool { return len(got()) == 3 })
	if diff := cmp.Diff([]bool{false, true, false}, got()); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
}

func TestFrontendTrackerName(t *testing.T) {
	c, err := New(testFrontend, httpsCheck(nil), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Tracker().Name(); got != "frontend apiserver" {
		t.Errorf("Name = %q", got)
	}
}

func TestTrackReportsAtOnceWhenOneBackendIsUp(t *testing.T) {
	ready := newFakeAPIServer(t, true)
	hung := newFakeAPIServer(t, true)
	hung.set(modeHang)
	h := newHarness(t, httpsCheck(func(c *config.Health) { c.Timeout = 5 * time.Second }), []string{ready.addr(), hung.addr()})
	h.run()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reports := make(chan bool, 10)
	go func() { _ = h.c.Tracker().Run(ctx, func(ok bool) { reports <- ok }) }()
	select {
	case ok := <-reports:
		if !ok {
			t.Error("first report false, want true")
		}
	case <-time.After(3 * time.Second):
		t.Error("no report while one backend is up and the other's check hangs")
	}
}

func TestSubscribeCancelStopsCalls(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	b := srv.addr()
	h := newHarness(t, httpsCheck(func(c *config.Health) { c.Fall = 1 }), []string{b})
	var mu sync.Mutex
	var calls []bool
	cancelSub := h.c.Subscribe(func(_ string, healthy bool) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, healthy)
	})
	h.run()
	h.waitEvents(b + " up")
	cancelSub()
	srv.set(modeUnready)
	h.clock.Advance(time.Second)
	h.waitEvents(b+" up", b+" down") // the harness's own subscriber still hears it
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]bool{true}, calls); diff != "" {
		t.Errorf("calls to the cancelled subscriber (-want +got):\n%s", diff)
	}
}

func TestSubscriberMayCallTheChecker(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	b := srv.addr()
	h := newHarness(t, httpsCheck(nil), []string{b})
	seen := make(chan []BackendStatus, 1)
	h.c.Subscribe(func(backend string, healthy bool) {
		// No lock is held: the checker's own methods work from inside.
		h.c.ReportFault(backend)
		seen <- h.c.Status()
	})
	h.run()
	select {
	case st := <-seen:
		if !st[0].Healthy {
			t.Errorf("Status inside the callback: %+v, want healthy", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscriber was not called, or deadlocked")
	}
}

func TestRunTwice(t *testing.T) {
	c, err := New(testFrontend, httpsCheck(nil), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatalf("first Run: %v", err)
	}
	if err := c.Run(ctx); err == nil || err.Error() != `frontend "apiserver": health checker already ran` {
		t.Errorf("second Run = %v", err)
	}
}

func TestNewRejectsAZeroInterval(t *testing.T) {
	_, err := New(testFrontend, httpsCheck(func(c *config.Health) { c.Interval = 0 }), nil, Options{})
	if err == nil || err.Error() != `frontend "apiserver": health interval 0s: must be positive` {
		t.Errorf("New = %v", err)
	}
}

func TestChecksAreJittered(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	h := newHarnessWith(t, httpsCheck(func(c *config.Health) { c.Interval = 10 * time.Second }), []string{srv.addr()}, nil)
	h.run()
	var waits []time.Duration
	for range 8 {
		h.clock.waitPending(t, 1)
		waits = append(waits, h.clock.lastDuration())
		h.clock.Advance(11 * time.Second)
	}
	h.clock.waitPending(t, 1)
	sort.Slice(waits, func(i, j int) bool { return waits[i] < waits[j] })
	if waits[0] < 9*time.Second || waits[len(waits)-1] >= 11*time.Second {
		t.Errorf("waits %v leave 10s ±10%%", waits)
	}
	if waits[0] == waits[len(waits)-1] {
		t.Errorf("waits %v are all equal: no jitter", waits)
	}
}

func TestRunStopsAHangingCheckAtOnce(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	srv.set(modeHang)
	h := newHarness(t, httpsCheck(func(c *config.Health) { c.Timeout = time.Minute }), []string{srv.addr()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.c.Run(ctx) }()
	waitFor(t, "the check in flight", func() bool { return srv.inflight.Load() == 1 })
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("Run took %v to stop", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop while a check hung")
	}
	if got := h.series(MetricChecks)[srv.addr()+" "+ResultTimeout]; got != 0 {
		t.Errorf("a check cut short by shutdown was counted as a timeout")
	}
}

// anyHealthy reports whether at least one backend is Up: what Track reports.
func (c *Checker) anyHealthy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.anyHealthyLocked()
}
