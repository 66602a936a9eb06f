package health

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vrrplb/vrrplb/internal/prom"
)

// Metric names (DESIGN.md). Labels: frontend and backend as configured
// ("host:port"); result is one of the Result* constants.
const (
	MetricBackendUp     = "vrrplb_backend_up"
	MetricCheckDuration = "vrrplb_health_check_duration_seconds"
	MetricChecks        = "vrrplb_health_checks_total"
)

// durationBuckets cover a check from a loopback connect (about 1ms) to the
// longest sensible timeout, with the 1s default timeout as a boundary.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics are the health metrics of every frontend's Checker. Create them
// once per registry and pass them to each Checker; a nil *Metrics records
// nothing.
type Metrics struct {
	up       *prometheus.GaugeVec
	duration *prometheus.HistogramVec
	checks   *prometheus.CounterVec
}

// NewMetrics creates the health metrics and registers them with reg (nil:
// not registered, for tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		up: prom.GaugeVec(MetricBackendUp,
			"1 while the backend passes its health checks (state up), 0 while it is down or not yet checked.",
			"frontend", "backend"),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricCheckDuration,
			Help:    "How long each active health check took, failures included.",
			Buckets: durationBuckets,
		}, []string{"frontend", "backend"}),
		checks: prom.CounterVec(MetricChecks,
			"Active health checks by result: success, timeout, refused, status, auth (401 or 403: not allowed), tls, error, or local_error (could not run on this host: no verdict).",
			"frontend", "backend", "result"),
	}
	if err := prom.Register(reg, "health metrics", m.up, m.duration, m.checks); err != nil {
		return nil, err
	}
	return m, nil
}

// add creates a backend's series: up as given, the duration histogram and
// every check result at zero, so rate() and alerts work from the first scrape.
func (m *Metrics) add(frontend, backend string, up bool) {
	if m == nil {
		return
	}
	m.setUp(frontend, backend, up)
	m.duration.WithLabelValues(frontend, backend)
	for _, r := range results {
		m.checks.WithLabelValues(frontend, backend, r)
	}
}

func (m *Metrics) setUp(frontend, backend string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(frontend, backend).Set(v)
}

func (m *Metrics) observe(frontend, backend string, r result, took time.Duration) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(frontend, backend).Observe(took.Seconds())
	m.checks.WithLabelValues(frontend, backend, r.kind).Inc()
}

// forget deletes every series of a backend that is no longer configured.
func (m *Metrics) forget(frontend, backend string) {
	if m == nil {
		return
	}
	labels := map[string]string{"frontend": frontend, "backend": backend}
	m.up.DeletePartialMatch(labels)
	m.duration.DeletePartialMatch(labels)
	m.checks.DeletePartialMatch(labels)
}
