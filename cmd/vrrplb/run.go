package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/vrrp"
)

// component is a long-lived part of the daemon. Run returns when ctx ends
// (after its own graceful stop) or when it fails; a failure stops the daemon.
type component interface {
	Run(ctx context.Context) error
}

// componentFunc adapts a function to component.
type componentFunc func(ctx context.Context) error

func (f componentFunc) Run(ctx context.Context) error { return f(ctx) }

// daemon is what `vrrplb run` wires together.
type daemon struct {
	log      *slog.Logger
	logLevel *slog.LevelVar
	logOut   io.Writer
	reg      *prometheus.Registry
	// gather is what /metrics serves: reg, and the VRRP engine's metrics.
	gather  prometheus.Gatherers
	metrics *daemonMetrics

	mu  sync.Mutex
	cfg *config.Config

	// sup runs the components: the VRRP engine, frontends, health checkers.
	sup *supervisor
	// frontendTracker is track_frontend's source: the health checker of
	// the frontend called name (wireProxy).
	frontendTracker func(name string) (vrrp.Tracker, error)
	// status fills in the parts of /status each component owns, each
	// waiting for its own figures no longer than ctx allows.
	status []func(ctx context.Context, doc *statusDoc)
	// checks refuse a new config before anything is prepared.
	checks []func(next *config.Config) error
	// reloaders prepare a checked new config: everything that can fail is
	// done in prepare, so a reload is all or nothing (reload).
	reloaders []func(next *config.Config) (reloadPlan, error)
	// commands carry out what the admin socket takes (adminsock.go).
	commands adminCommands

	// beforeStop run one after another on a stop signal before every
	// component is asked to stop: BGP moves traffic away while the proxy
	// still accepts.
	beforeStop []func(ctx context.Context)

	// signals is where the signal handler listens; tests inject their own.
	signals chan os.Signal
	// stopSignals is called after the first stop signal so a second one
	// takes the default action and kills the process.
	stopSignals func()
}

// reloadPlan is a new config prepared by one component: Commit applies it,
// Discard drops what it built.
type reloadPlan interface {
	Commit() error
	Discard()
}

// wirings build the components of a config, in dependency order: health
// checks and frontends before the VRRP instances that track frontends.
// Each starts its components with d.sup.Start and adds to d.status and
// d.reloaders. The instances run in a child process, the VRRP engine
// (package engine), so that proxy load cannot delay an advertisement.
var wirings = []func(d *daemon, cfg *config.Config) error{
	wireProxy,      // health checkers and frontends (proxy.go)
	wireVRRPEngine, // the engine process, which runs a vrrp.Set (engine.go)
	wireBGP,        // the BGP announcer, which tracks frontends (bgp.go)
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfigFlag("run", "config `FILE`", args, stderr)
	if err != nil {
		return err
	}
	d := newDaemon(cfg, stderr)
	for _, w := range config.SecretWarnings(cfg) {
		d.log.Warn(w)
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	d.signals = sig
	d.stopSignals = func() { signal.Reset(syscall.SIGTERM, syscall.SIGINT) }
	return d.run(context.Background())
}

// newDaemon sets up logging and metrics for cfg; run builds the rest.
func newDaemon(cfg *config.Config, logOut io.Writer) *daemon {
	d := newBareDaemon(cfg, logOut)
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.metrics = newDaemonMetrics(d.reg)
	return d
}

// newBareDaemon sets up logging, an empty registry and the supervisor.
func newBareDaemon(cfg *config.Config, logOut io.Writer) *daemon {
	level := new(slog.LevelVar)
	level.Set(cfg.Log.Level)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(logOut, opts)
	if cfg.Log.Format == config.LogJSON {
		h = slog.NewJSONHandler(logOut, opts)
	}
	reg := prometheus.NewRegistry()
	return &daemon{
		log:      slog.New(h),
		logLevel: level,
		logOut:   logOut,
		reg:      reg,
		gather:   prometheus.Gatherers{reg},
		cfg:      cfg,
		sup:      newSupervisor(),
	}
}

func (d *daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// run starts every component and returns when they have all stopped: after a
// stop signal (nil) or after one of them failed (its error).
func (d *daemon) run(ctx context.Context) error {
	cfg := d.config()
	d.log.Info("starting", "version", version, "commit", buildCommit(), "config", cfg.Path,
		"instances", len(cfg.Instances), "frontends", len(cfg.Frontends))

	for _, wire := range wirings {
		if err := wire(d, cfg); err != nil {
			return err
		}
	}
	// Bind the admin server before anything runs: a taken port is a
	// start-up error, not a log line nobody reads.
	var admin *adminServer
	if cfg.Admin.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin server: %w", err)
		}
		admin = newAdminServer(ln, d)
		if !isLoopback(ln.Addr()) {
			d.log.Warn("admin server is reachable from the network: /status shows the topology; bind it to loopback unless a scraper needs it",
				"listen", ln.Addr().String())
		}
	}
	var sock *adminSocket
	if cfg.Admin.Socket != "" {
		s, err := listenAdminSocket(cfg.Admin.Socket, d.log, d.commands.run)
		if err != nil {
			if admin != nil {
				admin.ln.Close()
			}
			return err
		}
		sock = s
	}
	d.metrics.reloadOK(true, time.Now())

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.handleSignals(gctx, stop) })
	if admin != nil {
		g.Go(func() error { return admin.Run(gctx) })
	}
	if sock != nil {
		g.Go(func() error { return sock.Run(gctx) })
	}
	g.Go(func() error { return d.sup.Run(gctx) })
	if os.Getpid() == 1 {
		// A container's entry point inherits every orphan (a script's
		// background child): nobody else would reap them.
		g.Go(func() error { return vrrp.RunReaper(gctx) })
	}
	err := g.Wait()
	if err != nil {
		d.log.Error("stopped on error", "err", err)
		return err
	}
	d.log.Info("stopped")
	return nil
}

// handleSignals reloads on SIGHUP and stops on SIGTERM/SIGINT. After the
// first stop signal it stops catching them, so a second one kills at once.
func (d *daemon) handleSignals(ctx context.Context, stop context.CancelFunc) error {
	if d.signals == nil {
		<-ctx.Done()
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-d.signals:
			if s == syscall.SIGHUP {
				d.reload()
				continue
			}
			d.log.Info("stopping: handing over and draining; a second signal exits at once", "signal", s.String())
			if d.stopSignals != nil {
				d.stopSignals()
			}
			for _, f := range d.beforeStop {
				f(ctx)
			}
			stop()
			return nil
		}
	}
}

// reload reads and validates the config file again and applies it, all or
// nothing: every component prepares the new config (the VRRP engine checks
// and builds its instances, the proxy builds its new frontends) before any
// applies it, and one refusal discards every preparation. A bad file
// changes nothing: the error is logged with its line and the reload metric
// says 0 until a good one is loaded.
func (d *daemon) reload() {
	old := d.config()
	d.log.Info("reloading", "config", old.Path)
	cfg, err := config.Load(old.Path)
	if err == nil {
		err = d.check(cfg)
	}
	var plans []reloadPlan
	if err == nil {
		plans, err = d.prepare(cfg)
	}
	if err != nil {
		logConfigError(d.log, "reload rejected; the running config stays", err)
		d.metrics.reloadOK(false, time.Now())
		return
	}
	if err := d.commit(cfg, plans); err != nil {
		d.log.Error("reload failed to apply", "err", err)
		d.metrics.reloadOK(false, time.Now())
		return
	}
	d.metrics.reloadOK(true, time.Now())
	d.log.Info("reloaded", "config", cfg.Path, "instances", len(cfg.Instances), "frontends", len(cfg.Frontends))
}

// check runs every check on a new config before anything is prepared.
func (d *daemon) check(cfg *config.Config) error {
	for _, check := range d.checks {
		if err := check(cfg); err != nil {
			return err
		}
	}
	return nil
}

// prepare has every component prepare cfg; on the first refusal the plans
// made so far are discarded.
func (d *daemon) prepare(cfg *config.Config) ([]reloadPlan, error) {
	var plans []reloadPlan
	for _, prepare := range d.reloaders {
		p, err := prepare(cfg)
		if err != nil {
			for _, p := range plans {
				p.Discard()
			}
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// commit applies prepared plans and makes cfg the current config, log
// level included. A plan that fails to apply (an instance that stopped
// meanwhile) does not stop the others.
func (d *daemon) commit(cfg *config.Config, plans []reloadPlan) error {
	var errs []error
	for _, p := range plans {
		errs = append(errs, p.Commit())
	}
	d.logLevel.Set(cfg.Log.Level)
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	return errors.Join(errs...)
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
