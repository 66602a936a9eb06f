package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vrrplb/vrrplb/bgp"
	"github.com/vrrplb/vrrplb/cmd/vrrplb/internal/engine"
	"github.com/vrrplb/vrrplb/vrrp"
)

// designedMetrics are DESIGN.md's metric names and the engine's, the ones dashboards and
// alerts may use (histograms with their _bucket/_count/_sum series).
var designedMetrics = map[string]bool{
	"vrrplb_instance_state": true, "vrrplb_instance_priority": true, "vrrplb_instance_transitions_total": true,
	"vrrplb_adverts_sent_total": true, "vrrplb_adverts_received_total": true, "vrrplb_packets_dropped_total": true,
	"vrrplb_garp_sent_total": true, "vrrplb_frontend_connections_total": true, "vrrplb_frontend_active_connections": true,
	"vrrplb_frontend_rejected_total": true, "vrrplb_backend_up": true, "vrrplb_backend_active_connections": true,
	"vrrplb_backend_connections_total": true, "vrrplb_backend_connect_errors_total": true, "vrrplb_backend_bytes_total": true,
	"vrrplb_health_check_duration_seconds_bucket": true, "vrrplb_health_check_duration_seconds_count": true,
	"vrrplb_health_check_duration_seconds_sum": true, "vrrplb_health_checks_total": true,
	"vrrplb_config_last_reload_successful": true, "vrrplb_config_last_reload_success_timestamp_seconds": true,
	"vrrplb_build_info": true, "vrrplb_frontend_fail_open": true,
	// Takeover after a crash (package vrrp), added to DESIGN.md's list.
	vrrp.MetricTakeoverResets: true, vrrp.MetricTakeoverTuplesHeld: true, vrrp.MetricTakeoverDropped: true,
	vrrp.MetricTakeoverCancelled: true,
	// BGP mode (package bgp).
	bgp.MetricPeerUp: true, bgp.MetricAnnounced: true, bgp.MetricUpdatesSent: true,
	// The VRRP engine process (package engine), added to DESIGN.md's list.
	engine.MetricRestarts: true, engine.MetricRealtime: true, engine.MetricGoroutines: true,
	engine.MetricGCPauseMax: true,
}

// The shipped alert rules and dashboard use only metrics vrrplb exports; a
// renamed metric would otherwise leave an alert silently never firing.
func TestDeployFilesUseOnlyDesignedMetrics(t *testing.T) {
	name := regexp.MustCompile(`vrrplb_[a-z_]+`)
	for _, f := range []string{"../../deploy/prometheus/vrrplb-alerts.yaml", "../../deploy/grafana/vrrplb-dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		used := name.FindAllString(string(b), -1)
		if len(used) == 0 {
			t.Errorf("%s uses no vrrplb metric", f)
		}
		for _, m := range used {
			if !designedMetrics[m] {
				t.Errorf("%s uses %s, which vrrplb does not export", f, m)
			}
		}
	}
}

// The VRRP series carry the instance's name in vrrp_instance; rules and
// panels written for the old label (stored as exported_instance) would
// group nothing.
func TestDeployFilesGroupVRRPSeriesByVrrpInstance(t *testing.T) {
	for _, f := range []string{"../../deploy/prometheus/vrrplb-alerts.yaml", "../../deploy/grafana/vrrplb-dashboard.json", "../../README.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "exported_instance") {
			t.Errorf("%s still names exported_instance; the VRRP label is vrrp_instance", f)
		}
		if !strings.Contains(string(b), "vrrp_instance") {
			t.Errorf("%s never names vrrp_instance", f)
		}
	}
}

func TestDashboardIsGrafanaJSON(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/vrrplb-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 6 {
		t.Fatalf("dashboard title %q uid %q with %d panels", d.Title, d.UID, len(d.Panels))
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

// unitSettings reads deploy/vrrplb.service: every Key=value, values of a key
// given several times joined by a space.
func unitSettings(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/vrrplb.service")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if out[k] != "" {
			v = out[k] + " " + v
		}
		out[k] = v
	}
	return out
}

func TestSystemdUnitIsHardened(t *testing.T) {
	u := unitSettings(t)
	for k, want := range map[string]string{
		"ProtectKernelTunables": "yes",
		"SystemCallFilter":      "@system-service",
		"ProtectProc":           "invisible",
		"ProcSubset":            "pid",
		"UMask":                 "0077",
		"PrivateMounts":         "yes",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
	} {
		if got := u[k]; got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	// The VRRP engine's SCHED_FIFO is sched_setattr, in @resources.
	if f := u["SystemCallFilter"]; strings.Contains(f, "~") {
		t.Errorf("SystemCallFilter=%q denies a set; the engine needs @resources (sched_setattr)", f)
	}
	if u["CapabilityBoundingSet"] != u["AmbientCapabilities"] {
		t.Errorf("CapabilityBoundingSet=%q differs from AmbientCapabilities=%q", u["CapabilityBoundingSet"], u["AmbientCapabilities"])
	}
}

// daemonSyscalls are the system calls strace saw vrrplb make (daemon, VRRP
// engine, proxy, health checks, a track script and a notify command) through
// start, scrapes, proxied connections, maintenance on and off over the admin
// socket, a reload, a killed engine started again, orphans reaped as PID 1,
// and a stop.
var daemonSyscalls = strings.Fields(`accept4 access arch_prctl bind brk capget clone clone3 close connect dup2 dup3
	epoll_create1 epoll_ctl epoll_pwait eventfd2 execve exit_group faccessat2 fcntl fstat futex getdents64
	getegid geteuid getgid getpeername getpid getppid getrandom getsockname getsockopt gettid getuid kill
	listen madvise mmap mprotect munmap nanosleep newfstatat openat pidfd_open pidfd_send_signal pipe2 prctl
	pread64 prlimit64 read readlinkat recvfrom recvmsg restart_syscall rseq rt_sigaction rt_sigprocmask
	rt_sigreturn sched_getaffinity sched_setattr sched_yield sendmsg sendto set_robust_list set_tid_address
	setpgid setsockopt shutdown sigaltstack socket socketpair splice statfs tgkill uname waitid write
	capset setuid setgid setgroups wait4 dup exit fchmodat getcwd getrlimit sched_getattr unlinkat`)

func TestSystemdUnitSystemCallFilterAllowsWhatVrrplbCalls(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	allowed := map[string]bool{}
	var expand func(set string)
	expand = func(set string) {
		out, err := exec.Command(analyze, "syscall-filter", set).Output()
		if err != nil {
			t.Fatalf("systemd-analyze syscall-filter %s: %v", set, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") || f[0] == set {
				continue
			}
			if strings.HasPrefix(f[0], "@") {
				expand(f[0])
				continue
			}
			allowed[f[0]] = true
		}
	}
	expand(unitSettings(t)["SystemCallFilter"])
	for _, sc := range daemonSyscalls {
		if !allowed[sc] {
			t.Errorf("the unit's SystemCallFilter denies %s, which vrrplb calls", sc)
		}
	}
}

func TestSystemdUnitExposureIsLow(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	out, _ := exec.Command(analyze, "security", "--offline=true", "../../deploy/vrrplb.service").CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for vrrplb.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure:\n%s", out)
	}
	if got, _ := strconv.ParseFloat(string(m[1]), 64); got > 2.5 {
		t.Errorf("exposure %v, want at most 2.5 (4.1 before the hardening)", got)
	}
}

func TestStaticPodUsesTheRuntimeDefaultSeccompProfile(t *testing.T) {
	b, err := os.ReadFile("../../deploy/static-pod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\s+seccompProfile:\n\s+type: RuntimeDefault$`).Match(b) {
		t.Error("deploy/static-pod.yaml has no seccompProfile of type RuntimeDefault")
	}
}

func TestDockerfilePinsEveryBaseImageByDigest(t *testing.T) {
	b, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]bool{"scratch": true}
	froms := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.EqualFold(f[0], "FROM") {
			continue
		}
		froms++
		if !stages[f[1]] && !regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(f[1]) {
			t.Errorf("FROM %s is not pinned by digest", f[1])
		}
		if len(f) == 4 && strings.EqualFold(f[2], "AS") {
			stages[f[3]] = true // a later FROM may name this stage
		}
	}
	if froms == 0 {
		t.Fatal("deploy/Dockerfile has no FROM")
	}
}
