package vrrp

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/vrrplb/vrrplb/config"
)

// Update applies a reloaded configuration to the running instance: priority,
// preempt, preempt_delay, advert interval, version, virtual IPs, unicast
// peers, auth and GARP settings. A master stays master and keeps the virtual
// IPs that remain configured (new ones are added and announced, dropped ones
// removed) and advertises its new priority at once; it yields only if that
// priority loses to a backup, by the protocol. What NeedsNewInstance names
// cannot change. Update waits for the protocol loop; it returns an error if
// Run is not running.
func (in *Instance) Update(cfg config.Instance) error {
	return in.update(update{cfg: cfg})
}

// UpdateWith is Update with the trackers and the notifier built for cfg,
// so that a reload that adds, removes or reweights trackers or changes the
// notify command applies in place too. A tracker equal (==) to a running
// one keeps running with its state and takes its new weight; others start
// and count as passing until they report; the ones left out stop. A nil
// notifier tells no one.
func (in *Instance) UpdateWith(cfg config.Instance, trackers []WeightedTracker, notifier Notifier) error {
	return in.update(update{cfg: cfg, with: true, trackers: trackers, notifier: notifier})
}

func (in *Instance) update(u update) error {
	d, err := in.checkUpdate(u.cfg, u.with)
	if err != nil {
		return err
	}
	if !in.started.Load() {
		return fmt.Errorf("instance %q: not running", in.name)
	}
	u.d, u.reply = d, make(chan error, 1)
	select {
	case in.updates <- u:
		if err := <-u.reply; err != nil {
			return err
		}
		in.mu.Lock()
		in.current = u.cfg
		in.mu.Unlock()
		return nil
	case <-in.exited:
		return fmt.Errorf("instance %q: not running", in.name)
	}
}

// CheckUpdate reports whether UpdateWith(cfg, …) would be refused,
// changing nothing.
func (in *Instance) CheckUpdate(cfg config.Instance) error {
	_, err := in.checkUpdate(cfg, true)
	return err
}

// checkUpdate checks cfg against NeedsNewInstance; without new trackers
// and notifier (Update), their config cannot change either.
func (in *Instance) checkUpdate(cfg config.Instance, with bool) (derived, error) {
	in.mu.Lock()
	cur := in.current
	in.mu.Unlock()
	why := NeedsNewInstance(cur, cfg)
	if why == "" && !with {
		why = trackersChanged(cur, cfg)
	}
	if why != "" {
		return derived{}, fmt.Errorf("instance %q: reload: %s: needs a new instance", in.name, why)
	}
	return derive(cfg, localAddr(in.transport))
}

// trackersChanged says what UpdateWith must carry: a change of trackers or
// notify, or "".
func trackersChanged(a, b config.Instance) string {
	switch {
	case !reflect.DeepEqual(a.TrackFrontends, b.TrackFrontends),
		!reflect.DeepEqual(a.TrackScripts, b.TrackScripts),
		!reflect.DeepEqual(a.TrackInterfaces, b.TrackInterfaces):
		return "trackers changed"
	case !slices.Equal(a.Notify, b.Notify):
		return "notify changed"
	}
	return ""
}

// reconfigure is Update inside the protocol loop.
func (in *Instance) reconfigure(u update) {
	cfg := u.cfg
	oldVIPs := in.cfg.VirtualIPs
	in.apply(cfg, u.d)
	if in.tk != nil {
		in.configureTakeover(cfg, u.d)
	}
	if u.with {
		in.replaceTrackers(u.trackers)
		in.notifier = u.notifier
	}
	master := in.machine.State() == StateMaster
	added := false
	if master {
		for _, p := range oldVIPs {
			if !slices.Contains(cfg.VirtualIPs, p) {
				in.removeVIP(p)
			}
		}
		for _, p := range cfg.VirtualIPs {
			if !slices.Contains(oldVIPs, p) {
				added = true
				in.addVIP(p)
			}
		}
	}
	prio, fault := EffectivePriority(cfg.Priority, in.trackerStates)
	in.handle(Event{Kind: EventReconfigure, Config: in.machineConfig(cfg), Fault: fault, Yield: in.yielding(), EffectivePriority: prio})
	if added && in.machine.State() == StateMaster {
		in.startGARP()
	}
	in.mu.Lock()
	in.status.Priority = cfg.Priority
	in.status.VirtualIPs = slices.Clone(cfg.VirtualIPs)
	in.mu.Unlock()
	in.log.Info("configuration reloaded", "priority", cfg.Priority, "effective_priority", prio, "state", in.machine.State().String())
}
