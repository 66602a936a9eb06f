package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/group"
)

// Checker is a frontend's health checker as a Set runs it (health.Checker).
type Checker interface {
	Health
	Run(ctx context.Context) error
	// CheckUpdate says whether Update would refuse, changing nothing.
	CheckUpdate(cfg config.Health, backends []string) error
	Update(cfg config.Health, backends []string) error
}

// SetOptions are the collaborators of a Set.
type SetOptions[C Checker] struct {
	// Logger receives the frontends' lines; nil discards them.
	Logger *slog.Logger
	// Metrics counts the frontends' connections; nil keeps them private.
	Metrics *Metrics
	// NewChecker builds the health checker of a frontend; required.
	NewChecker func(fe config.Frontend) (C, error)
}

// Set is the [[frontend]]s of a config, by name, each with its health
// checker: it runs them and applies a new config by diff. A frontend whose
// name stays takes the new settings and backend set in place (live
// connections stay), unless NeedsNewFrontend says otherwise (a new listen
// address): then a new Frontend takes over while the old one drains, and
// the checker stays, so whatever tracks it keeps tracking the same one.
// Removed frontends drain and stop; new ones start.
type Set[C Checker] struct {
	log        *slog.Logger
	metrics    *Metrics
	newChecker func(fe config.Frontend) (C, error)

	mu     sync.Mutex
	tasks  *group.Group // runs the frontends and checkers
	order  []string
	byName map[string]*setFrontend[C]
}

// setFrontend is one frontend of a Set and its checker.
type setFrontend[C Checker] struct {
	cfg     config.Frontend
	f       *Frontend
	c       C
	checker *group.Task // shared with the frontend this one replaced
	front   *group.Task
}

// NewSet returns an empty set; Apply gives it frontends, Run runs them.
func NewSet[C Checker](opts SetOptions[C]) (*Set[C], error) {
	if opts.NewChecker == nil {
		return nil, errors.New("proxy set: no checker constructor")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Set[C]{log: opts.Logger, metrics: opts.Metrics, newChecker: opts.NewChecker,
		byName: map[string]*setFrontend[C]{}, tasks: group.New("proxy set")}, nil
}

// SetPlan is a new config with its new frontends built, not yet running.
type SetPlan[C Checker] struct {
	s       *Set[C]
	cfg     *config.Config
	current map[string]*setFrontend[C]
	fresh   map[string]*setFrontend[C]
}

// Prepare builds what next adds or replaces and checks what it updates in
// place, changing nothing: an unusable new frontend (an unreadable
// ca_file) leaves the running set as it was.
func (s *Set[C]) Prepare(next *config.Config) (*SetPlan[C], error) {
	s.mu.Lock()
	current := make(map[string]*setFrontend[C], len(s.byName))
	for name, sf := range s.byName {
		current[name] = sf
	}
	s.mu.Unlock()
	p := &SetPlan[C]{s: s, cfg: next, current: current, fresh: map[string]*setFrontend[C]{}}
	for _, fe := range next.Frontends {
		old := current[fe.Name]
		if old != nil && NeedsNewFrontend(old.cfg, fe) == "" {
			if err := old.c.CheckUpdate(fe.Health, fe.Backends); err != nil {
				return nil, err // health names the frontend
			}
			if err := old.f.CheckUpdate(fe); err != nil {
				return nil, err
			}
			continue
		}
		sf, err := s.build(fe, old)
		if err != nil {
			return nil, err
		}
		p.fresh[fe.Name] = sf
	}
	return p, nil
}

// build makes the frontend of fe; when it replaces old, it keeps old's
// checker and the backends old drains.
func (s *Set[C]) build(fe config.Frontend, old *setFrontend[C]) (*setFrontend[C], error) {
	sf := &setFrontend[C]{cfg: fe, front: &group.Task{}}
	if old != nil {
		sf.c, sf.checker = old.c, old.checker
	} else {
		c, err := s.newChecker(fe)
		if err != nil {
			return nil, err
		}
		sf.c, sf.checker = c, &group.Task{}
	}
	f, err := New(fe, Options{Logger: s.log, Metrics: s.metrics, Health: sf.c})
	if err != nil {
		return nil, err
	}
	if old != nil {
		f.KeepDrainsOf(old.f)
	}
	sf.f = f
	return sf, nil
}

// Discard drops what Prepare built; none of it ran.
func (p *SetPlan[C]) Discard() {}

// Commit applies the plan. A frontend that fails to apply its part does
// not stop the others; the errors are returned together.
func (p *SetPlan[C]) Commit() error {
	s := p.s
	wanted := map[string]bool{}
	for _, fe := range p.cfg.Frontends {
		wanted[fe.Name] = true
	}
	for name, old := range p.current {
		switch {
		case !wanted[name]:
			s.mu.Lock()
			delete(s.byName, name)
			s.mu.Unlock()
			s.stopInBackground(old.front, old.checker)
		case p.fresh[name] != nil:
			s.stopInBackground(old.front, nil) // the new frontend keeps the checker
		}
	}
	var errs []error
	var order []string
	for _, fe := range p.cfg.Frontends {
		order = append(order, fe.Name)
		old, kept := p.current[fe.Name]
		if kept {
			if err := old.c.Update(fe.Health, fe.Backends); err != nil {
				errs = append(errs, err)
			}
		}
		if sf := p.fresh[fe.Name]; sf != nil {
			s.start(sf)
			continue
		}
		if err := old.f.Update(fe); err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		old.cfg = fe
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.order = order
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Apply prepares and commits next.
func (s *Set[C]) Apply(next *config.Config) error {
	p, err := s.Prepare(next)
	if err != nil {
		return err
	}
	return p.Commit()
}

// start adds sf, and runs it at once if the set runs: the checker first
// (unless it runs already for the frontend sf replaces), then the frontend.
func (s *Set[C]) start(sf *setFrontend[C]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byName[sf.cfg.Name] = sf
	if s.tasks.Running() {
		s.launchLocked(sf)
	}
}

// launchLocked runs sf's checker, unless it runs already, then its
// frontend; a failure of either before it was asked to stop ends Run.
func (s *Set[C]) launchLocked(sf *setFrontend[C]) {
	if !sf.checker.Started() {
		s.tasks.Go(sf.checker, fmt.Sprintf("frontend %q: health", sf.cfg.Name), sf.c.Run)
	}
	s.tasks.Go(sf.front, fmt.Sprintf("frontend %q", sf.cfg.Name), sf.f.Run)
}

// stopInBackground drains a frontend (up to its drain_timeout) and then,
// if checker is not nil, stops its checker; a reload does not wait for it.
func (s *Set[C]) stopInBackground(front, checker *group.Task) {
	go func() {
		front.Stop()
		checker.Stop()
	}()
}

// Run runs the frontends, and those later commits add, until ctx ends or
// one fails (its error); then it stops them all, each frontend draining,
// and waits for them.
func (s *Set[C]) Run(ctx context.Context) error {
	return s.tasks.Run(ctx, &s.mu, func() {
		for _, name := range s.order {
			if sf := s.byName[name]; sf != nil {
				s.launchLocked(sf)
			}
		}
	})
}

// SetMember is one frontend of a Set and its checker, for status and
// runtime commands.
type SetMember[C Checker] struct {
	Name     string
	Frontend *Frontend
	Checker  C
}

// Members are the frontends in config order.
func (s *Set[C]) Members() []SetMember[C] {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SetMember[C], 0, len(s.order))
	for _, name := range s.order {
		if sf := s.byName[name]; sf != nil {
			out = append(out, SetMember[C]{Name: name, Frontend: sf.f, Checker: sf.c})
		}
	}
	return out
}

// Checker is the health checker of the frontend called name.
func (s *Set[C]) Checker(name string) (C, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sf, ok := s.byName[name]
	if !ok {
		var zero C
		return zero, false
	}
	return sf.c, true
}
