package main

import (
	"bufio"
	"context"
	"encoding/json"
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
// says otherwise) and a note (errors seen).
type measure struct {
	title  string
	unit   string
	lower  bool    // lower is better
	target float64 // vrrplb / haproxy must be >= target (or <= target bytes when lower)
	goal   string
	skip   func(t *target) bool
	run    func(ctx context.Context, b *bench, t *target) (float64, string, error)
	format func(v float64) string
}

var measures = map[string]*measure{
	"bulk": {
		title: "bulk, one stream (iperf3)", unit: "Gbit/s", target: 1.3, goal: "≥ 1.3× haproxy",
		run: runBulk, format: func(v float64) string { return fmt.Sprintf("%.1f Gbit/s", v) },
	},
	"connclose": {
		title: "new connection per request (wrk, Connection: close)", unit: "req/s", target: 1.0, goal: "≥ 1.0× haproxy",
		run: func(ctx context.Context, b *bench, t *target) (float64, string, error) {
			return runWrk(ctx, b, t, true)
		},
		format: func(v float64) string { return fmt.Sprintf("%.0f req/s", v) },
	},
	"keepalive": {
		title: "keep-alive small request/response (wrk -c100)", unit: "req/s", target: 1.0, goal: "≥ 1.0× haproxy",
		run: func(ctx context.Context, b *bench, t *target) (float64, string, error) {
			return runWrk(ctx, b, t, false)
		},
		format: func(v float64) string { return fmt.Sprintf("%.0f req/s", v) },
	},
	"rss": {
		title: "RSS per idle proxied connection", unit: "bytes", lower: true, target: 4096, goal: "≤ 4 KB",
		skip:   func(t *target) bool { return t.cmd == nil },
		run:    runRSS,
		format: func(v float64) string { return fmt.Sprintf("%.0f B/conn", v) },
	},
}

func runBulk(ctx context.Context, b *bench, t *target) (float64, string, error) {
	host, port, _ := net.SplitHostPort(t.bulkAddr)
	secs := fmt.Sprint(max(1, int(b.duration.Seconds())))
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
		return 0, "", fmt.Errorf("iperf3: %v, %v", err, jerr)
	}
	if r.Error != "" {
		return 0, "", fmt.Errorf("iperf3: %s", r.Error)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, "", nil
}

var (
	reqPerSec  = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	sockErrors = regexp.MustCompile(`Socket errors: [^\n]*`)
	non2xx     = regexp.MustCompile(`Non-2xx or 3xx responses: \d+`)
)

func runWrk(ctx context.Context, b *bench, t *target, closeEach bool) (float64, string, error) {
	args := []string{"-t2", "-c100", "-d" + b.duration.String()}
	if closeEach {
		args = []string{"-t2", "-c50", "-d" + b.duration.String(), "-H", "Connection: close"}
	}
	args = append(args, "http://"+t.httpAddr+"/")
	out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput()
	if err != nil {
		return 0, "", fmt.Errorf("wrk: %v: %s", err, out)
	}
	m := reqPerSec.FindSubmatch(out)
	if m == nil {
		return 0, "", fmt.Errorf("wrk printed no Requests/sec: %s", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	var notes []string
	for _, re := range []*regexp.Regexp{sockErrors, non2xx} {
		if e := re.Find(out); e != nil {
			notes = append(notes, string(e))
		}
	}
	return v, strings.Join(notes, "; "), nil
}

// runRSS opens idle connections through the proxy, each used for one
// request first (so both sides are established and any lazily allocated
// buffer is allocated and released), and divides the growth of the proxy's
// resident memory by their number.
func runRSS(ctx context.Context, b *bench, t *target) (float64, string, error) {
	if err := b.restart(t); err != nil {
		return 0, "", err
	}
	// Warm up the proxy and let its memory settle.
	if _, _, err := runWrk(ctx, &bench{duration: time.Second}, t, false); err != nil {
		return 0, "", err
	}
	time.Sleep(500 * time.Millisecond) // let the proxy close the warm-up connections
	before, err := treeRSS(t.cmd.Process.Pid)
	if err != nil {
		return 0, "", err
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
			return 0, "", fmt.Errorf("idle connection %d: %w", len(conns), err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(req); err != nil {
			return 0, "", err
		}
		if _, err := c.Read(buf); err != nil {
			return 0, "", fmt.Errorf("idle connection %d: no answer: %w", len(conns), err)
		}
	}
	// Idle watches last minutes: give every proxy a few seconds to settle
	// into that state.
	time.Sleep(5 * time.Second)
	after, err := treeRSS(t.cmd.Process.Pid)
	if err != nil {
		return 0, "", err
	}
	return float64(after-before) / float64(len(conns)), fmt.Sprintf("(%d → %d KiB)", before>>10, after>>10), nil
}

// treeRSS is the resident memory of pid and its children, in bytes.
func treeRSS(pid int) (int64, error) {
	total, err := rss(pid)
	if err != nil {
		return 0, err
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if ppid(child) == pid {
			if r, err := rss(child); err == nil {
				total += r
			}
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

func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	p, _ := strconv.Atoi(f[1])
	return p
}

// results holds every run's figure.
type results struct {
	targets []string
	vals    map[string]map[string][]float64
	notes   map[string]map[string][]string
	failed  map[string]bool // test/target that failed at least once
}

func newResults(ts []*target) *results {
	r := &results{vals: map[string]map[string][]float64{}, notes: map[string]map[string][]string{}}
	for _, t := range ts {
		r.targets = append(r.targets, t.name)
	}
	return r
}

func (r *results) add(test, target string, v float64, note string) {
	if r.vals[test] == nil {
		r.vals[test] = map[string][]float64{}
		r.notes[test] = map[string][]string{}
	}
	r.vals[test][target] = append(r.vals[test][target], v)
	if note != "" {
		r.notes[test][target] = append(r.notes[test][target], note)
	}
}

func (r *results) fail(test, target, msg string) {
	r.add(test, target, 0, "failed: "+msg)
	r.vals[test][target] = r.vals[test][target][:len(r.vals[test][target])-1]
	if r.failed == nil {
		r.failed = map[string]bool{}
	}
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

// print writes the markdown table and reports whether vrrplb missed a target.
func (r *results) print(w io.Writer, tests []string) (missed bool) {
	fmt.Fprintf(w, "| test | %s | vrrplb target | met |\n", strings.Join(r.targets, " | "))
	fmt.Fprintf(w, "|---|%s---|---|\n", strings.Repeat("---|", len(r.targets)))
	for _, test := range tests {
		m := measures[test]
		hap := r.vals[test]["haproxy"]
		haveHap := len(hap) > 0 && median(hap) > 0
		var cells []string
		for _, name := range r.targets {
			vs := r.vals[test][name]
			if len(vs) == 0 {
				if r.failed[test+"/"+name] {
					cells = append(cells, "failed")
				} else {
					cells = append(cells, "—")
				}
				continue
			}
			cell := m.format(median(vs))
			if haveHap && median(hap) > 0 {
				cell += fmt.Sprintf(" (%.2f×)", median(vs)/median(hap))
			}
			cells = append(cells, cell)
		}
		met := "?"
		if r.failed[test+"/vrrplb"] {
			met, missed = "no", true
		} else if vs, ok := r.vals[test]["vrrplb"]; ok {
			v := median(vs)
			switch {
			case m.lower:
				met = yes(v <= m.target)
			case haveHap:
				met = yes(v/median(hap) >= m.target)
			}
			if met == "no" {
				missed = true
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", m.title, strings.Join(cells, " | "), m.goal, met)
	}
	fmt.Fprintf(w, "\nMedians of each proxy's runs; ratios against haproxy. Runs:\n")
	for _, test := range tests {
		for _, name := range r.targets {
			vs := r.vals[test][name]
			if len(vs) == 0 && !r.failed[test+"/"+name] {
				continue
			}
			var s []string
			for _, v := range vs {
				s = append(s, measures[test].format(v))
			}
			note := ""
			if n := r.notes[test][name]; len(n) > 0 {
				note = " — " + strings.Join(n, "; ")
			}
			fmt.Fprintf(w, "- %s / %s: %s%s\n", test, name, strings.Join(s, ", "), note)
		}
	}
	return missed
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
