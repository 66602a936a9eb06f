package convert

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config"
)

// convertID is convertText with a --config-id.
func convertID(t *testing.T, id, ka string) (*config.Config, string, error) {
	t.Helper()
	return convertWith(t, Options{ConfigID: id}, ka, "", "")
}

// convertAndCheck converts ka and a proxy file as convertText does: the
// conversion must succeed, check(cfg) must be want, and the output must say
// each of mentions and none of absent.
func convertAndCheck(t *testing.T, ka, proxyFile, proxy string, check func(*config.Config) any, want any, mentions, absent []string) {
	t.Helper()
	cfg, out, err := convertText(t, ka, proxyFile, proxy)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	if diff := cmp.Diff(want, check(cfg)); diff != "" {
		t.Errorf("(-want +got):\n%s\n%s", diff, out)
	}
	for _, m := range mentions {
		if !strings.Contains(out, m) {
			t.Errorf("output does not say %q:\n%s", m, out)
		}
	}
	for _, m := range absent {
		if strings.Contains(out, m) {
			t.Errorf("output says %q:\n%s", m, out)
		}
	}
}

// Inputs keepalived runs, which convert refused (issue 18, "fatal where keepalived runs the file").
func TestWhatKeepalivedRunsConverts(t *testing.T) {
	tests := []struct {
		name     string
		ka       string
		check    func(cfg *config.Config) any
		want     any
		mentions []string
	}{
		{"an unknown state is BACKUP, as keepalived takes it, with a warning",
			instanceText("    state SLAVE\n"),
			func(cfg *config.Config) any { return int(cfg.Instances[0].Priority) }, 100,
			[]string{`state "SLAVE" (keepalived.conf:4)`, "keepalived logs it and takes BACKUP"}},
		{"unknown and unsupported top-level blocks are marked and skipped",
			"static_route {\n  10.1.0.0/16 via 10.0.0.1\n}\ngarp_group {\n  garp_interval 1\n}\ntrack_group G {\n  group { VI_1 }\n}\nlinkbeat_interfaces {\n  eth0\n}\nfoo_bar 1\n" + instanceText(""),
			func(cfg *config.Config) any { return len(cfg.Instances) }, 1,
			[]string{`not carried over: keepalived.conf:1 "static_route"`, "keepalived.conf:4 garp_group", "keepalived.conf:7 track_group G", "keepalived.conf:10 linkbeat_interfaces", `keepalived.conf:13 "foo_bar"`, "keepalived does not know this keyword either"}},
		{"an unknown keyword inside an instance is marked, not fatal",
			instanceText("    priorty 150\n"),
			func(cfg *config.Config) any { return int(cfg.Instances[0].Priority) }, 100,
			[]string{`not carried over: keepalived.conf:4 "priorty"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			convertAndCheck(t, tt.ka, "", "", tt.check, tt.want, tt.mentions, nil)
		})
	}
}

func TestConditionalConfigNeedsAConfigID(t *testing.T) {
	ka := "vrrp_script chk {\n    @main script \"/usr/local/bin/check_api\"\n    @^main script \"/usr/local/bin/check_other\"\n}\n" +
		instanceText("    state MASTER\n    @main priority 99\n    @backup priority 98\n    track_script {\n        chk\n    }\n")
	_, _, err := convertID(t, "", ka)
	want := "keepalived.conf:2: this keepalived.conf is conditional: its lines starting @ID or @^ID are read or skipped by keepalived's config id (-i, by default the host name); it names the ids backup, main: give --config-id ID"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	cfg, _, err := convertID(t, "main", ka)
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Instances[0]
	if in.Priority != 99 || len(in.TrackScripts) != 1 || in.TrackScripts[0].Command[0] != "/usr/local/bin/check_api" {
		t.Errorf("--config-id main: priority %d, track scripts %v; want 99 and check_api", in.Priority, in.TrackScripts)
	}
	cfg, _, err = convertID(t, "backup", ka)
	if err != nil {
		t.Fatal(err)
	}
	in = cfg.Instances[0]
	if in.Priority != 98 || in.TrackScripts[0].Command[0] != "/usr/local/bin/check_other" {
		t.Errorf("--config-id backup: priority %d, track scripts %v; want 98 and check_other", in.Priority, in.TrackScripts)
	}
}

const (
	trackProcessNginx  = "vrrp_track_process chk_nginx {\n    process nginx\n    weight -20\n}\n"
	twoFrontendHaproxy = "listen api\n  bind :8443\n  server m1 10.0.0.1:6443 check\n" +
		"listen ingress\n  bind :30080\n  server w1 10.0.0.11:30080 check\n  server w2 10.0.0.12:30080 check\n"
)

// Silent changes of behaviour (issue 18).
func TestNothingChangesSilently(t *testing.T) {
	ngx := "stream {\n  upstream api { server 10.0.0.1:6443; }\n  server { listen 8443; proxy_pass api; }\n}\n"
	tests := []struct {
		name            string
		ka, file, proxy string
		check           func(in config.Instance) any
		want            any
		mentions        []string
	}{
		{"vrrp_track_process of the proxy becomes track_frontend, weight kept",
			trackProcessNginx + instanceText("    track_process {\n        chk_nginx\n    }\n"), "nginx.conf", ngx,
			func(in config.Instance) any { return in.TrackFrontends }, []config.TrackFrontend{{Name: "api", Weight: -20}},
			[]string{"replaces track_process chk_nginx"}},
		{"vrrp_track_process without a proxy input becomes a pgrep track_script",
			trackProcessNginx + instanceText("    track_process {\n        chk_nginx\n    }\n"), "", "",
			func(in config.Instance) any { return []any{in.TrackScripts[0].Command, in.TrackScripts[0].Weight} }, []any{[]string{"/usr/bin/pgrep", "-x", "nginx"}, -20},
			[]string{"vrrp_track_process chk_nginx"}},
		{"priority 255 drops weighted trackers, as keepalived ignores them for the address owner",
			"vrrp_script chk {\n    script \"/usr/local/bin/check_api\"\n    weight -10\n}\nvrrp_script hard {\n    script \"/usr/local/bin/check_hard\"\n}\n" +
				instanceText("    priority 255\n    track_script {\n        chk\n        hard\n    }\n    track_interface {\n        eth1 weight -5\n    }\n"), "", "",
			func(in config.Instance) any {
				return []any{int(in.Priority), len(in.TrackScripts), in.TrackScripts[0].Command[0], len(in.TrackInterfaces)}
			}, []any{255, 1, "/usr/local/bin/check_hard", 0},
			[]string{"track_script chk", "track_interface eth1", "ignoring tracked", "address owner"}},
		{"a process check of a proxy serving apiservers and an ingress tracks the apiserver frontend only",
			"vrrp_script chk {\n    script \"pidof haproxy\"\n    weight -20\n}\n" + instanceText("    track_script {\n        chk\n    }\n"), "haproxy.cfg", twoFrontendHaproxy,
			func(in config.Instance) any { return in.TrackFrontends }, []config.TrackFrontend{{Name: "api", Weight: -20}},
			[]string{"only the apiserver frontend api", "ingress"}},
		{"a process check of a proxy serving no apiserver frontend splits its weight",
			"vrrp_script chk {\n    script \"pidof haproxy\"\n    weight -20\n}\n" + instanceText("    track_script {\n        chk\n    }\n"), "haproxy.cfg",
			"listen a\n  bind :8080\n  server s 10.0.0.1:8080 check\nlisten b\n  bind :9090\n  server s 10.0.0.2:9090 check\n",
			func(in config.Instance) any { return in.TrackFrontends }, []config.TrackFrontend{{Name: "a", Weight: -10}, {Name: "b", Weight: -10}},
			[]string{"weight -20 is split"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := func(cfg *config.Config) any { return tt.check(cfg.Instances[0]) }
			convertAndCheck(t, tt.ka, tt.file, tt.proxy, first, tt.want, tt.mentions, nil)
		})
	}
}

// notify_master, notify_backup and notify_fault run again, through one
// notify command that dispatches on the state vrrplb appends.
func TestPerStateNotifyCommandsRunOnTheirState(t *testing.T) {
	dir := t.TempDir()
	ka := instanceText(
		"    notify_master \"/usr/bin/touch " + dir + "/became-master\"\n" +
			"    notify_backup \"/usr/bin/touch " + dir + "/became-backup\"\n" +
			"    notify_fault /usr/bin/touch " + dir + "/became-fault\n")
	cfg, out, err := convertText(t, ka, "", "")
	if err != nil {
		t.Fatal(err)
	}
	argv := cfg.Instances[0].Notify
	if len(argv) == 0 {
		t.Fatalf("no notify command:\n%s", out)
	}
	for _, state := range []string{"backup", "master", "fault"} {
		cmd := exec.Command(argv[0], append(argv[1:], "VI_1", state)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("notify %s: %v: %s", state, err, b)
		}
		if _, err := os.Stat(filepath.Join(dir, "became-"+state)); err != nil {
			t.Errorf("on %s the notify_%s command did not run: %v", state, state, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("%d files made, want 3 (one per state)", len(entries))
	}
}

// Wrong details (issue 18).
func TestWrongDetailsAreRight(t *testing.T) {
	tests := []struct {
		name, file, src string
		check           func(cfg *config.Config) any
		want            any
		mentions        []string
		absent          []string
	}{
		{"nginx proxy_timeout becomes idle_timeout 0s, quoting the old value and its line",
			"nginx.conf", "stream {\n  proxy_timeout 10m;\n  upstream u { server 10.0.0.1:6443; }\n  server { listen 8443; proxy_pass u; }\n}\n",
			func(cfg *config.Config) any { return cfg.Frontends[0].IdleTimeout }, time.Duration(0),
			[]string{"proxy_timeout 10m (nginx.conf:2)"}, nil},
		{"haproxy timeout client 50s becomes idle_timeout 0s, quoting the old values and lines",
			"haproxy.cfg", "defaults\n  timeout client 50s\n  timeout server 50s\nlisten a\n  bind :8443\n  server s 10.0.0.1:6443\n",
			func(cfg *config.Config) any { return cfg.Frontends[0].IdleTimeout }, time.Duration(0),
			[]string{"timeout client 50s (haproxy.cfg:2)", "timeout server 50s (haproxy.cfg:3)"}, nil},
		{"haproxy maxqueue takes its argument",
			"haproxy.cfg", "listen a\n  bind :8443\n  server s 10.0.0.1:6443 maxqueue 256\n",
			func(cfg *config.Config) any { return cfg.Frontends[0].Backends }, []string{"10.0.0.1:6443"},
			[]string{"not carried over: haproxy.cfg:3 maxqueue 256 for 10.0.0.1:6443"}, []string{"haproxy.cfg:3 256 for"}},
		{"default-server options are reported once, at their own line",
			"haproxy.cfg", "listen a\n  bind :8443\n  default-server inter 3s slowstart 60s\n  server s1 10.0.0.1:6443 check\n  server s2 10.0.0.2:6443 check\n",
			func(cfg *config.Config) any { return cfg.Frontends[0].Health.Interval }, 3 * time.Second,
			[]string{"not carried over: haproxy.cfg:3 slowstart 60s (default-server)"}, []string{"haproxy.cfg:4 slowstart", "haproxy.cfg:5 slowstart"}},
		{"maxconn names its line",
			"haproxy.cfg", "listen a\n  bind :8443\n  maxconn 500\n  server s 10.0.0.1:6443\n",
			func(cfg *config.Config) any { return cfg.Frontends[0].MaxConnections }, 500,
			[]string{"maxconn 500 (haproxy.cfg:3)"}, nil},
		{"an extra bind on the same port is covered by the wildcard listen, not copied",
			"haproxy.cfg", "listen a\n  bind :6443\n  bind 127.0.0.1:6443\n  server s 10.0.0.1:6443\n",
			func(cfg *config.Config) any { return len(cfg.Frontends) }, 1,
			[]string{"bind 127.0.0.1:6443", `already answers there`}, []string{"copy this frontend"}},
		{"an extra bind on another port gets advice that check accepts",
			"haproxy.cfg", "listen a\n  bind :8443\n  bind :9443\n  server s 10.0.0.1:6443\n",
			func(cfg *config.Config) any { return len(cfg.Frontends) }, 1,
			[]string{`add a [[frontend]] with listen = ":9443"`}, []string{"copy this frontend"}},
		{"nginx listens that overlap one another make one frontend",
			"nginx.conf", "stream {\n  upstream u { server 10.0.0.1:6443; }\n  server { listen 6443; listen 127.0.0.1:6443; proxy_pass u; }\n}\n",
			func(cfg *config.Config) any { return len(cfg.Frontends) }, 1,
			[]string{"listen 127.0.0.1:6443 of u-2", "already answers there"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			convertAndCheck(t, "", tt.file, tt.src, tt.check, tt.want, tt.mentions, tt.absent)
		})
	}
}

func TestGlobalGARPRefreshNamesItsLine(t *testing.T) {
	_, out, err := convertText(t, "global_defs {\n    vrrp_garp_master_refresh 60\n}\n"+instanceText(""), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "vrrp_garp_master_refresh (keepalived.conf:2)") {
		t.Errorf("garp_refresh does not name its source line:\n%s", out)
	}
}

func TestADevTCPCheckIsToldToUseBash(t *testing.T) {
	ka := "vrrp_script chk {\n    script \"</dev/tcp/127.0.0.1/6443\"\n}\n" + instanceText("    track_script {\n        chk\n    }\n")
	_, out, err := convertText(t, ka, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `["/bin/bash", "-c", ...]`) || strings.Contains(out, `["/bin/sh", "-c", ...]`) {
		t.Errorf("the hint for /dev/tcp does not name bash:\n%s", out)
	}
}

// An include of a file that is no keepalived.conf (/etc/shadow) is marked
// line by line as keepalived skips it, without its text in the output.
func TestAForeignIncludedFileIsNotQuoted(t *testing.T) {
	dir := t.TempDir()
	shadow := filepath.Join(dir, "shadow")
	if err := os.WriteFile(shadow, []byte("root:$6$c2VjcmV0$secrethash:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, out, err := convertText(t, "include "+shadow+"\n"+instanceText(""), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "secret") || !strings.Contains(out, "shadow:1 (text not shown)") {
		t.Errorf("output quotes the included file or does not mark its line:\n%s", out)
	}
}

// A vrrp_sync_group's parts are carried over or marked: its members'
// weighted trackers become weight 0, as keepalived sets them without
// sync_group_tracking_weight, and the group's own trackers become each
// member's, at weight 0.
func TestSyncGroupPartsAreCarriedOverOrMarked(t *testing.T) {
	ka := "vrrp_script chk {\n    script \"/usr/local/bin/check_api\"\n    weight -20\n}\n" +
		"vrrp_script grp {\n    script \"/usr/local/bin/check_group\"\n    weight -5\n}\n" +
		"vrrp_sync_group G1 {\n    group {\n        VI_1\n    }\n    notify_master \"/usr/local/bin/master.sh\"\n    track_script {\n        grp\n        chk\n    }\n}\n" +
		instanceText("    track_script {\n        chk\n    }\n")
	cfg, out, err := convertText(t, ka, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ts := range cfg.Instances[0].TrackScripts {
		got = append(got, fmt.Sprintf("%s %d", ts.Command[0], ts.Weight))
	}
	want := []string{"/usr/local/bin/check_api 0", "/usr/local/bin/check_group 0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("track scripts (-want +got):\n%s\n%s", diff, out)
	}
	for _, m := range []string{"without sync_group_tracking_weight, keepalived set this tracker's weight to 0", "a tracker of vrrp_sync_group G1", "not carried over: keepalived.conf:13 notify_master /usr/local/bin/master.sh of vrrp_sync_group G1"} {
		if !strings.Contains(out, m) {
			t.Errorf("output does not say %q:\n%s", m, out)
		}
	}
}

// What is shorter than vrrplb takes is raised to its shortest, with a
// comment, so that the output passes check (found by FuzzConvert once check
// refused "1ns" durations and health intervals under 10ms).
func TestShortDurationsAreRaisedToWhatCheckTakes(t *testing.T) {
	ka := "vrrp_script chk {\n    script \"/usr/local/bin/check_api\"\n    interval 0.01\n    timeout 0.0001\n}\n" + instanceText("    track_script {\n        chk\n    }\n")
	hap := "listen a\n  bind :8443\n  timeout connect 500us\n  server s 10.0.0.1:8443 check inter 2\n"
	cfg, out, err := convertText(t, ka, "haproxy.cfg", hap)
	if err != nil {
		t.Fatal(err)
	}
	ts, fe := cfg.Instances[0].TrackScripts[0], cfg.Frontends[0]
	got := []time.Duration{ts.Interval, ts.Timeout, fe.Health.Interval, fe.ConnectTimeout}
	want := []time.Duration{100 * time.Millisecond, time.Millisecond, 10 * time.Millisecond, time.Millisecond}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("script interval, timeout, health interval, connect timeout (-want +got):\n%s\n%s", diff, out)
	}
	if !strings.Contains(out, "2ms raised to 10ms, the shortest vrrplb takes here") {
		t.Errorf("the raise is not said:\n%s", out)
	}
}

// keepalived's parameters ($NAME=TEXT, then $NAME or ${NAME}) are expanded
// as keepalived expands them.
func TestParametersAreExpanded(t *testing.T) {
	ka := "$VIP=192.0.2.10/24\n$IF = eth1\n$PRIO=110\n" +
		"vrrp_instance VI_1 {\n    interface ${IF}\n    virtual_router_id 51\n    priority $PRIO\n    virtual_ipaddress {\n        $VIP\n    }\n}\n"
	cfg, out, err := convertText(t, ka, "", "")
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Instances[0]
	got := []any{in.Interface, int(in.Priority), in.VirtualIPs[0].String()}
	if diff := cmp.Diff([]any{"eth1", 110, "192.0.2.10/24"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s\n%s", diff, out)
	}
}
