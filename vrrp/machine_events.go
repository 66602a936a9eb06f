package vrrp

import (
	"net/netip"
	"time"
)

// EventKind is what happened.
type EventKind int

// Events that drive the machine.
const (
	// EventStartup starts the machine (RFC 5798 §6.4.1).
	EventStartup EventKind = iota + 1
	// EventShutdown stops it (RFC 5798 §6.4.2, §6.4.3).
	EventShutdown
	// EventAdvert is a received advertisement that passed the receive checks.
	EventAdvert
	// EventTimer is the timer armed by the last ActionSetTimer reaching its deadline.
	EventTimer
	// EventTrack is a new verdict of the trackers.
	EventTrack
	// EventReconfigure carries a new configuration (a reload) and the
	// trackers' verdict under it.
	EventReconfigure
)

// Event is one input to the machine.
type Event struct {
	Kind EventKind

	// From, Priority and Interval describe an EventAdvert.
	From     netip.Addr
	Priority uint8
	Interval time.Duration

	// Fault, Yield and EffectivePriority describe an EventTrack or
	// EventReconfigure: whether a weight-0 tracker with FAULT semantics
	// fails (track_script, track_interface); whether the instance yields (a
	// weight-0 track_frontend has no healthy backend, or maintenance is on):
	// a master hands over as for FAULT, but the instance stays in the
	// election at PriorityLowest; and the priority with the other trackers'
	// weights applied. Fault wins over Yield.
	Fault             bool
	Yield             bool
	EffectivePriority uint8

	// Config is the new configuration of an EventReconfigure.
	Config MachineConfig
}

// ActionKind is what the runner must do.
type ActionKind int

// Actions the machine asks of its runner, in the order it must perform them.
const (
	// ActionSendAdvert sends an advertisement with Action.Priority.
	ActionSendAdvert ActionKind = iota + 1
	// ActionAddVIPs adds the virtual addresses to the interface.
	ActionAddVIPs
	// ActionRemoveVIPs removes them.
	ActionRemoveVIPs
	// ActionRemoveStaleVIPs removes virtual addresses found on the interface
	// at start, left by a previous run that did not stop cleanly.
	ActionRemoveStaleVIPs
	// ActionAnnounce starts a burst of gratuitous ARPs / unsolicited NAs.
	ActionAnnounce
	// ActionSetTimer (re)arms the single timer at Action.Deadline: the
	// Master_Down_Timer in Backup, the Adver_Timer in Master.
	ActionSetTimer
	// ActionStopTimer disarms it.
	ActionStopTimer
	// ActionTransition reports the state change From → To because of Why: one
	// log line, the metrics and the notify command.
	ActionTransition
	// ActionPromptClients prompts the clients the old master held on the
	// virtual IPs to reset (takeover.go): it went silent, so it could not.
	// The prompts wait until Action.Deadline and go only if this router is
	// still master then and has not heard the old master meanwhile: a
	// master that was only late (a starved backup, a lost burst of
	// adverts) must keep its clients.
	ActionPromptClients
)

func (k ActionKind) String() string {
	switch k {
	case ActionSendAdvert:
		return "send_advert"
	case ActionAddVIPs:
		return "add_vips"
	case ActionRemoveVIPs:
		return "remove_vips"
	case ActionRemoveStaleVIPs:
		return "remove_stale_vips"
	case ActionAnnounce:
		return "announce"
	case ActionSetTimer:
		return "set_timer"
	case ActionStopTimer:
		return "stop_timer"
	case ActionTransition:
		return "transition"
	case ActionPromptClients:
		return "prompt_clients"
	}
	return "unknown"
}

// Action is one output of the machine.
type Action struct {
	Kind ActionKind
	// Priority is the priority of an ActionSendAdvert.
	Priority uint8
	// Deadline is the expiry of an ActionSetTimer, and the end of an
	// ActionPromptClients' confirmation window.
	Deadline time.Time
	// From, To and Why describe an ActionTransition.
	From, To State
	Why      Why
}
