package vrrp

import "time"

// A master that leaves (stop, maintenance, a failing weight-0
// track_frontend, FAULT, a preempting master) ends the TCP connections on
// its virtual IPs with an RST, so that their clients reconnect at once, to
// the new master, instead of at their next keepalive or ping. It does so
// while it still holds the addresses (the kernel sends from no other), and
// once the new master has announced itself: earlier, the clients would
// reconnect to this host again.

// handoverGrace is how long a leaving master keeps its virtual IPs after
// the new master's advert: the gratuitous ARPs that follow it on the wire
// reach the clients first, so that they reconnect to the new master.
const handoverGrace = 20 * time.Millisecond

// maxHandoverHold bounds the hold after a priority-0 advert when no new
// master is heard: with long advert intervals (up to 40.95 s), a stop must
// still end well within the daemon's wait for the engine.
const maxHandoverHold = 5 * time.Second

// holdForHandover removes the virtual IPs the machine gave up, after ending
// the connections on them; with a resetter it first holds them for the new
// master. leaving says this master left with a priority-0 advert: a backup
// takes over within its Skew_Time, under one advert interval (RFC 5798
// §6.4.2), so the hold ends at its advert plus handoverGrace, or after two
// intervals (maxHandoverHold) at most. Otherwise a master already advertised: handoverGrace
// only.
func (in *Instance) holdForHandover(now time.Time, leaving bool) {
	in.mu.Lock()
	held := len(in.status.HeldIPs) > 0
	in.mu.Unlock()
	if in.resetter == nil || !held {
		in.releaseVIPs()
		return
	}
	until := now.Add(handoverGrace)
	if leaving {
		until = now.Add(min(2*in.cfg.AdvertInterval, maxHandoverHold) + handoverGrace)
	}
	in.armHandover(now, until)
}

// heardMaster ends a hold handoverGrace after another master's advert.
func (in *Instance) heardMaster() {
	if in.handover == nil {
		return
	}
	now := in.clock.Now()
	if until := now.Add(handoverGrace); until.Before(in.handoverUntil) {
		in.armHandover(now, until)
	}
}

func (in *Instance) armHandover(now, until time.Time) {
	in.stopHandover()
	in.handoverUntil = until
	in.handover = in.clock.NewTimer(until.Sub(now))
	in.handoverC = in.handover.C()
}

// stopHandover ends a hold without removing anything: the instance became
// master again, or the addresses were released.
func (in *Instance) stopHandover() {
	if in.handover != nil {
		in.handover.Stop()
		in.handover, in.handoverC = nil, nil
	}
}

// releaseVIPs ends the connections on the virtual IPs this instance holds,
// then removes them.
func (in *Instance) releaseVIPs() {
	in.stopHandover()
	for _, p := range in.cfg.VirtualIPs {
		if in.resetter != nil && in.holds(p) {
			n, err := in.resetter.Reset(p.Addr())
			if err != nil {
				in.log.Error("resetting the connections on a virtual IP", "vip", p, "err", err)
			}
			if n > 0 {
				in.log.Info("reset the connections on a virtual IP before removing it", "vip", p, "connections", n)
			}
		}
		in.removeVIP(p)
	}
}

// finishHandover, on stop, waits out a hold, still hearing adverts.
func (in *Instance) finishHandover(rxC <-chan received, free chan<- []byte) {
	for in.handover != nil {
		select {
		case p := <-rxC:
			in.receivePacket(p.buf[:p.n], p.info)
			free <- p.buf
		case <-in.handoverC:
			in.releaseVIPs()
		}
		in.eventDone()
	}
}
