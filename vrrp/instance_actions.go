package vrrp

import (
	"net/netip"
	"slices"
	"time"
)

// handle feeds ev to the machine and carries out its actions.
func (in *Instance) handle(ev Event) {
	now := in.clock.Now()
	in.actions = in.machine.Handle(now, ev, in.actions)
	// A master that leaves with a priority-0 advert has no successor yet:
	// one takes over within Skew_Time (RFC 5798 §6.4.2).
	leaving := slices.ContainsFunc(in.actions, func(a Action) bool {
		return a.Kind == ActionSendAdvert && a.Priority == PriorityLeaving
	})
	for _, a := range in.actions {
		in.perform(now, a, leaving)
	}
	in.mu.Lock()
	in.status.State = in.machine.State().String()
	in.status.EffectivePriority = in.machine.Priority()
	in.status.MasterIP = in.machine.Master()
	in.mu.Unlock()
	in.metrics.priority.Set(float64(in.machine.Priority()))
	if in.tk != nil {
		if ev.Kind == EventAdvert {
			in.tk.heard(ev.From)
		}
		in.tk.follow(in.machine.State() == StateMaster, in.machine.Master())
	}
}

func (in *Instance) perform(now time.Time, a Action, leaving bool) {
	switch a.Kind {
	case ActionSendAdvert:
		in.sendAdvert(now, a.Priority)
	case ActionAddVIPs:
		in.stopHandover()
		for _, p := range in.cfg.VirtualIPs {
			in.addVIP(p)
		}
	case ActionRemoveVIPs:
		in.holdForHandover(now, leaving)
	case ActionRemoveStaleVIPs:
		in.removeStale()
	case ActionAnnounce:
		in.startGARP()
	case ActionPromptClients:
		if in.tk != nil {
			in.tk.prompt(in.done, in.trackWG, a.Deadline.Sub(now))
		}
	case ActionSetTimer:
		in.setTimer(a.Deadline.Sub(now))
	case ActionStopTimer:
		in.setTimer(-1)
	case ActionTransition:
		in.log.Info("transition", "from", a.From.String(), "to", a.To.String(), "reason", string(a.Why),
			"priority", in.machine.Priority(), "master", in.machine.Master())
		in.metrics.setState(a.To)
		in.metrics.transitions[a.To].Inc()
		if a.From == StateMaster {
			in.stopGARP()
		}
		if in.notifier != nil {
			in.notifier.Notify(in.cfg.Name, a.To.String())
		}
	}
}

// localAddr is t's source address without zone: a link-local source
// compares equal however it is reported.
func localAddr(t Transport) netip.Addr {
	return t.LocalAddr().Unmap().WithZone("")
}

// followLocalAddr picks up a new source address of the transport (the
// interface's primary address changed): the checksum, the tie-break and the
// self check use it from now on.
func (in *Instance) followLocalAddr() {
	l := localAddr(in.transport)
	if l == in.local || !l.IsValid() || l.Is4() != in.local.Is4() {
		return
	}
	in.log.Info("source address changed", "from", in.local, "to", l)
	in.local = l
	in.machine.SetLocalAddr(l)
	in.mu.Lock()
	if in.machine.State() == StateMaster {
		in.status.MasterIP = l
	}
	in.mu.Unlock()
}

// removeStale removes configured virtual IPs left on the interface by a run
// that did not stop cleanly. Other addresses are never touched.
// addVIP adds a virtual IP to the interface and, done, counts it held.
func (in *Instance) addVIP(p netip.Prefix) {
	if err := in.addrs.Add(p); err != nil {
		in.log.Error("adding virtual IP", "vip", p, "err", err)
		return
	}
	in.mu.Lock()
	if !slices.Contains(in.status.HeldIPs, p) {
		in.status.HeldIPs = append(in.status.HeldIPs, p)
	}
	in.mu.Unlock()
}

// holds reports whether p is on the interface as far as the instance knows.
func (in *Instance) holds(p netip.Prefix) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Contains(in.status.HeldIPs, p)
}

// removeVIP removes a virtual IP from the interface and no longer counts
// it held, even when the removal failed (the address is then not ours to
// vouch for).
func (in *Instance) removeVIP(p netip.Prefix) {
	if err := in.addrs.Remove(p); err != nil {
		in.log.Error("removing virtual IP", "vip", p, "err", err)
	}
	in.mu.Lock()
	in.status.HeldIPs = slices.DeleteFunc(in.status.HeldIPs, func(q netip.Prefix) bool { return q == p })
	in.mu.Unlock()
}

func (in *Instance) removeStale() {
	for _, p := range in.cfg.VirtualIPs {
		has, err := in.addrs.Has(p)
		if err != nil {
			in.log.Error("looking for a leftover virtual IP", "vip", p, "err", err)
			continue
		}
		if !has {
			continue
		}
		in.log.Info("removing virtual IP left on the interface before becoming backup", "vip", p)
		if err := in.addrs.Remove(p); err != nil {
			in.log.Error("removing leftover virtual IP", "vip", p, "err", err)
		}
	}
}

func (in *Instance) sendAdvert(now time.Time, prio uint8) {
	in.followLocalAddr()
	in.advert.Priority = prio
	for _, dst := range in.dsts {
		var err error
		in.sendBuf, err = in.advert.Append(in.sendBuf[:0], in.local, dst)
		if err == nil {
			err = in.transport.Send(in.sendBuf, dst)
		}
		if err != nil {
			if in.sendErrLog.allow(now) {
				in.log.Error("sending advert", "to", dst, "priority", prio, "err", err, "suppressed", in.sendErrLog.take())
			}
			continue
		}
		in.metrics.advertsSent.Inc()
	}
}

// setTimer re-arms the machine's timer d from now; d < 0 disarms it. The
// timer is reused, so that the advert path allocates nothing: since Go 1.23
// Reset leaves no stale expiry in the channel.
func (in *Instance) setTimer(d time.Duration) {
	switch {
	case d < 0:
		if in.timer != nil {
			in.timer.Stop()
			in.timer, in.timerC = nil, nil
		}
		return
	case in.timer == nil:
		in.timer = in.clock.NewTimer(d)
	default:
		in.timer.Reset(d)
	}
	in.timerC = in.timer.C()
}

// startGARP starts a burst of cfg.GARPRepeat announcements, GARPInterval apart.
func (in *Instance) startGARP() {
	in.stopGARP()
	in.garpLeft = in.cfg.GARPRepeat
	switch {
	case in.garpLeft > 0:
		in.garpTick()
	case in.cfg.GARPRefresh > 0:
		in.armGARP(in.cfg.GARPRefresh)
	}
}

// garpTick sends one announcement of the burst, or a refresh once the burst
// is over, and arms the next.
func (in *Instance) garpTick() {
	if in.machine.State() != StateMaster {
		return
	}
	if in.garpLeft > 0 {
		in.garpLeft--
	}
	in.announce()
	switch {
	case in.garpLeft > 0:
		in.armGARP(in.cfg.GARPInterval)
	case in.cfg.GARPRefresh > 0:
		in.armGARP(in.cfg.GARPRefresh)
	}
}

func (in *Instance) armGARP(d time.Duration) {
	in.garpTimer = in.clock.NewTimer(d)
	in.garpC = in.garpTimer.C()
}

func (in *Instance) stopGARP() {
	if in.garpTimer != nil {
		in.garpTimer.Stop()
		in.garpTimer, in.garpC = nil, nil
	}
	in.garpLeft = 0
}

func (in *Instance) announce() {
	if in.announcer == nil {
		return
	}
	if err := in.announcer.Announce(in.vips); err != nil {
		if now := in.clock.Now(); in.announceLog.allow(now) {
			in.log.Error("announcing virtual IPs", "err", err, "suppressed", in.announceLog.take())
		}
		return
	}
	in.metrics.garpSent.Inc()
}

// rateLimit lets a repeated log line through at most once per every.
type rateLimit struct {
	every      time.Duration
	last       time.Time
	suppressed int
}

// allow reports whether to log now; when not, it counts the line as suppressed.
func (r *rateLimit) allow(now time.Time) bool {
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		r.suppressed++
		return false
	}
	r.last = now
	return true
}

// take returns and resets the count of suppressed lines.
func (r *rateLimit) take() int {
	n := r.suppressed
	r.suppressed = 0
	return n
}
