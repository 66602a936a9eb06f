package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/sync/errgroup"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/vrrp"
)

// Metrics of the engine process itself, beside the VRRP metrics.
const (
	engineMetricsNamespace = "vrrplb_vrrp_engine" // + _process_* from the process collector
	metricEngineGoroutines = "vrrplb_vrrp_engine_goroutines"
	metricEngineRealtime   = "vrrplb_vrrp_engine_realtime"
	metricEngineGCPauseMax = "vrrplb_vrrp_engine_gc_pause_max_seconds"
)

// pastDeadline makes a blocked read return at once.
var pastDeadline = time.Unix(1, 0)

// engineRTPriority is the SCHED_FIFO priority of the engine's threads: the
// lowest band above every normal process, below the kernel's own threads.
const engineRTPriority = 10

// cmdVRRPEngine is the VRRP engine: it reads requests from fd 3 until the
// daemon closes it, then stops its instances (a master hands over) and
// exits. It ignores SIGINT, SIGTERM and SIGHUP, which reach it too when
// they are sent to the daemon's process group: the daemon decides.
func cmdVRRPEngine(args []string, _, stderr io.Writer) error {
	if len(args) != 0 {
		return errUsage
	}
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	rtErr := setRealtime(engineRTPriority)

	f := os.NewFile(3, "vrrp-engine")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: fd 3 is not the daemon's socket: %w (this command is started by `vrrplb run`)", engineCommand, err)
	}
	conn := c.(*net.UnixConn)
	defer conn.Close()
	dec, enc := json.NewDecoder(conn), json.NewEncoder(conn)

	var req engineRequest
	if err := dec.Decode(&req); err != nil || req.Config == nil {
		return fmt.Errorf("%s: the daemon sent no config: %v", engineCommand, err)
	}
	cfg, err := config.Parse(req.Config.Path, req.Config.TOML)
	if err != nil {
		_ = enc.Encode(engineReply{Error: err.Error()})
		return exitError{code: 1}
	}
	d := newBareDaemon(cfg, stderr)
	d.log = d.log.With("process", "vrrp-engine")
	hub := newVerdictHub()
	d.frontendTracker = hub.tracker
	registerEngineMetrics(d.reg, rtErr == nil)
	if rtErr != nil {
		d.log.Warn("VRRP engine runs at normal priority: proxy load on this host can delay advertisements; grant CAP_SYS_NICE for real-time priority",
			"err", rtErr)
	} else {
		d.log.Debug("VRRP engine runs at real-time priority", "policy", "SCHED_FIFO", "priority", engineRTPriority)
	}
	if err := wireVRRP(d, cfg); err != nil {
		_ = enc.Encode(engineReply{Error: err.Error()})
		return exitError{code: 1}
	}
	if err := enc.Encode(engineReply{}); err != nil {
		return fmt.Errorf("%s: %w", engineCommand, err)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.sup.Run(gctx) })
	g.Go(func() error {
		// An instance that failed ends gctx: the engine exits with its
		// error and the daemon starts it again.
		<-gctx.Done()
		_ = conn.SetReadDeadline(pastDeadline)
		return nil
	})
	g.Go(func() error {
		defer stop()
		return serveEngine(d, hub, dec, enc)
	})
	return g.Wait()
}

// serveEngine answers the daemon's requests until it closes the socket.
func serveEngine(d *daemon, hub *verdictHub, dec *json.Decoder, enc *json.Encoder) error {
	for {
		var req engineRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				d.log.Debug("the daemon closed the VRRP engine's socket: stopping")
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil // stopping on an instance's failure
			}
			return fmt.Errorf("%s: read: %w", engineCommand, err)
		}
		var reply engineReply
		switch {
		case req.Frontend != nil:
			hub.set(req.Frontend.Name, req.Frontend.Up)
			continue
		case req.Config != nil:
			if err := applyEngineConfig(d, req.Config); err != nil {
				reply.Error = err.Error()
			}
		case req.Metrics:
			b, err := gatherProto(d.reg)
			if err != nil {
				d.log.Error("VRRP engine metrics", "err", err)
			}
			reply.Metrics = b
		case req.Maintenance != nil:
			if d.setMaintenance == nil {
				reply.Error = "this VRRP engine cannot put instances in maintenance"
			} else if err := d.setMaintenance(*req.Maintenance); err != nil {
				reply.Error = err.Error()
			}
		case req.Status:
			doc := statusDoc{}
			for _, fill := range d.status {
				fill(&doc)
			}
			reply.Status = doc.Instances
		}
		if err := enc.Encode(reply); err != nil {
			return fmt.Errorf("%s: write: %w", engineCommand, err)
		}
	}
}

// applyEngineConfig applies a config the daemon has validated and applied
// to its own part.
func applyEngineConfig(d *daemon, ec *engineConfig) error {
	cfg, err := config.Parse(ec.Path, ec.TOML)
	if err != nil {
		return err
	}
	if err := d.check(cfg); err != nil {
		return err
	}
	return d.apply(cfg)
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

// registerEngineMetrics registers the engine's process metrics under their
// own names, so they do not collide with the daemon's process_* and go_*.
func registerEngineMetrics(reg prometheus.Registerer, realtime bool) {
	rt := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: metricEngineRealtime,
		Help: "1 if the VRRP engine runs at real-time priority (SCHED_FIFO), 0 if it could not get it (no CAP_SYS_NICE).",
	})
	if realtime {
		rt.Set(1)
	}
	reg.MustRegister(rt,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: engineMetricsNamespace}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricEngineGoroutines,
			Help: "Goroutines in the VRRP engine process.",
		}, func() float64 { return float64(runtime.NumGoroutine()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricEngineGCPauseMax,
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

// verdictHub holds the frontend verdicts the daemon forwards, for the
// engine's track_frontend trackers.
type verdictHub struct {
	mu       sync.Mutex
	verdicts map[string]bool
	watchers map[chan struct{}]struct{}
}

func newVerdictHub() *verdictHub {
	return &verdictHub{verdicts: map[string]bool{}, watchers: map[chan struct{}]struct{}{}}
}

func (h *verdictHub) set(name string, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.verdicts[name] = up
	for w := range h.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

func (h *verdictHub) tracker(name string) (vrrp.Tracker, error) {
	return frontendVerdicts{hub: h, name: name}, nil
}

// frontendVerdicts is track_frontend in the engine: like the health
// checker's own tracker it first reports once the frontend has a verdict,
// then on every change.
type frontendVerdicts struct {
	hub  *verdictHub
	name string
}

func (t frontendVerdicts) Name() string { return "frontend " + t.name }

func (t frontendVerdicts) Run(ctx context.Context, report func(ok bool)) error {
	h := t.hub
	wake := make(chan struct{}, 1)
	h.mu.Lock()
	h.watchers[wake] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.watchers, wake)
		h.mu.Unlock()
	}()
	reported, last := false, false
	for {
		h.mu.Lock()
		up, known := h.verdicts[t.name]
		h.mu.Unlock()
		if known && (!reported || up != last) {
			report(up)
			reported, last = true, up
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}
