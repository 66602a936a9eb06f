package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/vrrp"
)

// frontendTracker, when set by the frontend wiring, returns the tracker of a
// frontend's health for track_frontend. It runs before wireVRRP.
var frontendTracker func(d *daemon, name string) (vrrp.Tracker, error)

// wireVRRP builds one VRRP instance per [[instance]]: its raw-socket
// transport, netlink address manager, announcer, trackers and notifier. The
// instances and notifiers become components; /status shows the instances.
func wireVRRP(d *daemon, cfg *config.Config) (err error) {
	if len(cfg.Instances) == 0 {
		return nil
	}
	metrics := vrrp.NewMetrics(d.reg)
	var (
		instances  []*vrrp.Instance
		transports []*vrrp.RawTransport
		components []component
	)
	defer func() {
		if err != nil { // the instances never ran: release their sockets
			for _, t := range transports {
				_ = t.Close()
			}
		}
	}()
	for _, ic := range cfg.Instances {
		log := d.log.With("instance", ic.Name)
		tr, err := vrrp.NewTransport(ic.Interface, ic.Family, ic.SourceIP, ic.UnicastPeers, vrrp.TransportOptions{Logger: log})
		if err != nil {
			return fmt.Errorf("instance %q: %w", ic.Name, err)
		}
		transports = append(transports, tr)
		addrs, err := vrrp.NewAddrManager(ic.Interface)
		if err != nil {
			return fmt.Errorf("instance %q: %w", ic.Name, err)
		}
		trackers, err := vrrpTrackers(d, cfg, ic)
		if err != nil {
			return fmt.Errorf("instance %q: %w", ic.Name, err)
		}
		opts := vrrp.InstanceOptions{
			Logger:    d.log,
			Metrics:   metrics,
			Transport: tr,
			Addrs:     addrs,
			Announcer: vrrp.NewAnnouncer(ic.Interface),
			Trackers:  trackers,
		}
		var notifier *vrrp.CommandNotifier
		if len(ic.Notify) > 0 {
			notifier, err = vrrp.NewCommandNotifier(ic.Notify, vrrp.NotifyOptions{User: cfg.Scripts.User, Logger: d.log})
			if err != nil {
				return fmt.Errorf("instance %q: notify: %w", ic.Name, err)
			}
			opts.Notifier = notifier
		}
		in, err := vrrp.NewInstance(ic, opts)
		if err != nil {
			return err
		}
		instances = append(instances, in)
		components = append(components, instanceWithNotifier(in, notifier))
	}
	d.components = append(d.components, components...)
	d.status = append(d.status, func(doc *statusDoc) {
		for _, in := range instances {
			doc.Instances = append(doc.Instances, vrrpStatus(in.Status()))
		}
	})
	d.reloaders = append(d.reloaders, reloadVRRP)
	return nil
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
		if frontendTracker == nil {
			return nil, fmt.Errorf("track_frontend %q: frontend health is not available in this build", f.Name)
		}
		t, err := frontendTracker(d, f.Name)
		if err != nil {
			return nil, fmt.Errorf("track_frontend %q: %w", f.Name, err)
		}
		ts = append(ts, vrrp.WeightedTracker{Tracker: t, Weight: f.Weight})
	}
	for _, s := range ic.TrackScripts {
		t, err := vrrp.NewScriptTracker(s, vrrp.ScriptOptions{User: cfg.Scripts.User, Logger: d.log.With("instance", ic.Name)})
		if err != nil {
			return nil, err
		}
		ts = append(ts, vrrp.WeightedTracker{Tracker: t, Weight: s.Weight})
	}
	for _, i := range ic.TrackInterfaces {
		t, err := vrrp.NewInterfaceTracker(i.Name, d.log.With("instance", ic.Name))
		if err != nil {
			return nil, err
		}
		ts = append(ts, vrrp.WeightedTracker{Tracker: t, Weight: i.Weight})
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

// errVRRPReload rejects a reload that changes the VRRP instances: the
// running instances cannot take a new configuration in place yet.
var errVRRPReload = errors.New("VRRP instances changed: this version applies instance changes on restart only; the running instances stay as they are")

// reloadVRRP accepts a reload that leaves the instances (and the scripts
// user they run checks as) unchanged.
func reloadVRRP(old, new *config.Config) error {
	if reflect.DeepEqual(old.Instances, new.Instances) && old.Scripts == new.Scripts {
		return nil
	}
	return errVRRPReload
}
