package main

import (
	"fmt"
	"sync"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/health"
	"github.com/vrrplb/vrrplb/proxy"
)

// proxies are the daemon's [[frontend]]s: for each, a health.Checker of its
// backends and the proxy.Frontend that reads it. Both run under the
// supervisor, the checker first.
type proxies struct {
	d  *daemon
	pm *proxy.Metrics
	hm *health.Metrics

	mu   sync.Mutex
	gen  int // makes supervisor keys unique while a replaced frontend drains
	byFE map[string]*frontendParts
}

type frontendParts struct {
	cfg      config.Frontend
	checker  *health.Checker
	frontend *proxy.Frontend
	key      string // supervisor key suffix
}

// daemonProxies lets other wirings (VRRP's track_frontend) find a
// daemon's checkers.
var daemonProxies sync.Map // *daemon → *proxies

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
		parts, err := ps.build(fe)
		if err != nil {
			return err
		}
		if err := ps.start(parts); err != nil {
			return err
		}
	}
	daemonProxies.Store(d, ps)
	d.status = append(d.status, ps.fillStatus)
	d.reloaders = append(d.reloaders, ps.reload)
	return nil
}

// frontendChecker returns the health checker of the frontend called name,
// for track_frontend: checker.Tracker() is a vrrp.Tracker.
//
//lint:ignore U1000 the VRRP wiring (vrrp.go) calls it for track_frontend
func (d *daemon) frontendChecker(name string) (*health.Checker, bool) {
	v, ok := daemonProxies.Load(d)
	if !ok {
		return nil, false
	}
	ps := v.(*proxies)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	parts, ok := ps.byFE[name]
	if !ok {
		return nil, false
	}
	return parts.checker, true
}

func (ps *proxies) build(fe config.Frontend) (*frontendParts, error) {
	checker, err := health.New(fe.Name, fe.Health, fe.Backends, health.Options{Logger: ps.d.log, Metrics: ps.hm})
	if err != nil {
		return nil, fmt.Errorf("frontend %q: health: %w", fe.Name, err)
	}
	f, err := proxy.New(fe, proxy.Options{Logger: ps.d.log, Metrics: ps.pm, Health: checker})
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	ps.gen++
	key := fmt.Sprintf("%s#%d", fe.Name, ps.gen)
	ps.mu.Unlock()
	return &frontendParts{cfg: fe, checker: checker, frontend: f, key: key}, nil
}

func (ps *proxies) start(parts *frontendParts) error {
	if err := ps.d.sup.Start("health/"+parts.key, parts.checker); err != nil {
		return err
	}
	if err := ps.d.sup.Start("frontend/"+parts.key, parts.frontend); err != nil {
		return err
	}
	ps.mu.Lock()
	ps.byFE[parts.cfg.Name] = parts
	ps.mu.Unlock()
	return nil
}

// stop drains parts' frontend (up to its drain_timeout) and then stops its
// checker, in the background: a reload does not wait for a drain.
func (ps *proxies) stop(parts *frontendParts) {
	go func() {
		ps.d.sup.Stop("frontend/" + parts.key)
		ps.d.sup.Stop("health/" + parts.key)
	}()
}

// reload applies a new config: frontends kept take the new settings and
// backend set in place (live connections stay), a frontend whose listen
// address changed is replaced, removed ones drain and stop, new ones start.
// Everything new is built before anything changes, so an unusable new
// frontend (an unreadable ca_file) leaves the running set as it was.
func (ps *proxies) reload(_, cfg *config.Config) error {
	ps.mu.Lock()
	current := make(map[string]*frontendParts, len(ps.byFE))
	for name, parts := range ps.byFE {
		current[name] = parts
	}
	ps.mu.Unlock()

	var fresh []*frontendParts
	wanted := make(map[string]bool)
	for _, fe := range cfg.Frontends {
		wanted[fe.Name] = true
		if old, ok := current[fe.Name]; ok && old.cfg.Listen == fe.Listen {
			continue
		}
		parts, err := ps.build(fe)
		if err != nil {
			return err
		}
		fresh = append(fresh, parts)
	}

	for name, old := range current {
		replaced := false
		for _, parts := range fresh {
			replaced = replaced || parts.cfg.Name == name
		}
		if !wanted[name] || replaced {
			ps.mu.Lock()
			delete(ps.byFE, name)
			ps.mu.Unlock()
			ps.stop(old)
		}
	}
	for _, fe := range cfg.Frontends {
		old, ok := current[fe.Name]
		if !ok || old.cfg.Listen != fe.Listen {
			continue
		}
		if err := old.checker.Update(fe.Health, fe.Backends); err != nil {
			return fmt.Errorf("frontend %q: health: %w", fe.Name, err)
		}
		if err := old.frontend.Update(fe); err != nil {
			return err
		}
		ps.mu.Lock()
		old.cfg = fe
		ps.mu.Unlock()
	}
	for _, parts := range fresh {
		if err := ps.start(parts); err != nil {
			return err
		}
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
		fs := frontendStatus{Name: st.Name, Listen: st.Listen, Backends: []backendStatus{}}
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
