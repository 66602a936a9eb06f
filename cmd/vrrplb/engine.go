package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vrrplb/vrrplb/cmd/vrrplb/internal/engine"
	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/vrrp"
)

// statusDeadline is how long /status waits for the VRRP engine's answer
// before it shows the last one, marked stale.
const statusDeadline = 500 * time.Millisecond

// wireVRRPEngine runs the VRRP instances in the engine process (package
// engine) when cfg has instances, or from the first reload that adds some.
func wireVRRPEngine(d *daemon, cfg *config.Config) error {
	if err := vrrp.CheckHost(cfg); err != nil {
		return err
	}
	d.checks = append(d.checks, vrrp.CheckHost)
	c, err := engine.NewClient(engine.ClientOptions{
		Logger:          d.log,
		LogOut:          d.logOut,
		Registerer:      d.reg,
		FrontendTracker: d.frontendTracker,
	})
	if err != nil {
		return err
	}
	d.gather = append(d.gather, prometheus.GathererFunc(c.Gather))
	d.status = append(d.status, func(ctx context.Context, doc *statusDoc) { fillEngineStatus(ctx, c, doc) })
	d.reloaders = append(d.reloaders, func(next *config.Config) (reloadPlan, error) { return c.Prepare(next) })
	d.commands.maintenance = func(req maintenanceRequest) ([]string, error) { return setMaintenance(d, c, req) }
	if err := c.Start(cfg); err != nil {
		return err
	}
	// On stop a master hands its VIPs over and resets the connections on
	// them while the proxy still accepts (vrrp.Instance.holdForHandover).
	d.beforeStop = append(d.beforeStop, func(context.Context) { c.Stop() })
	return d.sup.Start("VRRP engine", c)
}

// fillEngineStatus adds the engine's instances to doc, waiting at most
// statusDeadline for a fresh answer; otherwise the last one, marked stale.
func fillEngineStatus(ctx context.Context, c *engine.Client, doc *statusDoc) {
	if !c.Running() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, statusDeadline)
	defer cancel()
	snap, fresh, _ := c.Snapshot(ctx)
	if !fresh {
		doc.InstancesStale = true
		if !snap.At.IsZero() {
			doc.InstancesAsOf = snap.At.UTC().Format(time.RFC3339Nano)
		}
	}
	for _, s := range snap.Instances {
		doc.Instances = append(doc.Instances, vrrpStatus(s))
	}
}

// setMaintenance is `vrrplb maintenance`: the client records the change
// and tells the engine, which applies it before answering.
func setMaintenance(d *daemon, c *engine.Client, req maintenanceRequest) ([]string, error) {
	var all []string
	for _, ic := range d.config().Instances {
		all = append(all, ic.Name)
	}
	if len(all) == 0 {
		return nil, errors.New("this vrrplb has no VRRP instances: nothing to put in maintenance")
	}
	targets := all
	if req.Instance != "" {
		if !slices.Contains(all, req.Instance) {
			return nil, fmt.Errorf("no instance %q (this vrrplb has %s)", req.Instance, strings.Join(all, ", "))
		}
		targets = []string{req.Instance}
	}
	if err := c.SetMaintenance(req.Instance, req.On, all); err != nil {
		return nil, err
	}
	var done []string
	for _, name := range targets {
		if req.On {
			done = append(done, fmt.Sprintf("instance %s: maintenance on: its VIPs go to a peer; it stays in the election at the lowest priority", name))
		} else {
			done = append(done, fmt.Sprintf("instance %s: maintenance off: back at its own priority", name))
		}
	}
	return done, nil
}

func vrrpStatus(s vrrp.InstanceStatus) instanceStatus {
	out := instanceStatus{
		Name:              s.Name,
		State:             s.State,
		Priority:          int(s.Priority),
		EffectivePriority: int(s.EffectivePriority),
		VirtualIPs:        []string{},
		Maintenance:       slices.Contains(s.Yielding, engine.MaintenanceCause),
	}
	if s.MasterIP.IsValid() {
		out.MasterIP = s.MasterIP.String()
	}
	for _, p := range s.VirtualIPs {
		out.VirtualIPs = append(out.VirtualIPs, p.String())
	}
	out.HeldIPs = []string{}
	for _, p := range s.HeldIPs {
		out.HeldIPs = append(out.HeldIPs, p.String())
	}
	return out
}
