package main

import (
	"bytes"
	"strings"
	"testing"
)

// row returns the table line of the row whose title starts with title.
func row(t *testing.T, table, title string) string {
	t.Helper()
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, "| "+title) {
			return l
		}
	}
	t.Fatalf("no row %q in\n%s", title, table)
	return ""
}

func TestPrintJudgesSaturatedRowsByTheirInterval(t *testing.T) {
	tests := []struct {
		name       string
		vrrplb     []float64 // per round; haproxy does 1000 in every round
		wantMet    string
		wantMissed bool
	}{
		{
			name:    "a steady lead meets the target",
			vrrplb:  []float64{1010, 1020, 1015, 1012, 1018, 1011, 1016, 1014, 1013, 1017},
			wantMet: "yes",
		},
		{
			name:       "a median above 1.0 with an interval reaching below 0.97 misses",
			vrrplb:     []float64{1100, 900, 1150, 850, 1100, 900, 1200, 800, 1010, 1020},
			wantMet:    "no",
			wantMissed: true,
		},
		{
			name:       "a steady gap misses",
			vrrplb:     []float64{950, 955, 960, 952, 958, 951, 957, 953, 956, 954},
			wantMet:    "no",
			wantMissed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newResults([]*target{{name: "vrrplb"}, {name: "haproxy"}})
			for i, v := range tt.vrrplb {
				r.add("keepalive", "vrrplb", i, v, "")
				r.add("keepalive", "haproxy", i, 1000, "")
			}
			var out bytes.Buffer
			missed := r.print(&out, []string{"keepalive"})
			line := row(t, out.String(), "saturated: keep-alive")
			if !strings.HasSuffix(line, "| "+tt.wantMet+" |") {
				t.Errorf("met column of %q, want %s", line, tt.wantMet)
			}
			if missed != tt.wantMissed {
				t.Errorf("missed = %v, want %v", missed, tt.wantMissed)
			}
			if !strings.Contains(line, "10 rounds)") {
				t.Errorf("row %q does not give the interval over 10 rounds", line)
			}
		})
	}
}

func TestPrintFixedLoadRows(t *testing.T) {
	r := newResults([]*target{{name: "direct"}, {name: "vrrplb"}, {name: "haproxy"}})
	r.offered["fixed-keepalive"] = 6000
	for i := range 3 {
		r.add("fixed-keepalive", "direct", i, 50, "")
		r.add("fixed-keepalive", "vrrplb", i, 85, "")
		r.add("fixed-keepalive", "haproxy", i, 100, "")
		r.add("fixed-keepalive/proxy", "vrrplb", i, 20, "")
		r.add("fixed-keepalive/proxy", "haproxy", i, 25, "")
	}
	var out bytes.Buffer
	missed := r.print(&out, []string{"fixed-keepalive"})
	line := row(t, out.String(), "fixed load: keep-alive")
	for _, want := range []string{"(6000 req/s offered)", "85.0 µs/req (0.85×)", "0.85× (0.85–0.85, 3 rounds)", "| yes |"} {
		if !strings.Contains(line, want) {
			t.Errorf("row %q lacks %q", line, want)
		}
	}
	if missed {
		t.Error("0.85× haproxy's host CPU counted as a miss of ≤ 0.9×")
	}
	if !strings.Contains(out.String(), "- fixed-keepalive: vrrplb 35.0 µs/req, haproxy 50.0 µs/req (0.70×)") {
		t.Errorf("no line of the CPU added over direct (35 and 50 µs) in\n%s", out.String())
	}
	own := row(t, out.String(), "… of it the proxy")
	if !strings.Contains(own, "20.0 µs/req (0.80×)") || !strings.HasSuffix(own, "| — | — |") {
		t.Errorf("proxy-own row %q, want 20.0 µs/req (0.80×) and no target", own)
	}
}

func TestPrintFlagsRowsWhereTheHostWasSaturated(t *testing.T) {
	r := newResults([]*target{{name: "vrrplb"}, {name: "haproxy"}})
	r.add("fixed-close", "vrrplb", 0, 1300, "(host 100% busy) "+saturatedMark)
	r.add("fixed-close", "haproxy", 0, 1200, "(host 60% busy)")
	var out bytes.Buffer
	r.print(&out, []string{"fixed-close"})
	if line := row(t, out.String(), "fixed load: new connection"); !strings.Contains(line, "host saturated in 1 of 2 runs") {
		t.Errorf("row %q does not say the host was saturated in 1 of 2 runs", line)
	}
}
