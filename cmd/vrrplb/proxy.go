package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/health"
	"github.com/vrrplb/vrrplb/proxy"
	"github.com/vrrplb/vrrplb/vrrp"
)

// proxies are the daemon's [[frontend]]s: a proxy.Set of frontends, each
// with the health.Checker of its backends. What a reload changes in them is
// the Set's to decide.
type proxies struct {
	d   *daemon
	set *proxy.Set[*health.Checker]
}

// tracker is the track_frontend tracker of the frontend called name: the
// verdict of its health checker, which stays the frontend's across reloads.
func (ps *proxies) tracker(name string) (vrrp.Tracker, error) {
	c, ok := ps.set.Checker(name)
	if !ok {
		return nil, fmt.Errorf("no frontend %q", name)
	}
	return c.Tracker(), nil
}

// wireProxy builds the health checkers and frontends of cfg and runs them
// under the supervisor.
func wireProxy(d *daemon, cfg *config.Config) error {
	pm, err := proxy.NewMetrics(d.reg)
	if err != nil {
		return err
	}
	hm, err := health.NewMetrics(d.reg)
	if err != nil {
		return err
	}
	set, err := proxy.NewSet(proxy.SetOptions[*health.Checker]{
		Logger:  d.log,
		Metrics: pm,
		NewChecker: func(fe config.Frontend) (*health.Checker, error) {
			return health.New(fe.Name, fe.Health, fe.Backends, health.Options{Logger: d.log, Metrics: hm})
		},
	})
	if err != nil {
		return err
	}
	if err := set.Apply(cfg); err != nil {
		return err
	}
	ps := &proxies{d: d, set: set}
	d.frontendTracker = ps.tracker
	d.status = append(d.status, func(_ context.Context, doc *statusDoc) { ps.fillStatus(doc) })
	d.reloaders = append(d.reloaders, func(next *config.Config) (reloadPlan, error) { return set.Prepare(next) })
	d.commands.backend = ps.backendCommand
	return d.sup.Start("proxy", set)
}

// backendCommand is `vrrplb backend drain|enable`: it drains or enables
// the backend in the frontend named, or in every frontend that has it. It
// stops at the first frontend that refuses, saying what it did before.
func (ps *proxies) backendCommand(req backendRequest) ([]string, error) {
	var targets []*proxy.Frontend
	var names []string
	for _, m := range ps.set.Members() {
		if req.Frontend != "" && m.Name != req.Frontend {
			continue
		}
		if req.Frontend != "" || m.Frontend.HasBackend(req.Address) {
			targets = append(targets, m.Frontend)
			names = append(names, m.Name)
		}
	}
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

func (ps *proxies) fillStatus(doc *statusDoc) {
	for _, m := range ps.set.Members() {
		st := m.Frontend.Status()
		reasons := map[string]string{}
		for _, b := range m.Checker.Status() {
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
