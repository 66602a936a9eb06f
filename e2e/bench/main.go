// Command bench measures vrrplb's proxy against haproxy and nginx stream on
// loopback. Saturated rows: one-stream bulk throughput (iperf3), new
// connections per second (wrk with Connection: close), keep-alive small
// request/response (wrk). Fixed-load rows: an open-loop generator in this
// program offers a set request rate well below saturation (a new
// connection per request, keep-alive, and keep-alive HTTPS to a CPU-hungry
// stand-in apiserver on the same cores) and the figure is the whole host's
// busy CPU per request from /proc/stat, every process counted. Then RSS per
// idle proxied connection. Every proxy runs as its own process in front of
// the same backends; rounds interleave the proxies (each round starts with
// a different one) and the table shows medians, ratios against haproxy and
// a 95% confidence interval of vrrplb/haproxy paired by round. It exits 1
// when vrrplb misses a target. -before measures an earlier vrrplb binary in
// the same rounds, with vrrplb / before by round under the table. Run it with
// `go run ./e2e/bench` (-quick for a short check of the tooling); it needs
// haproxy, nginx (with the stream module), wrk and iperf3, and sends traffic
// only to 127.0.0.1.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		role      = flag.String("role", "", "internal: run as a child process of the bench (backend, apiserver, vrrplb, naive)")
		certDir   = flag.String("cert-dir", "", "internal: directory of the apiserver role's certificate")
		listen    = flag.String("listen", "", "internal: comma-separated listen addresses of a child")
		backend   = flag.String("backend", "", "internal: comma-separated backend addresses of a child")
		rounds    = flag.Int("rounds", 10, "interleaved rounds of each test (the RSS test runs at most 3); the table shows medians and a 95% confidence interval of vrrplb/haproxy")
		duration  = flag.Duration("duration", 3*time.Second, "length of each saturated run")
		fixedDur  = flag.Duration("fixed-duration", 3*time.Second, "length of each fixed-load run")
		rateClose = flag.Float64("rate-close", 1500, "requests per second offered in the fixed-load new-connection row")
		rateKeep  = flag.Float64("rate-keepalive", 6000, "requests per second offered in the fixed-load keep-alive row")
		rateAPI   = flag.Float64("rate-colocated", 1000, "requests per second offered in the co-located HTTPS row")
		idleConns = flag.Int("idle-conns", 4000, "idle connections for the RSS test")
		quick     = flag.Bool("quick", false, "a short run to check the tooling: 2 rounds of 1 s, 500 idle connections (flags given explicitly win)")
		only      = flag.String("proxies", "direct,vrrplb,naive,haproxy,nginx", "comma-separated proxies to measure")
		tests     = flag.String("tests", "bulk,beside-bulk,connclose,keepalive,fixed-close,fixed-keepalive,colocated,rss", "comma-separated tests to run")
		vrrplbBin = flag.String("vrrplb", "", "vrrplb binary to measure (`vrrplb run` with a generated config); \"\" builds ./cmd/vrrplb, \"inproc\" runs proxy.Frontend inside this program instead")
		noCheck   = flag.Bool("no-check", false, "do not exit 1 when vrrplb misses a target")
		beforeBin = flag.String("before", "", "an earlier vrrplb binary, measured beside in the same rounds (column \"before\") for a before/after comparison")
	)
	flag.Parse()
	if *role != "" {
		if err := runRole(*role, strings.Split(*listen, ","), strings.Split(*backend, ","), *certDir); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", *role, err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			*rounds = 2
		}
		if !set["duration"] {
			*duration = time.Second
		}
		if !set["fixed-duration"] {
			*fixedDur = time.Second
		}
		if !set["idle-conns"] {
			*idleConns = 500
		}
	}
	b := &bench{
		rounds:        *rounds,
		duration:      *duration,
		fixedDuration: *fixedDur,
		rateClose:     *rateClose,
		rateKeepAlive: *rateKeep,
		rateColocated: *rateAPI,
		idleConns:     *idleConns,
		vrrplbBin:     *vrrplbBin,
		beforeBin:     *beforeBin,
	}
	proxies := strings.Split(*only, ",")
	if *beforeBin != "" && !slices.Contains(proxies, "before") {
		i := slices.Index(proxies, "vrrplb") + 1 // 0 without vrrplb
		proxies = slices.Insert(proxies, i, "before")
	}
	missed, err := b.run(ctx, proxies, strings.Split(*tests, ","))
	b.stopAll()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	if missed && !*noCheck {
		os.Exit(1)
	}
}

// target is one way to reach the backends: directly or through a proxy.
type target struct {
	name     string
	httpAddr string // in front of the HTTP backend
	bulkAddr string // in front of iperf3 -s
	apiAddr  string // in front of the HTTPS stand-in apiserver
	cmd      *exec.Cmd
}

func (t *target) addrs() []string { return []string{t.httpAddr, t.bulkAddr, t.apiAddr} }

type bench struct {
	rounds        int
	duration      time.Duration
	fixedDuration time.Duration
	rateClose     float64 // req/s offered, fixed-load rows
	rateKeepAlive float64
	rateColocated float64
	idleConns     int
	vrrplbBin     string
	beforeBin     string // "": no before column

	dir      string
	procs    []*exec.Cmd
	httpAddr string
	bulkAddr string
	apiAddr  string
	apiTLS   *tls.Config // trusts the stand-in apiserver's certificate
}

func (b *bench) run(ctx context.Context, proxies, tests []string) (missed bool, err error) {
	for _, tool := range []string{"wrk", "iperf3"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false, fmt.Errorf("%s not found (Debian package %s)", tool, tool)
		}
	}
	b.dir, err = os.MkdirTemp("", "vrrplb-bench-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(b.dir)

	targets, err := b.startAll(ctx, proxies)
	if err != nil {
		return false, err
	}

	res := newResults(targets)
	for _, test := range tests {
		m, ok := measures[test]
		if !ok {
			return false, fmt.Errorf("unknown test %q", test)
		}
		if m.rate != nil {
			res.offered[test] = m.rate(b)
		}
	}
	// Whole-host figures count every process: say what else ran.
	before, _ := readHostCPU()
	time.Sleep(time.Second)
	after, _ := readHostCPU()
	fmt.Printf("%s, %d CPUs (%s); before the runs: load average %s, %.0f%% of all CPUs busy over 1 s with no load offered.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), cpuModel(), loadAverage(), 100*busyShare(before, after))
	defer func() { fmt.Printf("\nAfter the runs: load average %s.\n", loadAverage()) }()
	if err := b.runTests(ctx, res, tests, targets); err != nil {
		return false, err
	}
	return res.print(os.Stdout, tests), nil
}

// startAll builds vrrplb if needed, starts the backends and the proxies,
// and waits until each listens.
func (b *bench) startAll(ctx context.Context, proxies []string) ([]*target, error) {
	var err error
	if b.vrrplbBin == "" && slices.Contains(proxies, "vrrplb") {
		bin := filepath.Join(b.dir, "vrrplb")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/vrrplb").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("build ./cmd/vrrplb (run from the module root, or pass -vrrplb): %v: %s", err, out)
		}
		b.vrrplbBin = bin
	}
	b.httpAddr, b.bulkAddr, b.apiAddr = freeAddr(), freeAddr(), freeAddr()
	if _, err := b.start("backend", os.Args[0], "-role=backend", "-listen="+b.httpAddr); err != nil {
		return nil, err
	}
	if b.apiTLS, err = writeBenchCert(b.dir); err != nil {
		return nil, err
	}
	if _, err := b.start("apiserver", os.Args[0], "-role=apiserver", "-listen="+b.apiAddr, "-cert-dir="+b.dir); err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(b.bulkAddr)
	if _, err := b.start("iperf3", "iperf3", "-s", "-B", "127.0.0.1", "-p", port); err != nil {
		return nil, err
	}
	var targets []*target
	for _, name := range proxies {
		t, err := b.startProxy(name)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		targets = append(targets, t)
	}
	for _, a := range []string{b.httpAddr, b.bulkAddr, b.apiAddr} {
		if err := waitListening(a); err != nil {
			return nil, err
		}
	}
	for _, t := range targets {
		for _, a := range t.addrs() {
			if err := waitListening(a); err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
		}
	}

	return targets, nil
}

// runTests runs every test's rounds, each round starting with a different
// proxy, and adds the figures to res.
func (b *bench) runTests(ctx context.Context, res *results, tests []string, targets []*target) error {
	for _, test := range tests {
		m := measures[test]
		rounds := b.rounds
		if m.maxRounds > 0 {
			rounds = min(rounds, m.maxRounds)
		}
		for r := range rounds {
			// Alternate: each round starts with a different proxy.
			for i := range targets {
				t := targets[(i+r)%len(targets)]
				if m.skip != nil && m.skip(t) {
					continue
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				v, aux, note, err := m.run(ctx, b, t)
				if err != nil {
					// A proxy that cannot do the test is a result, not
					// the end of the bench (the naive proxy runs out of
					// descriptors holding 4,000 connections).
					fmt.Fprintf(os.Stderr, "%-9s %-8s round %d: failed: %v\n", test, t.name, r+1, err)
					res.fail(test, t.name, r, err.Error())
					continue
				}
				fmt.Fprintf(os.Stderr, "%-9s %-8s round %d: %s %s\n", test, t.name, r+1, m.format(v), note)
				res.add(test, t.name, r, v, note)
				if m.aux != "" && aux > 0 {
					res.add(m.aux, t.name, r, aux, "")
				}
			}
		}
	}
	return nil
}

func (b *bench) start(name, bin string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(b.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	b.procs = append(b.procs, cmd)
	return cmd, nil
}

// restart replaces t's proxy process with a fresh one (same command), so a
// memory measurement starts from a process that has not served before.
func (b *bench) restart(t *target) error {
	old := t.cmd
	syscall.Kill(-old.Process.Pid, syscall.SIGKILL)
	old.Wait()
	b.procs = slices.DeleteFunc(b.procs, func(c *exec.Cmd) bool { return c == old })
	// Until the old process's sockets are gone the new one cannot bind.
	for _, a := range t.addrs() {
		if err := waitClosed(a); err != nil {
			return fmt.Errorf("%s before restart: %w", t.name, err)
		}
	}
	cmd, err := b.start(t.name, old.Path, old.Args[1:]...)
	if err != nil {
		return err
	}
	t.cmd = cmd
	for _, a := range t.addrs() {
		if err := waitListening(a); err != nil {
			return fmt.Errorf("%s after restart: %w", t.name, err)
		}
	}
	return nil
}

// stopAll kills every process the bench started, with its children.
func (b *bench) stopAll() {
	for _, cmd := range slices.Backward(b.procs) {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}
	b.procs = nil
}

func (b *bench) startProxy(name string) (*target, error) {
	t := &target{name: name}
	if name == "direct" {
		t.httpAddr, t.bulkAddr, t.apiAddr = b.httpAddr, b.bulkAddr, b.apiAddr
		return t, nil
	}
	t.httpAddr, t.bulkAddr, t.apiAddr = freeAddr(), freeAddr(), freeAddr()
	listens := strings.Join(t.addrs(), ",")
	backends := b.httpAddr + "," + b.bulkAddr + "," + b.apiAddr
	var err error
	switch name {
	case "vrrplb":
		if b.vrrplbBin != "inproc" {
			conf := filepath.Join(b.dir, "vrrplb.toml")
			if err := os.WriteFile(conf, []byte(vrrplbConfig(t, b)), 0o644); err != nil {
				return nil, err
			}
			t.cmd, err = b.start(name, b.vrrplbBin, "run", "--config", conf)
			break
		}
		t.cmd, err = b.start(name, os.Args[0], "-role=vrrplb", "-listen="+listens, "-backend="+backends)
	case "before":
		if b.beforeBin == "" {
			return nil, fmt.Errorf("proxy before needs -before")
		}
		conf := filepath.Join(b.dir, "before.toml")
		if err := os.WriteFile(conf, []byte(vrrplbConfig(t, b)), 0o644); err != nil {
			return nil, err
		}
		t.cmd, err = b.start(name, b.beforeBin, "run", "--config", conf)
	case "naive":
		t.cmd, err = b.start(name, os.Args[0], "-role=naive", "-listen="+listens, "-backend="+backends)
	case "haproxy":
		conf := filepath.Join(b.dir, "haproxy.cfg")
		if err := os.WriteFile(conf, []byte(haproxyConfig(t, b)), 0o644); err != nil {
			return nil, err
		}
		t.cmd, err = b.start(name, "haproxy", "-db", "-f", conf)
	case "nginx":
		conf := filepath.Join(b.dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(nginxConfig(t, b)), 0o644); err != nil {
			return nil, err
		}
		t.cmd, err = b.start(name, "nginx", "-p", b.dir, "-c", conf, "-e", filepath.Join(b.dir, "nginx-error.log"))
	default:
		return nil, fmt.Errorf("unknown proxy %q", name)
	}
	return t, err
}

// The configurations are equivalent: two threads or workers (the host's
// cores), no logging, 1s connect timeout, no idle timeout that a run could
// reach, one backend per listener.

func haproxyConfig(t *target, b *bench) string {
	return fmt.Sprintf(`global
    maxconn 9000
    nbthread 2
defaults
    mode tcp
    timeout connect 1s
    timeout client 1h
    timeout server 1h
listen http
    bind %s
    server s1 %s
listen bulk
    bind %s
    server s1 %s
listen api
    bind %s
    server s1 %s
`, t.httpAddr, b.httpAddr, t.bulkAddr, b.bulkAddr, t.apiAddr, b.apiAddr)
}

func nginxConfig(t *target, b *bench) string {
	return fmt.Sprintf(`daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile 20000;
pid %s;
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
events { worker_connections 10000; }
stream {
    server { listen %s; proxy_pass %s; proxy_connect_timeout 1s; proxy_timeout 1h; }
    server { listen %s; proxy_pass %s; proxy_connect_timeout 1s; proxy_timeout 1h; }
    server { listen %s; proxy_pass %s; proxy_connect_timeout 1s; proxy_timeout 1h; }
}
`, filepath.Join(b.dir, "nginx.pid"), t.httpAddr, b.httpAddr, t.bulkAddr, b.bulkAddr, t.apiAddr, b.apiAddr)
}

func vrrplbConfig(t *target, b *bench) string {
	var s strings.Builder
	s.WriteString("[admin]\nlisten = \"\"\nsocket = \"\"\n[log]\nlevel = \"warn\"\n")
	for _, fe := range [][3]string{{"http", t.httpAddr, b.httpAddr}, {"bulk", t.bulkAddr, b.bulkAddr}, {"api", t.apiAddr, b.apiAddr}} {
		fmt.Fprintf(&s, "[[frontend]]\nname = %q\nlisten = %q\nbackends = [%q]\n  [frontend.health]\n  type = \"none\"\n", fe[0], fe[1], fe[2])
	}
	return s.String()
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], ", ")
	}
	return "unknown"
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown model"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown model"
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitClosed(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		c.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still accepts 10s after the kill", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitListening(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after 10s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
