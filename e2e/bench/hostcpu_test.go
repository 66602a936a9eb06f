package main

import (
	"math"
	"os"
	"os/exec"
	"slices"
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

func TestParsePIDStat(t *testing.T) {
	tail := " S 41 42 42 0 -1 4194560 300 0 0 0 17 83 0 0 20 0 5 0 100 0 0"
	for _, tt := range []struct {
		name, line string
		ppid       int
		want       procTimes
		wantErr    bool
	}{
		{name: "a plain command name", line: "1234 (haproxy)" + tail, ppid: 41, want: procTimes{user: 17, sys: 83}},
		{name: "a command name with spaces and parentheses", line: "1234 (nginx: worker) (x))" + tail, ppid: 41, want: procTimes{user: 17, sys: 83}},
		{name: "no command name", line: "1234 haproxy S 41", wantErr: true},
		{name: "a short line", line: "1234 (haproxy) S 41 42", wantErr: true},
		{name: "a time that is not a number", line: "1234 (haproxy) S 41 42 42 0 -1 4194560 300 0 0 0 x 83 0", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ppid, got, err := parsePIDStat(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && (ppid != tt.ppid || got != tt.want) {
				t.Errorf("got parent %d, %+v; want %d, %+v", ppid, got, tt.ppid, tt.want)
			}
		})
	}
}

func TestKernelShare(t *testing.T) {
	if share, ok := kernelShare(procTimes{user: 10, sys: 20}, procTimes{user: 20, sys: 60}); !ok || share != 0.8 {
		t.Errorf("10 ticks in user space and 40 in the kernel: %v %v, want 0.8", share, ok)
	}
	if _, ok := kernelShare(procTimes{}, procTimes{user: 2, sys: 7}); ok {
		t.Error("9 ticks in all gave a share; too few to tell")
	}
	if _, ok := kernelShare(procTimes{user: 5, sys: 5}, procTimes{user: 4, sys: 50}); ok {
		t.Error("times that went backwards gave a share")
	}
}

// The proxy's own process counts, and so do its direct children (nginx's
// workers); this test's process has none that burn CPU, so its tree's time
// is at least its own.
func TestTreeTimesCountsTheProcess(t *testing.T) {
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) { // bounded busy loop: some ticks to read
	}
	got := treeTimes(os.Getpid())
	if got.user+got.sys == 0 {
		t.Errorf("no CPU time read for this process after 200 ms busy: %+v", got)
	}
}

// A process's children are found by their parent (nginx's workers are the
// master's), and the process itself is not among them.
func TestChildrenFindsAChildProcess(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	kids := children(os.Getpid())
	if !slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("children of this process %v miss the child %d", kids, cmd.Process.Pid)
	}
	if slices.Contains(kids, os.Getpid()) {
		t.Errorf("children of this process %v hold the process itself", kids)
	}
}
