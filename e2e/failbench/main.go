// Command failbench measures VRRP failover as a client sees it: vrrplb and
// keepalived, each in the same network-namespace lab with the same settings
// (VRRPv2 at 1 s, VRRPv3 at 100 ms and at 10 ms adverts), two LB hosts and a
// client that sends a UDP probe to the VIP every 5 ms. For a host crash (its
// cable pulled and the daemon killed) and a graceful stop (SIGTERM), the gap
// is the time between the last echo from the master and the first from the
// backup. Each case runs several times; the table shows the median, the range
// and the RFC 5798 bound beside it. It is a benchmark, not a test: it prints
// numbers, and exits 1 only when a trial could not be run.
//
// Run it as root with `go run ./e2e/failbench`; it needs iproute2 and
// keepalived. Traffic only flows between the lab's own namespaces.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vrrplb/vrrplb/e2e/internal/trial"
)

// setting is one way both daemons run VRRP.
type setting struct {
	name     string
	version  int
	interval time.Duration
}

var settings = []setting{
	{name: "VRRPv2, 1 s adverts", version: 2, interval: time.Second},
	{name: "VRRPv3, 100 ms adverts", version: 3, interval: 100 * time.Millisecond},
	{name: "VRRPv3, 10 ms adverts", version: 3, interval: 10 * time.Millisecond},
}

// The master has masterPrio, the backup that takes over backupPrio.
const (
	masterPrio = 200
	backupPrio = 100
)

// skew is Skew_Time (RFC 5798 §6.1) of the backup.
func (s setting) skew() time.Duration {
	return time.Duration(256-backupPrio) * s.interval / 256
}

// event is what happens to the master.
type event string

const (
	crash    event = "host crash"
	graceful event = "graceful stop"
)

// bound is the longest outage RFC 5798 allows for e: a crash is noticed after
// Master_Down_Interval (§6.1), a priority-0 advert lets the backup take over
// after Skew_Time (§6.4.2).
func (s setting) bound(e event) time.Duration {
	if e == crash {
		return 3*s.interval + s.skew()
	}
	return s.skew()
}

func main() {
	var (
		rounds = flag.Int("rounds", 3, "trials of each case; the table shows the median and the range")
		impls  = flag.String("impls", "vrrplb,keepalived", "comma-separated implementations to measure")
		only   = flag.String("settings", "", "comma-separated advert intervals to run (1s,100ms,10ms); empty: all")
		verb   = flag.Bool("v", false, "print each trial's timeline and daemon logs")
		bin    = flag.String("vrrplb", "", "vrrplb binary to measure; \"\" builds ./cmd/vrrplb")
	)
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "failbench: needs root: it creates network namespaces")
		os.Exit(2)
	}
	names := strings.Split(*impls, ",")
	for _, n := range names {
		if n != "vrrplb" && n != "keepalived" {
			fmt.Fprintf(os.Stderr, "failbench: unknown implementation %q (vrrplb, keepalived)\n", n)
			os.Exit(2)
		}
		if n == "keepalived" {
			if _, err := exec.LookPath("keepalived"); err != nil {
				fmt.Fprintln(os.Stderr, "failbench: keepalived not found: install the Debian package keepalived")
				os.Exit(2)
			}
		}
	}
	var sets []setting
	for _, s := range settings {
		if *only == "" || slices.Contains(strings.Split(*only, ","), s.interval.String()) {
			sets = append(sets, s)
		}
	}

	cleanup, err := trial.UseVRRPLB(*bin)
	defer cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "failbench:", err)
		os.Exit(2)
	}
	os.Exit(run(names, sets, *rounds, *verb))
}

// run measures every case and prints the table; it returns the exit code.
func run(names []string, sets []setting, rounds int, verbose bool) int {
	// A signal stops the run after the trial under way, which then removes
	// its namespaces; a second signal kills.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()

	loadBefore := loadavg()
	start := time.Now()
	results := map[string][]time.Duration{}
	failed := false
	for _, s := range sets {
		for _, e := range []event{crash, graceful} {
			for r := 0; r < rounds; r++ {
				// Alternate the implementations so drift in machine load hits both.
				for _, impl := range names {
					if ctx.Err() != nil {
						fmt.Fprintln(os.Stderr, "failbench: interrupted")
						return 1
					}
					key := resultKey(s, e, impl)
					gap, err := measure(impl, s, e, verbose)
					if err != nil {
						fmt.Fprintf(os.Stderr, "failbench: %s: %v\n", key, err)
						failed = true
						continue
					}
					fmt.Fprintf(os.Stderr, "%-55s gap %s\n", key, ms(gap))
					results[key] = append(results[key], gap)
				}
			}
		}
	}
	printTable(os.Stdout, sets, names, results)
	fmt.Printf("\nLoad average before and after: %s; %s.\n", loadBefore, loadavg())
	fmt.Printf("\n%d trials of each case, UDP probe every %s, %s in all.\n", rounds, probeEvery, time.Since(start).Round(time.Second))
	if failed {
		return 1
	}
	return 0
}

func resultKey(s setting, e event, impl string) string {
	return fmt.Sprintf("%s / %s / %s", s.name, e, impl)
}

// printTable writes the markdown table: one row per setting and event.
func printTable(w *os.File, run []setting, impls []string, results map[string][]time.Duration) {
	fmt.Fprintf(w, "| setting | event | RFC 5798 bound |")
	for _, impl := range impls {
		fmt.Fprintf(w, " %s gap: median (min–max) |", impl)
	}
	fmt.Fprintf(w, "\n|---|---|---|%s\n", strings.Repeat("---|", len(impls)))
	for _, s := range run {
		for _, e := range []event{crash, graceful} {
			bound := fmt.Sprintf("%s (skew %s)", ms(s.bound(e)), ms(s.skew()))
			if e == crash {
				bound = fmt.Sprintf("%s (3 × %s + skew)", ms(s.bound(e)), ms(s.interval))
			}
			fmt.Fprintf(w, "| %s | %s | %s |", s.name, e, bound)
			for _, impl := range impls {
				fmt.Fprintf(w, " %s |", summary(results[resultKey(s, e, impl)]))
			}
			fmt.Fprintln(w)
		}
	}
}

// summary is "median (min–max)", or "–" without any result.
func summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%s (%s–%s)", ms(s[len(s)/2]), ms(s[0]), ms(s[len(s)-1]))
}

func ms(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// loadavg is the machine's 1-minute load average: the numbers mean little
// when other work shares the cores.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}
