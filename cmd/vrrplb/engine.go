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
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/vrrp"
)

// The VRRP instances run in a child process of `vrrplb run`, the VRRP
// engine: the same binary started as `vrrplb vrrp-engine` with one end of a
// socket pair as fd 3 (engine_child.go). A saturated proxy keeps every
// thread of its process busy, and inside one Go runtime an advertisement
// timer then waits behind proxy goroutines long enough for the backup to
// declare the master down; in its own, nearly idle process, at real-time
// priority when allowed, the engine is woken by the kernel on time.
//
// The daemon sends the engine its config (at start and on each reload),
// the health verdicts of the frontends that track_frontend reads, and asks
// for its metrics and instance status; the engine answers every request but
// a verdict with one reply, in order. Messages are JSON, one per line.

// engineCommand is the hidden command that runs the VRRP engine.
const engineCommand = "vrrp-engine"

// Metric names of the daemon's view of the engine (DESIGN.md lists the
// rest; these are additions).
const (
	metricEngineRestarts = "vrrplb_vrrp_engine_restarts_total"
)

// Timeouts of the engine's replies. A config may stop instances, and a
// master hands over and runs its notify command before it stops.
const (
	engineConfigTimeout = 60 * time.Second
	engineQueryTimeout  = 5 * time.Second
	engineStopTimeout   = 30 * time.Second
	engineRestartDelay  = time.Second
)

// engineRequest is a message to the engine; exactly one field is set.
type engineRequest struct {
	Config      *engineConfig   `json:"config,omitempty"`
	Frontend    *engineVerdict  `json:"frontend,omitempty"`
	Metrics     bool            `json:"metrics,omitempty"`
	Status      bool            `json:"status,omitempty"`
	Maintenance *maintenanceSet `json:"maintenance,omitempty"`
}

// maintenanceSet is which instances `vrrplb maintenance` put in
// maintenance: every one (All, those a reload adds too) or those named. The
// daemon keeps it, so it survives a reload and a restart of the engine, and
// sends the whole of it on each change; the engine answers with an error
// or nothing.
type maintenanceSet struct {
	All   bool     `json:"all,omitempty"`
	Names []string `json:"names,omitempty"`
}

// has reports whether the instance called name is in maintenance.
func (s maintenanceSet) has(name string) bool {
	return s.All || slices.Contains(s.Names, name)
}

// set puts one instance, or with name "" every one, in maintenance (on) or
// takes it out; all is every instance of the config.
func (s maintenanceSet) set(name string, on bool, all []string) maintenanceSet {
	switch {
	case name == "":
		return maintenanceSet{All: on}
	case on && !s.has(name):
		s.Names = append(slices.Clone(s.Names), name)
		slices.Sort(s.Names)
	case !on && s.All:
		s = maintenanceSet{Names: slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == name })}
	case !on:
		s.Names = slices.DeleteFunc(slices.Clone(s.Names), func(n string) bool { return n == name })
	}
	return s
}

// engineConfig is the config file as the daemon read and validated it
// (config.Config.Source): the engine parses the same bytes, not the file
// again, which may have changed since.
type engineConfig struct {
	Path string `json:"path"`
	TOML []byte `json:"toml"`
}

// engineVerdict is whether a frontend has a healthy backend.
type engineVerdict struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
}

// engineReply answers a config (Error), metrics (Metrics, in the protobuf
// exposition format) or status request.
type engineReply struct {
	Error   string           `json:"error,omitempty"`
	Metrics []byte           `json:"metrics,omitempty"`
	Status  []instanceStatus `json:"status,omitempty"`
}

// wireVRRPEngine starts the engine when cfg has instances, or on the first
// reload that adds some.
func wireVRRPEngine(d *daemon, cfg *config.Config) error {
	if err := checkVRRP(cfg); err != nil {
		return err
	}
	d.checks = append(d.checks, checkVRRP)
	e := &engine{d: d, verdicts: map[string]bool{}, forwarders: map[string]*forwarder{}}
	e.restarts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: metricEngineRestarts,
		Help: "Times the VRRP engine process exited unexpectedly and was started again.",
	})
	d.reg.MustRegister(e.restarts)
	d.gather = append(d.gather, prometheus.GathererFunc(e.gatherMetrics))
	d.status = append(d.status, e.fillStatus)
	d.reloaders = append(d.reloaders, e.reload)
	d.commands.maintenance = e.setMaintenance
	if len(cfg.Instances) == 0 {
		return nil
	}
	return e.start(cfg)
}

// engine is the daemon's side of the VRRP engine.
type engine struct {
	d        *daemon
	restarts prometheus.Counter

	// mu serialises requests: a request and its reply hold it.
	mu      sync.Mutex
	proc    *engineProc // nil until started
	cfg     engineConfig
	started bool
	// stopping is set once the daemon stops the engine: nothing more is
	// sent to it.
	stopping bool
	// verdicts are the last verdict of each frontend, sent again to a
	// restarted engine.
	verdicts map[string]bool
	// maintenance is what `vrrplb maintenance` set, sent again to a
	// restarted engine.
	maintenance maintenanceSet

	fwMu       sync.Mutex
	forwarders map[string]*forwarder // by frontend name
}

// engineProc is one run of the engine process.
type engineProc struct {
	cmd  *exec.Cmd
	conn *net.UnixConn
	enc  *json.Encoder
	dec  *json.Decoder
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done
}

// forwarder sends one frontend's health verdicts to the engine.
type forwarder struct {
	tracker vrrp.Tracker
	stop    context.CancelFunc
}

// start starts the engine with cfg and runs it under the supervisor. An
// engine that cannot apply the config (an interface that does not exist)
// fails start-up with its error.
func (e *engine) start(cfg *config.Config) error {
	e.mu.Lock()
	e.cfg = engineConfig{Path: cfg.Path, TOML: cfg.Source}
	e.mu.Unlock()
	e.syncForwarders(cfg)
	if err := e.spawn(); err != nil {
		return err
	}
	e.mu.Lock()
	e.started = true
	e.mu.Unlock()
	return e.d.sup.Start("VRRP engine", componentFunc(e.run))
}

// spawn starts an engine process, sends it the config and the verdicts
// known so far, and waits for it to apply the config.
func (e *engine) spawn() error {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("VRRP engine: socket pair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "vrrp-engine"), os.NewFile(uintptr(fds[1]), "vrrp-engine")
	defer theirs.Close()
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return fmt.Errorf("VRRP engine: %w", err)
	}
	conn := c.(*net.UnixConn)
	// /proc/self/exe is this very binary even if an upgrade replaced the
	// file: daemon and engine always speak the same protocol.
	cmd := exec.Command("/proc/self/exe", engineCommand)
	cmd.Args[0] = os.Args[0]
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stdout, cmd.Stderr = e.d.logOut, e.d.logOut
	if err := cmd.Start(); err != nil {
		conn.Close()
		return fmt.Errorf("VRRP engine: start: %w", err)
	}
	p := &engineProc{cmd: cmd, conn: conn, enc: json.NewEncoder(conn), dec: json.NewDecoder(conn), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		conn.Close() // unblocks a request waiting for a reply
	}()
	e.d.log.Debug("VRRP engine started", "pid", cmd.Process.Pid)

	e.mu.Lock()
	defer e.mu.Unlock()
	e.proc = p
	err = e.configLocked()
	if err == nil {
		for name, up := range e.verdicts {
			if err = e.sendLocked(engineRequest{Frontend: &engineVerdict{Name: name, Up: up}}); err != nil {
				break
			}
		}
	}
	if err == nil && (e.maintenance.All || len(e.maintenance.Names) > 0) {
		err = e.maintenanceLocked(e.maintenance)
	}
	if err != nil {
		e.killLocked()
		return fmt.Errorf("VRRP engine: %w", err)
	}
	return nil
}

// run watches the engine until ctx ends, then stops it gracefully: closing
// its socket tells it to hand over and exit. An engine that exits on its
// own is logged, counted and started again after a pause, with the same
// config; the proxy keeps running meanwhile.
func (e *engine) run(ctx context.Context) error {
	for {
		e.mu.Lock()
		p := e.proc
		e.mu.Unlock()
		if p == nil {
			if err := e.respawn(ctx); err != nil {
				return nil // ctx ended
			}
			continue
		}
		select {
		case <-p.done:
			e.d.log.Error("VRRP engine exited; starting it again", "err", exitReason(p.err), "after", engineRestartDelay.String())
			e.restarts.Inc()
			e.mu.Lock()
			if e.proc == p {
				e.proc = nil
			}
			e.mu.Unlock()
		case <-ctx.Done():
			e.stop(p)
			return nil
		}
	}
}

// respawn starts the engine again after engineRestartDelay, retrying until
// it runs or ctx ends (the error is then ctx's).
func (e *engine) respawn(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(engineRestartDelay):
		}
		err := e.spawn()
		if err == nil {
			e.d.log.Info("VRRP engine running again")
			return nil
		}
		e.d.log.Error("VRRP engine did not start; trying again", "err", err, "after", engineRestartDelay.String())
	}
}

// stop closes the engine's socket and waits for it to hand over and exit,
// killing it after engineStopTimeout.
func (e *engine) stop(p *engineProc) {
	e.mu.Lock()
	e.stopping = true
	_ = p.conn.CloseWrite()
	e.mu.Unlock()
	select {
	case <-p.done:
		if p.err != nil {
			e.d.log.Warn("VRRP engine stopped with an error", "err", exitReason(p.err))
		}
	case <-time.After(engineStopTimeout):
		e.d.log.Error("VRRP engine did not stop in time; killing it", "timeout", engineStopTimeout.String())
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// killLocked kills the current engine process and forgets it.
func (e *engine) killLocked() {
	if e.proc == nil {
		return
	}
	_ = e.proc.cmd.Process.Kill()
	<-e.proc.done
	e.proc = nil
}

// sendLocked writes req; a write error kills the engine (run starts it
// again), since the stream may hold half a message.
func (e *engine) sendLocked(req engineRequest) error {
	if e.proc == nil || e.stopping {
		return errors.New("not running")
	}
	_ = e.proc.conn.SetWriteDeadline(time.Now().Add(engineQueryTimeout))
	if err := e.proc.enc.Encode(req); err != nil {
		_ = e.proc.cmd.Process.Kill()
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// requestLocked sends req and reads its reply within timeout. A failure
// kills the engine: a reply that comes later would answer the next request.
func (e *engine) requestLocked(req engineRequest, reply *engineReply, timeout time.Duration) error {
	if err := e.sendLocked(req); err != nil {
		return err
	}
	p := e.proc
	_ = p.conn.SetReadDeadline(time.Now().Add(timeout))
	if err := p.dec.Decode(reply); err != nil {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
			return fmt.Errorf("the engine exited: %s", exitReason(p.err))
		case <-time.After(time.Second):
			return fmt.Errorf("no reply: %w", err)
		}
	}
	return nil
}

// reload sends the new config to the engine, starting it if this is the
// first config with instances.
func (e *engine) reload(_, next *config.Config) error {
	e.syncForwarders(next)
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started {
		if len(next.Instances) == 0 {
			return nil
		}
		return e.start(next)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg = engineConfig{Path: next.Path, TOML: next.Source}
	if e.proc == nil {
		return errors.New("VRRP engine: not running; it starts with the new config")
	}
	if err := e.configLocked(); err != nil {
		return fmt.Errorf("VRRP engine: %w", err)
	}
	return nil
}

// configLocked sends e.cfg and returns the engine's error applying it.
func (e *engine) configLocked() error {
	var reply engineReply
	if err := e.requestLocked(engineRequest{Config: &e.cfg}, &reply, engineConfigTimeout); err != nil {
		return err
	}
	if reply.Error != "" {
		return errors.New(reply.Error)
	}
	return nil
}

// syncForwarders runs one verdict forwarder per frontend of cfg that an
// instance tracks, and stops the others. A frontend keeps its forwarder
// across reloads while its health checker stays the same.
func (e *engine) syncForwarders(cfg *config.Config) {
	tracked := map[string]bool{}
	for _, ic := range cfg.Instances {
		for _, f := range ic.TrackFrontends {
			tracked[f.Name] = true
		}
	}
	e.fwMu.Lock()
	defer e.fwMu.Unlock()
	for name, fw := range e.forwarders {
		t, err := e.tracker(name)
		if !tracked[name] || err != nil || t != fw.tracker {
			fw.stop()
			delete(e.forwarders, name)
		}
	}
	for name := range tracked {
		if e.forwarders[name] != nil {
			continue
		}
		t, err := e.tracker(name)
		if err != nil {
			e.d.log.Error("track_frontend: no such frontend", "frontend", name, "err", err)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		e.forwarders[name] = &forwarder{tracker: t, stop: cancel}
		go func() {
			_ = t.Run(ctx, func(up bool) {
				if ctx.Err() == nil {
					e.sendVerdict(name, up)
				}
			})
		}()
	}
}

func (e *engine) tracker(name string) (vrrp.Tracker, error) {
	if e.d.frontendTracker == nil {
		return nil, errors.New("the frontends are not wired")
	}
	return e.d.frontendTracker(name)
}

// sendVerdict records a frontend's verdict and tells the engine.
func (e *engine) sendVerdict(name string, up bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.verdicts[name] = up
	if e.proc == nil || e.stopping {
		return // spawn sends it
	}
	if err := e.sendLocked(engineRequest{Frontend: &engineVerdict{Name: name, Up: up}}); err != nil {
		e.d.log.Error("VRRP engine: frontend verdict not delivered; restarting the engine", "frontend", name, "err", err)
	}
}

// setMaintenance is `vrrplb maintenance`: it records the change and tells
// the engine, which applies it before answering.
func (e *engine) setMaintenance(req maintenanceRequest) ([]string, error) {
	cfg := e.d.config()
	var all []string
	for _, ic := range cfg.Instances {
		all = append(all, ic.Name)
	}
	if len(all) == 0 {
		return nil, errors.New("this vrrplb has no VRRP instances: nothing to put in maintenance")
	}
	targets := all
	if req.Instance != "" {
		if !slices.Contains(all, req.Instance) {
			return nil, fmt.Errorf("no instance %q (this vrrplb has %s)", req.Instance, strings.Join(all, ", "))
		}
		targets = []string{req.Instance}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	next := e.maintenance.set(req.Instance, req.On, all)
	if e.proc == nil || e.stopping {
		return nil, errors.New("the VRRP engine is not running; try again in a moment")
	}
	if err := e.maintenanceLocked(next); err != nil {
		return nil, fmt.Errorf("VRRP engine: %w", err)
	}
	e.maintenance = next
	var done []string
	for _, name := range targets {
		if req.On {
			done = append(done, fmt.Sprintf("instance %s: maintenance on: its VIPs go to a peer; it stays in the election at the lowest priority", name))
		} else {
			done = append(done, fmt.Sprintf("instance %s: maintenance off: back at its own priority", name))
		}
	}
	return done, nil
}

// maintenanceLocked sends set to the engine and returns its error applying it.
func (e *engine) maintenanceLocked(set maintenanceSet) error {
	var reply engineReply
	if err := e.requestLocked(engineRequest{Maintenance: &set}, &reply, engineQueryTimeout); err != nil {
		return err
	}
	if reply.Error != "" {
		return errors.New(reply.Error)
	}
	return nil
}

// gatherMetrics asks the engine for its metrics.
func (e *engine) gatherMetrics() ([]*dto.MetricFamily, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proc == nil || e.stopping {
		return nil, nil
	}
	var reply engineReply
	if err := e.requestLocked(engineRequest{Metrics: true}, &reply, engineQueryTimeout); err != nil {
		return nil, fmt.Errorf("VRRP engine metrics: %w", err)
	}
	var out []*dto.MetricFamily
	dec := expfmt.NewDecoder(bytes.NewReader(reply.Metrics), expfmt.NewFormat(expfmt.TypeProtoDelim))
	for {
		mf := new(dto.MetricFamily)
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, fmt.Errorf("VRRP engine metrics: %w", err)
		}
		out = append(out, mf)
	}
}

// fillStatus asks the engine for its instances.
func (e *engine) fillStatus(doc *statusDoc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proc == nil || e.stopping {
		return
	}
	var reply engineReply
	if err := e.requestLocked(engineRequest{Status: true}, &reply, engineQueryTimeout); err != nil {
		e.d.log.Error("VRRP engine: no status", "err", err)
		return
	}
	doc.Instances = append(doc.Instances, reply.Status...)
}

// exitReason says how a process ended, for logs.
func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
