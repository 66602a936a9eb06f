// Command demo shows vrrplb at work in under a minute, on one machine: it
// builds a lab of network namespaces (two load-balancer hosts running
// vrrplb, three fake TLS apiservers, a client), fetches /version through
// the virtual IP, cuts the VRRP master's link and measures the gap the
// client sees while the VIP moves, marks an apiserver unready and shows the
// traffic avoiding it, marks them all unready and shows the VIP kept and
// the proxy failing open, then tears everything down. `make demo` runs it as
// root; iproute2 is all it needs besides the binaries it is given (or Go,
// to build them).
//
// It is a demonstration, not a test harness: the e2e tests use the same lab
// (package e2e), and TestDemo runs this program.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vrrplb/vrrplb/e2e"
)

const (
	vrrplbPkg    = "github.com/vrrplb/vrrplb/cmd/vrrplb"
	apiserverPkg = "github.com/vrrplb/vrrplb/e2e/fakeapiserver"

	advertInterval = 100 * time.Millisecond
	// probeEvery is how often the client probes the VIP during failover.
	probeEvery = 50 * time.Millisecond
	// probeTimeout ends a probe that got no answer: SYNs sent to a MAC
	// that is gone are lost, and TCP would retry only after a second.
	probeTimeout = 250 * time.Millisecond
	// splitRequests are sent after an apiserver is marked unready.
	splitRequests = 12
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) (code int) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vrrplbBin := fs.String("vrrplb", "", "the vrrplb binary (default: next to this program, else built with go)")
	apiserverBin := fs.String("fakeapiserver", "", "the fakeapiserver binary (default: next to this program, else built with go)")
	bgpAct := fs.Bool("bgp", false, "show BGP mode instead: LB hosts announce the VIP to an FRR router (needs frr)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if problems := preflight(); len(problems) > 0 {
		fmt.Fprintln(stderr, "vrrplb demo cannot run:")
		for _, p := range problems {
			fmt.Fprintln(stderr, "  - "+p)
		}
		return 1
	}

	t := &tb{stderr: stderr}
	d := &demo{t: t, out: stdout, start: time.Now()}

	// Ctrl-C or SIGTERM: tear down whatever exists, then exit non-zero.
	// The steps may still be running; the lab vanishes under them.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		t.quiet.Store(true)
		fmt.Fprintf(stderr, "\ndemo: %v: tearing the lab down\n", sig)
		t.cleanup()
		fmt.Fprintln(stderr, "demo: interrupted; the lab is gone")
		os.Exit(130)
	}()

	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatal); !ok {
				t.fail(fmt.Sprintf("%v", r))
			}
		}
		failed := t.Failed()
		if t.quiet.Load() {
			// Interrupted: the signal handler tears down and exits.
			t.cleanup()
			code = 130
			return
		}
		if failed {
			fmt.Fprintln(stdout, "\nThe demo failed (the reason is on stderr). Tearing the lab down.")
		}
		t.cleanup()
		if !failed {
			d.printTeardown()
		}
		if t.Failed() {
			fmt.Fprintln(stderr, "demo: FAILED; the lab has been torn down")
			code = 1
		}
	}()

	d.binaries(*vrrplbBin, *apiserverBin)
	if *bgpAct {
		d.bgpSteps() // bgp.go
		return 0
	}
	d.steps()
	return 0
}

// preflight says what stops the demo from running at all.
func preflight() []string {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "it needs root: it creates network namespaces and runs vrrplb in them.\n"+
			"    Run it as root: sudo make demo (or sudo bin/demo/demo once make demo has built it)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		problems = append(problems, "the ip command is missing: install iproute2 (Debian/Ubuntu: apt-get install iproute2)")
	}
	return problems
}

// binaries finds or builds vrrplb and the fake apiserver.
func (d *demo) binaries(vrrplbBin, apiserverBin string) {
	self, _ := os.Executable()
	for _, b := range []struct {
		flag, pkg, name string
	}{{vrrplbBin, vrrplbPkg, "vrrplb"}, {apiserverBin, apiserverPkg, "fakeapiserver"}} {
		path := b.flag
		if path == "" && self != "" {
			if p := filepath.Join(filepath.Dir(self), b.name); isFile(p) {
				path = p
			}
		}
		if path == "" {
			if _, err := exec.LookPath("go"); err != nil {
				d.t.Fatalf("no %s binary next to the demo and no go command to build it: run make demo", b.name)
			}
			continue // e2e.Build builds it on first use
		}
		if !isFile(path) {
			d.t.Fatalf("%s binary %s: not found", b.name, path)
		}
		e2e.UseProgram(b.pkg, path)
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// demo is the lab and what the steps print.
type demo struct {
	t     *tb
	out   io.Writer
	start time.Time

	lab        *e2e.Lab
	lb         []*e2e.Host // lb1, lb2
	api        []*e2e.Host // apiserver-1..3
	client     *e2e.Host
	readyFiles []string
	// namespaces is how many namespaces the lab made.
	namespaces int
	vip        netip.Addr
	http       *http.Client
	procs      int
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

func (d *demo) step(n int, title string) {
	d.printf("\n== %d. %s   [%.1fs]\n", n, title, time.Since(d.start).Seconds())
}

// indent prints text indented under a step.
func (d *demo) indent(text string) {
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		d.printf("    %s\n", l)
	}
}

func (d *demo) steps() {
	d.printf("vrrplb demo: two load balancers hold a virtual IP with VRRP and proxy it to\n" +
		"three apiservers; a client talks to the virtual IP. All of it runs in network\n" +
		"namespaces on this machine and is removed at the end (Ctrl-C removes it too).\n")
	d.buildLab()
	d.startVRRPLB()
	d.fetchVersion()
	d.failover()
	d.unready()
	d.allUnready()
}

// Step 1: the lab.
func (d *demo) buildLab() {
	d.step(1, "The lab: network namespaces on one bridge")
	d.lab = e2e.NewLab(d.t, 6)
	d.namespaces = len(d.lab.Hosts) + 1 // and the bridge
	d.lb = []*e2e.Host{d.lab.Host(1), d.lab.Host(2)}
	d.api = []*e2e.Host{d.lab.Host(3), d.lab.Host(4), d.lab.Host(5)}
	d.client = d.lab.Host(6)
	d.vip = e2e.VIP4.Addr()
	d.printf("    bridge namespace %s (bridge br0); every host below is a namespace with\n"+
		"    one link, eth0, on that bridge (names carry the lab id %s):\n", d.lab.BridgeNS, d.lab.ID)
	for i, h := range d.lb {
		d.printf("      lb%d          %-12s vrrplb (VRRP priority %d)\n", i+1, h.Addr4.Addr(), priority(i))
	}
	for i, h := range d.api {
		d.printf("      apiserver-%d  %-12s fake kube-apiserver: HTTPS :6443, /readyz and /version\n", i+1, h.Addr4.Addr())
	}
	d.printf("      client       %-12s talks only to the virtual IP\n", d.client.Addr4.Addr())
	d.printf("    virtual IP %s; vrrplb proxies %s:8443 to the apiservers' :6443\n", e2e.VIP4, d.vip)

	bin := e2e.Build(d.t, apiserverPkg)
	for i, h := range d.api {
		ready := d.lab.WriteFile(fmt.Sprintf("apiserver-%d.ready", i+1), "")
		d.readyFiles = append(d.readyFiles, ready)
		h.Start("apiserver", bin, "-listen", netip.AddrPortFrom(h.Addr4.Addr(), 6443).String(),
			"-name", fmt.Sprintf("apiserver-%d", i+1), "-ready-file", ready)
		d.procs++
	}
	// The client skips certificate checks: the fake apiservers make a
	// throwaway self-signed certificate, and vrrplb passes TLS through
	// untouched, so the client talks TLS with the apiserver itself.
	d.http = &http.Client{
		Timeout: probeTimeout,
		Transport: &http.Transport{
			DialContext:       d.client.DialContext,
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		},
	}
}

func priority(lb int) int { return []int{150, 100}[lb] }

// config is lb's vrrplb.toml.
func (d *demo) config(lb int) string {
	var backends []string
	for _, h := range d.api {
		backends = append(backends, fmt.Sprintf("%q", netip.AddrPortFrom(h.Addr4.Addr(), 6443)))
	}
	return alignComments(fmt.Sprintf(`[admin]
listen = %q              # /status, /metrics; inside this host's namespace
socket = ""                       # the demo's hosts share one file system

[[instance]]
name = "apiserver-vip"
interface = %q
virtual_router_id = 51
priority = %d                     # the highest priority holds the VIP
version = 3
advert_interval = %q             # short, so the demo is quick (the default is 1s)
virtual_ips = [%q]

  [[instance.track_frontend]]      # no healthy apiserver: hand the VIP to a host that has one;
  name = "apiserver"               # when no host has one, one keeps it and fails open

[[frontend]]
name = "apiserver"
listen = ":8443"
balance = "roundrobin"
backends = [%s]

  [frontend.health]
  type = "https"
  path = "/readyz"
  interval = "200ms"               # short, so the demo is quick (the default is 2s)
  timeout = "150ms"
  rise = 1
  fall = 2
`, e2e.AdminAddr, e2e.HostIfname, priority(lb), advertInterval.String(), e2e.VIP4.String(), strings.Join(backends, ", ")))
}

// alignComments lines up the comments of a config's lines.
func alignComments(config string) string {
	lines := strings.Split(config, "\n")
	width := 0
	for _, l := range lines {
		if code, _, ok := strings.Cut(l, " # "); ok {
			width = max(width, len(strings.TrimRight(code, " ")))
		}
	}
	for i, l := range lines {
		if code, comment, ok := strings.Cut(l, " # "); ok {
			lines[i] = fmt.Sprintf("%-*s  # %s", width, strings.TrimRight(code, " "), comment)
		}
	}
	return strings.Join(lines, "\n")
}

// Step 2: vrrplb on both load balancers.
func (d *demo) startVRRPLB() {
	d.step(2, "vrrplb starts on lb1 and lb2")
	d.printf("    lb1's /etc/vrrplb/vrrplb.toml (lb2's differs only in priority = %d):\n\n", priority(1))
	d.indent(d.config(0))
	for i, h := range d.lb {
		h.StartVRRPLB(d.config(i))
		d.procs++
	}
	took := d.lab.WaitMaster(d.t, d.lb[0], d.vip, 10*time.Second)
	d.printf("\n    lb1 became MASTER and holds %s (%.1fs after both answered /healthz);\n"+
		"    lb2 is BACKUP. Waiting for both to see three healthy apiservers…\n", d.vip, took.Seconds())
	for _, h := range d.lb {
		d.waitBackends(h, 3, 10*time.Second)
	}
	for i, h := range d.lb {
		d.printf("\n    lb%d# vrrplb status\n", i+1)
		d.indent(d.status(h))
	}
}

// status runs `vrrplb status` inside h.
func (d *demo) status(h *e2e.Host) string {
	out, err := h.Exec(e2e.Binary(d.t), "status", "--admin", e2e.AdminAddr)
	if err != nil {
		d.t.Fatalf("vrrplb status on %s: %v", h.Name, err)
	}
	return out
}

// waitBackends waits until h's frontend counts want healthy backends.
func (d *demo) waitBackends(h *e2e.Host, want int, timeout time.Duration) time.Duration {
	start := time.Now()
	e2e.Eventually(d.t, timeout, func() (bool, string) {
		st, err := h.Status()
		if err != nil || len(st.Frontends) != 1 {
			return false, fmt.Sprintf("/status on %s shows no frontend: %v", h.Name, err)
		}
		n := 0
		for _, b := range st.Frontends[0].Backends {
			if b.Healthy {
				n++
			}
		}
		return n == want, fmt.Sprintf("%s sees %d healthy apiservers, want %d: %+v", h.Name, n, want, st.Frontends[0].Backends)
	})
	return time.Since(start)
}

// version fetches https://VIP:8443/version from the client and returns
// the name of the apiserver that answered.
func (d *demo) version(ctx context.Context) (string, error) {
	url := "https://" + netip.AddrPortFrom(d.vip, 8443).String() + "/version"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		Server     string `json:"server"`
		GitVersion string `json:"gitVersion"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || v.Server == "" {
		return "", fmt.Errorf("GET %s: %s, server %q", url, resp.Status, v.Server)
	}
	return v.Server, nil
}

// Step 3: /version through the VIP.
func (d *demo) fetchVersion() {
	d.step(3, fmt.Sprintf("The client fetches https://%s:8443/version", d.vip))
	seen := map[string]bool{}
	for i := 1; i <= 3; i++ {
		server, err := d.version(context.Background())
		if err != nil {
			d.t.Fatalf("the client could not fetch /version through the VIP: %v", err)
		}
		seen[server] = true
		d.printf("    request %d: answered by %s\n", i, server)
	}
	d.printf("    lb1 holds the VIP and spreads the connections round robin over the\n" +
		"    apiservers; TLS passes through vrrplb untouched.\n")
	if len(seen) != 3 {
		d.t.Fatalf("3 requests round robin reached %d apiservers, want 3", len(seen))
	}
}

// probe is one request of the client during failover.
type probe struct {
	sent, done time.Time
	ok         bool
}

// Step 4: failover.
func (d *demo) failover() {
	d.step(4, "Failover: lb1's link is cut")
	d.printf("    The client starts GET /version to %s:8443 every %s, each on a new\n"+
		"    connection (one without an answer in %s fails). Then lb1's cable is\n"+
		"    pulled at the bridge.\n", d.vip, probeEvery, probeTimeout)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	probes := make(chan probe, 1000)
	go d.probe(ctx, probes)

	// next returns the next probe to end, or fails the demo when the client
	// has stopped probing.
	next := func(why string) probe {
		p, ok := <-probes
		if !ok {
			d.t.Fatalf("the client stopped probing before %s", why)
		}
		return p
	}
	var seen []probe
	for ok := 0; ok < 5; {
		p := next("it reached the VIP 5 times in a row")
		seen = append(seen, p)
		if p.ok {
			ok++
		} else {
			ok = 0
		}
	}
	cut := time.Now()
	d.lb[0].SetLink(false)
	moved := d.lab.WaitMaster(d.t, d.lb[1], d.vip, 5*time.Second)
	d.printf("    lb2 holds %s and is MASTER %d ms after the cut.\n", d.vip, moved.Milliseconds())

	// Once every probe sent before the VIP moved has ended, and a few sent
	// after it have been answered, the failover is over.
	settled := time.Now()
	for answered := 0; answered < 5 || time.Since(settled) < probeTimeout+probeEvery; {
		p := next("it reached the VIP on lb2")
		seen = append(seen, p)
		if p.ok && p.sent.After(settled) {
			answered++
		}
	}
	cancel()
	for p := range probes {
		seen = append(seen, p)
	}

	slices.SortFunc(seen, func(a, b probe) int { return a.sent.Compare(b.sent) })
	var (
		line          strings.Builder
		failed        int
		firstFail     probe
		firstRecovery time.Time
	)
	for _, p := range seen {
		if p.sent.Before(cut.Add(-5 * probeEvery)) {
			continue
		}
		if !p.ok {
			line.WriteString("x")
			if firstFail.sent.IsZero() && p.sent.After(cut.Add(-probeTimeout)) {
				firstFail = p
			}
			failed++
			continue
		}
		line.WriteString(".")
		if !firstFail.sent.IsZero() && p.sent.After(firstFail.sent) && (firstRecovery.IsZero() || p.done.Before(firstRecovery)) {
			firstRecovery = p.done
		}
	}
	d.printf("    the client's probes in the order sent, from just before the cut (. answered,\n"+
		"    x failed):  %s\n", line.String())
	down := 3*advertInterval + skew(priority(1))
	if firstFail.sent.IsZero() {
		d.printf("    failover gap: none, no probe failed\n")
	} else {
		d.printf("    failover gap: %d ms, from the first failed probe to the first answer after it\n"+
			"    (%d failed). lb1's adverts stopped with its link; lb2 takes over once it has\n"+
			"    heard none for Master_Down_Interval = 3 × %s + Skew_Time %s = %s.\n",
			firstRecovery.Sub(firstFail.sent).Milliseconds(), failed, advertInterval,
			skew(priority(1)).Round(time.Millisecond), down.Round(time.Millisecond))
	}
	d.printf("\n    lb2# vrrplb status\n")
	d.indent(d.status(d.lb[1]))
	d.printf("\n    lb1# vrrplb status   (its link is down: it gave the VIP up)\n")
	d.indent(d.status(d.lb[0]))
}

// probe starts a request to the VIP every probeEvery until ctx ends (400
// at most), each in its own goroutine, and sends each result on probes; it
// closes probes once every request has ended.
func (d *demo) probe(ctx context.Context, probes chan<- probe) {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		close(probes)
	}()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for range 400 {
		wg.Go(func() {
			p := probe{sent: time.Now()}
			rctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			_, err := d.version(rctx)
			p.done, p.ok = time.Now(), err == nil
			probes <- p
		})
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// skew is Skew_Time (RFC 5798 §6.1) at the demo's advert interval.
func skew(p int) time.Duration {
	return time.Duration(256-p) * advertInterval / 256
}

// Step 5: an apiserver goes unready.
func (d *demo) unready() {
	d.step(5, "apiserver-1 is marked unready")
	if err := os.Remove(d.readyFiles[0]); err != nil {
		d.t.Fatalf("mark apiserver-1 unready: %v", err)
	}
	d.printf("    apiserver-1's /readyz now answers 500 (it still accepts connections).\n")
	took := d.waitBackends(d.lb[1], 2, 5*time.Second)
	d.printf("    lb2's health checks marked it down %d ms later (fall = 2 checks 200ms apart).\n", took.Milliseconds())

	count := map[string]int{}
	for range splitRequests {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		server, err := d.version(ctx)
		cancel()
		if err != nil {
			d.t.Fatalf("a request through the VIP failed with an apiserver unready: %v", err)
		}
		count[server]++
	}
	names := []string{"apiserver-1", "apiserver-2", "apiserver-3"}
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, count[n]))
	}
	d.printf("    traffic split over %d requests: %s\n", splitRequests, strings.Join(parts, ", "))
	if count["apiserver-1"] != 0 || count["apiserver-2"] == 0 || count["apiserver-3"] == 0 {
		d.t.Fatalf("want every request on apiserver-2 and apiserver-3 and none on apiserver-1, got %v", count)
	}
	d.printf("    none went to the unready apiserver.\n")
	d.printf("\n    lb2# vrrplb status\n")
	d.indent(d.status(d.lb[1]))
}

// Step 6: every apiserver goes unready, the failure every LB host shares.
func (d *demo) allUnready() {
	d.step(6, "Every apiserver is marked unready")
	for _, f := range d.readyFiles[1:] {
		if err := os.Remove(f); err != nil {
			d.t.Fatalf("mark an apiserver unready: %v", err)
		}
	}
	d.printf("    apiserver-2's and apiserver-3's /readyz answer 500 too (etcd away, say): no LB\n" +
		"    host has a ready apiserver. lb2 hands the VIP over (a priority-0 advert) but\n" +
		"    stays in the election at priority 1; no host answers with a better one (lb1's\n" +
		"    link is still down), so lb2 takes the VIP back one Master_Down_Interval later\n" +
		"    rather than leave the control plane without it, and its proxy fails open: new\n" +
		"    connections go to every apiserver, which answer for themselves.\n")
	start := time.Now()
	deadline := start.Add(5 * time.Second)
	for {
		if st, err := d.lb[1].Status(); err == nil && len(st.Frontends) == 1 && st.Frontends[0].FailOpen {
			break
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("lb2's proxy did not fail open within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.printf("    lb2's proxy failed open %d ms later.\n", time.Since(start).Milliseconds())
	back := d.lab.WaitMaster(d.t, d.lb[1], d.vip, 5*time.Second)
	d.printf("    lb2 holds %s again %d ms after that, at priority 1\n"+
		"    (Master_Down_Interval there: 3 × %s + Skew_Time %s).\n", d.vip, back.Milliseconds(), advertInterval, skew(1).Round(time.Millisecond))
	answered := 0
	for range splitRequests {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if _, err := d.version(ctx); err == nil {
			answered++
		}
		cancel()
	}
	d.printf("    fail open: %d of %d requests through the VIP answered.\n", answered, splitRequests)
	if answered != splitRequests || len(d.lab.Masters(d.vip)) != 1 {
		d.t.Fatalf("with every apiserver unready, want one VIP holder and every request answered, got %v and %d", d.lab.Masters(d.vip), answered)
	}
	d.printf("\n    lb2# vrrplb status\n")
	d.indent(d.status(d.lb[1]))
}

// printTeardown reports, after the cleanup, that nothing is left.
func (d *demo) printTeardown() {
	d.step(7, "Teardown")
	left := "nothing is left"
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil && d.lab != nil {
		var ours []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, d.lab.ID) {
				ours = append(ours, strings.Fields(l)[0])
			}
		}
		if len(ours) > 0 {
			slices.Sort(ours)
			left = "namespaces left behind: " + strings.Join(ours, " ")
			d.t.Errorf("%s", left)
		}
	}
	d.printf("    stopped %d processes, removed the %d namespaces: %s.\n", d.procs, d.namespaces, left)
	d.printf("\ndemo done in %.1fs\n", time.Since(d.start).Seconds())
}
