package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/health"
	"github.com/vrrplb/vrrplb/proxy"
	"github.com/vrrplb/vrrplb/vrrp"
)

// proxies are the daemon's [[frontend]]s: for each, a health.Checker of its
// backends and the proxy.Frontend that reads it. Both run under the
// supervisor, the checker first. A frontend's checker lives as long as the
// frontend's name stays in the config, so a VRRP instance tracking it keeps
// tracking the same checker across reloads.
type proxies struct {
	d  *daemon
	pm *proxy.Metrics
	hm *health.Metrics

	mu   sync.Mutex
	gen  int // makes supervisor keys unique while a replaced frontend drains
	byFE map[string]*frontendParts
}

type frontendParts struct {
	cfg          config.Frontend
	checker      *health.Checker
	frontend     *proxy.Frontend
	checkerKey   string
	frontendKey  string
	startChecker bool // false when the checker is reused from a replaced frontend
}

// tracker is the track_frontend tracker of the frontend called name: the
// verdict of its health checker.
func (ps *proxies) tracker(name string) (vrrp.Tracker, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	parts, ok := ps.byFE[name]
	if !ok {
		return nil, fmt.Errorf("no frontend %q", name)
	}
	return parts.checker.Tracker(), nil
}

// wireProxy builds the health checkers and frontends of cfg.
func wireProxy(d *daemon, cfg *config.Config) error {
	pm, err := proxy.NewMetrics(d.reg)
	if err != nil {
		return err
	}
	hm, err := health.NewMetrics(d.reg)
	if err != nil {
		return err
	}
	ps := &proxies{d: d, pm: pm, hm: hm, byFE: make(map[string]*frontendParts)}
	for _, fe := range cfg.Frontends {
		parts, err := ps.build(fe, nil)
		if err != nil {
			return err
		}
		if err := ps.start(parts); err != nil {
			return err
		}
	}
	d.frontendTracker = ps.tracker
	d.status = append(d.status, func(_ context.Context, doc *statusDoc) { ps.fillStatus(doc) })
	d.reloaders = append(d.reloaders, ps.prepare)
	d.commands.backend = ps.backendCommand
	return nil
}

// backendCommand is `vrrplb backend drain|enable`: it drains or enables
// the backend in the frontend named, or in every frontend that has it. It
// stops at the first frontend that refuses, saying what it did before.
func (ps *proxies) backendCommand(req backendRequest) ([]string, error) {
	ps.mu.Lock()
	var targets []*proxy.Frontend
	var names []string
	for _, fe := range ps.d.config().Frontends {
		parts, ok := ps.byFE[fe.Name]
		if !ok || (req.Frontend != "" && fe.Name != req.Frontend) {
			continue
		}
		if req.Frontend != "" || parts.frontend.HasBackend(req.Address) {
			targets = append(targets, parts.frontend)
			names = append(names, fe.Name)
		}
	}
	ps.mu.Unlock()
	switch {
	case req.Frontend != "" && len(targets) == 0:
		return nil, fmt.Errorf("no frontend %q", req.Frontend)
	case len(targets) == 0:
		return nil, fmt.Errorf("no frontend has the backend %s (give it as in the config, host:port)", req.Address)
	}
	var done []string
	for i, f := range targets {
		var changed bool
		var err error
		if req.Drain {
			changed, err = f.Drain(req.Address, req.Force)
		} else {
			changed, err = f.Enable(req.Address)
		}
		if err != nil {
			if len(done) > 0 {
				err = fmt.Errorf("%w (done before: %s)", err, strings.Join(done, "; "))
			}
			return nil, err
		}
		done = append(done, backendDone(names[i], req, changed, f))
	}
	return done, nil
}

// backendDone says what a drain or enable did in one frontend.
func backendDone(frontend string, req backendRequest, changed bool, f *proxy.Frontend) string {
	var live int64
	for _, b := range f.Status().Backends {
		if b.Address == req.Address {
			live = b.ActiveConnections
		}
	}
	switch {
	case req.Drain && changed:
		return fmt.Sprintf("frontend %s: backend %s draining: no new connections; live connections going on: %d", frontend, req.Address, live)
	case req.Drain:
		return fmt.Sprintf("frontend %s: backend %s was already draining; %d live connections", frontend, req.Address, live)
	case changed:
		return fmt.Sprintf("frontend %s: backend %s enabled: takes new connections again", frontend, req.Address)
	}
	return fmt.Sprintf("frontend %s: backend %s was not draining", frontend, req.Address)
}

// build makes the parts of fe; when it replaces old (a new listen
// address), it reuses old's checker.
func (ps *proxies) build(fe config.Frontend, old *frontendParts) (*frontendParts, error) {
	ps.mu.Lock()
	ps.gen++
	gen := ps.gen
	ps.mu.Unlock()
	parts := &frontendParts{cfg: fe, frontendKey: fmt.Sprintf("frontend/%s#%d", fe.Name, gen)}
	if old != nil {
		parts.checker, parts.checkerKey = old.checker, old.checkerKey
	} else {
		c, err := health.New(fe.Name, fe.Health, fe.Backends, health.Options{Logger: ps.d.log, Metrics: ps.hm})
		if err != nil {
			return nil, err // health names the frontend
		}
		parts.checker, parts.checkerKey, parts.startChecker = c, fmt.Sprintf("health/%s#%d", fe.Name, gen), true
	}
	f, err := proxy.New(fe, proxy.Options{Logger: ps.d.log, Metrics: ps.pm, Health: parts.checker})
	if err != nil {
		return nil, err
	}
	if old != nil {
		f.KeepDrainsOf(old.frontend)
	}
	parts.frontend = f
	return parts, nil
}

// start runs what build made.
func (ps *proxies) start(parts *frontendParts) error {
	if parts.startChecker {
		if err := ps.d.sup.Start(parts.checkerKey, parts.checker); err != nil {
			return err
		}
	}
	if err := ps.d.sup.Start(parts.frontendKey, parts.frontend); err != nil {
		return err
	}
	ps.mu.Lock()
	ps.byFE[parts.cfg.Name] = parts
	ps.mu.Unlock()
	return nil
}

// stopInBackground drains a frontend (up to its drain_timeout) and then,
// if checkerKey is not "", stops its checker; a reload does not wait for it.
func (ps *proxies) stopInBackground(frontendKey, checkerKey string) {
	go func() {
		ps.d.sup.Stop(frontendKey)
		if checkerKey != "" {
			ps.d.sup.Stop(checkerKey)
		}
	}()
}

// proxyPlan is a new config with its new frontends built, not yet
// running.
type proxyPlan struct {
	ps      *proxies
	cfg     *config.Config
	current map[string]*frontendParts
	fresh   map[string]*frontendParts
}

// prepare builds what a new config adds: frontends kept take the new
// settings and backend set in place at commit (live connections stay), a
// frontend whose listen address changed gets a new listener and proxy (its
// checker stays), removed ones drain and stop, new ones start. Everything
// new is built and every setting checked here, so an unusable new frontend
// (an unreadable ca_file) leaves the running set as it was.
func (ps *proxies) prepare(cfg *config.Config) (reloadPlan, error) {
	ps.mu.Lock()
	current := make(map[string]*frontendParts, len(ps.byFE))
	for name, parts := range ps.byFE {
		current[name] = parts
	}
	ps.mu.Unlock()

	p := &proxyPlan{ps: ps, cfg: cfg, current: current, fresh: map[string]*frontendParts{}}
	for _, fe := range cfg.Frontends {
		old, ok := current[fe.Name]
		if ok && proxy.NeedsNewFrontend(old.cfg, fe) == "" {
			if err := old.checker.CheckUpdate(fe.Health, fe.Backends); err != nil {
				return nil, err // health names the frontend
			}
			if err := old.frontend.CheckUpdate(fe); err != nil {
				return nil, err
			}
			continue
		}
		parts, err := ps.build(fe, old)
		if err != nil {
			return nil, err
		}
		p.fresh[fe.Name] = parts
	}
	return p, nil
}

// Discard drops the frontends prepare built; none was started.
func (p *proxyPlan) Discard() {}

// Commit applies the plan.
func (p *proxyPlan) Commit() error {
	ps := p.ps
	wanted := make(map[string]bool)
	for _, fe := range p.cfg.Frontends {
		wanted[fe.Name] = true
	}
	for name, old := range p.current {
		switch {
		case !wanted[name]:
			ps.mu.Lock()
			delete(ps.byFE, name)
			ps.mu.Unlock()
			ps.stopInBackground(old.frontendKey, old.checkerKey)
		case p.fresh[name] != nil:
			ps.stopInBackground(old.frontendKey, "") // the new frontend keeps the checker
		}
	}
	var errs []error
	for _, fe := range p.cfg.Frontends {
		old, kept := p.current[fe.Name]
		if kept {
			if err := old.checker.Update(fe.Health, fe.Backends); err != nil {
				errs = append(errs, err)
			}
		}
		if parts := p.fresh[fe.Name]; parts != nil {
			errs = append(errs, ps.start(parts))
			continue
		}
		if err := old.frontend.Update(fe); err != nil {
			errs = append(errs, err)
			continue
		}
		ps.mu.Lock()
		old.cfg = fe
		ps.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (ps *proxies) fillStatus(doc *statusDoc) {
	ps.mu.Lock()
	var fronts []*proxy.Frontend
	var checkers []*health.Checker
	for _, fe := range ps.d.config().Frontends {
		if parts, ok := ps.byFE[fe.Name]; ok {
			fronts = append(fronts, parts.frontend)
			checkers = append(checkers, parts.checker)
		}
	}
	ps.mu.Unlock()
	for i, f := range fronts {
		st := f.Status()
		reasons := map[string]string{}
		for _, b := range checkers[i].Status() {
			reasons[b.Address] = b.Reason
		}
		fs := frontendStatus{Name: st.Name, Listen: st.Listen, FailOpen: st.FailOpen, Backends: []backendStatus{}}
		for _, b := range st.Backends {
			fs.Backends = append(fs.Backends, backendStatus{
				Address:           b.Address,
				Healthy:           b.Healthy,
				Draining:          b.Draining,
				ActiveConnections: b.ActiveConnections,
				Reason:            reasons[b.Address],
			})
		}
		doc.Frontends = append(doc.Frontends, fs)
	}
}
