package convert

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config"
)

// convertText converts a keepalived.conf text (and a proxy file, if proxyFile
// names one) written to a temp dir, and parses the result with config.Parse.
func convertText(t *testing.T, ka, proxyFile, proxy string) (*config.Config, string, error) {
	t.Helper()
	return convertWith(t, Options{}, ka, proxyFile, proxy)
}

// convertWith is convertText with opts' settings besides the files.
func convertWith(t *testing.T, opts Options, ka, proxyFile, proxy string) (*config.Config, string, error) {
	t.Helper()
	dir := t.TempDir()
	opts.ScriptRoot = dir
	if ka != "" {
		opts.Keepalived = filepath.Join(dir, "keepalived.conf")
		if err := os.WriteFile(opts.Keepalived, []byte(ka), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if proxyFile != "" {
		p := filepath.Join(dir, proxyFile)
		if err := os.WriteFile(p, []byte(proxy), 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(proxyFile, "haproxy") {
			opts.HAProxy = p
		} else {
			opts.Nginx = p
		}
	}
	out, err := Convert(opts)
	if err != nil {
		// Errors name the file: drop the temp dir so tests can compare.
		return nil, "", errorString(strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
	}
	cfg, err := config.Parse("out.toml", out)
	if err != nil {
		t.Fatalf("config.Parse rejects the output: %v\n%s", err, out)
	}
	return cfg, strings.ReplaceAll(flatten(string(out)), dir+string(filepath.Separator), ""), nil
}

// flatten joins comment lines that were wrapped, and all blanks, so a test
// can look for a phrase wherever the wrapping put it.
func flatten(s string) string {
	return strings.Join(strings.Fields(continued.ReplaceAllString(s, " ")), " ")
}

var continued = regexp.MustCompile(`\n\s*#\s+`)

type errorString string

func (e errorString) Error() string { return string(e) }

func instanceText(body string) string {
	return "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n" + body + "    virtual_ipaddress {\n        192.0.2.10/24\n    }\n}\n"
}

func TestKeepalivedSemanticsCarryOver(t *testing.T) {
	tests := []struct {
		name     string
		ka       string
		check    func(in config.Instance) any
		want     any
		mentions string // a comment the output must carry
	}{
		{"state MASTER with nopreempt and a priority preempts, as keepalived 2.x clears nopreempt",
			instanceText("    state MASTER\n    priority 100\n    nopreempt\n"),
			func(in config.Instance) any { return in.Preempt }, true, "keepalived 2.x clears it"},
		{"state BACKUP with nopreempt does not preempt",
			instanceText("    state BACKUP\n    priority 100\n    nopreempt\n"),
			func(in config.Instance) any { return in.Preempt }, false, "nopreempt (keepalived.conf:6)"},
		{"state MASTER without a priority takes 255, with a warning",
			instanceText("    state MASTER\n"),
			func(in config.Instance) any { return int(in.Priority) }, 255, "WARNING: VI_1 has state MASTER and no priority"},
		{"state BACKUP without a priority takes keepalived's default 100",
			instanceText("    state BACKUP\n"),
			func(in config.Instance) any { return int(in.Priority) }, 100, "keepalived's default priority"},
		{"a fractional advert_int makes VRRPv3",
			instanceText("    advert_int 0.5\n"),
			func(in config.Instance) any { return []any{in.Version, in.AdvertInterval} }, []any{3, 500 * time.Millisecond}, "is a fraction of a second"},
		{"PASS authentication is not carried into VRRPv3",
			instanceText("    advert_int 1.5\n    authentication {\n        auth_type PASS\n        auth_pass secret\n    }\n"),
			func(in config.Instance) any { return in.AuthPass }, "", "VRRPv3 has no authentication"},
		{"AH authentication is not carried over",
			instanceText("    authentication {\n        auth_type AH\n        auth_pass secret\n    }\n"),
			func(in config.Instance) any { return in.AuthPass }, "", "auth_type AH"},
		{"vrrp_version 3 in global_defs applies to the instances",
			"global_defs {\n    vrrp_version 3\n}\n" + instanceText(""),
			func(in config.Instance) any { return in.Version }, 3, ""},
		{"keepalived's default is VRRPv2",
			instanceText(""),
			func(in config.Instance) any { return in.Version }, 2, "VRRPv2, keepalived's default"},
		{"a positive track_interface weight raises the priority and subtracts while down",
			instanceText("    priority 100\n    track_interface {\n        eth1 weight 10\n    }\n"),
			func(in config.Instance) any { return []any{int(in.Priority), in.TrackInterfaces} },
			[]any{110, []config.TrackInterface{{Name: "eth1", Weight: -10}}}, "priority is raised by 10"},
		{"a track_script weight overrides the script's and reverse inverts the exit status",
			"vrrp_script s {\n    script \"/bin/test -f /run/maint\"\n    weight -10\n}\n" + instanceText("    track_script {\n        s weight -20 reverse\n    }\n"),
			func(in config.Instance) any { return in.TrackScripts[0].Command[:3] }, []string{"/bin/sh", "-c", `! "$0" "$@"`}, "inverted"},
		{"keepalived's script defaults (interval 1s, fall 1, rise 1, weight 0) are written out",
			"vrrp_script s {\n    script /bin/true\n}\n" + instanceText("    track_script {\n        s\n    }\n"),
			func(in config.Instance) any {
				ts := in.TrackScripts[0]
				return []any{ts.Interval, ts.Fall, ts.Rise, ts.Weight}
			}, []any{time.Second, 1, 1, 0}, ""},
		{"garp_master_repeat and garp_master_refresh carry over",
			instanceText("    garp_master_repeat 3\n    garp_master_refresh 60\n"),
			func(in config.Instance) any { return []any{in.GARPRepeat, in.GARPRefresh} }, []any{3, time.Minute}, ""},
		{"notify becomes the notify argv, with a comment on its arguments",
			instanceText("    notify \"/etc/keepalived/notify.sh --log\"\n"),
			func(in config.Instance) any { return in.Notify }, []string{"/etc/keepalived/notify.sh", "--log"}, "INSTANCE VI_1 STATE PRIORITY"},
		{"mcast_src_ip becomes source_ip",
			instanceText("    mcast_src_ip 192.0.2.21\n"),
			func(in config.Instance) any { return in.SourceIP.String() }, "192.0.2.21", "mcast_src_ip (keepalived.conf:4)"},
		{"options of a virtual address are each reported, and the address kept",
			"vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n        192.0.2.10/24 brd 192.0.2.255 dev eth0 scope global label eth0:1\n    }\n}\n",
			func(in config.Instance) any { return in.VirtualIPs[0].String() }, "192.0.2.10/24",
			"brd 192.0.2.255 for 192.0.2.10/24 (vrrplb adds VIPs with the prefix only) not carried over: keepalived.conf:5 scope global for 192.0.2.10/24 (vrrplb adds VIPs with the prefix only) not carried over: keepalived.conf:5 label eth0:1 for 192.0.2.10/24"},
		{"unicast peers carry over",
			instanceText("    unicast_peer {\n        192.0.2.22\n        192.0.2.23\n    }\n"),
			func(in config.Instance) any { return len(in.UnicastPeers) }, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, out, err := convertText(t, tt.ka, "", "")
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if len(cfg.Instances) != 1 {
				t.Fatalf("%d instances, want 1", len(cfg.Instances))
			}
			if diff := cmp.Diff(tt.want, tt.check(cfg.Instances[0])); diff != "" {
				t.Errorf("(-want +got):\n%s\n%s", diff, out)
			}
			if tt.mentions != "" && !strings.Contains(out, tt.mentions) {
				t.Errorf("output does not say %q:\n%s", tt.mentions, out)
			}
		})
	}
}

func TestProcessCheckBecomesTrackFrontendOnlyWithAProxy(t *testing.T) {
	ka := "vrrp_script chk {\n    script \"killall -0 nginx\"\n    weight -30\n}\n" + instanceText("    track_script {\n        chk\n    }\n")
	ngx := "stream {\n  upstream api { server 10.0.0.1:6443; }\n  server { listen 8443; proxy_pass api; }\n}\n"

	cfg, _, err := convertText(t, ka, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Instances[0]; len(got.TrackScripts) != 1 || len(got.TrackFrontends) != 0 {
		t.Errorf("keepalived alone: %d track scripts, %d track frontends; want the script kept", len(got.TrackScripts), len(got.TrackFrontends))
	}

	cfg, _, err = convertText(t, ka, "nginx.conf", ngx)
	if err != nil {
		t.Fatal(err)
	}
	want := []config.TrackFrontend{{Name: "api", Weight: -30}}
	if diff := cmp.Diff(want, cfg.Instances[0].TrackFrontends); diff != "" {
		t.Errorf("track_frontend (-want +got):\n%s", diff)
	}
	if n := len(cfg.Instances[0].TrackScripts); n != 0 {
		t.Errorf("%d track scripts left, want the process check replaced", n)
	}
}

func TestProxySemanticsCarryOver(t *testing.T) {
	tests := []struct {
		name      string
		file, src string
		check     func(f config.Frontend) any
		want      any
		mentions  string
	}{
		{"nginx listen on a port alone listens on every address",
			"nginx.conf", "stream { upstream u { server 10.0.0.1:6443; } server { listen 8443; proxy_pass u; } }",
			func(f config.Frontend) any { return f.Listen }, ":8443", ""},
		{"nginx hash $remote_addr consistent is source",
			"nginx.conf", "stream { upstream u { hash $remote_addr consistent; server 10.0.0.1:6443; } server { listen 8443; proxy_pass u; } }",
			func(f config.Frontend) any { return f.Balance }, config.Source, ""},
		{"nginx random two is random2",
			"nginx.conf", "stream { upstream u { random two; server 10.0.0.1:6443; } server { listen 8443; proxy_pass u; } }",
			func(f config.Frontend) any { return f.Balance }, config.Random2, ""},
		{"nginx without a balancing directive is round robin",
			"nginx.conf", "stream { upstream u { server 10.0.0.1:6443; } server { listen 8443; proxy_pass u; } }",
			func(f config.Frontend) any { return f.Balance }, config.RoundRobin, ""},
		{"nginx proxy_timeout is not carried over: no idle timeout, with a comment about watches (issue 18)",
			"nginx.conf", "stream { proxy_timeout 10m; upstream u { server 10.0.0.1:6443; } server { listen 8443; proxy_pass u; } }",
			func(f config.Frontend) any { return f.IdleTimeout }, time.Duration(0), "0s (none) is what watches need"},
		{"nginx without proxy_timeout gets no idle timeout, with a comment about nginx's 10m",
			"nginx.conf", "stream { upstream u { server 10.0.0.1:6443; } server { listen 8443; proxy_pass u; } }",
			func(f config.Frontend) any { return f.IdleTimeout }, time.Duration(0), "nginx's default proxy_timeout 10m cut kubectl get -w"},
		{"nginx max_fails becomes the health fall, with an active https /readyz check",
			"nginx.conf", "stream { upstream u { server 10.0.0.1:6443 max_fails=4 fail_timeout=20s; } server { listen 8443; proxy_pass u; } }",
			func(f config.Frontend) any { return []any{f.Health.Type, f.Health.Path, f.Health.Fall} }, []any{config.CheckHTTPS, "/readyz", 4}, "max_fails=4 fail_timeout=20s"},
		{"nginx backends off :6443 get a TCP check",
			"nginx.conf", "stream { upstream u { server 10.0.0.1:5432; } server { listen 15432; proxy_pass u; } }",
			func(f config.Frontend) any { return f.Health.Type }, config.CheckTCP, "backends not on :6443"},
		{"haproxy timeout values without a unit are milliseconds",
			"haproxy.cfg", "defaults\n  timeout connect 1500\nlisten a\n  bind :8443\n  server s 10.0.0.1:6443\n",
			func(f config.Frontend) any { return f.ConnectTimeout }, 1500 * time.Millisecond, ""},
		{"haproxy's older option httpchk GET /readyz with check-ssl is an https check of that path",
			"haproxy.cfg", "listen a\n  bind :8443\n  option httpchk GET /readyz\n  server s 10.0.0.1:6443 check check-ssl verify none inter 3s fall 4 rise 5\n",
			func(f config.Frontend) any {
				return []any{f.Health.Type, f.Health.Path, f.Health.Interval, f.Health.Fall, f.Health.Rise}
			}, []any{config.CheckHTTPS, "/readyz", 3 * time.Second, 4, 5}, ""},
		{"haproxy option httpchk without TLS to a non-apiserver is a plain http check",
			"haproxy.cfg", "listen a\n  bind :8080\n  option httpchk /health\n  http-check expect status 204\n  server s 10.0.0.1:8080 check\n",
			func(f config.Frontend) any { return []any{f.Health.Type, f.Health.Path, f.Health.ExpectStatus} }, []any{config.CheckHTTP, "/health", []int{204}}, ""},
		{"haproxy's bare TCP check of apiservers becomes https /readyz",
			"haproxy.cfg", "listen a\n  bind :8443\n  server s 10.0.0.1:6443 check\n",
			func(f config.Frontend) any { return []any{f.Health.Type, f.Health.Path} }, []any{config.CheckHTTPS, "/readyz"}, "haproxy's check was a TCP connect"},
		{"haproxy timeout tunnel is named as the one left out (issue 18: no idle timeout)",
			"haproxy.cfg", "defaults\n  timeout client 30s\n  timeout server 30s\n  timeout tunnel 2h\nlisten a\n  bind :8443\n  server s 10.0.0.1:6443\n",
			func(f config.Frontend) any { return f.IdleTimeout }, time.Duration(0), "not timeout tunnel 2h"},
		{"haproxy timeout client and server are both named as left out (issue 18: no idle timeout)",
			"haproxy.cfg", "defaults\n  timeout client 50s\n  timeout server 40s\nlisten a\n  bind :8443\n  server s 10.0.0.1:6443\n",
			func(f config.Frontend) any { return f.IdleTimeout }, time.Duration(0), "timeout client 50s (haproxy.cfg:2) and timeout server 40s (haproxy.cfg:3)"},
		{"haproxy balance source is source, and an unknown algorithm is round robin with a comment",
			"haproxy.cfg", "listen a\n  bind :8443\n  balance uri\n  server s 10.0.0.1:6443\n",
			func(f config.Frontend) any { return f.Balance }, config.RoundRobin, "not carried over:"},
		{"haproxy maxconn is max_connections",
			"haproxy.cfg", "listen a\n  bind :8443\n  maxconn 500\n  server s 10.0.0.1:6443\n",
			func(f config.Frontend) any { return f.MaxConnections }, 500, ""},
		{"a haproxy server without a port takes the bind port",
			"haproxy.cfg", "listen a\n  bind :6443\n  server s 10.0.0.1\n",
			func(f config.Frontend) any { return f.Backends }, []string{"10.0.0.1:6443"}, "has no port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, out, err := convertText(t, "", tt.file, tt.src)
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if len(cfg.Frontends) != 1 {
				t.Fatalf("%d frontends, want 1\n%s", len(cfg.Frontends), out)
			}
			if diff := cmp.Diff(tt.want, tt.check(cfg.Frontends[0])); diff != "" {
				t.Errorf("(-want +got):\n%s\n%s", diff, out)
			}
			if tt.mentions != "" && !strings.Contains(out, tt.mentions) {
				t.Errorf("output does not say %q:\n%s", tt.mentions, out)
			}
		})
	}
}

func TestMappingErrorsNameTheFileAndLine(t *testing.T) {
	tests := []struct {
		name      string
		ka        string
		file, src string
		want      string
	}{
		{"a priority out of range", instanceText("    priority 300\n"), "", "",
			`keepalived.conf:4: priority "300": must be a whole number 1..255`},
		{"an auth_pass whose first 8 bytes are not UTF-8 (keepalived cuts an é in two)", instanceText("    authentication {\n        auth_type PASS\n        auth_pass passworé\n    }\n"), "", "",
			`keepalived.conf:6: vrrp_instance "VI_1": auth_pass: the password keepalived sends (its first 8 bytes) is not valid UTF-8, which a vrrplb config cannot hold; choose one of ASCII characters on every router`},
		{"a virtual_router_id that is not a number", "vrrp_instance V {\n interface eth0\n virtual_router_id fifty\n}\n", "", "",
			`keepalived.conf:3: virtual_router_id "fifty": must be a whole number 1..255`},
		{"an instance without an interface", "vrrp_instance V {\n virtual_router_id 5\n}\n", "", "",
			`keepalived.conf:1: vrrp_instance "V" has no interface`},
		{"a track_script naming no vrrp_script", instanceText("    track_script {\n        nope\n    }\n"), "", "",
			`keepalived.conf:5: track_script "nope": no vrrp_script of that name`},
		{"a bad virtual address", "vrrp_instance V {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  10.0.0.300\n }\n}\n", "", "",
			`keepalived.conf:5: virtual_ipaddress "10.0.0.300": not an address or address/prefix`},
		{"an advert_int VRRPv3 cannot carry", "global_defs {\n vrrp_version 3\n}\n" + instanceText("    advert_int 0.001\n"), "", "",
			`keepalived.conf:7: advert_int 0.001: VRRPv3 takes 0.01 to 40.95 seconds`},
		{"two instances with one virtual router id on one interface", instanceText("") + strings.Replace(instanceText(""), "VI_1", "VI_2", 1), "", "",
			`keepalived.conf:8: vrrp_instance "VI_2": virtual_router_id 51 on eth0 is already used by vrrp_instance "VI_1"`},
		{"an nginx upstream server without a port", "", "nginx.conf", "stream {\n upstream u {\n  server 10.0.0.1;\n }\n}\n",
			`nginx.conf:3: server "10.0.0.1": needs host:port (nginx stream has no default port)`},
		{"an nginx proxy_pass to nothing", "", "nginx.conf", "stream {\n server {\n  listen 8443;\n  proxy_pass nowhere;\n }\n}\n",
			`nginx.conf:4: proxy_pass "nowhere": no upstream of that name and not host:port`},
		{"an nginx server without listen", "", "nginx.conf", "stream {\n server {\n  proxy_pass 10.0.0.1:6443;\n }\n}\n",
			`nginx.conf:2: no "listen" is defined for server`},
		{"an nginx time that is not a time", "", "nginx.conf", "stream {\n proxy_timeout soon;\n}\n",
			`nginx.conf:2: proxy_timeout "soon": not a time`},
		{"a haproxy frontend whose backend does not exist", "", "haproxy.cfg", "frontend f\n  bind :8443\n  default_backend nope\n",
			`haproxy.cfg:1: frontend "f": no backend "nope"`},
		{"a haproxy bind without a port", "", "haproxy.cfg", "listen a\n  bind 10.0.0.1\n  server s 10.0.0.2:6443\n",
			`haproxy.cfg:2: bind "10.0.0.1": needs an address and a port`},
		{"a haproxy time with an unknown unit", "", "haproxy.cfg", "defaults\n  timeout connect 5x\n",
			`haproxy.cfg:2: timeout connect "5x": unknown unit "x"`},
		{"a haproxy fall that is not a number", "", "haproxy.cfg", "listen a\n  bind :8443\n  server s 10.0.0.2:6443 check fall many\n",
			`haproxy.cfg:3: server s: fall "many": must be a number, 1 or more`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, err := convertText(t, tt.ka, tt.file, tt.src)
			if err == nil {
				t.Fatalf("Convert accepted it:\n%s", out)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}
