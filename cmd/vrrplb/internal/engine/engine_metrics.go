package engine

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// Metrics of the engine process itself, beside the VRRP metrics.
const (
	metricsNamespace    = "vrrplb_vrrp_engine" // + _process_* from the process collector
	MetricGoroutines    = "vrrplb_vrrp_engine_goroutines"
	MetricRealtime      = "vrrplb_vrrp_engine_realtime"
	MetricGCPauseMax    = "vrrplb_vrrp_engine_gc_pause_max_seconds"
	MetricProcessOpenFD = "vrrplb_vrrp_engine_process_open_fds"
)

// registerMetrics registers the engine's process metrics under their own
// names, so they do not collide with the daemon's process_* and go_*.
func registerMetrics(reg prometheus.Registerer, realtime bool) {
	rt := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricRealtime,
		Help: "1 if the VRRP engine runs at real-time priority (SCHED_FIFO), 0 if it could not get it (no CAP_SYS_NICE).",
	})
	if realtime {
		rt.Set(1)
	}
	reg.MustRegister(rt,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: metricsNamespace}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: MetricGoroutines,
			Help: "Goroutines in the VRRP engine process.",
		}, func() float64 { return float64(runtime.NumGoroutine()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: MetricGCPauseMax,
			Help: "The longest of the VRRP engine's last 256 garbage-collection pauses (stop the world), in seconds.",
		}, gcPauseMax),
	)
}

// gcPauseMax is the longest pause the runtime remembers (its last 256).
func gcPauseMax() float64 {
	st := debug.GCStats{PauseQuantiles: make([]time.Duration, 2)} // min, max
	debug.ReadGCStats(&st)
	return st.PauseQuantiles[1].Seconds()
}

// gatherProto encodes what reg gathers in the protobuf exposition format.
func gatherProto(reg prometheus.Gatherer) ([]byte, error) {
	mfs, err := reg.Gather()
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, mf := range mfs {
		if e := enc.Encode(mf); e != nil && err == nil {
			err = e
		}
	}
	return b.Bytes(), err
}
