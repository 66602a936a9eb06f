package vrrp

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
)

// receive reads messages until the transport is closed.
func (in *Instance) receive(free chan []byte, out chan<- received, errc chan<- error, done <-chan struct{}) {
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-done:
			return
		}
		n, info, err := in.transport.Receive(buf)
		if err != nil {
			select {
			case <-done:
			case errc <- err:
			}
			return
		}
		select {
		case out <- received{buf: buf, n: n, info: info}:
		case <-done:
			return
		}
	}
}

// receivePacket checks a received message in the order of RFC 5798 §7.1 and
// DESIGN.md, counts it, and feeds an advert that passes to the machine.
func (in *Instance) receivePacket(msg []byte, info PacketInfo) {
	src, dst := info.Src.Unmap().WithZone(""), info.Dst.Unmap().WithZone("")
	// RFC 5798 §7.1: multicast and unicast alike, so a sender off the
	// segment is never heard.
	if info.HopLimit != TTL {
		in.drop(ReasonTTL, src)
		return
	}
	if len(msg) > 0 && int(msg[0]>>4) != in.cfg.Version {
		in.drop(ReasonVersion, src)
		return
	}
	if err := in.rx.Decode(msg, src, dst); err != nil {
		var pe *PacketError
		if errors.As(err, &pe) {
			in.drop(pe.Reason, src)
		}
		return
	}
	a := &in.rx
	if a.VRID != in.cfg.VirtualRouterID {
		in.drop(ReasonVRID, src)
		return
	}
	if len(in.cfg.UnicastPeers) > 0 && !slices.ContainsFunc(in.dsts, func(p netip.Addr) bool { return p.WithZone("") == src }) {
		in.drop(ReasonPeer, src)
		return
	}
	if in.cfg.Version == 2 && (a.AuthType != in.advert.AuthType || a.AuthData != in.advert.AuthData) {
		in.drop(ReasonAuth, src)
		return
	}
	if (in.cfg.Version == 2 && a.Interval != in.cfg.AdvertInterval) || a.Interval == 0 ||
		a.Interval > MaxIntervalRatio*in.cfg.AdvertInterval {
		in.drop(ReasonInterval, src)
		return
	}
	in.followLocalAddr()
	if src == in.local {
		in.drop(ReasonSelf, src)
		return
	}
	if !sameAddrs(a.Addrs, in.vips) {
		if in.addrListLog.allow(in.clock.Now()) {
			in.log.Warn("advert lists other virtual IPs than ours", "from", src, "theirs", a.Addrs, "ours", in.vips, "suppressed", in.addrListLog.take())
		}
	}
	in.handle(Event{Kind: EventAdvert, From: src, Priority: a.Priority, Interval: a.Interval})
	if a.Priority != PriorityLeaving {
		in.heardMaster()
	}
	// Counted last: once it shows, the advert's effects are done.
	in.metrics.advertsReceived.Inc()
}

// drop counts a dropped packet and logs it, at most one line per reason per
// logEvery with the count of the ones not logged since. Packets of other
// virtual routers and our own are normal on a shared segment: debug only.
func (in *Instance) drop(r Reason, src netip.Addr) {
	in.metrics.dropped[r].Inc()
	l := in.dropLog[r]
	if !l.allow(in.clock.Now()) {
		return
	}
	level := slog.LevelWarn
	if r == ReasonVRID || r == ReasonSelf {
		level = slog.LevelDebug
	}
	in.log.Log(context.Background(), level, "dropping VRRP packet", "reason", string(r), "from", src, "suppressed", l.take())
}

// sameAddrs reports whether a and b hold the same addresses in any order.
func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
