package main

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    cpuTimes
		wantErr bool
	}{
		{
			name: "busy counts user nice system irq softirq steal but not idle or iowait",
			in: "cpu  100 20 30 1000 50 5 6 7 40 0\n" +
				"cpu0 50 10 15 500 25 2 3 3 20 0\n",
			want: cpuTimes{busy: 100 + 20 + 30 + 5 + 6 + 7, total: 100 + 20 + 30 + 5 + 6 + 7 + 1000 + 50},
		},
		{
			name: "guest time is not counted twice",
			in:   "cpu  100 0 0 100 0 0 0 0 90 90\n",
			want: cpuTimes{busy: 100, total: 200},
		},
		{
			name: "the aggregate line is found after other lines",
			in:   "intr 1 2 3\ncpu  1 1 1 1 1 1 1 1\n",
			want: cpuTimes{busy: 6, total: 8},
		},
		{name: "a file without the aggregate line is an error", in: "cpu0 1 1 1 1 1 1 1 1\n", wantErr: true},
		{name: "a short cpu line is an error", in: "cpu  1 2 3\n", wantErr: true},
		{name: "a field that is not a number is an error", in: "cpu  1 x 1 1 1 1 1 1\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBusyPerRequest(t *testing.T) {
	before := cpuTimes{busy: 1000, total: 5000}
	after := cpuTimes{busy: 1150, total: 5400} // 1.5 CPU-seconds busy of 4 CPU-seconds
	if got := busySeconds(before, after); got != 1.5 {
		t.Errorf("busySeconds = %v, want 1.5", got)
	}
	if got := busyShare(before, after); got != 0.375 {
		t.Errorf("busyShare = %v, want 0.375", got)
	}
	// 1.5 s of CPU over 10,000 requests is 150 µs each.
	if got := perRequestMicros(busySeconds(before, after), 10000); math.Abs(got-150) > 1e-9 {
		t.Errorf("perRequestMicros = %v, want 150", got)
	}
	if got := perRequestMicros(1.5, 0); got != 0 {
		t.Errorf("perRequestMicros with no requests = %v, want 0", got)
	}
	if got := busySeconds(after, before); got != 0 {
		t.Errorf("busySeconds backwards = %v, want 0", got)
	}
}

func TestThreadsCPUCountsThisProcess(t *testing.T) {
	before, err := treeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Millisecond)
	for time.Now().Before(deadline) { // burn a little CPU
	}
	after, err := treeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < uint64(10*time.Millisecond) {
		t.Errorf("20 ms of spinning counted as %v of CPU", time.Duration(after-before))
	}
}
