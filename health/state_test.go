package health

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHysteresis(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		results    []bool
		want       []State
	}{
		{
			name: "the first success brings an unknown backend up at once",
			rise: 3, fall: 3,
			results: []bool{true},
			want:    []State{Up},
		},
		{
			name: "the first failure takes an unknown backend down at once",
			rise: 3, fall: 3,
			results: []bool{false},
			want:    []State{Down},
		},
		{
			name: "a down backend needs rise consecutive successes",
			rise: 3, fall: 2,
			results: []bool{false, true, true, true},
			want:    []State{Down, Down, Down, Up},
		},
		{
			name: "an up backend needs fall consecutive failures",
			rise: 2, fall: 3,
			results: []bool{true, false, false, false},
			want:    []State{Up, Up, Up, Down},
		},
		{
			name: "a success between failures restarts the count to fall",
			rise: 2, fall: 2,
			results: []bool{true, false, true, false, true, false, false},
			want:    []State{Up, Up, Up, Up, Up, Up, Down},
		},
		{
			name: "a failure between successes restarts the count to rise",
			rise: 2, fall: 2,
			results: []bool{false, true, false, true, false, true, true},
			want:    []State{Down, Down, Down, Down, Down, Down, Up},
		},
		{
			name: "rise and fall of one flip on every disagreeing result",
			rise: 1, fall: 1,
			results: []bool{true, false, true, true, false},
			want:    []State{Up, Down, Up, Up, Down},
		},
		{
			name: "rise and fall below one count as one",
			rise: 0, fall: -1,
			results: []bool{true, false, true},
			want:    []State{Up, Down, Up},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s streak
			var got []State
			for _, ok := range tt.results {
				s = next(s, ok, tt.rise, tt.fall)
				got = append(got, s.state)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJitterStaysWithinTenPercent(t *testing.T) {
	const d = 2 * time.Second
	tests := []struct {
		name string
		r    float64
		want time.Duration
	}{
		{name: "zero draws the shortest interval", r: 0, want: 1800 * time.Millisecond},
		{name: "one half draws the interval itself", r: 0.5, want: d},
		{name: "a draw near one stays below the longest", r: 0.999, want: 2199600 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jitter(d, tt.r); got != tt.want {
				t.Errorf("jitter(%v, %v) = %v, want %v", d, tt.r, got, tt.want)
			}
		})
	}
}

func TestStateNames(t *testing.T) {
	got := []string{Unknown.String(), Down.String(), Up.String()}
	if diff := cmp.Diff([]string{"unknown", "down", "up"}, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}
