package vrrp

import (
	"net/netip"
	"time"
)

// State is a virtual router's state: the three of RFC 5798 §6.4 and FAULT,
// where a failing tracker keeps the instance silent and without its addresses.
// An instance that yields (see Event.Yield) has no state of its own: it is a
// backup or master at PriorityLowest.
type State int

// States.
const (
	StateInit   State = iota // RFC 5798 §6.4.1 Initialize
	StateBackup              // RFC 5798 §6.4.2
	StateMaster              // RFC 5798 §6.4.3
	StateFault
)

// states lists every State, so metrics can show the ones not current as 0.
var states = []State{StateInit, StateBackup, StateMaster, StateFault}

// String returns the name used in status output, metrics and notify commands.
func (s State) String() string {
	switch s {
	case StateInit:
		return "init"
	case StateBackup:
		return "backup"
	case StateMaster:
		return "master"
	case StateFault:
		return "fault"
	}
	return "unknown"
}

// Priorities with a meaning of their own (RFC 5798 §5.2.4).
const (
	// PriorityLeaving in an advert means the master stops being master.
	PriorityLeaving = 0
	// PriorityOwner is the address owner's: it becomes master at once.
	PriorityOwner = 255
	// PriorityLowest is the priority of an instance that yields: it stays
	// in the election, so that it holds the VIP when no one else will, and
	// any other router, even one with preempt off, takes the VIP from it.
	PriorityLowest = 1
)

// Why says why a transition happened. It is logged with the transition.
type Why string

// Transition reasons.
const (
	WhyStartup      Why = "startup"         // Initialize → Backup (RFC 5798 §6.4.1)
	WhyOwner        Why = "address_owner"   // priority 255 → Master at once (RFC 5798 §6.4.1)
	WhyMasterDown   Why = "master_down"     // Master_Down_Timer fired (RFC 5798 §6.4.2)
	WhyPreemptDelay Why = "preempt_delay"   // preempt_delay ended with a lower-priority master
	WhyHigherMaster Why = "higher_priority" // a master heard a better advert (RFC 5798 §6.4.3)
	WhyTieAddress   Why = "equal_priority_higher_address"
	WhyFault        Why = "fault"     // a weight-0 tracker is failing
	WhyRecovered    Why = "recovered" // every weight-0 tracker passes again
	WhyYield        Why = "yield"     // a master hands over: no healthy backend, or maintenance
	WhyShutdown     Why = "shutdown"  // RFC 5798 §6.4.2, §6.4.3 Shutdown event
)

// MachineConfig is the part of an instance's configuration the state machine uses.
type MachineConfig struct {
	// Version is 2 or 3: it decides how Skew_Time is computed and whether the
	// master's advert interval is learned.
	Version int
	// Priority is the configured priority, 1..255.
	Priority uint8
	// AdvertInterval is this router's Advertisement_Interval.
	AdvertInterval time.Duration
	Preempt        bool
	// PreemptDelay holds off preemption of a lower-priority master this long
	// after the first of its adverts is heard; 0 preempts at once.
	PreemptDelay time.Duration
	// LocalAddr is this router's primary address: it breaks priority ties.
	LocalAddr netip.Addr
}

// Machine is the VRRP state machine of one virtual router (RFC 5798 §6.4,
// RFC 3768 §6.4) with FAULT added. It is pure: no goroutines, no clock, no
// I/O. Handle feeds it one event with the current time and returns what the
// runner must do. It is not safe for concurrent use.
type Machine struct {
	cfg   MachineConfig
	state State

	// priority is the effective priority: the configured one with the
	// trackers' weights applied.
	priority uint8
	fault    bool
	yield    bool
	// handover is set while an event that starts a yield is handled.
	handover bool

	// masterAdverInterval is Master_Adver_Interval (RFC 5798 §6.1): learned
	// from the master's adverts in version 3.
	masterAdverInterval time.Duration
	// masterAddr is the current master's address, this router's when master;
	// the zero Addr when unknown.
	masterAddr netip.Addr
	// deadline is the armed timer's expiry; zero when disarmed.
	deadline time.Time
	// fired is the deadline of the timer event being handled.
	fired time.Time
	// preemptAt is when a backup may take over from the lower-priority
	// master it hears; zero when no preempt_delay is running.
	preemptAt time.Time
	// asserted is when a master last answered a lower-priority advert;
	// zero when it has not in this term.
	asserted time.Time

	// What settles a shared recovery (settleMin). eligibleAt is when this
	// router last left FAULT or stopped yielding; zero if never.
	eligibleAt time.Time
	// goneAt is when another master was last heard leaving (priority 0);
	// zero once a master is heard again.
	goneAt time.Time
	// lastPrio is the priority the last master heard advertised; 0 when
	// unknown. While master, its own priority counts instead.
	lastPrio uint8
	// upAddr came up as master at upAt, seen to be a recovery: it rose
	// from PriorityLowest (its frontend has a healthy backend again), it
	// took the VIP from this router at PriorityLowest, or it came up
	// after another master had left and no backup took over (all were in
	// FAULT). upAt is zero when no such coming up was seen.
	upAddr netip.Addr
	upAt   time.Time
	// heardAt is when the last advert of a master (not priority 0) came.
	heardAt time.Time

	out []Action
}

// NewMachine returns a machine in Init.
func NewMachine(cfg MachineConfig) *Machine {
	return &Machine{
		cfg:                 cfg,
		state:               StateInit,
		priority:            cfg.Priority,
		masterAdverInterval: cfg.AdvertInterval,
	}
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Priority returns the effective priority.
func (m *Machine) Priority() uint8 { return m.priority }

// Master returns the current master's address, or the zero Addr when unknown.
func (m *Machine) Master() netip.Addr { return m.masterAddr }

// SetLocalAddr changes this router's primary address (the interface's
// address changed). It takes effect without any action.
func (m *Machine) SetLocalAddr(a netip.Addr) {
	m.cfg.LocalAddr = a
	if m.state == StateMaster {
		m.masterAddr = a
	}
}

// Handle feeds ev, which happened at now, to the machine. It appends the
// actions to out[:0] and returns it.
func (m *Machine) Handle(now time.Time, ev Event, out []Action) []Action {
	m.out = out[:0]
	if ev.Kind == EventTimer {
		if m.deadline.IsZero() || now.Before(m.deadline) {
			// A timer that was re-armed or stopped after it fired.
			return m.out
		}
		m.fired = m.deadline
		m.deadline = time.Time{}
	}
	if ev.Kind == EventReconfigure {
		m.cfg = ev.Config
		if m.cfg.Version == 2 || m.state != StateBackup {
			m.masterAdverInterval = m.cfg.AdvertInterval
		}
	}
	m.handover = false
	if ev.Kind == EventTrack || ev.Kind == EventReconfigure {
		wasOut, wasYield := m.fault || m.yield, m.yield
		m.fault, m.yield = ev.Fault, ev.Yield
		m.handover = m.yield && !wasYield
		if wasOut && !m.fault && !m.yield {
			m.eligibleAt = now
		}
		m.priority = ev.EffectivePriority
		if m.cfg.Priority == PriorityOwner {
			m.priority = PriorityOwner // weights do not apply to the address owner
		}
		if m.yield {
			m.priority = PriorityLowest
		}
	}
	if ev.Kind == EventAdvert {
		m.noteMaster(now, ev)
	}

	var next State
	var why Why
	switch m.state {
	case StateInit:
		next, why = m.initialize(ev)
	case StateBackup:
		next, why = m.backup(now, ev)
	case StateMaster:
		next, why = m.master(now, ev)
	case StateFault:
		next, why = m.faulted(ev)
	}
	if next != m.state {
		m.transition(now, next, why)
	}
	out = m.out
	m.out = nil
	return out
}

// initialize is RFC 5798 §6.4.1.
func (m *Machine) initialize(ev Event) (State, Why) {
	if ev.Kind != EventStartup {
		return StateInit, ""
	}
	switch {
	case m.fault:
		return StateFault, WhyFault
	case m.priority == PriorityOwner:
		return StateMaster, WhyOwner
	}
	return StateBackup, WhyStartup
}

// backup is RFC 5798 §6.4.2.
func (m *Machine) backup(now time.Time, ev Event) (State, Why) {
	switch ev.Kind {
	case EventShutdown:
		return StateInit, WhyShutdown
	case EventTrack, EventReconfigure:
		if m.fault {
			return StateFault, WhyFault
		}
	case EventTimer:
		if !m.preemptAt.IsZero() && !now.Before(m.preemptAt) {
			return StateMaster, WhyPreemptDelay
		}
		return StateMaster, WhyMasterDown
	case EventAdvert:
		if ev.Priority == PriorityLeaving {
			// The master is leaving: take over after Skew_Time only, the
			// backup with the highest priority first.
			m.masterAddr = netip.Addr{}
			m.preemptAt = time.Time{}
			m.setTimer(now.Add(m.skewTime()))
			return StateBackup, ""
		}
		m.masterAddr = ev.From
		// The address owner always preempts (RFC 5798 §6.1 Preempt_Mode),
		// and anyone preempts a master that yields. A master that came up
		// with this router's own recovery keeps the VIP.
		preempt := m.cfg.Preempt || m.priority == PriorityOwner || ev.Priority == PriorityLowest
		if !preempt || ev.Priority >= m.priority || m.settling(ev) {
			m.preemptAt = time.Time{}
			m.learnInterval(ev.Interval)
			m.setTimer(now.Add(m.masterDownInterval()))
			return StateBackup, ""
		}
		// A lower-priority master and preemption on: let the Master_Down_Timer
		// run out, or take over when preempt_delay ends.
		if m.cfg.PreemptDelay > 0 {
			if m.preemptAt.IsZero() {
				m.preemptAt = now.Add(m.cfg.PreemptDelay)
			}
			m.learnInterval(ev.Interval)
			deadline := now.Add(m.masterDownInterval())
			if m.preemptAt.Before(deadline) {
				deadline = m.preemptAt
			}
			m.setTimer(deadline)
		}
	}
	return StateBackup, ""
}

// master is RFC 5798 §6.4.3.
func (m *Machine) master(now time.Time, ev Event) (State, Why) {
	switch ev.Kind {
	case EventShutdown:
		return StateInit, WhyShutdown
	case EventTrack:
		if m.fault {
			return StateFault, WhyFault
		}
		if m.handover {
			return StateBackup, WhyYield
		}
	case EventReconfigure:
		if m.fault {
			return StateFault, WhyFault
		}
		if m.handover {
			return StateBackup, WhyYield
		}
		// Tell the backups the new priority and interval now.
		m.sendAdvert(m.priority)
		m.setTimer(now.Add(m.cfg.AdvertInterval))
	case EventTimer:
		m.sendAdvert(m.priority)
		// Keep the beat: a timer served late does not delay the adverts
		// after it, unless it is a whole interval late.
		next := m.fired.Add(m.cfg.AdvertInterval)
		if !next.After(now) {
			next = now.Add(m.cfg.AdvertInterval)
		}
		m.setTimer(next)
	case EventAdvert:
		switch {
		case ev.Priority == PriorityLeaving:
			// Another master is leaving: show the backups there is still one.
			m.sendAdvert(m.priority)
			m.setTimer(now.Add(m.cfg.AdvertInterval))
		case ev.Priority > m.priority:
			m.masterAddr = ev.From
			m.learnInterval(ev.Interval)
			return StateBackup, WhyHigherMaster
		case ev.Priority == m.priority && ev.From.Compare(m.cfg.LocalAddr) > 0:
			m.masterAddr = ev.From
			m.learnInterval(ev.Interval)
			return StateBackup, WhyTieAddress
		default:
			// A second master that loses to us: assert at once, adverts and
			// gratuitous ARPs, so it yields and stale caches heal; but at
			// most once per assertEvery, so a flood of forged adverts is
			// not amplified (our own adverts keep their beat meanwhile).
			if m.asserted.IsZero() || now.Sub(m.asserted) >= m.assertEvery() {
				m.asserted = now
				m.sendAdvert(m.priority)
				m.emit(Action{Kind: ActionAnnounce})
				m.setTimer(now.Add(m.cfg.AdvertInterval))
			}
		}
	}
	return StateMaster, ""
}

// faulted is FAULT: silent until every weight-0 tracker passes again.
func (m *Machine) faulted(ev Event) (State, Why) {
	switch ev.Kind {
	case EventShutdown:
		return StateInit, WhyShutdown
	case EventTrack, EventReconfigure:
		if m.fault {
			return StateFault, ""
		}
		if m.priority == PriorityOwner {
			return StateMaster, WhyRecovered
		}
		return StateBackup, WhyRecovered
	case EventAdvert:
		// Remembered for status only.
		m.masterAddr = ev.From
		if ev.Priority == PriorityLeaving {
			m.masterAddr = netip.Addr{}
		}
	}
	return StateFault, ""
}

// promptConfirmAdverts is how many of the old master's advert intervals a
// takeover from a silent master waits before it prompts that master's
// clients (ActionPromptClients). A master that is alive but was not heard
// (this host starved, a burst of adverts lost) speaks again within one
// interval of being heard again; the second covers that advert being late
// or lost too. At 100 ms adverts that is 200 ms, on top of the
// Master_Down_Interval a crash already costs.
const promptConfirmAdverts = 2

// transition performs every side effect of moving to next and reports it.
func (m *Machine) transition(now time.Time, next State, why Why) {
	from := m.state
	if from == StateMaster {
		if next != StateBackup || why == WhyYield {
			// Leaving without a better master in sight: priority 0 makes a
			// backup take over after Skew_Time (RFC 5798 §6.4.3).
			m.sendAdvert(PriorityLeaving)
			m.lastPrio = 0
		}
		m.emit(Action{Kind: ActionRemoveVIPs})
	}
	m.preemptAt = time.Time{}

	switch next {
	case StateInit:
		m.masterAddr = netip.Addr{}
		m.stopTimer()
	case StateBackup:
		if from == StateInit {
			m.emit(Action{Kind: ActionRemoveStaleVIPs})
		}
		if from != StateMaster || why == WhyYield {
			m.masterAddr = netip.Addr{}
			m.masterAdverInterval = m.cfg.AdvertInterval
		}
		m.setTimer(now.Add(m.masterDownInterval()))
	case StateMaster:
		// A master was heard and went silent (no priority-0 advert, which
		// forgets it, before the Master_Down_Timer ran out): it may have
		// crashed, and could not reset its clients. Prompt them.
		// A lower-priority master that is preempted this way is still
		// advertising, and resets its clients itself.
		silent := why == WhyMasterDown && m.masterAddr.IsValid() && now.Sub(m.heardAt) >= 2*m.masterAdverInterval
		prompt := Action{Kind: ActionPromptClients, Deadline: now.Add(promptConfirmAdverts * m.masterAdverInterval)}
		m.masterAddr = m.cfg.LocalAddr
		m.lastPrio = m.priority
		m.goneAt = time.Time{}
		m.asserted = time.Time{}
		m.emit(Action{Kind: ActionAddVIPs})
		m.sendAdvert(m.priority)
		m.emit(Action{Kind: ActionAnnounce})
		if silent {
			m.emit(prompt)
		}
		m.setTimer(now.Add(m.cfg.AdvertInterval))
	case StateFault:
		if from == StateInit {
			m.emit(Action{Kind: ActionRemoveStaleVIPs})
		}
		m.masterAddr = netip.Addr{}
		m.stopTimer()
	}
	m.state = next
	m.emit(Action{Kind: ActionTransition, From: from, To: next, Why: why})
}

func (m *Machine) emit(a Action) { m.out = append(m.out, a) }

func (m *Machine) sendAdvert(priority uint8) {
	m.emit(Action{Kind: ActionSendAdvert, Priority: priority})
}

func (m *Machine) setTimer(deadline time.Time) {
	m.deadline = deadline
	m.emit(Action{Kind: ActionSetTimer, Deadline: deadline})
}

func (m *Machine) stopTimer() {
	m.deadline = time.Time{}
	m.emit(Action{Kind: ActionStopTimer})
}
