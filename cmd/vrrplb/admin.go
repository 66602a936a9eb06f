package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names owned by the daemon itself (DESIGN.md).
const (
	metricBuildInfo         = "vrrplb_build_info"
	metricReloadSuccessful  = "vrrplb_config_last_reload_successful"
	metricReloadSuccessTime = "vrrplb_config_last_reload_success_timestamp_seconds"
)

type daemonMetrics struct {
	reloadSuccessful  prometheus.Gauge
	reloadSuccessTime prometheus.Gauge
}

func newDaemonMetrics(reg prometheus.Registerer) *daemonMetrics {
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricBuildInfo,
		Help: "Always 1; the labels say which vrrplb build is running.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	m := &daemonMetrics{
		reloadSuccessful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricReloadSuccessful,
			Help: "1 if the last config load (start or SIGHUP) succeeded, 0 if the file was rejected and the previous config is still running.",
		}),
		reloadSuccessTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricReloadSuccessTime,
			Help: "Unix time of the last successful config load.",
		}),
	}
	reg.MustRegister(build, m.reloadSuccessful, m.reloadSuccessTime)
	return m
}

func (m *daemonMetrics) reloadOK(ok bool, now time.Time) {
	if !ok {
		m.reloadSuccessful.Set(0)
		return
	}
	m.reloadSuccessful.Set(1)
	m.reloadSuccessTime.Set(float64(now.UnixNano()) / 1e9)
}

// statusDoc is the /status document (DESIGN.md "Admin HTTP").
type statusDoc struct {
	Instances []instanceStatus `json:"instances"`
	// InstancesStale is true when the VRRP engine did not answer within
	// statusDeadline (busy applying a reload, or restarting): Instances are
	// then its last answer, of InstancesAsOf ("" if it never answered).
	InstancesStale bool             `json:"instances_stale,omitempty"`
	InstancesAsOf  string           `json:"instances_as_of,omitempty"`
	Frontends      []frontendStatus `json:"frontends"`
	BGP            *bgpStatus       `json:"bgp,omitempty"` // bgp.go; absent without [bgp]
}

type instanceStatus struct {
	Name              string `json:"name"`
	State             string `json:"state"` // init, backup, master, fault
	Priority          int    `json:"priority"`
	EffectivePriority int    `json:"effective_priority"`
	MasterIP          string `json:"master_ip"` // "" while unknown
	// VirtualIPs are the configured VIPs, held or not.
	VirtualIPs []string `json:"virtual_ips"`
	// HeldIPs are the VIPs this host holds now: a master's; none in
	// backup or fault.
	HeldIPs []string `json:"held_ips"`
	// Maintenance is set by `vrrplb maintenance on`: the instance hands its
	// VIPs over and stays in the election at the lowest priority.
	Maintenance bool `json:"maintenance"`
}

type frontendStatus struct {
	Name   string `json:"name"`
	Listen string `json:"listen"`
	// FailOpen is true while no backend is healthy and fail_open sends
	// new connections to every backend.
	FailOpen bool            `json:"fail_open"`
	Backends []backendStatus `json:"backends"`
}

type backendStatus struct {
	Address           string `json:"address"`
	Healthy           bool   `json:"healthy"`
	Draining          bool   `json:"draining"` // `vrrplb backend drain`: no new connections
	ActiveConnections int64  `json:"active_connections"`
	// Reason is what the last health check found: "status 200",
	// "status 401 (check not allowed)", "connection refused"; "" before the
	// first check.
	Reason string `json:"reason"`
}

// maxScrapesInFlight caps the /metrics and the /status requests served at
// once; more are answered 503 at once. The VRRP engine's part of either is
// a snapshot it refreshes at most every engine.DefaultSnapshotInterval.
const maxScrapesInFlight = 8

// adminServer serves /metrics, /healthz and /status.
type adminServer struct {
	ln  net.Listener
	srv *http.Server
}

func newAdminServer(ln net.Listener, d *daemon) *adminServer {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.gather, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapesInFlight,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	statusSlots := make(chan struct{}, maxScrapesInFlight)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		select {
		case statusSlots <- struct{}{}:
			defer func() { <-statusSlots }()
		default:
			http.Error(w, "too many /status requests in flight", http.StatusServiceUnavailable)
			return
		}
		doc := statusDoc{Instances: []instanceStatus{}, Frontends: []frontendStatus{}}
		for _, fill := range d.status {
			fill(r.Context(), &doc)
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(doc)
	})
	return &adminServer{
		ln: ln,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       time.Minute,
		},
	}
}

// Run serves until ctx ends, then shuts down, giving requests in flight a
// moment to finish.
func (a *adminServer) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(a.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
