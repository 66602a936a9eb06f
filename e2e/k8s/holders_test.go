package k8s

import "testing"

// The holder sequences the real-Kubernetes suite records around a VIP move,
// counted without a cluster. A handover shows both hosts holding the VIP for
// a moment (the leaving master keeps it until the new one has announced
// itself, issue 21): part of the one move, not a move of its own.
func TestHolderPhaseCountsAHandoverAsOneMove(t *testing.T) {
	for _, c := range []struct {
		holders []string
		want    int
	}{
		{nil, 0},
		{[]string{"h2"}, 0},
		{[]string{"h2", "h1"}, 1},
		{[]string{"h2", "", "h1"}, 1},
		{[]string{"h2", "h1+h2", "h1"}, 1}, // the CI run of 2026-12-02 02:30 counted 2
		{[]string{"h2", "h1+h2", "h2"}, 0},
		{[]string{"h2", "h1+h2", "h1", "h1+h2", "h2"}, 2},
		{[]string{"h1+h2", "h1"}, 0},
	} {
		if got := (holderPhase{holders: c.holders}).moves(); got != c.want {
			t.Errorf("holders %v: %d moves, want %d", c.holders, got, c.want)
		}
	}
}
