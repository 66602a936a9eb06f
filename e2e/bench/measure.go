package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// measure is one test: run returns a figure (higher is better unless lower
// or maxRatio says otherwise), an auxiliary figure recorded under the test
// named aux (0: none), and a note (errors seen).
type measure struct {
	title     string
	unit      string
	lower     bool    // lower is better, and target is an absolute bound
	maxRatio  bool    // lower is better, and vrrplb / haproxy must be <= target
	target    float64 // vrrplb / haproxy must be >= target (or see lower, maxRatio); 0: none
	ciMin     float64 // and the 95% interval of vrrplb / haproxy must start at or above this; 0: no such goal
	goal      string
	maxRounds int                    // 0: as many as -rounds
	aux       string                 // the test the auxiliary figure is recorded under
	rate      func(b *bench) float64 // the fixed-load rows' offered rate, stated in the table
	skip      func(t *target) bool
	run       func(ctx context.Context, b *bench, t *target) (v, aux float64, note string, err error)
	format    func(v float64) string
}

func perRequest(v float64) string { return fmt.Sprintf("%.1f µs/req", v) }

var measures = map[string]*measure{
	"bulk": {
		title: "bulk, one stream (iperf3)", unit: "Gbit/s", target: 1.3, goal: "≥ 1.3× haproxy",
		run: runBulk, format: func(v float64) string { return fmt.Sprintf("%.1f Gbit/s", v) },
	},
	"beside-bulk": {
		title: "small request beside a bulk stream: p99 latency (keep-alive, one at a time 1 ms apart, iperf3 through another frontend)",
		unit:  "µs", lower: true, aux: "beside-bulk/p50",
		run:    runBesideBulk,
		format: func(v float64) string { return fmt.Sprintf("%.0f µs", v) },
	},
	"connclose": {
		title: "saturated: new connection per request (wrk, Connection: close)", unit: "req/s", target: 1.0, ciMin: 0.97,
		goal: "≥ 1.0× haproxy, 95% CI above 0.97",
		run: func(ctx context.Context, b *bench, t *target) (float64, float64, string, error) {
			return runWrk(ctx, b, t, true)
		},
		format: func(v float64) string { return fmt.Sprintf("%.0f req/s", v) },
	},
	"keepalive": {
		title: "saturated: keep-alive small request/response (wrk -c100)", unit: "req/s", target: 1.0, ciMin: 0.97,
		goal: "≥ 1.0× haproxy, 95% CI above 0.97",
		run: func(ctx context.Context, b *bench, t *target) (float64, float64, string, error) {
			return runWrk(ctx, b, t, false)
		},
		format: func(v float64) string { return fmt.Sprintf("%.0f req/s", v) },
	},
	"fixed-close": {
		title: "fixed load: new connection per request, host CPU per request", unit: "µs/req", maxRatio: true, target: 0.9,
		goal: "≤ 0.9× haproxy", aux: "fixed-close/proxy",
		rate: func(b *bench) float64 { return b.rateClose },
		run: func(ctx context.Context, b *bench, t *target) (float64, float64, string, error) {
			return runFixed(ctx, b, t, loadSpec{addr: t.httpAddr, rate: b.rateClose, duration: b.fixedDuration, conns: 64})
		},
		format: perRequest,
	},
	"fixed-keepalive": {
		title: "fixed load: keep-alive, host CPU per request", unit: "µs/req", maxRatio: true, target: 0.9,
		goal: "≤ 0.9× haproxy", aux: "fixed-keepalive/proxy",
		rate: func(b *bench) float64 { return b.rateKeepAlive },
		run: func(ctx context.Context, b *bench, t *target) (float64, float64, string, error) {
			return runFixed(ctx, b, t, loadSpec{addr: t.httpAddr, rate: b.rateKeepAlive, duration: b.fixedDuration, keepAlive: true, conns: 32})
		},
		format: perRequest,
	},
	"colocated": {
		title: "fixed load, co-located CPU-hungry HTTPS apiserver: keep-alive, host CPU per request", unit: "µs/req", maxRatio: true, target: 0.9,
		goal: "≤ 0.9× haproxy", aux: "colocated/proxy",
		rate: func(b *bench) float64 { return b.rateColocated },
		run: func(ctx context.Context, b *bench, t *target) (float64, float64, string, error) {
			return runFixed(ctx, b, t, loadSpec{addr: t.apiAddr, rate: b.rateColocated, duration: b.fixedDuration, keepAlive: true, conns: 32, tls: b.apiTLS})
		},
		format: perRequest,
	},
	"rss": {
		title: "RSS per idle proxied connection", unit: "bytes", lower: true, target: 4096, goal: "≤ 4 KB", maxRounds: 3,
		skip:   func(t *target) bool { return t.cmd == nil },
		run:    runRSS,
		format: func(v float64) string { return fmt.Sprintf("%.0f B/conn", v) },
	},
}

// auxMeasures are the proxy process's own share of the fixed-load rows,
// shown under them without a target.
var auxMeasures = map[string]*measure{
	"fixed-close/proxy":     {title: "… of it the proxy process's own CPU", unit: "µs/req", format: perRequest},
	"fixed-keepalive/proxy": {title: "… of it the proxy process's own CPU", unit: "µs/req", format: perRequest},
	"colocated/proxy":       {title: "… of it the proxy process's own CPU", unit: "µs/req", format: perRequest},
	"beside-bulk/p50":       {title: "… median latency", unit: "µs", format: func(v float64) string { return fmt.Sprintf("%.0f µs", v) }},
}

func measureOf(test string) *measure {
	if m, ok := measures[test]; ok {
		return m
	}
	return auxMeasures[test]
}

// hostSaturated is the busy share of all CPUs above which a fixed-load
// figure says more about the other processes than about the proxy.
const hostSaturated = 0.9

const saturatedMark = "HOST SATURATED"

// runFixed offers spec's load through t and returns the whole host's busy
// CPU per answered request (every process: load generator, proxy, backend,
// anything else running) and the proxy process tree's own, in µs. A run
// that could not carry the offered rate (more than 1% of the requests
// dropped or failed) is an error: its figure would not be at a fixed load.
func runFixed(ctx context.Context, b *bench, t *target, spec loadSpec) (float64, float64, string, error) {
	var (
		hostBefore  cpuTimes
		procBefore  uint64
		timesBefore procTimes
		hostErr     error
	)
	res, err := openLoop(ctx, spec, func() {
		hostBefore, hostErr = readHostCPU()
		if t.cmd != nil {
			procBefore, _ = treeCPU(t.cmd.Process.Pid)
			timesBefore = treeTimes(t.cmd.Process.Pid)
		}
	})
	hostAfter, herr := readHostCPU()
	var procAfter uint64
	var timesAfter procTimes
	if t.cmd != nil {
		procAfter, _ = treeCPU(t.cmd.Process.Pid)
		timesAfter = treeTimes(t.cmd.Process.Pid)
	}
	if err != nil {
		return 0, 0, "", err
	}
	if hostErr != nil || herr != nil {
		return 0, 0, "", errors.Join(hostErr, herr)
	}
	offered := int64(spec.rate * spec.duration.Seconds())
	if lost := res.dropped + res.failed; lost*100 > offered {
		return 0, 0, "", fmt.Errorf("%d of %d requests dropped and %d failed at %.0f/s offered: above what this path carries, lower the rate", res.dropped, offered, res.failed, spec.rate)
	}
	host := perRequestMicros(busySeconds(hostBefore, hostAfter), res.done)
	var proxy float64
	if t.cmd != nil && procAfter >= procBefore {
		proxy = perRequestMicros(float64(procAfter-procBefore)/1e9, res.done)
	}
	share := busyShare(hostBefore, hostAfter)
	note := fmt.Sprintf("(%.0f/s offered, %.0f/s answered, host %.0f%% busy, p50 %v, p99 %v%s)",
		spec.rate, float64(res.done)/res.elapsed.Seconds(), 100*share,
		res.quantile(0.5).Round(time.Microsecond), res.quantile(0.99).Round(time.Microsecond),
		inKernel(timesBefore, timesAfter))
	if share >= hostSaturated {
		// Every CPU was busy, so the figure is the run's length over its
		// requests, whatever the proxy cost: something else wanted the host.
		note += fmt.Sprintf(" %s (≥ %.0f%% busy): this figure is not a cost", saturatedMark, 100*hostSaturated)
	}
	return host, proxy, note, nil
}

func runBulk(ctx context.Context, b *bench, t *target) (float64, float64, string, error) {
	gbps, err := iperf3(ctx, t, b.duration)
	return gbps, 0, "", err
}

// iperf3 runs one stream through t's bulk listener for d and returns what
// arrived, in Gbit/s.
func iperf3(ctx context.Context, t *target, d time.Duration) (float64, error) {
	host, port, _ := net.SplitHostPort(t.bulkAddr)
	secs := fmt.Sprint(max(1, int(d.Seconds())))
	out, err := exec.CommandContext(ctx, "iperf3", "-c", host, "-p", port, "-t", secs, "-J").Output()
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		return 0, fmt.Errorf("iperf3: %v, %v", err, jerr)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
}

// besideGap is the pause between two small requests beside the bulk stream.
const besideGap = time.Millisecond

// runBesideBulk sends small keep-alive requests through t one at a time,
// besideGap apart, while one iperf3 stream runs through t's bulk listener
// (another frontend of the same proxy), and returns their p99 latency in µs
// and, as the auxiliary figure, their median.
func runBesideBulk(ctx context.Context, b *bench, t *target) (float64, float64, string, error) {
	type bulkResult struct {
		gbps float64
		err  error
	}
	bulk := make(chan bulkResult, 1)
	go func() {
		gbps, err := iperf3(ctx, t, b.duration)
		bulk <- bulkResult{gbps, err}
	}()
	time.Sleep(b.duration / 10) // the stream gets going
	c, err := dialHTTP(loadSpec{addr: t.httpAddr})
	if err != nil {
		<-bulk
		return 0, 0, "", err
	}
	var res loadResult
	for end := time.Now().Add(b.duration * 8 / 10); time.Now().Before(end) && ctx.Err() == nil; {
		start := time.Now()
		if err = c.roundTrip(false); err != nil {
			break
		}
		res.latencies = append(res.latencies, time.Since(start))
		time.Sleep(besideGap)
	}
	c.Close()
	br := <-bulk
	if err := errors.Join(err, br.err); err != nil {
		return 0, 0, "", err
	}
	p99, p50 := res.quantile(0.99), res.quantile(0.5)
	note := fmt.Sprintf("(%d requests, p50 %v, p99 %v, bulk %.1f Gbit/s)", len(res.latencies),
		p50.Round(time.Microsecond), p99.Round(time.Microsecond), br.gbps)
	return float64(p99) / 1e3, float64(p50) / 1e3, note, nil
}

// inKernel says, for a run's notes, what share of the proxy's CPU time the
// kernel's was, or nothing when the run was too short to tell.
func inKernel(before, after procTimes) string {
	share, ok := kernelShare(before, after)
	if !ok {
		return ""
	}
	return fmt.Sprintf(", %.0f%% of the proxy's CPU in the kernel", 100*share)
}

var (
	requestsDone = regexp.MustCompile(`(\d+) requests in `)
	reqPerSec    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	sockErrors   = regexp.MustCompile(`Socket errors: [^\n]*`)
	non2xx       = regexp.MustCompile(`Non-2xx or 3xx responses: \d+`)
)

func runWrk(ctx context.Context, b *bench, t *target, closeEach bool) (float64, float64, string, error) {
	args := []string{"-t2", "-c100", "-d" + b.duration.String()}
	if closeEach {
		args = []string{"-t2", "-c50", "-d" + b.duration.String(), "-H", "Connection: close"}
	}
	args = append(args, "http://"+t.httpAddr+"/")
	var cpuBefore uint64
	var timesBefore procTimes
	if t.cmd != nil {
		cpuBefore, _ = treeCPU(t.cmd.Process.Pid)
		timesBefore = treeTimes(t.cmd.Process.Pid)
	}
	out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput()
	if err != nil {
		return 0, 0, "", fmt.Errorf("wrk: %v: %s", err, out)
	}
	m := reqPerSec.FindSubmatch(out)
	if m == nil {
		return 0, 0, "", fmt.Errorf("wrk printed no Requests/sec: %s", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	var notes []string
	if n := requestsDone.FindSubmatch(out); n != nil && t.cmd != nil {
		// What the proxy's CPU per request is at saturation, and how much
		// of it the kernel's.
		done, _ := strconv.ParseInt(string(n[1]), 10, 64)
		if cpuAfter, err := treeCPU(t.cmd.Process.Pid); err == nil && cpuAfter >= cpuBefore && done > 0 {
			notes = append(notes, fmt.Sprintf("proxy %.1f µs/req%s",
				perRequestMicros(float64(cpuAfter-cpuBefore)/1e9, done), inKernel(timesBefore, treeTimes(t.cmd.Process.Pid))))
		}
	}
	for _, re := range []*regexp.Regexp{sockErrors, non2xx} {
		if e := re.Find(out); e != nil {
			notes = append(notes, string(e))
		}
	}
	return v, 0, strings.Join(notes, "; "), nil
}

// runRSS opens idle connections through the proxy, each used for one
// request first (so both sides are established and any lazily allocated
// buffer is allocated and released), and divides the growth of the proxy's
// resident memory by their number.
func runRSS(ctx context.Context, b *bench, t *target) (float64, float64, string, error) {
	if err := b.restart(t); err != nil {
		return 0, 0, "", err
	}
	// Warm up the proxy and let its memory settle.
	if _, _, _, err := runWrk(ctx, &bench{duration: time.Second}, t, false); err != nil {
		return 0, 0, "", err
	}
	time.Sleep(500 * time.Millisecond) // let the proxy close the warm-up connections
	before, err := treeRSS(t.cmd.Process.Pid)
	if err != nil {
		return 0, 0, "", err
	}
	conns := make([]net.Conn, 0, b.idleConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
	buf := make([]byte, 256)
	for range b.idleConns {
		c, err := net.DialTimeout("tcp", t.httpAddr, 5*time.Second)
		if err != nil {
			return 0, 0, "", fmt.Errorf("idle connection %d: %w", len(conns), err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(req); err != nil {
			return 0, 0, "", err
		}
		if _, err := c.Read(buf); err != nil {
			return 0, 0, "", fmt.Errorf("idle connection %d: no answer: %w", len(conns), err)
		}
	}
	// Idle watches last minutes: give every proxy a few seconds to settle
	// into that state.
	time.Sleep(5 * time.Second)
	after, err := treeRSS(t.cmd.Process.Pid)
	if err != nil {
		return 0, 0, "", err
	}
	return float64(after-before) / float64(len(conns)), 0, fmt.Sprintf("(%d → %d KiB)", before>>10, after>>10), nil
}

// treeRSS is the resident memory of pid and its children, in bytes.
func treeRSS(pid int) (int64, error) {
	total, err := rss(pid)
	if err != nil {
		return 0, err
	}
	for _, child := range children(pid) {
		if r, err := rss(child); err == nil {
			total += r
		}
	}
	return total, nil
}

func rss(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// results holds every run's figure, by test, target and round.
type results struct {
	targets []string
	vals    map[string]map[string][]float64
	byRound map[string]map[string]map[int]float64
	notes   map[string]map[string][]string
	failed  map[string]bool    // test/target that failed at least once
	offered map[string]float64 // req/s offered in a fixed-load row
}

func newResults(ts []*target) *results {
	r := &results{
		vals:    map[string]map[string][]float64{},
		byRound: map[string]map[string]map[int]float64{},
		notes:   map[string]map[string][]string{},
		failed:  map[string]bool{},
		offered: map[string]float64{},
	}
	for _, t := range ts {
		r.targets = append(r.targets, t.name)
	}
	return r
}

func (r *results) init(test, target string) {
	if r.vals[test] == nil {
		r.vals[test] = map[string][]float64{}
		r.byRound[test] = map[string]map[int]float64{}
		r.notes[test] = map[string][]string{}
	}
	if r.byRound[test][target] == nil {
		r.byRound[test][target] = map[int]float64{}
	}
}

func (r *results) add(test, target string, round int, v float64, note string) {
	r.init(test, target)
	r.vals[test][target] = append(r.vals[test][target], v)
	r.byRound[test][target][round] = v
	if note != "" {
		r.notes[test][target] = append(r.notes[test][target], note)
	}
}

func (r *results) fail(test, target string, round int, msg string) {
	r.init(test, target)
	r.notes[test][target] = append(r.notes[test][target], fmt.Sprintf("round %d failed: %s", round+1, msg))
	r.failed[test+"/"+target] = true
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rows lists the tests in table order, each fixed-load row followed by its
// proxy-own row.
func rows(tests []string) []string {
	var out []string
	for _, t := range tests {
		out = append(out, t)
		if m := measures[t]; m != nil && m.aux != "" {
			out = append(out, m.aux)
		}
	}
	return out
}

func fmtCI(ci ratioCI) string {
	switch {
	case ci.n == 0:
		return "—"
	case ci.n == 1:
		return fmt.Sprintf("%.2f× (1 round)", ci.mean)
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f, %d rounds)", ci.mean, ci.lo, ci.hi, ci.n)
}

// print writes the markdown table and reports whether vrrplb missed a target.
func (r *results) print(w io.Writer, tests []string) (missed bool) {
	fmt.Fprintf(w, "| test | %s | vrrplb / haproxy by round: geometric mean (95%% CI) | vrrplb target | met |\n", strings.Join(r.targets, " | "))
	fmt.Fprintf(w, "|---|%s---|---|---|\n", strings.Repeat("---|", len(r.targets)))
	for _, test := range rows(tests) {
		if r.printRow(w, test) {
			missed = true
		}
	}
	fmt.Fprintf(w, "\nMedians of each proxy's runs; ratios against haproxy's median. The interval pairs vrrplb's\n"+
		"and haproxy's runs of the same round (rounds interleave the proxies) and is Student's t on the log ratios.\n")
	r.printBefore(w, tests)
	r.printAdded(w, tests)
	r.printSpread(w, tests)
	r.printRuns(w, tests)
	return missed
}

// printRow writes one test's row and reports whether vrrplb missed its target.
func (r *results) printRow(w io.Writer, test string) (missed bool) {
	m := measureOf(test)
	hap := r.vals[test]["haproxy"]
	haveHap := len(hap) > 0 && median(hap) > 0
	var cells []string
	for _, name := range r.targets {
		cells = append(cells, r.cell(test, name, m, hap, haveHap))
	}
	ci := pairedRatioCI(r.byRound[test]["vrrplb"], r.byRound[test]["haproxy"])
	goal := m.goal
	if goal == "" {
		goal = "—"
	}
	met := r.met(test, m, hap, haveHap, ci)
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.title(test, m), strings.Join(cells, " | "), fmtCI(ci), goal, met)
	return met == "no"
}

// cell is one proxy's median in a row, with its ratio to haproxy's.
func (r *results) cell(test, name string, m *measure, hap []float64, haveHap bool) string {
	vs := r.vals[test][name]
	if len(vs) == 0 {
		if r.failed[test+"/"+name] {
			return "failed"
		}
		return "—"
	}
	cell := m.format(median(vs))
	if haveHap {
		cell += fmt.Sprintf(" (%.2f×)", median(vs)/median(hap))
	}
	return cell
}

// met says whether vrrplb met the row's target: yes, no, ? (no haproxy
// figure to compare with) or — (no target).
func (r *results) met(test string, m *measure, hap []float64, haveHap bool, ci ratioCI) string {
	if r.failed[test+"/vrrplb"] && m.target > 0 {
		return "no"
	}
	vs, ok := r.vals[test]["vrrplb"]
	if !ok || len(vs) == 0 || m.target <= 0 {
		return "—"
	}
	v := median(vs)
	switch {
	case m.lower:
		return yes(v <= m.target)
	case !haveHap:
		return "?"
	case m.maxRatio:
		return yes(v/median(hap) <= m.target)
	}
	ok = v/median(hap) >= m.target
	if m.ciMin > 0 && ci.n >= 2 {
		ok = ok && ci.lo >= m.ciMin
	}
	return yes(ok)
}

// title is a row's title, with the offered rate and how many runs
// saturated the host.
func (r *results) title(test string, m *measure) string {
	title := m.title
	if rate, ok := r.offered[test]; ok {
		title += fmt.Sprintf(" (%.0f req/s offered)", rate)
	}
	sat, runs := 0, 0
	for _, name := range r.targets {
		runs += len(r.vals[test][name])
		for _, n := range r.notes[test][name] {
			if strings.Contains(n, saturatedMark) {
				sat++
			}
		}
	}
	if sat > 0 {
		title += fmt.Sprintf(" — host saturated in %d of %d runs, figures not comparable", sat, runs)
	}
	return title
}

// printBefore writes vrrplb / before by round for each row, when an
// earlier binary ran beside (-before).
func (r *results) printBefore(w io.Writer, tests []string) {
	if !slices.Contains(r.targets, "before") {
		return
	}
	fmt.Fprintf(w, "\nvrrplb / before (the -before binary) by round, geometric mean (95%% CI):\n\n")
	for _, test := range rows(tests) {
		ci := pairedRatioCI(r.byRound[test]["vrrplb"], r.byRound[test]["before"])
		fmt.Fprintf(w, "- %s: %s\n", test, fmtCI(ci))
	}
}

// printAdded writes what each proxy adds to the host's CPU per request
// over direct's.
func (r *results) printAdded(w io.Writer, tests []string) {
	var added []string
	for _, test := range tests {
		m := measures[test]
		direct, hap, vl := r.vals[test]["direct"], r.vals[test]["haproxy"], r.vals[test]["vrrplb"]
		if m == nil || m.rate == nil || len(direct) == 0 || len(hap) == 0 || len(vl) == 0 {
			continue
		}
		d, h, v := median(direct), median(hap), median(vl)
		line := fmt.Sprintf("- %s: vrrplb %s, haproxy %s", test, m.format(v-d), m.format(h-d))
		if h-d > 0 {
			line += fmt.Sprintf(" (%.2f×)", (v-d)/(h-d))
		}
		added = append(added, line)
	}
	if len(added) > 0 {
		fmt.Fprintf(w, "\nHost CPU per request added by the proxy (median minus direct's median; the\n"+
			"load generator and the backend's work are in both):\n%s\n", strings.Join(added, "\n"))
	}
}

// printSpread writes each row's spread of runs.
func (r *results) printSpread(w io.Writer, tests []string) {
	fmt.Fprintf(w, "\nSpread of the runs (min–max, coefficient of variation):\n")
	for _, test := range rows(tests) {
		m := measureOf(test)
		var parts []string
		for _, name := range r.targets {
			vs := r.vals[test][name]
			if len(vs) < 2 {
				continue
			}
			sp := spreadOf(vs)
			parts = append(parts, fmt.Sprintf("%s %s–%s (%.1f%%)", name, m.format(sp.lo), m.format(sp.hi), 100*sp.cv))
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "- %s: %s\n", test, strings.Join(parts, "; "))
		}
	}
}

// printRuns writes every run's figure and notes.
func (r *results) printRuns(w io.Writer, tests []string) {
	fmt.Fprintf(w, "\nRuns:\n")
	for _, test := range rows(tests) {
		for _, name := range r.targets {
			vs := r.vals[test][name]
			if len(vs) == 0 && !r.failed[test+"/"+name] {
				continue
			}
			var s []string
			for _, v := range vs {
				s = append(s, measureOf(test).format(v))
			}
			note := ""
			if n := r.notes[test][name]; len(n) > 0 {
				note = " — " + strings.Join(n, "; ")
			}
			fmt.Fprintf(w, "- %s / %s: %s%s\n", test, name, strings.Join(s, ", "), note)
		}
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
