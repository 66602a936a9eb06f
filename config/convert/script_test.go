package convert

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config/internal/importtest"
)

func TestSplitCommandFollowsKeepalivedQuoting(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"words split on blanks", "/usr/bin/killall  -0\thaproxy", []string{"/usr/bin/killall", "-0", "haproxy"}},
		{"single quotes keep everything", `/bin/test -w '/var/lib/my dir'`, []string{"/bin/test", "-w", "/var/lib/my dir"}},
		{"double quotes keep blanks and take escapes", `/bin/echo "a \"b\" c"`, []string{"/bin/echo", `a "b" c`}},
		{"a backslash escapes a blank", `/bin/ls /a\ b`, []string{"/bin/ls", "/a b"}},
		{"shell syntax is only words", "ps -C nginx | wc -l", []string{"ps", "-C", "nginx", "|", "wc", "-l"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitCommand(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := splitCommand(`/bin/echo 'open`); err == nil {
		t.Error("an unterminated quote was accepted")
	}
}

func TestCommandLineDropsTheOuterConfigQuotesOnly(t *testing.T) {
	for raw, want := range map[string]string{
		`"/etc/keepalived/check.sh --port 8443"`: "/etc/keepalived/check.sh --port 8443",
		`/etc/keepalived/check.sh`:               "/etc/keepalived/check.sh",
		`"/bin/a" "b c"`:                         `"/bin/a" "b c"`,
	} {
		if got := commandLine(raw); got != want {
			t.Errorf("commandLine(%s) = %q, want %q", raw, got, want)
		}
	}
}

func TestProcessCheckTellsAProcessCheckFromAnActiveOne(t *testing.T) {
	root := importtest.WriteFiles(t, 0o755, map[string]string{
		"/etc/keepalived/nginx_heartbeat.sh": "#!/bin/bash\n# restart nginx with curl? no: only ps\nA=`ps -C nginx --no-header | wc -l`\nif [ $A -eq 0 ]; then exit 1; fi\n",
		"/etc/keepalived/check_nginx.sh":     "#!/bin/sh\ncurl -sfk https://127.0.0.1:8443/healthz || exit 1\npidof nginx\n",
		"/etc/keepalived/check_haproxy.sh":   "#!/bin/sh\nsystemctl is-active --quiet haproxy\n",
	})
	tests := []struct {
		name      string
		line      string
		wantProxy string // "" when it is not a process check
		evidence  string
	}{
		{"pidof in the command", "pidof haproxy", "haproxy", "the command itself"},
		{"killall -0 in the command", "/usr/bin/killall -0 nginx", "nginx", "the command itself"},
		{"pgrep in the command", "pgrep -x nginx", "nginx", "the command itself"},
		{"ps piped to grep in the command", "ps -ef | grep [n]ginx", "nginx", "the command itself"},
		{"a script that only runs ps", "/etc/keepalived/nginx_heartbeat.sh", "nginx", "the content of /etc/keepalived/nginx_heartbeat.sh"},
		{"a script that also curls is an active check, whatever its name", "/etc/keepalived/check_nginx.sh", "", ""},
		{"a script that asks systemd", "/etc/keepalived/check_haproxy.sh", "haproxy", "the content of"},
		{"an unreadable script named like a proxy check", "/usr/local/bin/chk_haproxy.sh", "haproxy", "the script's name"},
		{"an unreadable script named otherwise", "/usr/local/bin/check_apiserver.sh", "", ""},
		{"a command that connects", "curl -sf http://localhost/nginx_status", "", ""},
		{"a process check of something else", "pidof etcd", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv, err := splitCommand(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			proxy, evidence, ok := processCheck(argv, tt.line, root)
			if ok != (tt.wantProxy != "") || proxy != tt.wantProxy {
				t.Fatalf("processCheck(%q) = %q, %v; want %q", tt.line, proxy, ok, tt.wantProxy)
			}
			if !strings.Contains(evidence, tt.evidence) {
				t.Errorf("evidence %q does not mention %q", evidence, tt.evidence)
			}
		})
	}
}

func TestProcessCheckDoesNotReadDevices(t *testing.T) {
	// /dev/stdin would block; a device is judged by its name only.
	_, _, ok := processCheck([]string{"/dev/stdin"}, "/dev/stdin", "")
	if ok {
		t.Error("/dev/stdin taken for a process check")
	}
}
