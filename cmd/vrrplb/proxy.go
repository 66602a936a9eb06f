package main

import (
	"fmt"
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
	d.proxies = ps
	d.frontendTracker = ps.tracker
	d.status = append(d.status, ps.fillStatus)
	d.reloaders = append(d.reloaders, ps.reload)
	return nil
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
			return nil, fmt.Errorf("frontend %q: health: %w", fe.Name, err)
		}
		parts.checker, parts.checkerKey, parts.startChecker = c, fmt.Sprintf("health/%s#%d", fe.Name, gen), true
	}
	f, err := proxy.New(fe, proxy.Options{Logger: ps.d.log, Metrics: ps.pm, Health: parts.checker})
	if err != nil {
		return nil, err
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

// reload applies a new config: frontends kept take the new settings and
// backend set in place (live connections stay), a frontend whose listen
// address changed gets a new listener and proxy (its checker stays),
// removed ones drain and stop, new ones start. Everything new is built
// before anything changes, so an unusable new frontend (an unreadable
// ca_file) leaves the running set as it was.
func (ps *proxies) reload(_, cfg *config.Config) error {
	ps.mu.Lock()
	current := make(map[string]*frontendParts, len(ps.byFE))
	for name, parts := range ps.byFE {
		current[name] = parts
	}
	ps.mu.Unlock()

	fresh := make(map[string]*frontendParts)
	wanted := make(map[string]bool)
	for _, fe := range cfg.Frontends {
		wanted[fe.Name] = true
		old, ok := current[fe.Name]
		if ok && old.cfg.Listen == fe.Listen {
			continue
		}
		parts, err := ps.build(fe, old)
		if err != nil {
			return err
		}
		fresh[fe.Name] = parts
	}

	for name, old := range current {
		switch {
		case !wanted[name]:
			ps.mu.Lock()
			delete(ps.byFE, name)
			ps.mu.Unlock()
			ps.stopInBackground(old.frontendKey, old.checkerKey)
		case fresh[name] != nil:
			ps.stopInBackground(old.frontendKey, "") // the new frontend keeps the checker
		}
	}
	for _, fe := range cfg.Frontends {
		old, kept := current[fe.Name]
		if kept {
			if err := old.checker.Update(fe.Health, fe.Backends); err != nil {
				return fmt.Errorf("frontend %q: health: %w", fe.Name, err)
			}
		}
		if parts := fresh[fe.Name]; parts != nil {
			if err := ps.start(parts); err != nil {
				return err
			}
			continue
		}
		if err := old.frontend.Update(fe); err != nil {
			return err
		}
		ps.mu.Lock()
		old.cfg = fe
		ps.mu.Unlock()
	}
	return nil
}

func (ps *proxies) fillStatus(doc *statusDoc) {
	ps.mu.Lock()
	var fronts []*proxy.Frontend
	for _, fe := range ps.d.config().Frontends {
		if parts, ok := ps.byFE[fe.Name]; ok {
			fronts = append(fronts, parts.frontend)
		}
	}
	ps.mu.Unlock()
	for _, f := range fronts {
		st := f.Status()
		fs := frontendStatus{Name: st.Name, Listen: st.Listen, FailOpen: st.FailOpen, Backends: []backendStatus{}}
		for _, b := range st.Backends {
			fs.Backends = append(fs.Backends, backendStatus{
				Address:           b.Address,
				Healthy:           b.Healthy,
				ActiveConnections: b.ActiveConnections,
			})
		}
		doc.Frontends = append(doc.Frontends, fs)
	}
}
