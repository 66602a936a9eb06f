package health

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/metricstest"
	"github.com/vrrplb/vrrplb/internal/poll"
)

func TestMetricNamesAndLabels(t *testing.T) {
	m, reg := metricstest.New(t, NewMetrics)
	if _, err := New(testFrontend, httpsCheck(nil), []string{"127.0.0.1:6443"}, Options{Metrics: m}); err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP vrrplb_backend_up 1 while the backend passes its health checks (state up), 0 while it is down or not yet checked.
# TYPE vrrplb_backend_up gauge
vrrplb_backend_up{backend="127.0.0.1:6443",frontend="apiserver"} 0
# HELP vrrplb_health_checks_total Active health checks by result: success, timeout, refused, status, auth (401 or 403: not allowed), tls, error, or local_error (could not run on this host: no verdict).
# TYPE vrrplb_health_checks_total counter
vrrplb_health_checks_total{backend="127.0.0.1:6443",frontend="apiserver",result="auth"} 0
vrrplb_health_checks_total{backend="127.0.0.1:6443",frontend="apiserver",result="error"} 0
vrrplb_health_checks_total{backend="127.0.0.1:6443",frontend="apiserver",result="local_error"} 0
vrrplb_health_checks_total{backend="127.0.0.1:6443",frontend="apiserver",result="refused"} 0
vrrplb_health_checks_total{backend="127.0.0.1:6443",frontend="apiserver",result="status"} 0
vrrplb_health_checks_total{backend="127.0.0.1:6443",frontend="apiserver",result="success"} 0
vrrplb_health_checks_total{backend="127.0.0.1:6443",frontend="apiserver",result="timeout"} 0
vrrplb_health_checks_total{backend="127.0.0.1:6443",frontend="apiserver",result="tls"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), MetricBackendUp, MetricChecks); err != nil {
		t.Error(err)
	}
	if got := testutil.CollectAndCount(m.duration, MetricCheckDuration); got != 1 {
		t.Errorf("%s has %d series before any check, want 1", MetricCheckDuration, got)
	}
	for _, c := range []prometheus.Collector{m.up, m.duration, m.checks} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint %s: %s", p.Metric, p.Text)
		}
	}
}

func TestNewMetricsTwiceOnOneRegistryFails(t *testing.T) {
	metricstest.SecondOnOneRegistryFails(t, NewMetrics, "register health metrics: ")
}

func TestCheckDurationIsTheRealTimeTaken(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	srv.set(modeHang)
	h := newHarness(t, httpsCheck(nil), []string{srv.addr()})
	h.run()
	h.clock.waitPending(t, 1)

	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	var bounds []float64
	for _, mf := range mfs {
		if mf.GetName() != MetricCheckDuration {
			continue
		}
		hist := mf.GetMetric()[0].GetHistogram()
		sum = hist.GetSampleSum()
		for _, b := range hist.GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
		}
	}
	if sum < testTimeout.Seconds() || sum > 5 {
		t.Errorf("a check that timed out after %v took %vs by the histogram", testTimeout, sum)
	}
	if diff := cmp.Diff(durationBuckets, bounds); diff != "" {
		t.Errorf("buckets (-want +got):\n%s", diff)
	}
}

func TestNoMetricsNoLoggerStillChecks(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	c, err := New(testFrontend, httpsCheck(nil), []string{srv.addr()}, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, "the backend up", func() bool { return c.Healthy(srv.addr()) })
	if err := c.Update(config.Health{Type: config.CheckNone}, nil); err != nil {
		t.Error(err)
	}
	cancel()
	if err := poll.Receive(t, done, 5*time.Second, "Run to return"); err != nil {
		t.Error(err)
	}
}
