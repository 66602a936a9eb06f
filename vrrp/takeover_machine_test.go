package vrrp

import (
	"slices"
	"testing"
	"time"
)

// Only a takeover from a master that went silent prompts its clients: a
// master that left with priority 0 or that is preempted while advertising
// resets them itself, and at startup there were none.
func TestOnlyATakeoverFromASilentMasterPromptsItsClients(t *testing.T) {
	tests := []struct {
		name  string
		cfg   MachineConfig
		steps []step
		want  bool
	}{
		{"a master that went silent is taken over with prompts", v3(100),
			[]step{{0, startup()}, {time.Second, advert(addrHigh, 200, time.Second)}, {time.Second + mdi(100), timer()}}, true},
		{"a master that left with priority 0 is taken over without", v3(100),
			[]step{{0, startup()}, {time.Second, advert(addrHigh, 200, time.Second)}, {2 * time.Second, advert(addrHigh, 0, time.Second)},
				{2*time.Second + mdi(100) - 3*time.Second, timer()}}, false},
		{"a lower master still advertising is preempted without", v3(100),
			[]step{{0, startup()}, {time.Second, advert(addrLow, 50, time.Second)}, {2 * time.Second, advert(addrLow, 50, time.Second)},
				{3 * time.Second, advert(addrLow, 50, time.Second)}, {time.Second + mdi(100), timer()}}, false},
		{"no master heard since startup: none to prompt", v3(100),
			[]step{{0, startup()}, {mdi(100), timer()}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(tt.cfg)
			out := feed(m, tt.steps)
			if m.State() != StateMaster {
				t.Fatalf("state %v, want master", m.State())
			}
			i := slices.IndexFunc(out, func(a Action) bool { return a.Kind == ActionPromptClients })
			if got := i >= 0; got != tt.want {
				t.Fatalf("prompt_clients among the last actions: %v, want %v (%v)", got, tt.want, out)
			}
			if !tt.want {
				return
			}
			// The prompts wait two of the old master's intervals.
			last := tt.steps[len(tt.steps)-1].after
			if got, want := out[i].Deadline, at(last+promptConfirmAdverts*time.Second); !got.Equal(want) {
				t.Errorf("prompt_clients until %v, want %v", got, want)
			}
		})
	}
}

// feed hands m the steps in turn and returns the actions of the last.
func feed(m *Machine, steps []step) []Action {
	var out []Action
	for _, s := range steps {
		out = m.Handle(at(s.after), s.ev, nil)
	}
	return out
}
