package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/group"
)

// Member is one instance of a Set: an *Instance with what runs beside it
// (its notifier), or a test's fake.
type Member interface {
	// Run runs the member until ctx ends; a master hands over first.
	Run(ctx context.Context) error
	// Status is a snapshot for /status.
	Status() InstanceStatus
	// Prepare checks that cfg can be applied in place (NeedsNewInstance
	// said it can) and returns what applies it. Nothing changes until
	// the returned function runs.
	Prepare(cfg config.Instance, scripts config.Scripts) (apply func() error, err error)
	// SetYield sets or clears a cause for the member to yield
	// (Instance.SetYield); before Run it holds from the start.
	SetYield(cause string, on bool) error
}

// NewMemberFunc builds the member of one [[instance]]. It may open sockets
// but must not change the host until Run.
type NewMemberFunc func(ic config.Instance, scripts config.Scripts) (Member, error)

// SetOptions are the collaborators of a Set.
type SetOptions struct {
	// Logger receives the reload's log lines; nil discards them.
	Logger *slog.Logger
	// Metrics holds the instances' series; a removed instance's go with it.
	// nil: none are deleted (a test's fake members have none).
	Metrics *Metrics
	// New builds a member; required (NewMembers gives the real instances).
	New NewMemberFunc
}

// Set is the VRRP instances of a config, by key (virtual_router_id,
// interface, family): it runs them and applies a new config by diff. An
// instance whose key stays is kept: unchanged, updated in place (a master
// keeps its VIPs unless its new priority loses), or replaced by a new one
// when NeedsNewInstance says so. Instances whose key goes stop (a master
// hands over); new keys start.
type Set struct {
	log     *slog.Logger
	metrics *Metrics
	build   NewMemberFunc

	mu      sync.Mutex
	tasks   *group.Group // runs the members
	order   []config.InstanceKey
	members map[config.InstanceKey]*setMember
	// yields are the causes SetYield set, each with the instances it
	// covers by name; members a reload adds get them before they run.
	yields map[string]func(name string) bool
}

type setMember struct {
	cfg     config.Instance
	scripts config.Scripts
	m       Member
	task    group.Task
}

// NewSet returns an empty set; Apply gives it instances, Run runs them.
func NewSet(opts SetOptions) (*Set, error) {
	if opts.New == nil {
		return nil, errors.New("vrrp set: no member constructor")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Set{
		log:     log,
		metrics: opts.Metrics,
		build:   opts.New,
		members: map[config.InstanceKey]*setMember{},
		yields:  map[string]func(string) bool{},
		tasks:   group.New("vrrp set"),
	}, nil
}

// NeedsNewInstance says why going from a to b (same key) cannot be applied
// to the running instance, or "" when Instance.UpdateWith can apply it
// (trackers, notify and the scripts user included). It is the one rule of
// what a reload replaces.
func NeedsNewInstance(a, b config.Instance) string {
	switch {
	case a.Key() != b.Key():
		return "virtual_router_id, interface or family changed"
	case a.Name != b.Name:
		return "name changed"
	case a.SourceIP != b.SourceIP:
		return "source_ip changed"
	case (len(a.UnicastPeers) == 0) != (len(b.UnicastPeers) == 0):
		return "switch between multicast and unicast" // group membership is the transport's
	case a.TakeoverOn() != b.TakeoverOn():
		return "takeover stream turned on or off (takeover_reset, takeover_key_file)"
	case a.TakeoverOn() && a.TakeoverPort != b.TakeoverPort:
		return "takeover_port changed"
	}
	return ""
}

// SetPlan is a new config checked and built against a Set: Commit applies
// it, Discard drops what it built. Nothing runs or changes before Commit.
type SetPlan struct {
	s       *Set
	cfg     *config.Config
	order   []config.InstanceKey
	remove  []config.InstanceKey
	replace map[config.InstanceKey]*setMember // new members for replaced keys
	add     map[config.InstanceKey]*setMember
	update  map[config.InstanceKey]func() error
	changed map[config.InstanceKey]config.Instance // the config of updated members
}

// Prepare checks next against the running instances and builds what it
// adds or replaces. An error means nothing was changed and nothing needs
// discarding.
func (s *Set) Prepare(next *config.Config) (*SetPlan, error) {
	s.mu.Lock()
	current := make(map[config.InstanceKey]*setMember, len(s.members))
	for k, m := range s.members {
		current[k] = m
	}
	s.mu.Unlock()

	p := &SetPlan{s: s, cfg: next, replace: map[config.InstanceKey]*setMember{}, add: map[config.InstanceKey]*setMember{},
		update: map[config.InstanceKey]func() error{}, changed: map[config.InstanceKey]config.Instance{}}
	wanted := map[config.InstanceKey]bool{}
	var errs []error
	for _, ic := range next.Instances {
		k := ic.Key()
		wanted[k] = true
		p.order = append(p.order, k)
		old := current[k]
		switch {
		case old == nil:
			m, err := s.build(ic, next.Scripts)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.add[k] = &setMember{cfg: ic, scripts: next.Scripts, m: m}
		case reflect.DeepEqual(old.cfg, ic) && old.scripts == next.Scripts:
			// unchanged
		case NeedsNewInstance(old.cfg, ic) != "":
			m, err := s.build(ic, next.Scripts)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.replace[k] = &setMember{cfg: ic, scripts: next.Scripts, m: m}
		default:
			apply, err := old.m.Prepare(ic, next.Scripts)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.update[k], p.changed[k] = apply, ic
		}
	}
	for k := range current {
		if !wanted[k] {
			p.remove = append(p.remove, k)
		}
	}
	if err := errors.Join(errs...); err != nil {
		p.Discard()
		return nil, err
	}
	return p, nil
}

// Discard drops what Prepare built and never ran.
func (p *SetPlan) Discard() {
	for _, sm := range p.add {
		discard(sm.m)
	}
	for _, sm := range p.replace {
		discard(sm.m)
	}
	p.add, p.replace, p.update = nil, nil, nil
}

// discard releases a member that never ran: an instance's transport.
func discard(m Member) {
	if c, ok := m.(interface{ Discard() }); ok {
		c.Discard()
	}
}

// Commit applies the plan: removed instances stop (a master hands over),
// replaced ones stop and their new ones start, changed ones are updated in
// place, new ones start. Every change is tried; the errors (an instance
// that stopped running meanwhile) are returned together.
func (p *SetPlan) Commit() error {
	s := p.s
	names := map[string]bool{}
	for _, ic := range p.cfg.Instances {
		names[ic.Name] = true
	}
	for _, k := range p.remove {
		s.log.Info("reload removes instance", "vrid", k.VirtualRouterID, "interface", k.Interface, "family", k.Family.String())
		s.stop(k, names)
	}
	var errs []error
	for _, ic := range p.cfg.Instances {
		k := ic.Key()
		switch {
		case p.replace[k] != nil:
			s.log.Info("reload replaces instance", "instance", ic.Name)
			s.stop(k, names)
			s.start(k, p.replace[k])
		case p.add[k] != nil:
			s.log.Info("reload adds instance", "instance", ic.Name)
			s.start(k, p.add[k])
		case p.update[k] != nil:
			if err := p.update[k](); err != nil {
				errs = append(errs, err)
				continue
			}
			s.mu.Lock()
			if sm := s.members[k]; sm != nil {
				sm.cfg, sm.scripts = p.changed[k], p.cfg.Scripts
			}
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	s.order = p.order
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Apply prepares and commits next.
func (s *Set) Apply(next *config.Config) error {
	p, err := s.Prepare(next)
	if err != nil {
		return err
	}
	return p.Commit()
}

// start adds sm under k, and runs it at once if the set runs.
func (s *Set) start(k config.InstanceKey, sm *setMember) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cause, covers := range s.yields {
		// Before Run: it only records the cause.
		_ = sm.m.SetYield(cause, covers(sm.cfg.Name))
	}
	s.members[k] = sm
	if s.tasks.Running() {
		s.launchLocked(sm)
	}
}

func (s *Set) launchLocked(sm *setMember) {
	s.tasks.Go(&sm.task, fmt.Sprintf("instance %q", sm.cfg.Name), sm.m.Run)
}

// stop stops the member under k and waits for it (a master hands over and
// removes its VIPs). Its series go unless names still holds its name.
func (s *Set) stop(k config.InstanceKey, names map[string]bool) {
	s.mu.Lock()
	sm := s.members[k]
	delete(s.members, k)
	s.mu.Unlock()
	if sm == nil {
		return
	}
	if sm.task.Started() {
		sm.task.Stop()
	} else {
		discard(sm.m)
	}
	if s.metrics != nil && !names[sm.cfg.Name] {
		s.metrics.DeleteInstance(sm.cfg.Name)
	}
}

// Run runs the members, and those later commits add, until ctx ends or one
// fails (its error); then it stops them all and waits for them.
func (s *Set) Run(ctx context.Context) error {
	return s.tasks.Run(ctx, &s.mu, func() {
		for _, k := range s.order {
			if sm := s.members[k]; sm != nil && !sm.task.Started() {
				s.launchLocked(sm)
			}
		}
	})
}

// SetYield makes the instances that covers names yield for cause, and the
// others not; instances a reload adds follow it too. covers nil clears the
// cause everywhere. It returns the errors of instances that stopped
// meanwhile.
func (s *Set) SetYield(cause string, covers func(name string) bool) error {
	s.mu.Lock()
	if covers == nil {
		delete(s.yields, cause)
		covers = func(string) bool { return false }
	} else {
		s.yields[cause] = covers
	}
	ms := make([]*setMember, 0, len(s.members))
	for _, sm := range s.members {
		ms = append(ms, sm)
	}
	s.mu.Unlock()
	var errs []error
	for _, sm := range ms {
		errs = append(errs, sm.m.SetYield(cause, covers(sm.cfg.Name)))
	}
	return errors.Join(errs...)
}

// Status is a snapshot of every instance, in config order.
func (s *Set) Status() []InstanceStatus {
	s.mu.Lock()
	ms := make([]Member, 0, len(s.order))
	for _, k := range s.order {
		if sm := s.members[k]; sm != nil {
			ms = append(ms, sm.m)
		}
	}
	s.mu.Unlock()
	out := make([]InstanceStatus, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Status())
	}
	return out
}

// CheckHost refuses a config with instances when this process lacks a
// capability VRRP needs, or whose track scripts or notify commands would run
// as root while another user can change them (CheckScriptSecurity) or as a
// [scripts] user it cannot switch to (CheckScriptsUser).
func CheckHost(cfg *config.Config) error {
	if len(cfg.Instances) == 0 {
		return nil
	}
	if err := CheckCapabilities(); err != nil {
		return err
	}
	return CheckScripts(cfg)
}

// CheckScripts refuses track scripts and notify commands that would run as
// root while another user can change them (CheckScriptSecurity), and a
// [scripts] user the process cannot switch to; `vrrplb check` runs it too,
// with its own privileges.
func CheckScripts(cfg *config.Config) error {
	var errs []error
	for _, ic := range cfg.Instances {
		if len(ic.TrackScripts) > 0 || len(ic.Notify) > 0 {
			if err := CheckScriptsUser(cfg.Scripts.User); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	for _, ic := range cfg.Instances {
		for i, s := range ic.TrackScripts {
			if err := CheckScriptSecurity(s.Command, cfg.Scripts.User); err != nil {
				errs = append(errs, fmt.Errorf("instance %q: track_script #%d: %w", ic.Name, i+1, err))
			}
		}
		if err := CheckScriptSecurity(ic.Notify, cfg.Scripts.User); err != nil {
			errs = append(errs, fmt.Errorf("instance %q: notify: %w", ic.Name, err))
		}
	}
	return errors.Join(errs...)
}
