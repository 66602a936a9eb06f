// Command soak checks that vrrplb's VRRP path is immune to proxy load: two
// nodes at VRRPv3 10 ms adverts in the e2e lab, a backend host and a client
// host. After an idle baseline, the client saturates the master's proxy with
// bulk streams and a connection storm for SOAK_DURATION (default 5m) on the
// machine's same cores. It reports the master's advert send jitter, taken
// from a capture on the lab bridge, the state transitions of both nodes and
// the longest GC pause of the master (GODEBUG=gctrace=1), for each phase.
// It exits 1 when a node changed state or an advert came later than
// Master_Down_Interval after the one before.
//
// Run it as root with `go run ./e2e/soak` (make soak); it needs iproute2 and
// tcpdump. Traffic only flows between the lab's own namespaces.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vrrplb/vrrplb/e2e/internal/trial"
)

func main() {
	var (
		role     = flag.String("role", "", "internal: run as a child process in a lab host (backend, load)")
		addr     = flag.String("addr", "", "internal: the backend's listen address or the load's target")
		baseline = flag.Duration("baseline", 20*time.Second, "idle phase before the load; 0 skips it")
		bulk     = flag.Int("bulk", 2, "bulk streams through the proxy")
		storm    = flag.Int("storm", 8, "goroutines opening and closing connections through the proxy")
		loadFor  = flag.Duration("duration", 0, "internal: how long the load runs")
		bin      = flag.String("vrrplb", "", "vrrplb binary to run; \"\" builds ./cmd/vrrplb")
		impl     = flag.String("impl", "vrrplb", "what runs on the two nodes: vrrplb, or keepalived beside haproxy (for comparison)")
		wrap     = flag.String("wrap", "", "a command the daemons run under, to compare scheduling: \"nice -n -10\", \"chrt -f 10\"")
	)
	flag.Parse()
	if *role != "" {
		if err := runRole(*role, *addr, *loadFor, *bulk, *storm); err != nil {
			fmt.Fprintf(os.Stderr, "soak %s: %v\n", *role, err)
			os.Exit(1)
		}
		return
	}
	duration := 5 * time.Minute
	if s := os.Getenv("SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "soak: SOAK_DURATION=%q: want a positive Go duration such as 5m\n", s)
			os.Exit(2)
		}
		duration = d
	}
	if *impl != "vrrplb" && *impl != "keepalived" {
		fmt.Fprintf(os.Stderr, "soak: -impl %q: want vrrplb or keepalived\n", *impl)
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "soak: needs root: it creates network namespaces")
		os.Exit(2)
	}
	os.Exit(run(*bin, soakConfig{baseline: *baseline, load: duration, bulk: *bulk, storm: *storm, wrap: strings.Fields(*wrap), impl: *impl}))
}

// run builds vrrplb, runs the soak and returns the exit code.
func run(bin string, cfg soakConfig) int {
	cleanup, err := trial.UseVRRPLB(bin)
	defer cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	// A signal ends the phase under way early; the lab is removed as usual.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ok, err := soak(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		return 2
	}
	if !ok {
		return 1
	}
	return 0
}
