package main

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vrrplb/vrrplb/e2e"
	"github.com/vrrplb/vrrplb/e2e/internal/trial"
)

const (
	// interval is the advert interval of both nodes.
	interval = 10 * time.Millisecond
	// masterPrio and backupPrio are the two nodes' priorities.
	masterPrio = 200
	backupPrio = 100
	// downInterval is the backup's Master_Down_Interval (RFC 5798 §6.1):
	// an advert later than this after the one before is a missed window.
	downInterval = 3*interval + (256-backupPrio)*interval/256
	// admin is where each vrrplb serves /metrics inside its namespace.
	admin = "http://127.0.0.1:9100"
	// proxyPort is the frontend on both nodes; backendPort the backend's.
	proxyPort   = 8443
	backendPort = 6443
)

type soakConfig struct {
	baseline, load time.Duration
	bulk, storm    int
	// wrap is a command prefix the daemons run under (nice, chrt).
	wrap []string
	// impl is "vrrplb", or "keepalived" for keepalived beside haproxy.
	impl string
}

// phase is one stretch of the soak and what it measured.
type phase struct {
	name       string
	duration   time.Duration
	load       bool
	start, end time.Time
	// transitions is how many state changes both nodes made during it.
	transitions float64
	// gcPauses are the master's stop-the-world pauses, from gctrace.
	gcPauses []time.Duration
	// gcMaxMetric is go_gc_duration_seconds{quantile="1"} at its end.
	gcMaxMetric time.Duration
	// engineGCMax is vrrplb_vrrp_engine_gc_pause_max_seconds at its end.
	engineGCMax time.Duration
	loadReport  string
	// cpuStart and cpuEnd are /proc/stat's cpu line at its start and end.
	cpuStart, cpuEnd []float64
	holders          []string
	// sent are the master's adverts as its eth0 sent them; arrived as
	// the bridge forwarded them.
	sent, arrived []time.Time
}

// soak runs the lab and prints the table; ok is false when a node changed
// state or an advert window was missed.
func soak(ctx context.Context, cfg soakConfig) (ok bool, err error) {
	var phases []*phase
	if cfg.baseline > 0 {
		phases = append(phases, &phase{name: "idle", duration: cfg.baseline})
	}
	phases = append(phases, &phase{name: fmt.Sprintf("proxy load (%d bulk streams, %d-way connection storm)", cfg.bulk, cfg.storm), duration: cfg.load, load: true})
	self, err := os.Executable()
	if err != nil {
		return false, fmt.Errorf("own executable: %w", err)
	}
	err = trial.Run("soak", func(t *trial.T) {
		l := e2e.NewLab(t, 4)
		master, backup, be, client := l.Host(1), l.Host(2), l.Host(3), l.Host(4)
		vip := e2e.VIP4.Addr()
		for _, h := range []*e2e.Host{master, client} {
			// Connection storms leave TIME_WAIT sockets: reuse them, and use many ports.
			h.MustExec("sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1", "net.ipv4.ip_local_port_range=1024 65000")
		}
		pbe := be.Start("backend", self, "-role", "backend", "-addr", fmt.Sprintf(":%d", backendPort))
		e2e.Eventually(t, 5*time.Second, func() (bool, string) {
			return strings.Contains(pbe.Output(), "listening on"), "backend did not start: " + pbe.Output()
		})
		backendAddr := netip.AddrPortFrom(be.Addr4.Addr(), backendPort)
		var (
			pm, pb *e2e.Proc
			// count is the state changes both nodes made so far.
			count func() float64
		)
		if cfg.impl == "keepalived" {
			pm, pb = startKeepalivedHAProxy(t, l, master, backup, backendAddr, cfg.wrap)
			count = func() float64 {
				return float64(strings.Count(pm.Output(), "Entering") + strings.Count(pb.Output(), "Entering"))
			}
		} else {
			pm = startVRRPLB(t, master, config(masterPrio, backendAddr), cfg.wrap)
			e2e.Eventually(t, 5*time.Second, func() (bool, string) {
				m := l.Masters(vip)
				return len(m) == 1 && m[0] == master.Name && master.State() == "master", fmt.Sprintf("holders of %s: %v", vip, m)
			})
			startVRRPLB(t, backup, config(backupPrio, backendAddr), cfg.wrap)
			e2e.Eventually(t, 5*time.Second, func() (bool, string) {
				return backup.State() == "backup", "the backup is " + backup.State()
			})
			count = func() float64 { return transitions(t, master) + transitions(t, backup) }
		}
		filter := []string{"ip", "proto", "112", "and", "src", "host", master.Addr4.Addr().String()}
		bridgeFile, stopBridge := l.Capture(append([]string{"--time-stamp-precision=nano"}, filter...)...)
		sentFile, stopSent := captureSent(t, l, master, filter)

		for _, ph := range phases {
			if ctx.Err() != nil {
				break
			}
			before := count()
			logFrom := len(pm.Output())
			ph.start = time.Now()
			ph.cpuStart = cpuTimes()
			if ph.load {
				pl := client.Start("load", self, "-role", "load", "-addr", netip.AddrPortFrom(vip, proxyPort).String(),
					"-duration", ph.duration.String(), "-bulk", strconv.Itoa(cfg.bulk), "-storm", strconv.Itoa(cfg.storm))
				wait(ctx, ph.duration+30*time.Second, pl)
				ph.loadReport = strings.TrimSpace(lastLine(pl.Output()))
			} else {
				wait(ctx, ph.duration, nil)
			}
			ph.end = time.Now()
			ph.cpuEnd = cpuTimes()
			ph.transitions = count() - before
			if cfg.impl != "keepalived" {
				ph.gcPauses = gcPauses(pm.Output()[logFrom:])
				ph.gcMaxMetric = gcMaxMetric(t, master)
				ph.engineGCMax = engineGCMax(t, master)
			}
			ph.holders = l.Masters(vip)
		}
		stopSent()
		stopBridge()
		sent, err := readPcap(sentFile)
		if err != nil {
			t.Fatal(err)
		}
		arrived, err := readPcap(bridgeFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, ph := range phases {
			ph.sent = within(sent, ph.start, ph.end)
			ph.arrived = within(arrived, ph.start, ph.end)
		}
	})
	if err != nil {
		return false, err
	}
	return report(os.Stdout, phases, cfg), nil
}

// captureSent runs tcpdump on h's eth0 for the packets it sends: their
// timestamps are taken as the daemon's send passes the interface, before any
// softirq or bridge delay.
func captureSent(t *trial.T, l *e2e.Lab, h *e2e.Host, filter []string) (file string, stop func()) {
	file = filepath.Join(l.LogDir, "sent.pcap")
	args := append([]string{"tcpdump", "-i", e2e.HostIfname, "-Q", "out", "-U", "-n", "--time-stamp-precision=nano", "-w", file}, filter...)
	p := h.Start("tcpdump", args...)
	e2e.Eventually(t, 5*time.Second, func() (bool, string) {
		return strings.Contains(p.Output(), "listening on"), "tcpdump did not start: " + p.Output()
	})
	return file, func() { p.Signal(syscall.SIGINT); _ = p.WaitExit(5 * time.Second) }
}

// within is the times of ts in [from, to).
func within(ts []time.Time, from, to time.Time) []time.Time {
	var out []time.Time
	for _, at := range ts {
		if !at.Before(from) && at.Before(to) {
			out = append(out, at)
		}
	}
	return out
}

// intervals are the sorted times between consecutive ts.
func intervals(ts []time.Time) []time.Duration {
	var ds []time.Duration
	for i := 1; i < len(ts); i++ {
		ds = append(ds, ts[i].Sub(ts[i-1]))
	}
	slices.Sort(ds)
	return ds
}

// config is a node's vrrplb.toml: the VIP at 10 ms adverts and a frontend
// on the proxy port to the backend.
func config(prio int, backend netip.AddrPort) string {
	c := e2e.Config(e2e.VRRPConf{Priority: prio, Version: 3, Interval: interval, VIPs: []netip.Prefix{e2e.VIP4}})
	return c + fmt.Sprintf(`
[[frontend]]
name = "apiserver"
listen = ":%d"
backends = [%q]
drain_timeout = "1s"

  [frontend.health]
  type = "tcp"
  interval = "1s"
  timeout = "1s"
`, proxyPort, backend.String())
}

// startKeepalivedHAProxy runs keepalived and haproxy on both nodes, the
// pair vrrplb replaces, with the same VRRP settings and the same frontend.
func startKeepalivedHAProxy(t *trial.T, l *e2e.Lab, master, backup *e2e.Host, backend netip.AddrPort, wrap []string) (pm, pb *e2e.Proc) {
	conf := fmt.Sprintf(`global
    maxconn 9000
defaults
    mode tcp
    timeout connect 1s
    timeout client 1m
    timeout server 1m
frontend apiserver
    bind :%d
    default_backend apiserver
backend apiserver
    server b1 %s check inter 1s
`, proxyPort, backend)
	path := l.WriteFile("haproxy.cfg", conf)
	for _, h := range []*e2e.Host{master, backup} {
		argv := append(append([]string{}, wrap...), "haproxy", "-db", "-f", path)
		p := h.Start("haproxy", argv...)
		e2e.Eventually(t, 5*time.Second, func() (bool, string) {
			if p.Exited() {
				t.Fatalf("haproxy on %s exited: %s", h.Name, p.Output())
			}
			return h.HasAddr(h.Addr4.Addr()), ""
		})
	}
	kc := func(prio int) e2e.KeepalivedConf {
		return e2e.KeepalivedConf{VRID: 51, Priority: prio, Version: 3, Interval: interval, VIPs: []netip.Prefix{e2e.VIP4}}
	}
	pm = master.StartKeepalived(kc(masterPrio))
	e2e.Eventually(t, 5*time.Second, func() (bool, string) {
		return master.HasAddr(e2e.VIP4.Addr()), "keepalived on the master does not hold the VIP"
	})
	pb = backup.StartKeepalived(kc(backupPrio))
	if len(wrap) > 0 {
		t.Logf("keepalived runs without %q", strings.Join(wrap, " "))
	}
	return pm, pb
}

// startVRRPLB runs vrrplb on h with gctrace on, under wrap if any, and waits
// for its admin server.
func startVRRPLB(t *trial.T, h *e2e.Host, config string, wrap []string) *e2e.Proc {
	path := h.WriteConfig(config)
	argv := append(append([]string{"env", "GODEBUG=gctrace=1"}, wrap...), e2e.Binary(t), "run", "--config", path)
	p := h.Start("vrrplb", argv...)
	e2e.Eventually(t, 10*time.Second, func() (bool, string) {
		if p.Exited() {
			t.Fatalf("vrrplb on %s exited: %v\n%s", h.Name, p.WaitExit(0), p.Output())
		}
		code, _, err := h.HTTPGet(admin + "/healthz")
		return err == nil && code == 200, fmt.Sprintf("vrrplb on %s not serving /healthz: %v %d", h.Name, err, code)
	})
	return p
}

// wait returns after d, when p (if any) exits, or when ctx ends; it kills p
// if it is still running then.
func wait(ctx context.Context, d time.Duration, p *e2e.Proc) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-timer.C:
			break loop
		case <-tick.C:
			if p != nil && p.Exited() {
				break loop
			}
		}
	}
	if p != nil && !p.Exited() {
		p.Kill()
		_ = p.WaitExit(5 * time.Second)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// metrics reads h's /metrics and returns the samples whose line starts with prefix.
func metrics(t *trial.T, h *e2e.Host, prefix string) map[string]float64 {
	var (
		code int
		body string
		err  error
	)
	// A node starved of CPU may miss the client's 2 s timeout: ask again.
	for range 5 {
		if code, body, err = h.HTTPGet(admin + "/metrics"); err == nil && code == 200 {
			break
		}
	}
	if err != nil || code != 200 {
		t.Fatalf("/metrics on %s: %d %v", h.Name, code, err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// transitions is the sum of h's vrrplb_instance_transitions_total.
func transitions(t *trial.T, h *e2e.Host) float64 {
	var sum float64
	for _, v := range metrics(t, h, "vrrplb_instance_transitions_total{") {
		sum += v
	}
	return sum
}

// gcMaxMetric is the longest recent GC pause of h's daemon, as its Go
// collector reports it.
func gcMaxMetric(t *trial.T, h *e2e.Host) time.Duration {
	v := metrics(t, h, `go_gc_duration_seconds{quantile="1"}`)[`go_gc_duration_seconds{quantile="1"}`]
	return time.Duration(v * float64(time.Second))
}

// engineGCMax is the longest recent GC pause of h's VRRP engine process,
// the one that sends the adverts.
func engineGCMax(t *trial.T, h *e2e.Host) time.Duration {
	v := metrics(t, h, "vrrplb_vrrp_engine_gc_pause_max_seconds")["vrrplb_vrrp_engine_gc_pause_max_seconds"]
	return time.Duration(v * float64(time.Second))
}

// gcLine is a gctrace line: the wall-clock times of the sweep termination
// (stop the world), concurrent mark, and mark termination (stop the world).
var gcLine = regexp.MustCompile(`gc \d+ @[0-9.]+s \d+%: ([0-9.]+)\+([0-9.]+)\+([0-9.]+) ms clock`)

// gcPauses are the stop-the-world pauses of the gctrace lines in log.
func gcPauses(log string) []time.Duration {
	var ps []time.Duration
	for _, m := range gcLine.FindAllStringSubmatch(log, -1) {
		for _, f := range []string{m[1], m[3]} {
			v, err := strconv.ParseFloat(f, 64)
			if err == nil {
				ps = append(ps, time.Duration(v*float64(time.Millisecond)))
			}
		}
	}
	return ps
}

// report prints the table and says whether every phase kept its master.
func report(w *os.File, phases []*phase, cfg soakConfig) bool {
	var fails []string
	fmt.Fprintf(w, "VRRPv3 at %s adverts, master priority %d, backup %d: Master_Down_Interval %s.\n", interval, masterPrio, backupPrio, ms(downInterval))
	if cfg.impl == "keepalived" {
		fmt.Fprintln(w, "The nodes run keepalived beside haproxy (no GC figures).")
	}
	if len(cfg.wrap) > 0 {
		fmt.Fprintf(w, "The proxies (and vrrplb) run under %q.\n", strings.Join(cfg.wrap, " "))
	}
	fmt.Fprintf(w, "Send times from the master's eth0 (tcpdump -Q out), arrival times from the lab bridge.\n\n")
	fmt.Fprintln(w, "| phase | length | adverts sent (expected) | send interval p50 | send jitter p99 | send jitter max | longest gap at the bridge | transitions | longest GC pause: VRRP engine | longest GC pause: daemon | GCs, both processes (gctrace) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, ph := range phases {
		if ph.end.IsZero() {
			continue
		}
		length := ph.end.Sub(ph.start)
		sent, arrived := intervals(ph.sent), intervals(ph.arrived)
		jitter := make([]time.Duration, len(sent))
		for i, d := range sent {
			jitter[i] = (d - interval).Abs()
		}
		slices.Sort(jitter)
		slices.Sort(ph.gcPauses)
		fmt.Fprintf(w, "| %s | %s | %d (%d) | %s | %s | %s | %s | %.0f | %s | %s | %d |\n",
			ph.name, length.Round(time.Second), len(ph.sent), int(length/interval),
			q(sent, 0.5), q(jitter, 0.99), q(jitter, 1), q(arrived, 1),
			ph.transitions, ms(ph.engineGCMax), ms(ph.gcMaxMetric), len(ph.gcPauses)/2)
		if ph.transitions != 0 || len(ph.holders) != 1 || ph.holders[0] != "h1" {
			fails = append(fails, fmt.Sprintf("%s: %.0f state transitions, VIP holders at the end %v", ph.name, ph.transitions, ph.holders))
		}
		if len(sent) > 0 && sent[len(sent)-1] >= downInterval {
			fails = append(fails, fmt.Sprintf("%s: the master sent an advert %s after the one before, over Master_Down_Interval", ph.name, ms(sent[len(sent)-1])))
		}
	}
	fmt.Fprintln(w)
	for _, ph := range phases {
		if ph.loadReport != "" {
			fmt.Fprintln(w, ph.loadReport)
		}
		fmt.Fprintf(w, "%s: %s\n", ph.name, cpuShares(ph.cpuStart, ph.cpuEnd))
	}
	fmt.Fprintf(w, "Load average at the end: %s.\n", loadavg())
	for _, f := range fails {
		fmt.Fprintln(w, "FAIL:", f)
	}
	return len(fails) == 0
}

// cpuTimes is the machine's cpu line of /proc/stat: user, nice, system,
// idle, iowait, irq, softirq, steal (in clock ticks).
func cpuTimes() []float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var out []float64
	for _, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		out = append(out, v)
	}
	return out
}

// cpuShares says where the machine's CPU time went between two cpuTimes:
// softirq time (network processing, which runs ahead of any task, real-time
// or not) and steal (the hypervisor ran something else) delay even the
// VRRP engine.
func cpuShares(a, b []float64) string {
	if len(a) < 8 || len(b) < 8 {
		return "CPU shares unknown"
	}
	var total float64
	d := make([]float64, 8)
	for i := range d {
		d[i] = b[i] - a[i]
		total += d[i]
	}
	if total <= 0 {
		return "CPU shares unknown"
	}
	pct := func(i int) float64 { return 100 * d[i] / total }
	return fmt.Sprintf("CPU user %.0f%%, system %.0f%%, softirq %.0f%%, idle %.0f%%, steal %.1f%%",
		pct(0)+pct(1), pct(2), pct(6), pct(3)+pct(4), pct(7))
}

// loadavg is the machine's 1-minute load average: other work on the same
// cores shows in every figure.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

// q is the quantile p of sorted ds, or "–" without any.
func q(ds []time.Duration, p float64) string {
	if len(ds) == 0 {
		return "–"
	}
	i := int(p * float64(len(ds)-1))
	return ms(ds[i])
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}
