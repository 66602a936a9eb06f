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
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/vrrp"
)

// MetricRestarts is the daemon's count of engine restarts (DESIGN.md).
const MetricRestarts = "vrrplb_vrrp_engine_restarts_total"

// Timeouts of the engine's replies. A commit may stop instances, and a
// master hands over and runs its notify command before it stops.
const (
	commitTimeout = 60 * time.Second
	queryTimeout  = 5 * time.Second
	stopTimeout   = 30 * time.Second
	restartDelay  = time.Second
)

// ClientOptions are the collaborators of a Client.
type ClientOptions struct {
	// Logger receives the daemon's lines about the engine; nil discards.
	Logger *slog.Logger
	// LogOut is where the engine process writes its own log lines.
	LogOut io.Writer
	// Registerer takes MetricRestarts; nil keeps it private.
	Registerer prometheus.Registerer
	// FrontendTracker is the verdict of the frontend called name, which
	// the client forwards to the engine for track_frontend.
	FrontendTracker func(name string) (vrrp.Tracker, error)
	// Snapshot bounds how often the engine is asked for its figures;
	// zero means DefaultSnapshotInterval.
	SnapshotInterval time.Duration
	// Path and Args start the engine; default /proc/self/exe Command:
	// this very binary even if an upgrade replaced the file, so daemon and
	// engine always speak the same protocol.
	Path string
	Args []string
}

// Client is the daemon's side of the engine: it starts the engine process
// with the config, watches it and starts it again when it dies, forwards
// frontend verdicts, reloads it in two steps and keeps a snapshot of its
// figures. No lock is held across the socket: requests queue and are
// answered in order, verdicts go out beside them.
type Client struct {
	log      *slog.Logger
	opts     ClientOptions
	restarts prometheus.Counter
	wake     chan struct{} // tells Run that a process started

	mu       sync.Mutex
	proc     *proc      // nil while none runs
	cfg      configFile // what a restarted engine gets
	running  bool       // an engine should run: a config had instances
	stopping bool       // the daemon stops: nothing more is sent
	verdicts map[string]bool
	// maintenance is what `vrrplb maintenance` set, sent again to a
	// restarted engine.
	maintenance MaintenanceSet

	fwMu       sync.Mutex
	forwarders map[string]*forwarder // by frontend name

	snaps snapshots
}

// forwarder sends one frontend's health verdicts to the engine.
type forwarder struct {
	tracker vrrp.Tracker
	stop    context.CancelFunc
}

// NewClient returns a client that runs no engine until Start or a Commit
// gives it a config with instances.
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LogOut == nil {
		opts.LogOut = io.Discard
	}
	if opts.Path == "" {
		opts.Path, opts.Args = "/proc/self/exe", []string{os.Args[0], Command}
	}
	c := &Client{
		log:        opts.Logger,
		opts:       opts,
		wake:       make(chan struct{}, 1),
		verdicts:   map[string]bool{},
		forwarders: map[string]*forwarder{},
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricRestarts,
			Help: "Times the VRRP engine process exited unexpectedly and was started again.",
		}),
	}
	c.snaps.init(c, opts.SnapshotInterval)
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(c.restarts); err != nil {
			return nil, fmt.Errorf("VRRP engine metrics: %w", err)
		}
	}
	return c, nil
}

// Start starts the engine with cfg when it has instances. An engine that
// cannot apply it (an interface that does not exist) fails with its error.
func (c *Client) Start(cfg *config.Config) error {
	plan, err := c.Prepare(cfg)
	if err != nil {
		return err
	}
	return plan.Commit()
}

// Plan is a config the engine has checked and built, not yet applied.
type Plan struct {
	c      *Client
	cfg    *config.Config
	p      *proc // the engine that prepared it; nil: nothing to apply
	spawns bool  // p was started for this plan
}

// Prepare has the engine check next and build what it adds, changing
// nothing: the first half of an all-or-nothing reload. The first config
// with instances starts the engine.
func (c *Client) Prepare(next *config.Config) (*Plan, error) {
	c.mu.Lock()
	p, running := c.proc, c.running
	c.mu.Unlock()
	plan := &Plan{c: c, cfg: next}
	file := configFile{Path: next.Path, TOML: next.Source}
	switch {
	case !running && len(next.Instances) == 0:
		return plan, nil
	case !running:
		var err error
		if p, err = c.spawn(file); err != nil {
			return nil, err
		}
		plan.p, plan.spawns = p, true
		return plan, nil
	case p == nil:
		return nil, errors.New("VRRP engine: not running (it is being started again); reload once it runs")
	}
	if err := p.configRequest(request{Prepare: &file}, queryTimeout); err != nil {
		return nil, fmt.Errorf("VRRP engine: %w", err)
	}
	plan.p = p
	return plan, nil
}

// Discard drops the plan: the engine forgets it, or stops if it was
// started for it.
func (pl *Plan) Discard() {
	switch {
	case pl.p == nil:
	case pl.spawns:
		pl.p.kill()
	default:
		_ = pl.p.configRequest(request{Discard: true}, queryTimeout)
	}
}

// Commit applies the plan in the engine. When the engine fails to, it is
// started again with the new config.
func (pl *Plan) Commit() error {
	c := pl.c
	c.syncForwarders(pl.cfg)
	if pl.p == nil {
		return nil
	}
	c.mu.Lock()
	c.cfg = configFile{Path: pl.cfg.Path, TOML: pl.cfg.Source}
	c.mu.Unlock()
	// A new engine learns the maintenance before its instances run, so
	// none of them advertises its own priority first.
	if pl.spawns {
		if err := c.resendMaintenance(pl.p); err != nil {
			pl.p.kill()
			return fmt.Errorf("VRRP engine: %w", err)
		}
	}
	if err := pl.p.configRequest(request{Commit: true}, commitTimeout); err != nil {
		pl.p.kill()
		return fmt.Errorf("VRRP engine: %w", err)
	}
	if pl.spawns {
		c.mu.Lock()
		c.proc, c.running = pl.p, true
		c.mu.Unlock()
		pl.p.sendVerdicts(c.verdictsNow())
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.snaps.invalidate()
	return nil
}

// Run watches the engine until ctx ends, then stops it gracefully: closing
// its socket tells it to hand over and exit. An engine that exits on its
// own is logged, counted and started again after a pause, with the last
// config; the proxy keeps running meanwhile.
func (c *Client) Run(ctx context.Context) error {
	defer c.stopForwarders()
	for {
		c.mu.Lock()
		p, running, stopping := c.proc, c.running, c.stopping
		c.mu.Unlock()
		if stopping {
			// Stop ran: the engine has handed over and exited.
			<-ctx.Done()
			return nil
		}
		var done <-chan struct{}
		switch {
		case p != nil:
			done = p.done
		case running:
			if err := c.respawn(ctx); err != nil {
				return nil // ctx ended
			}
			continue
		}
		select {
		case <-done:
			if c.stopped() {
				continue
			}
			c.log.Error("VRRP engine exited; starting it again", "err", exitReason(p.err), "after", restartDelay.String())
			c.restarts.Inc()
			c.mu.Lock()
			if c.proc == p {
				c.proc = nil
			}
			c.mu.Unlock()
		case <-c.wake:
		case <-ctx.Done():
			c.Stop()
			return nil
		}
	}
}

// Stop has the engine hand its VIPs over and waits for it to exit, at most
// stopTimeout: the daemon calls it on a stop signal while the proxy still
// accepts, so that connections reaching this host until the new master
// announced itself are answered, then reset with the others. Run then
// returns when its context ends; a second Stop does nothing.
func (c *Client) Stop() {
	c.mu.Lock()
	p := c.proc
	if c.stopping {
		p = nil
	}
	c.stopping = true
	c.mu.Unlock()
	if p != nil {
		c.stop(p)
	}
}

// stopped reports whether Stop ran.
func (c *Client) stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

// respawn starts the engine again after restartDelay, retrying until it
// runs or ctx ends (the error is then ctx's).
func (c *Client) respawn(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(restartDelay):
		}
		c.mu.Lock()
		file := c.cfg
		c.mu.Unlock()
		p, err := c.spawn(file)
		if err == nil {
			// The maintenance first: the instances start with it.
			err = c.resendMaintenance(p)
			if err == nil {
				err = p.configRequest(request{Commit: true}, commitTimeout)
			}
			if err != nil {
				p.kill()
			}
		}
		if err == nil {
			c.mu.Lock()
			c.proc = p
			c.mu.Unlock()
			p.sendVerdicts(c.verdictsNow())
			c.log.Info("VRRP engine running again")
			return nil
		}
		c.log.Error("VRRP engine did not start; trying again", "err", err, "after", restartDelay.String())
	}
}

// stop closes the engine's socket and waits for it to hand over and exit,
// killing it after stopTimeout.
func (c *Client) stop(p *proc) {
	p.closeWrite()
	select {
	case <-p.done:
		if p.err != nil {
			c.log.Warn("VRRP engine stopped with an error", "err", exitReason(p.err))
		}
	case <-time.After(stopTimeout):
		c.log.Error("VRRP engine did not stop in time; killing it", "timeout", stopTimeout.String())
		p.kill()
	}
}

// spawn starts an engine process and has it prepare file.
func (c *Client) spawn(file configFile) (*proc, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("VRRP engine: socket pair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), Command), os.NewFile(uintptr(fds[1]), Command)
	defer theirs.Close()
	fc, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("VRRP engine: %w", err)
	}
	conn := fc.(*net.UnixConn)
	cmd := exec.Command(c.opts.Path)
	cmd.Args = c.opts.Args
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stdout, cmd.Stderr = c.opts.LogOut, c.opts.LogOut
	// Tracked: as PID 1 the daemon reaps orphans (vrrp.RunReaper), but
	// not this child, whose exit status Wait reports.
	if err := vrrp.StartTracked(cmd); err != nil {
		conn.Close()
		return nil, fmt.Errorf("VRRP engine: start: %w", err)
	}
	p := newProc(cmd, conn)
	c.log.Debug("VRRP engine started", "pid", cmd.Process.Pid)
	if err := p.configRequest(request{Prepare: &file}, commitTimeout); err != nil {
		p.kill()
		return nil, fmt.Errorf("VRRP engine: %w", err)
	}
	return p, nil
}

// SetMaintenance puts the instance called name, or with "" every one, in
// maintenance (on) or takes it out; all is every instance of the config.
// The engine applies it before this returns; a restarted engine gets it
// again.
func (c *Client) SetMaintenance(name string, on bool, all []string) error {
	c.mu.Lock()
	next := c.maintenance.With(name, on, all)
	p := c.proc
	if c.stopping {
		p = nil
	}
	c.mu.Unlock()
	if p == nil {
		return errors.New("the VRRP engine is not running; try again in a moment")
	}
	if err := p.configRequest(request{Maintenance: &next}, queryTimeout); err != nil {
		return fmt.Errorf("VRRP engine: %w", err)
	}
	c.mu.Lock()
	c.maintenance = next
	c.mu.Unlock()
	return nil
}

// resendMaintenance gives a started engine the maintenance set.
func (c *Client) resendMaintenance(p *proc) error {
	c.mu.Lock()
	m := c.maintenance
	c.mu.Unlock()
	if m.empty() {
		return nil
	}
	return p.configRequest(request{Maintenance: &m}, queryTimeout)
}

// SetVerdict records a frontend's verdict and tells the engine, without
// waiting behind any request.
func (c *Client) SetVerdict(name string, up bool) {
	c.mu.Lock()
	c.verdicts[name] = up
	p := c.proc
	stopping := c.stopping
	c.mu.Unlock()
	if p != nil && !stopping {
		p.sendVerdicts(map[string]bool{name: up})
	}
}

func (c *Client) verdictsNow() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]bool, len(c.verdicts))
	for k, v := range c.verdicts {
		out[k] = v
	}
	return out
}

// syncForwarders runs one verdict forwarder per frontend of cfg that an
// instance tracks, and stops the others. A frontend keeps its forwarder
// across reloads while its tracker stays the same.
func (c *Client) syncForwarders(cfg *config.Config) {
	tracked := map[string]bool{}
	for _, ic := range cfg.Instances {
		for _, f := range ic.TrackFrontends {
			tracked[f.Name] = true
		}
	}
	c.fwMu.Lock()
	defer c.fwMu.Unlock()
	for name, fw := range c.forwarders {
		t, err := c.tracker(name)
		if !tracked[name] || err != nil || t != fw.tracker {
			fw.stop()
			delete(c.forwarders, name)
		}
	}
	for name := range tracked {
		if c.forwarders[name] != nil {
			continue
		}
		t, err := c.tracker(name)
		if err != nil {
			c.log.Error("track_frontend: no such frontend", "frontend", name, "err", err)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		c.forwarders[name] = &forwarder{tracker: t, stop: cancel}
		go func() {
			_ = t.Run(ctx, func(up bool) {
				if ctx.Err() == nil {
					c.SetVerdict(name, up)
				}
			})
		}()
	}
}

func (c *Client) stopForwarders() {
	c.fwMu.Lock()
	defer c.fwMu.Unlock()
	for name, fw := range c.forwarders {
		fw.stop()
		delete(c.forwarders, name)
	}
}

func (c *Client) tracker(name string) (vrrp.Tracker, error) {
	if c.opts.FrontendTracker == nil {
		return nil, errors.New("the frontends are not wired")
	}
	return c.opts.FrontendTracker(name)
}

// current is the running engine, or nil.
func (c *Client) current() *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return nil
	}
	return c.proc
}

// exitReason says how a process ended, for logs.
func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// proc is one run of the engine process and its connection: a writer
// goroutine sends verdicts and queued requests, a reader goroutine hands
// each reply to the request it answers.
type proc struct {
	cmd  *exec.Cmd
	conn *net.UnixConn
	enc  *json.Encoder
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done

	calls chan *call    // to the writer; nil closes the write side
	wake  chan struct{} // verdicts to send

	mu       sync.Mutex
	nextID   uint64
	verdicts map[string]bool // not yet sent
	inflight []*call         // sent, in order, awaiting replies
	broken   bool            // the connection failed: no more calls
	closing  bool            // the daemon closed its side: the engine stops
}

// call is one request and where its reply goes.
type call struct {
	req   request
	reply chan reply // buffered: a late reply never blocks the reader
}

func newProc(cmd *exec.Cmd, conn *net.UnixConn) *proc {
	p := &proc{
		cmd: cmd, conn: conn, enc: json.NewEncoder(conn),
		done:     make(chan struct{}),
		calls:    make(chan *call, requestQueue),
		wake:     make(chan struct{}, 1),
		verdicts: map[string]bool{},
	}
	go func() {
		p.err = cmd.Wait()
		vrrp.Untrack(cmd.Process.Pid)
		close(p.done)
		conn.Close() // ends the reader and the writer
	}()
	go p.write()
	go p.read()
	return p
}

// kill kills the process and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// closeWrite tells the engine to stop, after what is queued.
func (p *proc) closeWrite() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	select {
	case p.calls <- nil:
	case <-p.done:
	}
}

// sendVerdicts queues verdicts; the writer sends them before the next
// request.
func (p *proc) sendVerdicts(v map[string]bool) {
	p.mu.Lock()
	for k, up := range v {
		p.verdicts[k] = up
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// write sends verdicts and requests until the connection fails or the
// daemon closes its side. A failed write kills the engine: the stream may
// hold half a message.
func (p *proc) write() {
	for {
		var cl *call
		select {
		case <-p.done:
			return
		case <-p.wake:
		case cl = <-p.calls:
			if cl == nil {
				if err := p.flushVerdicts(); err == nil {
					_ = p.conn.CloseWrite()
				}
				return
			}
		}
		if err := p.flushVerdicts(); err != nil {
			p.fail(err)
			return
		}
		if cl == nil {
			continue
		}
		p.mu.Lock()
		p.nextID++
		cl.req.ID = p.nextID
		p.inflight = append(p.inflight, cl)
		p.mu.Unlock()
		if err := p.encode(cl.req); err != nil {
			p.fail(err)
			return
		}
	}
}

func (p *proc) flushVerdicts() error {
	p.mu.Lock()
	v := p.verdicts
	p.verdicts = map[string]bool{}
	p.mu.Unlock()
	for name, up := range v {
		if err := p.encode(request{Verdict: &verdict{Name: name, Up: up}}); err != nil {
			return err
		}
	}
	return nil
}

func (p *proc) encode(req request) error {
	_ = p.conn.SetWriteDeadline(time.Now().Add(queryTimeout))
	if err := p.enc.Encode(req); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// read hands each reply to the oldest call in flight.
func (p *proc) read() {
	dec := json.NewDecoder(p.conn)
	for {
		var r reply
		if err := dec.Decode(&r); err != nil {
			p.fail(fmt.Errorf("read: %w", err))
			return
		}
		p.mu.Lock()
		var cl *call
		if len(p.inflight) > 0 {
			cl, p.inflight = p.inflight[0], p.inflight[1:]
		}
		p.mu.Unlock()
		if cl == nil || cl.req.ID != r.ID {
			p.fail(fmt.Errorf("reply %d answers no request in flight", r.ID))
			return
		}
		cl.reply <- r
	}
}

// fail kills the engine after a broken connection, unless it is stopping
// because the daemon asked, and tells every call in flight.
func (p *proc) fail(err error) {
	p.mu.Lock()
	inflight, closing := p.inflight, p.closing
	p.inflight, p.broken = nil, true
	p.mu.Unlock()
	if !closing {
		_ = p.cmd.Process.Kill()
	}
	for _, cl := range inflight {
		cl.reply <- reply{lost: err}
	}
}

// request sends req and waits for its reply, at most timeout. A late reply
// is dropped by the reader: it cannot answer another request.
func (p *proc) request(req request, timeout time.Duration) (reply, error) {
	p.mu.Lock()
	broken := p.broken
	p.mu.Unlock()
	if broken {
		return reply{}, errors.New("the connection to the engine failed")
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	cl := &call{req: req, reply: make(chan reply, 1)}
	select {
	case p.calls <- cl:
	case <-p.done:
		return reply{}, fmt.Errorf("the engine exited: %s", exitReason(p.err))
	case <-t.C:
		return reply{}, fmt.Errorf("no room to send within %s", timeout)
	}
	select {
	case r := <-cl.reply:
		if r.lost != nil {
			return r, r.lost
		}
		return r, nil
	case <-p.done:
		return reply{}, fmt.Errorf("the engine exited: %s", exitReason(p.err))
	case <-t.C:
		return reply{}, fmt.Errorf("no reply within %s", timeout)
	}
}

// configRequest sends a prepare, commit or discard and returns the engine's
// error applying it.
func (p *proc) configRequest(req request, timeout time.Duration) error {
	r, err := p.request(req, timeout)
	if err != nil {
		return err
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	return nil
}
