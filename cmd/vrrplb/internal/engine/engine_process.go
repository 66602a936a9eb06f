package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/vrrp"
)

// rtPriority is the SCHED_FIFO priority of the engine's threads: the
// lowest band above every normal process, below the kernel's own threads.
const rtPriority = 10

// pastDeadline makes a blocked read return at once.
var pastDeadline = time.Unix(1, 0)

// requestQueue is how many requests may wait for the engine's worker.
const requestQueue = 16

// process is the engine process: the VRRP instances of the config the
// daemon sent, and the frontend verdicts it forwards.
type process struct {
	log       *slog.Logger
	level     *slog.LevelVar
	reg       *prometheus.Registry
	instances *vrrp.Set
	verdicts  *verdictHub

	// Owned by the worker goroutine.
	prepared *vrrp.SetPlan
	next     *config.Config // the config of prepared
}

// Main is `vrrplb vrrp-engine`: it reads requests from fd 3 until the
// daemon closes it, then stops its instances (a master hands over) and
// returns. It drops SIGINT, SIGTERM and SIGHUP, which reach it too when
// they are sent to the daemon's process group: the daemon decides.
func Main(logOut io.Writer) error {
	// Caught and dropped rather than ignored: an ignored signal stays
	// ignored in the scripts and notify commands the engine runs.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	rtErr := setRealtime(rtPriority)

	f := os.NewFile(3, Command)
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: fd 3 is not the daemon's socket: %w (this command is started by `vrrplb run`)", Command, err)
	}
	conn := c.(*net.UnixConn)
	defer conn.Close()
	dec, enc := json.NewDecoder(conn), json.NewEncoder(conn)

	// The first request is the config to start with; its log settings are
	// the engine's.
	var first request
	if err := dec.Decode(&first); err != nil || first.Prepare == nil {
		return fmt.Errorf("%s: the daemon sent no config: %v", Command, err)
	}
	cfg, err := config.Parse(first.Prepare.Path, first.Prepare.TOML)
	if err != nil {
		_ = enc.Encode(reply{ID: first.ID, Error: err.Error()})
		return errors.New("the daemon's config does not parse")
	}
	p, err := newProcess(cfg, logOut, rtErr == nil)
	if err != nil {
		return fmt.Errorf("%s: %w", Command, err)
	}
	if rtErr != nil {
		p.log.Warn("VRRP engine runs at normal priority: proxy load on this host can delay advertisements; grant CAP_SYS_NICE for real-time priority",
			"err", rtErr)
	} else {
		p.log.Debug("VRRP engine runs at real-time priority", "policy", "SCHED_FIFO", "priority", rtPriority)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	queue := make(chan request, requestQueue)
	queue <- first
	runErr := make(chan error, 1)
	go func() {
		err := p.instances.Run(ctx)
		// An instance that failed ends the engine: it exits with the
		// error and the daemon starts it again.
		_ = conn.SetReadDeadline(pastDeadline)
		runErr <- err
	}()
	workerDone := make(chan error, 1)
	go func() { workerDone <- p.work(queue, enc) }()

	readErr := p.read(dec, queue)
	close(queue)
	werr := <-workerDone
	stop()
	ierr := <-runErr
	return errors.Join(ierr, readErr, werr)
}

func newProcess(cfg *config.Config, logOut io.Writer, realtime bool) (*process, error) {
	level := new(slog.LevelVar)
	level.Set(cfg.Log.Level)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(logOut, opts)
	if cfg.Log.Format == config.LogJSON {
		h = slog.NewJSONHandler(logOut, opts)
	}
	p := &process{
		log:      slog.New(h).With("process", Command),
		level:    level,
		reg:      prometheus.NewRegistry(),
		verdicts: newVerdictHub(),
	}
	registerMetrics(p.reg, realtime)
	metrics, err := vrrp.NewMetrics(p.reg)
	if err != nil {
		return nil, err
	}
	p.instances, err = vrrp.NewSet(vrrp.SetOptions{
		Logger:  p.log,
		Metrics: metrics,
		New: vrrp.NewMembers(vrrp.MemberOptions{
			Logger:          p.log,
			Metrics:         metrics,
			FrontendTracker: p.verdicts.tracker,
		}),
	})
	return p, err
}

// read hands the daemon's requests to the worker, and applies verdicts at
// once so that none waits behind a request, until the daemon closes the
// socket or the engine stops.
func (p *process) read(dec *json.Decoder, queue chan<- request) error {
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				p.log.Debug("the daemon closed the VRRP engine's socket: stopping")
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil // stopping on an instance's failure
			}
			return fmt.Errorf("%s: read: %w", Command, err)
		}
		if req.Verdict != nil {
			p.verdicts.set(req.Verdict.Name, req.Verdict.Up)
			continue
		}
		queue <- req
	}
}

// work answers the queued requests in order until the queue closes.
func (p *process) work(queue <-chan request, enc *json.Encoder) error {
	var werr error
	for req := range queue {
		r := p.answer(req)
		if werr != nil {
			continue // drain the queue so read never blocks
		}
		if err := enc.Encode(r); err != nil {
			werr = fmt.Errorf("%s: write: %w", Command, err)
		}
	}
	p.discard()
	return werr
}

// answer carries out one request.
func (p *process) answer(req request) reply {
	r := reply{ID: req.ID}
	var err error
	switch {
	case req.Prepare != nil:
		err = p.prepare(req.Prepare)
	case req.Commit:
		err = p.commit()
	case req.Discard:
		p.discard()
	case req.Maintenance != nil:
		err = p.setMaintenance(*req.Maintenance)
	case req.Snapshot:
		r.Metrics, err = gatherProto(p.reg)
		if err != nil {
			p.log.Error("VRRP engine metrics", "err", err)
			err = nil
		}
		r.Instances = p.instances.Status()
	default:
		err = errors.New("unknown request")
	}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// prepare checks a config and builds what it adds, changing nothing.
func (p *process) prepare(f *configFile) error {
	p.discard()
	cfg, err := config.Parse(f.Path, f.TOML)
	if err != nil {
		return err
	}
	if err := vrrp.CheckHost(cfg); err != nil {
		return err
	}
	plan, err := p.instances.Prepare(cfg)
	if err != nil {
		return err
	}
	p.prepared, p.next = plan, cfg
	return nil
}

// commit applies what prepare built.
func (p *process) commit() error {
	if p.prepared == nil {
		return errors.New("no prepared config to commit")
	}
	plan, cfg := p.prepared, p.next
	p.prepared, p.next = nil, nil
	p.level.Set(cfg.Log.Level)
	return plan.Commit()
}

// MaintenanceCause is the yield cause of `vrrplb maintenance`, shown in an
// instance's Yielding.
const MaintenanceCause = "maintenance"

// setMaintenance applies `vrrplb maintenance` to the instances: those in
// the set yield, and so do those a reload adds while it covers them.
func (p *process) setMaintenance(m MaintenanceSet) error {
	if m.empty() {
		return p.instances.SetYield(MaintenanceCause, nil)
	}
	return p.instances.SetYield(MaintenanceCause, m.Has)
}

func (p *process) discard() {
	if p.prepared != nil {
		p.prepared.Discard()
		p.prepared, p.next = nil, nil
	}
}
