package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/vrrp"
)

// wireVRRP starts one VRRP instance per [[instance]], each under the
// supervisor with its own key, shows them in /status and applies reloads to
// them by (virtual_router_id, interface, family).
func wireVRRP(d *daemon, cfg *config.Config) error {
	if err := checkVRRP(cfg); err != nil {
		return err
	}
	d.checks = append(d.checks, checkVRRP)
	w := &vrrpWiring{d: d, metrics: vrrp.NewMetrics(d.reg), running: map[config.InstanceKey]*vrrpRunning{}}
	for _, ic := range cfg.Instances {
		if err := w.start(cfg, ic); err != nil {
			return err
		}
	}
	d.status = append(d.status, w.status)
	d.reloaders = append(d.reloaders, w.reload)
	return nil
}

// vrrpWiring keeps the daemon's VRRP instances, by key.
type vrrpWiring struct {
	d       *daemon
	metrics *vrrp.Metrics

	mu      sync.Mutex
	order   []config.InstanceKey // config order, for /status
	running map[config.InstanceKey]*vrrpRunning
}

type vrrpRunning struct {
	cfg     config.Instance
	scripts config.Scripts
	in      *vrrp.Instance
}

// supervisorKey names an instance's component.
func supervisorKey(k config.InstanceKey) string {
	return fmt.Sprintf("instance vrid %d on %s (%s)", k.VirtualRouterID, k.Interface, k.Family)
}

// start builds the instance of ic and starts it under the supervisor.
func (w *vrrpWiring) start(cfg *config.Config, ic config.Instance) error {
	in, c, err := w.build(cfg, ic)
	if err != nil {
		return err
	}
	key := ic.Key()
	if err := w.d.sup.Start(supervisorKey(key), c); err != nil {
		return fmt.Errorf("instance %q: %w", ic.Name, err)
	}
	w.mu.Lock()
	w.running[key] = &vrrpRunning{cfg: ic, scripts: cfg.Scripts, in: in}
	w.order = append(w.order, key)
	w.mu.Unlock()
	return nil
}

// stop stops the instance under key (a master hands over and removes its
// VIPs) and forgets it.
func (w *vrrpWiring) stop(key config.InstanceKey) {
	w.mu.Lock()
	r := w.running[key]
	delete(w.running, key)
	w.order = slices.DeleteFunc(w.order, func(k config.InstanceKey) bool { return k == key })
	w.mu.Unlock()
	if r == nil {
		return
	}
	w.d.sup.Stop(supervisorKey(key))
	w.metrics.DeleteInstance(r.cfg.Name)
}

// build makes an instance with its transport, address manager, announcer,
// trackers and notifier, and the component that runs it.
func (w *vrrpWiring) build(cfg *config.Config, ic config.Instance) (in *vrrp.Instance, c component, err error) {
	d := w.d
	log := d.log.With("instance", ic.Name)
	tr, err := vrrp.NewTransport(ic.Interface, ic.Family, ic.SourceIP, ic.UnicastPeers, vrrp.TransportOptions{Logger: log, VirtualIPs: ic.VirtualIPs})
	if err != nil {
		return nil, nil, fmt.Errorf("instance %q: %w", ic.Name, err)
	}
	defer func() {
		if err != nil { // the instance will never run to close it
			_ = tr.Close()
		}
	}()
	addrs, err := vrrp.NewAddrManager(ic.Interface)
	if err != nil {
		return nil, nil, fmt.Errorf("instance %q: %w", ic.Name, err)
	}
	trackers, err := vrrpTrackers(d, cfg, ic)
	if err != nil {
		return nil, nil, fmt.Errorf("instance %q: %w", ic.Name, err)
	}
	opts := vrrp.InstanceOptions{
		Logger:    d.log,
		Metrics:   w.metrics,
		Transport: tr,
		Addrs:     addrs,
		Announcer: vrrp.NewAnnouncer(ic.Interface),
		Trackers:  trackers,
	}
	var notifier *vrrp.CommandNotifier
	if len(ic.Notify) > 0 {
		notifier, err = vrrp.NewCommandNotifier(ic.Notify, vrrp.NotifyOptions{User: cfg.Scripts.User, Logger: d.log})
		if err != nil {
			return nil, nil, fmt.Errorf("instance %q: notify: %w", ic.Name, err)
		}
		opts.Notifier = notifier
	}
	in, err = vrrp.NewInstance(ic, opts)
	if err != nil {
		return nil, nil, err
	}
	return in, instanceWithNotifier(in, notifier), nil
}

func (w *vrrpWiring) status(doc *statusDoc) {
	w.mu.Lock()
	ins := make([]*vrrp.Instance, 0, len(w.order))
	for _, k := range w.order {
		ins = append(ins, w.running[k].in)
	}
	w.mu.Unlock()
	for _, in := range ins {
		doc.Instances = append(doc.Instances, vrrpStatus(in.Status()))
	}
}

// checkVRRP refuses a config with instances when the process lacks a
// capability VRRP needs, or whose track scripts or notify commands would run
// as root while another user can change them (vrrp.CheckScriptSecurity) or
// as a [scripts] user it cannot switch to (vrrp.CheckScriptsUser).
func checkVRRP(cfg *config.Config) error {
	if len(cfg.Instances) == 0 {
		return nil
	}
	if err := vrrp.CheckCapabilities(); err != nil {
		return err
	}
	return checkScripts(cfg)
}

// checkScripts refuses track scripts and notify commands that would run as
// root while another user can change them, and a [scripts] user the process
// cannot switch to; `vrrplb check` runs it too, with its own privileges.
func checkScripts(cfg *config.Config) error {
	var errs []error
	for _, ic := range cfg.Instances {
		if len(ic.TrackScripts) > 0 || len(ic.Notify) > 0 {
			if err := vrrp.CheckScriptsUser(cfg.Scripts.User); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	for _, ic := range cfg.Instances {
		for i, s := range ic.TrackScripts {
			if err := vrrp.CheckScriptSecurity(s.Command, cfg.Scripts.User); err != nil {
				errs = append(errs, fmt.Errorf("instance %q: track_script #%d: %w", ic.Name, i+1, err))
			}
		}
		if err := vrrp.CheckScriptSecurity(ic.Notify, cfg.Scripts.User); err != nil {
			errs = append(errs, fmt.Errorf("instance %q: notify: %w", ic.Name, err))
		}
	}
	return errors.Join(errs...)
}

// reload applies a new config by key: instances that are gone stop (a
// master hands over), new ones start, and a changed one is updated in place
// — a master keeps its VIPs unless its new priority loses — unless its name,
// source_ip, trackers, notify command or the scripts user changed, which
// take a new instance. Every change is tried; the errors are returned
// together.
func (w *vrrpWiring) reload(_, next *config.Config) error {
	// checkVRRP has passed (d.checks): nothing is refused for safety here.
	wanted := map[config.InstanceKey]bool{}
	for _, ic := range next.Instances {
		wanted[ic.Key()] = true
	}
	w.mu.Lock()
	var gone []config.InstanceKey
	for k := range w.running {
		if !wanted[k] {
			gone = append(gone, k)
		}
	}
	w.mu.Unlock()
	for _, k := range gone {
		w.d.log.Info("reload removes instance", "vrid", k.VirtualRouterID, "interface", k.Interface, "family", k.Family.String())
		w.stop(k)
	}

	var errs []error
	for _, ic := range next.Instances {
		w.mu.Lock()
		r := w.running[ic.Key()]
		w.mu.Unlock()
		switch {
		case r == nil:
			w.d.log.Info("reload adds instance", "instance", ic.Name)
			errs = append(errs, w.start(next, ic))
		case reflect.DeepEqual(r.cfg, ic) && r.scripts == next.Scripts:
			// unchanged
		case needsNewInstance(r.cfg, ic) || r.scripts != next.Scripts:
			w.d.log.Info("reload replaces instance", "instance", ic.Name)
			w.stop(ic.Key())
			errs = append(errs, w.start(next, ic))
		default:
			if err := r.in.Update(ic); err != nil {
				errs = append(errs, err)
				continue
			}
			w.mu.Lock()
			r.cfg = ic
			w.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

// needsNewInstance reports whether going from a to b changes what
// vrrp.Instance.Update cannot change, or what the wiring built around it.
func needsNewInstance(a, b config.Instance) bool {
	return a.Name != b.Name || a.SourceIP != b.SourceIP ||
		!reflect.DeepEqual(a.TrackFrontends, b.TrackFrontends) ||
		!reflect.DeepEqual(a.TrackScripts, b.TrackScripts) ||
		!reflect.DeepEqual(a.TrackInterfaces, b.TrackInterfaces) ||
		!slices.Equal(a.Notify, b.Notify) ||
		(len(a.UnicastPeers) == 0) != (len(b.UnicastPeers) == 0) // multicast membership is the transport's
}

// instanceWithNotifier runs an instance and its notifier. The notifier
// outlives the instance, so the transition of its stop is told as well.
func instanceWithNotifier(in *vrrp.Instance, n *vrrp.CommandNotifier) component {
	if n == nil {
		return in
	}
	return componentFunc(func(ctx context.Context) error {
		nctx, stopNotifier := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = n.Run(nctx)
		}()
		err := in.Run(ctx)
		stopNotifier()
		<-done
		return err
	})
}

// vrrpTrackers builds an instance's trackers with their weights.
func vrrpTrackers(d *daemon, cfg *config.Config, ic config.Instance) ([]vrrp.WeightedTracker, error) {
	var ts []vrrp.WeightedTracker
	for _, f := range ic.TrackFrontends {
		if d.frontendTracker == nil {
			return nil, fmt.Errorf("track_frontend %q: the frontends are not wired", f.Name)
		}
		t, err := d.frontendTracker(f.Name)
		if err != nil {
			return nil, fmt.Errorf("track_frontend %q: %w", f.Name, err)
		}
		// Weight 0 yields rather than faults: a failure that every host
		// shares must not leave the VIP without a holder.
		ts = append(ts, vrrp.WeightedTracker{Tracker: t, Weight: f.Weight, Yield: true})
	}
	for _, s := range ic.TrackScripts {
		t, err := vrrp.NewScriptTracker(s, vrrp.ScriptOptions{User: cfg.Scripts.User, Logger: d.log.With("instance", ic.Name)})
		if err != nil {
			return nil, err
		}
		ts = append(ts, vrrp.WeightedTracker{Tracker: t, Weight: s.Weight})
	}
	tracksOwn := false
	for _, i := range ic.TrackInterfaces {
		t, err := vrrp.NewInterfaceTracker(i.Name, d.log.With("instance", ic.Name))
		if err != nil {
			return nil, err
		}
		ts = append(ts, vrrp.WeightedTracker{Tracker: t, Weight: i.Weight})
		tracksOwn = tracksOwn || i.Name == ic.Interface
	}
	// The instance's own interface is always tracked, as keepalived does: a
	// master whose link is down cannot serve the VIP, and when the link
	// returns it comes back through backup and a fresh announcement instead
	// of staying master unseen. A track_interface entry for it sets the
	// weight instead.
	if !tracksOwn {
		t, err := vrrp.NewInterfaceTracker(ic.Interface, d.log.With("instance", ic.Name))
		if err != nil {
			return nil, err
		}
		ts = append(ts, vrrp.WeightedTracker{Tracker: t, Weight: 0})
	}
	return ts, nil
}

func vrrpStatus(s vrrp.InstanceStatus) instanceStatus {
	out := instanceStatus{
		Name:              s.Name,
		State:             s.State,
		Priority:          int(s.Priority),
		EffectivePriority: int(s.EffectivePriority),
		VirtualIPs:        []string{},
	}
	if s.MasterIP.IsValid() {
		out.MasterIP = s.MasterIP.String()
	}
	for _, p := range s.VirtualIPs {
		out.VirtualIPs = append(out.VirtualIPs, p.String())
	}
	return out
}
