package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	addrLow  = netip.MustParseAddr("192.0.2.1")
	addrMid  = netip.MustParseAddr("192.0.2.2")
	addrHigh = netip.MustParseAddr("192.0.2.3")
)

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// step is an event fed at t0+after.
type step struct {
	after time.Duration
	ev    Event
}

func startup() Event  { return Event{Kind: EventStartup} }
func shutdown() Event { return Event{Kind: EventShutdown} }
func timer() Event    { return Event{Kind: EventTimer} }
func advert(from netip.Addr, prio uint8, interval time.Duration) Event {
	return Event{Kind: EventAdvert, From: from, Priority: prio, Interval: interval}
}
func track(fault bool, prio uint8) Event {
	return Event{Kind: EventTrack, Fault: fault, EffectivePriority: prio}
}

func send(prio uint8) Action          { return Action{Kind: ActionSendAdvert, Priority: prio} }
func setTimer(d time.Duration) Action { return Action{Kind: ActionSetTimer, Deadline: at(d)} }
func moved(from, to State, why Why) Action {
	return Action{Kind: ActionTransition, From: from, To: to, Why: why}
}

var (
	addVIPs    = Action{Kind: ActionAddVIPs}
	removeVIPs = Action{Kind: ActionRemoveVIPs}
	removeOld  = Action{Kind: ActionRemoveStaleVIPs}
	announce   = Action{Kind: ActionAnnounce}
	stopTimer  = Action{Kind: ActionStopTimer}
)

func v3(prio uint8) MachineConfig {
	return MachineConfig{Version: 3, Priority: prio, AdvertInterval: time.Second, Preempt: true, LocalAddr: addrMid}
}

// mdi is Master_Down_Interval for a 1 s interval, v3, at prio.
func mdi(prio int) time.Duration {
	return 3*time.Second + time.Duration(256-prio)*time.Second/256
}

func TestMachine(t *testing.T) {
	tests := []struct {
		name  string
		cfg   MachineConfig
		steps []step // all but the last only set the scene
		want  []Action
		state State
	}{
		{
			name:  "a router with priority 255 becomes master at once on startup",
			cfg:   v3(255),
			steps: []step{{0, startup()}},
			want:  []Action{addVIPs, send(255), announce, setTimer(time.Second), moved(StateInit, StateMaster, WhyOwner)},
			state: StateMaster,
		},
		{
			name:  "a router below 255 removes leftover VIPs and starts as backup with the timer at Master_Down_Interval",
			cfg:   v3(100),
			steps: []step{{0, startup()}},
			want:  []Action{removeOld, setTimer(3*time.Second + 609375*time.Microsecond), moved(StateInit, StateBackup, WhyStartup)},
			state: StateBackup,
		},
		{
			name:  "a weight-0 failure at startup goes straight to fault, removing leftover VIPs",
			cfg:   v3(100),
			steps: []step{{0, track(true, 100)}, {0, startup()}},
			want:  []Action{removeOld, stopTimer, moved(StateInit, StateFault, WhyFault)},
			state: StateFault,
		},
		{
			name:  "a backup whose Master_Down_Timer runs out becomes master, adds VIPs, advertises and announces",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {mdi(100), timer()}},
			want:  []Action{addVIPs, send(100), announce, setTimer(mdi(100) + time.Second), moved(StateBackup, StateMaster, WhyMasterDown)},
			state: StateMaster,
		},
		{
			name:  "a timer event before the armed deadline is stale and ignored",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {mdi(100) - time.Nanosecond, timer()}},
			want:  []Action{},
			state: StateBackup,
		},
		{
			name:  "a v3 backup learns the master's interval and skews by it",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {time.Second, advert(addrHigh, 200, 500*time.Millisecond)}},
			want:  []Action{setTimer(time.Second + 1500*time.Millisecond + 156*500*time.Millisecond/256)},
			state: StateBackup,
		},
		{
			name: "a v2 backup times the master by its own interval and skews by (256-priority)/256 s",
			cfg:  MachineConfig{Version: 2, Priority: 100, AdvertInterval: 2 * time.Second, Preempt: true, LocalAddr: addrMid},
			steps: []step{
				{0, startup()},
				{time.Second, advert(addrHigh, 200, 2*time.Second)},
			},
			want:  []Action{setTimer(time.Second + 6*time.Second + 609375*time.Microsecond)},
			state: StateBackup,
		},
		{
			name:  "a backup hearing priority 0 from the master sets its timer to Skew_Time",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {time.Second, advert(addrHigh, 200, time.Second)}, {2 * time.Second, advert(addrHigh, 0, time.Second)}},
			want:  []Action{setTimer(2*time.Second + 609375*time.Microsecond)},
			state: StateBackup,
		},
		{
			name:  "a backup with preempt ignores a lower-priority master",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {time.Second, advert(addrHigh, 50, time.Second)}},
			want:  []Action{},
			state: StateBackup,
		},
		{
			name: "a backup without preempt follows a lower-priority master",
			cfg:  MachineConfig{Version: 3, Priority: 100, AdvertInterval: time.Second, LocalAddr: addrMid},
			steps: []step{
				{0, startup()},
				{time.Second, advert(addrHigh, 50, time.Second)},
			},
			want:  []Action{setTimer(time.Second + mdi(100))},
			state: StateBackup,
		},
		{
			name: "a backup with preempt_delay follows a lower-priority master, then takes over when the delay ends",
			cfg:  MachineConfig{Version: 3, Priority: 100, AdvertInterval: time.Second, Preempt: true, PreemptDelay: 5 * time.Second, LocalAddr: addrMid},
			steps: []step{
				{0, startup()},
				{1 * time.Second, advert(addrHigh, 50, time.Second)}, // delay runs until 6s
				{2 * time.Second, advert(addrHigh, 50, time.Second)},
				{3 * time.Second, advert(addrHigh, 50, time.Second)},
				{4 * time.Second, advert(addrHigh, 50, time.Second)}, // timer: min(4s+mdi, 6s)
				{5 * time.Second, advert(addrHigh, 50, time.Second)},
				{6 * time.Second, timer()},
			},
			want:  []Action{addVIPs, send(100), announce, setTimer(7 * time.Second), moved(StateBackup, StateMaster, WhyPreemptDelay)},
			state: StateMaster,
		},
		{
			name: "a higher-priority master cancels a running preempt_delay",
			cfg:  MachineConfig{Version: 3, Priority: 100, AdvertInterval: time.Second, Preempt: true, PreemptDelay: 5 * time.Second, LocalAddr: addrMid},
			steps: []step{
				{0, startup()},
				{1 * time.Second, advert(addrHigh, 50, time.Second)},
				{2 * time.Second, advert(addrHigh, 150, time.Second)},
				{3 * time.Second, advert(addrHigh, 150, time.Second)},
			},
			want:  []Action{setTimer(3*time.Second + mdi(100))},
			state: StateBackup,
		},
		{
			name: "the address owner preempts a lower-priority master even with preempt off",
			cfg:  MachineConfig{Version: 3, Priority: 255, AdvertInterval: time.Second, LocalAddr: addrMid},
			steps: []step{
				{0, startup()},
				{0, advert(addrHigh, 255, time.Second)}, // an owner with a higher address: backup
				{time.Second, advert(addrHigh, 100, time.Second)},
			},
			want:  []Action{},
			state: StateBackup,
		},
		{
			name: "a master reconfigured to a lower priority stays master and advertises it at once",
			cfg:  v3(200),
			steps: []step{
				{0, startup()},
				{mdi(200), timer()},
				{mdi(200) + 300*time.Millisecond, Event{Kind: EventReconfigure, EffectivePriority: 50, Config: MachineConfig{Version: 3, Priority: 50, AdvertInterval: 2 * time.Second, Preempt: true, LocalAddr: addrMid}}},
			},
			want:  []Action{send(50), setTimer(mdi(200) + 2300*time.Millisecond)},
			state: StateMaster,
		},
		{
			name: "a v3 backup reconfigured keeps timing the master by the interval it learned",
			cfg:  v3(100),
			steps: []step{
				{0, startup()},
				{time.Second, advert(addrHigh, 200, 500*time.Millisecond)},
				{1100 * time.Millisecond, Event{Kind: EventReconfigure, EffectivePriority: 100, Config: MachineConfig{Version: 3, Priority: 100, AdvertInterval: 2 * time.Second, Preempt: true, LocalAddr: addrMid}}},
				{1500 * time.Millisecond, advert(addrHigh, 200, 500*time.Millisecond)},
			},
			want:  []Action{setTimer(1500*time.Millisecond + 1500*time.Millisecond + 156*500*time.Millisecond/256)},
			state: StateBackup,
		},
		{
			name: "a reconfigured backup whose new config faults goes to fault",
			cfg:  v3(100),
			steps: []step{
				{0, startup()},
				{time.Second, Event{Kind: EventReconfigure, Fault: true, EffectivePriority: 100, Config: v3(100)}},
			},
			want:  []Action{stopTimer, moved(StateBackup, StateFault, WhyFault)},
			state: StateFault,
		},
		{
			name:  "a master's Adver_Timer sends an advert with the effective priority and re-arms",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {mdi(100), timer()}, {mdi(100), track(false, 90)}, {mdi(100) + time.Second, timer()}},
			want:  []Action{send(90), setTimer(mdi(100) + 2*time.Second)},
			state: StateMaster,
		},
		{
			name:  "a master's Adver_Timer served late keeps the beat for the next advert",
			cfg:   v3(255),
			steps: []step{{0, startup()}, {1300 * time.Millisecond, timer()}},
			want:  []Action{send(255), setTimer(2 * time.Second)},
			state: StateMaster,
		},
		{
			name:  "a master's Adver_Timer served more than an interval late restarts the beat",
			cfg:   v3(255),
			steps: []step{{0, startup()}, {2500 * time.Millisecond, timer()}},
			want:  []Action{send(255), setTimer(3500 * time.Millisecond)},
			state: StateMaster,
		},
		{
			name:  "a master hearing priority 0 re-advertises at once",
			cfg:   v3(255),
			steps: []step{{0, startup()}, {100 * time.Millisecond, advert(addrHigh, 0, time.Second)}},
			want:  []Action{send(255), setTimer(1100 * time.Millisecond)},
			state: StateMaster,
		},
		{
			name:  "a master hearing a lower priority sends an advert and a gratuitous ARP burst at once",
			cfg:   v3(255),
			steps: []step{{0, startup()}, {100 * time.Millisecond, advert(addrHigh, 100, time.Second)}},
			want:  []Action{send(255), announce, setTimer(1100 * time.Millisecond)},
			state: StateMaster,
		},
		{
			name:  "a master hearing its own priority from a lower address asserts like on a lower priority",
			cfg:   v3(255),
			steps: []step{{0, startup()}, {100 * time.Millisecond, advert(addrLow, 255, time.Second)}},
			want:  []Action{send(255), announce, setTimer(1100 * time.Millisecond)},
			state: StateMaster,
		},
		{
			name:  "a master hearing a higher priority removes its VIPs and becomes backup timed by the new master",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {mdi(100), timer()}, {mdi(100) + 100*time.Millisecond, advert(addrLow, 200, 1200*time.Millisecond)}},
			want: []Action{
				removeVIPs,
				setTimer(mdi(100) + 100*time.Millisecond + 3600*time.Millisecond + 156*1200*time.Millisecond/256),
				moved(StateMaster, StateBackup, WhyHigherMaster),
			},
			state: StateBackup,
		},
		{
			name:  "a master hearing a much slower higher priority is timed by its own Master_Down_Interval plus a second at most",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {mdi(100), timer()}, {mdi(100) + 100*time.Millisecond, advert(addrLow, 200, 3*time.Second)}},
			want: []Action{
				removeVIPs,
				// Master_Adver_Interval 1 s + 256 s / (768 + 156).
				setTimer(mdi(100) + 100*time.Millisecond + mdi(100) + time.Second - 1),
				moved(StateMaster, StateBackup, WhyHigherMaster),
			},
			state: StateBackup,
		},
		{
			name:  "a master hearing its own priority from a higher address becomes backup",
			cfg:   v3(255),
			steps: []step{{0, startup()}, {100 * time.Millisecond, advert(addrHigh, 255, time.Second)}},
			want: []Action{
				removeVIPs,
				setTimer(100*time.Millisecond + 3*time.Second + time.Second/256),
				moved(StateMaster, StateBackup, WhyTieAddress),
			},
			state: StateBackup,
		},
		{
			name:  "a master going to fault sends one priority-0 advert and removes its VIPs",
			cfg:   v3(255),
			steps: []step{{0, startup()}, {time.Second, track(true, 255)}},
			want:  []Action{send(0), removeVIPs, stopTimer, moved(StateMaster, StateFault, WhyFault)},
			state: StateFault,
		},
		{
			name:  "a backup going to fault stops its timer",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {time.Second, track(true, 100)}},
			want:  []Action{stopTimer, moved(StateBackup, StateFault, WhyFault)},
			state: StateFault,
		},
		{
			name:  "nothing is sent in fault when an advert arrives",
			cfg:   v3(255),
			steps: []step{{0, startup()}, {time.Second, track(true, 255)}, {2 * time.Second, advert(addrHigh, 100, time.Second)}},
			want:  []Action{},
			state: StateFault,
		},
		{
			name:  "nothing is sent in fault when a timer fires",
			cfg:   v3(255),
			steps: []step{{0, startup()}, {time.Second, track(true, 255)}, {2 * time.Second, timer()}},
			want:  []Action{},
			state: StateFault,
		},
		{
			name:  "a fault that clears makes a backup again",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {time.Second, track(true, 100)}, {2 * time.Second, track(false, 100)}},
			want:  []Action{setTimer(2*time.Second + mdi(100)), moved(StateFault, StateBackup, WhyRecovered)},
			state: StateBackup,
		},
		{
			name:  "a fault that clears on the address owner makes it master at once",
			cfg:   v3(255),
			steps: []step{{0, startup()}, {time.Second, track(true, 255)}, {2 * time.Second, track(false, 255)}},
			want:  []Action{addVIPs, send(255), announce, setTimer(3 * time.Second), moved(StateFault, StateMaster, WhyRecovered)},
			state: StateMaster,
		},
		{
			name:  "shutdown as master sends priority 0 and removes the VIPs",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {mdi(100), timer()}, {mdi(100) + time.Second, shutdown()}},
			want:  []Action{send(0), removeVIPs, stopTimer, moved(StateMaster, StateInit, WhyShutdown)},
			state: StateInit,
		},
		{
			name:  "shutdown as backup stops the timer and sends nothing",
			cfg:   v3(100),
			steps: []step{{0, startup()}, {time.Second, shutdown()}},
			want:  []Action{stopTimer, moved(StateBackup, StateInit, WhyShutdown)},
			state: StateInit,
		},
		{
			name:  "the address owner keeps priority 255 whatever the weights",
			cfg:   v3(255),
			steps: []step{{0, startup()}, {0, track(false, 10)}, {time.Second, timer()}},
			want:  []Action{send(255), setTimer(2 * time.Second)},
			state: StateMaster,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(tt.cfg)
			got := feed(m, tt.steps)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("actions of the last event (-want +got):\n%s", diff)
			}
			if m.State() != tt.state {
				t.Errorf("state = %v, want %v", m.State(), tt.state)
			}
		})
	}
}

func TestSkewTimeIsInNanosecondsSoBackupsDifferAtTenMillisecondAdverts(t *testing.T) {
	var deadlines []time.Time
	for _, prio := range []uint8{100, 101, 102} {
		m := NewMachine(MachineConfig{Version: 3, Priority: prio, AdvertInterval: 10 * time.Millisecond, LocalAddr: addrMid})
		acts := m.Handle(t0, startup(), nil)
		for _, a := range acts {
			if a.Kind == ActionSetTimer {
				deadlines = append(deadlines, a.Deadline)
			}
		}
	}
	want := []time.Time{
		at(30*time.Millisecond + 156*10*time.Millisecond/256), // 6.09375 ms skew
		at(30*time.Millisecond + 155*10*time.Millisecond/256),
		at(30*time.Millisecond + 154*10*time.Millisecond/256),
	}
	if diff := cmp.Diff(want, deadlines); diff != "" {
		t.Fatalf("Master_Down_Timer deadlines (-want +got):\n%s", diff)
	}
}

func TestMasterKnowsWhoIsMaster(t *testing.T) {
	m := NewMachine(v3(100))
	m.Handle(t0, startup(), nil)
	if m.Master().IsValid() {
		t.Fatalf("master known at startup: %v", m.Master())
	}
	m.Handle(at(time.Second), advert(addrHigh, 200, time.Second), nil)
	if m.Master() != addrHigh {
		t.Fatalf("Master() = %v, want %v", m.Master(), addrHigh)
	}
	m.Handle(at(2*time.Second), advert(addrHigh, 0, time.Second), nil)
	if m.Master().IsValid() {
		t.Fatalf("master still known after it left: %v", m.Master())
	}
	m.Handle(at(3*time.Second), timer(), nil)
	if m.Master() != addrMid {
		t.Fatalf("Master() as master = %v, want own address %v", m.Master(), addrMid)
	}
}

func TestEffectivePriority(t *testing.T) {
	tests := []struct {
		name      string
		prio      uint8
		trackers  []TrackerState
		wantPrio  uint8
		wantFault bool
	}{
		{"no trackers leave the priority as configured", 100, nil, 100, false},
		{"a failing weight-0 tracker means fault", 100, []TrackerState{{Weight: 0, OK: false}}, 100, true},
		{"a passing weight-0 tracker changes nothing", 100, []TrackerState{{Weight: 0, OK: true}}, 100, false},
		{"a failing negative weight is subtracted", 100, []TrackerState{{Weight: -20, OK: false}}, 80, false},
		{"a passing negative weight is not", 100, []TrackerState{{Weight: -20, OK: true}}, 100, false},
		{"a passing positive weight is added", 100, []TrackerState{{Weight: 30, OK: true}}, 130, false},
		{"a failing positive weight is not", 100, []TrackerState{{Weight: 30, OK: false}}, 100, false},
		{"the result never drops below 1", 10, []TrackerState{{Weight: -50, OK: false}}, 1, false},
		{"the result never reaches 255", 250, []TrackerState{{Weight: 50, OK: true}}, 254, false},
		{"the address owner keeps 255", 255, []TrackerState{{Weight: -50, OK: false}}, 255, false},
		{"the address owner still faults", 255, []TrackerState{{Weight: 0, OK: false}}, 255, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prio, fault := EffectivePriority(tt.prio, tt.trackers)
			if prio != tt.wantPrio || fault != tt.wantFault {
				t.Errorf("EffectivePriority = (%d, %v), want (%d, %v)", prio, fault, tt.wantPrio, tt.wantFault)
			}
		})
	}
}
