package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vrrplb/vrrplb/internal/prom"
)

// Metric names (DESIGN.md). vrrplb_backend_up and the health_check series
// belong to package health.
const (
	MetricFrontendConnections  = "vrrplb_frontend_connections_total"
	MetricFrontendActive       = "vrrplb_frontend_active_connections"
	MetricFrontendRejected     = "vrrplb_frontend_rejected_total"
	MetricBackendActive        = "vrrplb_backend_active_connections"
	MetricBackendConnections   = "vrrplb_backend_connections_total"
	MetricBackendConnectErrors = "vrrplb_backend_connect_errors_total"
	MetricBackendBytes         = "vrrplb_backend_bytes_total"
	MetricFrontendFailOpen     = "vrrplb_frontend_fail_open"
	MetricBackendDraining      = "vrrplb_backend_draining"
)

// Values of the reason label of vrrplb_frontend_rejected_total.
const (
	// ReasonMaxConnections: the frontend already had max_connections.
	ReasonMaxConnections = "max_connections"
	// ReasonNoBackend: no healthy backend, or every connect tried failed.
	ReasonNoBackend = "no_backend"
	// ReasonFDLimit: accept or connect failed with EMFILE/ENFILE.
	ReasonFDLimit = "fd_limit"
	// ReasonAcceptError: accept failed for another reason.
	ReasonAcceptError = "accept_error"
)

// Values of the direction label of vrrplb_backend_bytes_total.
const (
	DirectionToBackend = "to_backend"
	DirectionToClient  = "to_client"
)

// Metrics are the proxy's Prometheus series, shared by all frontends.
type Metrics struct {
	connections   *prometheus.CounterVec
	active        *prometheus.GaugeVec
	rejected      *prometheus.CounterVec
	backendActive *prometheus.GaugeVec
	backendConns  *prometheus.CounterVec
	backendErrors *prometheus.CounterVec
	backendBytes  *prometheus.CounterVec
	failOpen      *prometheus.GaugeVec
	draining      *prometheus.GaugeVec
}

// NewMetrics creates the proxy's series and registers them with reg; a nil
// reg leaves them unregistered (the counting still works).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		connections: prom.CounterVec(MetricFrontendConnections,
			"Client connections accepted by the frontend.",
			"frontend"),
		active: prom.GaugeVec(MetricFrontendActive,
			"Client connections open on the frontend now.",
			"frontend"),
		rejected: prom.CounterVec(MetricFrontendRejected,
			"Client connections closed without being proxied, by reason.",
			"frontend", "reason"),
		backendActive: prom.GaugeVec(MetricBackendActive,
			"Proxied connections open to the backend now.",
			"frontend", "backend"),
		backendConns: prom.CounterVec(MetricBackendConnections,
			"Connections proxied to the backend.",
			"frontend", "backend"),
		backendErrors: prom.CounterVec(MetricBackendConnectErrors,
			"Failed connects to the backend (each one is retried elsewhere and reported to health).",
			"frontend", "backend"),
		backendBytes: prom.CounterVec(MetricBackendBytes,
			"Bytes proxied, by direction: to_backend (client to backend) or to_client.",
			"frontend", "backend", "direction"),
		failOpen: prom.GaugeVec(MetricFrontendFailOpen,
			"1 while fail_open applies: no backend is healthy and new connections go to every backend.",
			"frontend"),
		draining: prom.GaugeVec(MetricBackendDraining,
			"1 while the backend is drained (vrrplb backend drain): no new connections, live ones go on.",
			"frontend", "backend"),
	}
	err := prom.Register(reg, "proxy metrics", m.connections, m.active, m.rejected,
		m.backendActive, m.backendConns, m.backendErrors, m.backendBytes, m.failOpen, m.draining)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// frontendMetrics are one frontend's series, looked up once.
type frontendMetrics struct {
	m           *Metrics
	name        string
	connections prometheus.Counter
	active      prometheus.Gauge
	failOpen    prometheus.Gauge
}

func (m *Metrics) frontend(name string) frontendMetrics {
	// Every refusal reason exists from the start at 0, so a dashboard and
	// an alert on its rate see the series before the first refusal.
	for _, reason := range []string{ReasonMaxConnections, ReasonNoBackend, ReasonFDLimit, ReasonAcceptError} {
		m.rejected.WithLabelValues(name, reason)
	}
	return frontendMetrics{
		m:           m,
		name:        name,
		connections: m.connections.WithLabelValues(name),
		active:      m.active.WithLabelValues(name),
		failOpen:    m.failOpen.WithLabelValues(name),
	}
}

func (fm frontendMetrics) setFailOpen(on bool) {
	v := 0.0
	if on {
		v = 1
	}
	fm.failOpen.Set(v)
}

func (fm frontendMetrics) reject(reason string) {
	fm.m.rejected.WithLabelValues(fm.name, reason).Inc()
}

// backendMetrics are one backend's series, looked up once when the backend
// joins the frontend; a connection still draining after its backend was
// removed keeps counting into these handles without recreating the series.
type backendMetrics struct {
	active         prometheus.Gauge
	connections    prometheus.Counter
	connectErrors  prometheus.Counter
	bytesToBackend prometheus.Counter
	bytesToClient  prometheus.Counter
	draining       prometheus.Gauge
}

func (fm frontendMetrics) backend(addr string) backendMetrics {
	m, fe := fm.m, fm.name
	return backendMetrics{
		active:         m.backendActive.WithLabelValues(fe, addr),
		connections:    m.backendConns.WithLabelValues(fe, addr),
		connectErrors:  m.backendErrors.WithLabelValues(fe, addr),
		bytesToBackend: m.backendBytes.WithLabelValues(fe, addr, DirectionToBackend),
		bytesToClient:  m.backendBytes.WithLabelValues(fe, addr, DirectionToClient),
		draining:       m.draining.WithLabelValues(fe, addr),
	}
}

// deleteBackend removes a removed backend's series.
func (fm frontendMetrics) deleteBackend(addr string) {
	m, fe := fm.m, fm.name
	m.backendActive.DeleteLabelValues(fe, addr)
	m.backendConns.DeleteLabelValues(fe, addr)
	m.backendErrors.DeleteLabelValues(fe, addr)
	m.backendBytes.DeleteLabelValues(fe, addr, DirectionToBackend)
	m.backendBytes.DeleteLabelValues(fe, addr, DirectionToClient)
	m.draining.DeleteLabelValues(fe, addr)
}
