package vrrp

import (
	"net/netip"
	"time"
)

// Settling of a recovery that every router shares: a router that becomes
// eligible again (leaves FAULT or stops yielding) within settleWindow of
// another master coming up, at least settleMin, does not preempt that
// master. Without it, whichever router recovered first became master and a
// higher priority took the VIP from it a fraction of a second later.
const settleMin = 3 * time.Second

// noteMaster remembers, from an advert, what settling a recovery needs: when
// the master left, and when the one advertising came up.
func (m *Machine) noteMaster(now time.Time, ev Event) {
	if ev.Priority == PriorityLeaving {
		m.goneAt, m.lastPrio = now, 0
		return
	}
	m.heardAt = now
	prev := m.lastPrio
	if m.state == StateMaster {
		prev = m.priority
	}
	switch {
	case !m.goneAt.IsZero() && now.Sub(m.goneAt) > 2*m.masterAdverInterval:
		// Longer than a backup's takeover (Skew_Time, under one interval)
		// takes: it came back from FAULT, from yielding or from a start.
		m.noteUp(now, ev.From)
	case prev == PriorityLowest && ev.Priority > PriorityLowest:
		m.noteUp(now, ev.From)
	case ev.From != m.upAddr:
		m.upAddr, m.upAt = netip.Addr{}, time.Time{}
	}
	m.goneAt, m.lastPrio = time.Time{}, ev.Priority
}

// noteUp records that addr came up as master at now.
func (m *Machine) noteUp(now time.Time, addr netip.Addr) {
	m.upAddr, m.upAt = addr, now
}

// settling reports whether the master of ev came up within the settle
// window of this router becoming eligible: a recovery they shared, which
// the VIP has already followed once. The address owner and a master that
// yields are preempted all the same.
func (m *Machine) settling(ev Event) bool {
	if m.priority == PriorityOwner || ev.Priority == PriorityLowest ||
		m.eligibleAt.IsZero() || m.upAt.IsZero() || ev.From != m.upAddr {
		return false
	}
	d := m.upAt.Sub(m.eligibleAt)
	return d.Abs() <= max(m.masterDownInterval(), settleMin)
}
