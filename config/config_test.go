package config

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// A valid instance and frontend that the error cases below change one key of.
const (
	instanceHead = `[[instance]]
name = "vip"
interface = "eth0"
virtual_router_id = 51
`
	frontendHead = `[[frontend]]
name = "apiserver"
backends = ["10.0.0.1:6443"]
`
)

func TestParseErrors(t *testing.T) {
	caDir := t.TempDir()
	tests := []struct {
		name string
		text string
		want string // the first error, as printed
	}{
		{"a typo in an instance key names the file, line and key", instanceHead + `virtual_ips = ["192.0.2.1"]
priorty = 100
`, `vrrplb.toml:6: instance "vip": priorty: unknown key`},
		{"a relative admin socket path is refused", "[admin]\nsocket = \"admin.sock\"\n",
			`vrrplb.toml:2: admin: socket: "admin.sock": must be an absolute path, or "" to disable it`},
		{"an admin socket path too long for a unix socket is refused", "[admin]\nsocket = \"/" + strings.Repeat("a", 108) + "\"\n",
			`vrrplb.toml:2: admin: socket: "/` + strings.Repeat("a", 108) + `": longer than the 107 bytes a unix socket path can have`},
		{"an unknown top-level table is an unknown key", "[adminn]\nlisten = \"\"\n", `vrrplb.toml:1: adminn: unknown key`},
		{"an unknown key in a nested table is located", frontendHead + "[frontend.health]\ntype = \"https\"\npth = \"/readyz\"\n",
			`vrrplb.toml:6: frontend "apiserver": health: pth: unknown key`},
		{"a TOML syntax error names its line", "[admin]\nlisten = \"127.0.0.1:9100\n", `vrrplb.toml:2: syntax error:`},
		{"a string where an integer belongs is a type error", instanceHead + "priority = \"high\"\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:5: instance "vip": priority: must be an integer, not a string`},
		{"virtual_router_id 0 is out of range", "[[instance]]\nname = \"vip\"\ninterface = \"eth0\"\nvirtual_router_id = 0\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:4: instance "vip": virtual_router_id: 0: must be 1..255`},
		{"virtual_router_id 256 is out of range", "[[instance]]\nname = \"vip\"\ninterface = \"eth0\"\nvirtual_router_id = 256\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:4: instance "vip": virtual_router_id: 256: must be 1..255`},
		{"virtual_router_id is required", "[[instance]]\nname = \"vip\"\ninterface = \"eth0\"\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:1: instance "vip": virtual_router_id: required`},
		{"interface is required", "[[instance]]\nname = \"vip\"\nvirtual_router_id = 1\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:1: instance "vip": interface: required`},
		{"an instance without a name is numbered", "[[instance]]\ninterface = \"eth0\"\nvirtual_router_id = 1\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:1: instance #1: name: required`},
		{"priority 0 is out of range", instanceHead + "priority = 0\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:5: instance "vip": priority: 0: must be 1..255`},
		{"priority 300 is out of range", instanceHead + "priority = 300\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:5: instance "vip": priority: 300: must be 1..255`},
		{"version 4 does not exist", instanceHead + "version = 4\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:5: instance "vip": version: 4: must be 2..3`},
		{"a v2 advert interval must be whole seconds", instanceHead + "version = 2\nadvert_interval = \"1500ms\"\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:6: instance "vip": advert_interval: 1.5s: version 2 needs whole seconds from 1s to 255s`},
		{"a v2 advert interval above 255s is refused", instanceHead + "version = 2\nadvert_interval = \"256s\"\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:6: instance "vip": advert_interval: 4m16s: version 2 needs whole seconds`},
		{"a v3 advert interval must be a multiple of 10ms", instanceHead + "advert_interval = \"15ms\"\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:5: instance "vip": advert_interval: 15ms: version 3 needs a multiple of 10ms up to 40.95s`},
		{"a v3 advert interval above 40.95s is refused", instanceHead + "advert_interval = \"41s\"\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:5: instance "vip": advert_interval: 41s: version 3 needs a multiple of 10ms up to 40.95s`},
		{"an advert interval of zero makes no sense", instanceHead + "advert_interval = \"0s\"\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:5: instance "vip": advert_interval: "0s": must be positive`},
		{"a duration that does not parse is named", instanceHead + "advert_interval = \"1 second\"\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:5: instance "vip": advert_interval: "1 second": not a duration`},
		{"a duration written as a number is a type error", instanceHead + "advert_interval = 1\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:5: instance "vip": advert_interval: must be a duration string such as "1s" or "100ms", not an integer`},
		{"a negative preempt_delay is refused", instanceHead + "preempt_delay = \"-1s\"\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:5: instance "vip": preempt_delay: "-1s": must not be negative`},
		{"virtual_ips are required", instanceHead,
			`vrrplb.toml:1: instance "vip": virtual_ips: required: at least one virtual IP`},
		{"an empty virtual_ips list is refused", instanceHead + "virtual_ips = []\n",
			`vrrplb.toml:5: instance "vip": virtual_ips: must list at least one virtual IP`},
		{"a VIP that does not parse is named", instanceHead + "virtual_ips = [\"192.0.2.300\"]\n",
			`vrrplb.toml:5: instance "vip": virtual_ips: "192.0.2.300": not an address or address/prefix`},
		{"a VIP with a bad prefix is named", instanceHead + "virtual_ips = [\"192.0.2.1/33\"]\n",
			`vrrplb.toml:5: instance "vip": virtual_ips: "192.0.2.1/33": not an address or address/prefix`},
		{"one instance holds one address family", instanceHead + "virtual_ips = [\"192.0.2.1\", \"2001:db8::1\"]\n",
			`vrrplb.toml:5: instance "vip": virtual_ips: "2001:db8::1": mixes IPv4 and IPv6`},
		{"an IPv6 VIP needs version 3", instanceHead + "version = 2\nvirtual_ips = [\"2001:db8::1\"]\n",
			`vrrplb.toml:6: instance "vip": virtual_ips: IPv6 virtual IPs need version 3`},
		{"auth_pass is for version 2 only", instanceHead + "auth_pass = \"secret\"\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:5: instance "vip": auth_pass: only version 2 has authentication`},
		{"auth_pass longer than 8 bytes is refused", instanceHead + "version = 2\nauth_pass = \"K8SHA_KA_AUTH\"\nvirtual_ips = [\"192.0.2.1\"]\n",
			`vrrplb.toml:6: instance "vip": auth_pass: 13 bytes: at most 8`},
		{"a unicast peer of the other family is refused", instanceHead + "virtual_ips = [\"192.0.2.1\"]\nunicast_peers = [\"2001:db8::2\"]\n",
			`vrrplb.toml:6: instance "vip": unicast_peers: "2001:db8::2": must be ipv4 like the virtual IPs`},
		{"a unicast peer that does not parse is named", instanceHead + "virtual_ips = [\"192.0.2.1\"]\nunicast_peers = [\"lb2\"]\n",
			`vrrplb.toml:6: instance "vip": unicast_peers: "lb2": not an IP address`},
		{"a source_ip of the other family is refused", instanceHead + "virtual_ips = [\"2001:db8::1\"]\nsource_ip = \"192.0.2.2\"\n",
			`vrrplb.toml:6: instance "vip": source_ip: "192.0.2.2": must be ipv6 like the virtual IPs`},
		{"instance names are unique", instanceHead + "virtual_ips = [\"192.0.2.1\"]\n" + "[[instance]]\nname = \"vip\"\ninterface = \"eth1\"\nvirtual_router_id = 52\nvirtual_ips = [\"192.0.2.2\"]\n",
			`vrrplb.toml:7: instance "vip": name: "vip": another [[instance]] has this name`},
		{"interface, router id and family are unique together", instanceHead + "virtual_ips = [\"192.0.2.1\"]\n" + "[[instance]]\nname = \"vip2\"\ninterface = \"eth0\"\nvirtual_router_id = 51\nvirtual_ips = [\"192.0.2.2\"]\n",
			`vrrplb.toml:9: instance "vip2": virtual_router_id: 51: instance "vip" already uses it on eth0 for ipv4`},
		{"track_frontend must name a frontend", instanceHead + "virtual_ips = [\"192.0.2.1\"]\n[[instance.track_frontend]]\nname = \"apiservr\"\n",
			`vrrplb.toml:7: instance "vip": track_frontend #1: name: "apiservr": no [[frontend]] has this name`},
		{"a track_frontend weight above 0 is refused", frontendHead + instanceHead + "virtual_ips = [\"192.0.2.1\"]\n[[instance.track_frontend]]\nname = \"apiserver\"\nweight = 5\n",
			`vrrplb.toml:11: instance "vip": track_frontend #1: weight: 5: must be -254..0`},
		{"an address owner with a weighted track_frontend is refused", frontendHead + instanceHead + "priority = 255\nvirtual_ips = [\"192.0.2.1\"]\n[[instance.track_frontend]]\nname = \"apiserver\"\nweight = -20\n",
			`vrrplb.toml:12: instance "vip": track_frontend #1: weight: -20: priority 255 (address owner) stays 255 whatever a tracker says`},
		{"an address owner with a weighted track_script is refused", instanceHead + "priority = 255\nvirtual_ips = [\"192.0.2.1\"]\n[[instance.track_script]]\ncommand = [\"/bin/true\"]\nweight = 10\n",
			`vrrplb.toml:9: instance "vip": track_script #1: weight: 10: priority 255 (address owner) stays 255 whatever a tracker says`},
		{"an address owner with a weighted track_interface is refused", instanceHead + "priority = 255\nvirtual_ips = [\"192.0.2.1\"]\n[[instance.track_interface]]\nname = \"eth1\"\nweight = -10\n",
			`vrrplb.toml:9: instance "vip": track_interface #1: weight: -10: priority 255 (address owner) stays 255 whatever a tracker says`},
		{"a track_script needs a command", instanceHead + "virtual_ips = [\"192.0.2.1\"]\n[[instance.track_script]]\ninterval = \"1s\"\n",
			`vrrplb.toml:6: instance "vip": track_script #1: command: required`},
		{"a track_script command is an argv array", instanceHead + "virtual_ips = [\"192.0.2.1\"]\n[[instance.track_script]]\ncommand = \"/bin/check.sh\"\n",
			`vrrplb.toml:7: instance "vip": track_script #1: command: must be an array, not a string`},
		{"a track_script fall of 0 is refused", instanceHead + "virtual_ips = [\"192.0.2.1\"]\n[[instance.track_script]]\ncommand = [\"/bin/true\"]\nfall = 0\n",
			`vrrplb.toml:8: instance "vip": track_script #1: fall: 0: must be at least 1`},
		{"a track_script rise of 0 is refused", instanceHead + "virtual_ips = [\"192.0.2.1\"]\n[[instance.track_script]]\ncommand = [\"/bin/true\"]\nrise = 0\n",
			`vrrplb.toml:8: instance "vip": track_script #1: rise: 0: must be at least 1`},
		{"a track_script timeout of zero is refused", instanceHead + "virtual_ips = [\"192.0.2.1\"]\n[[instance.track_script]]\ncommand = [\"/bin/true\"]\ntimeout = \"0s\"\n",
			`vrrplb.toml:8: instance "vip": track_script #1: timeout: "0s": must be positive`},
		{"frontend names are unique", frontendHead + frontendHead + "listen = \":8444\"\n",
			`vrrplb.toml:5: frontend "apiserver": name: "apiserver": another [[frontend]] has this name`},
		{"two frontends on one listen address are refused at the second's line", frontendHead + "listen = \":6443\"\n" + strings.Replace(frontendHead, "apiserver", "ingress", 1) + "listen = \":6443\"\n",
			`vrrplb.toml:8: frontend "ingress": listen: ":6443" overlaps frontend "apiserver"'s listen ":6443": both cannot be bound; give them different ports, or make them one frontend`},
		{"a wildcard listen overlaps a loopback one on the same port", frontendHead + "listen = \":6443\"\n" + strings.Replace(frontendHead, "apiserver", "local", 1) + "listen = \"127.0.0.1:6443\"\n",
			`vrrplb.toml:8: frontend "local": listen: "127.0.0.1:6443" overlaps frontend "apiserver"'s listen ":6443": both cannot be bound; give them different ports, or make them one frontend`},
		{"an IPv6 wildcard overlaps an IPv4 address on the same port", frontendHead + "listen = \"[::]:6443\"\n" + strings.Replace(frontendHead, "apiserver", "v4", 1) + "listen = \"10.0.0.5:6443\"\n",
			`vrrplb.toml:8: frontend "v4": listen: "10.0.0.5:6443" overlaps frontend "apiserver"'s listen "[::]:6443": both cannot be bound; give them different ports, or make them one frontend`},
		{"a frontend on the admin server's address is refused", frontendHead + "listen = \"127.0.0.1:9100\"\n",
			`vrrplb.toml:4: frontend "apiserver": listen: "127.0.0.1:9100" overlaps the [admin] listen "127.0.0.1:9100": both cannot be bound; give them different ports, or make them one frontend`},
		{"a 1ns track_script interval is refused", instanceHead + "virtual_ips = [\"192.0.2.1\"]\n[[instance.track_script]]\ncommand = [\"/bin/true\"]\ninterval = \"1ns\"\n",
			`vrrplb.toml:8: instance "vip": track_script #1: interval: "1ns": below 1ms, the shortest duration vrrplb takes`},
		{"a 1ns health timeout is refused", frontendHead + "[frontend.health]\ntimeout = \"1ns\"\n",
			`vrrplb.toml:5: frontend "apiserver": health: timeout: "1ns": below 1ms, the shortest duration vrrplb takes`},
		{"a 1ns connect_timeout is refused", frontendHead + "connect_timeout = \"1ns\"\n",
			`vrrplb.toml:4: frontend "apiserver": connect_timeout: "1ns": below 1ms, the shortest duration vrrplb takes`},
		{"a 1ns idle_timeout is refused (0 turns it off)", frontendHead + "idle_timeout = \"1ns\"\n",
			`vrrplb.toml:4: frontend "apiserver": idle_timeout: "1ns": below 1ms, the shortest duration vrrplb takes`},
		{"a health interval below 10ms is refused", frontendHead + "[frontend.health]\ninterval = \"1ms\"\n",
			`vrrplb.toml:5: frontend "apiserver": health: interval: "1ms": must be at least 10ms (every backend is checked once per interval)`},
		{"a track_script interval below 100ms is refused", instanceHead + "virtual_ips = [\"192.0.2.1\"]\n[[instance.track_script]]\ncommand = [\"/bin/true\"]\ninterval = \"10ms\"\n",
			`vrrplb.toml:8: instance "vip": track_script #1: interval: "10ms": must be at least 100ms (the script is started once per interval)`},
		{"a sub-second tcp_keepalive is refused", frontendHead + "tcp_keepalive = \"500ms\"\n",
			`vrrplb.toml:4: frontend "apiserver": tcp_keepalive: "500ms": must be at least 1s (the kernel counts TCP keepalive in whole seconds; 0 turns it off)`},
		{"a listen address needs a port", frontendHead + "listen = \"0.0.0.0\"\n",
			`vrrplb.toml:4: frontend "apiserver": listen: "0.0.0.0": must be host:port`},
		{"a listen port must be in range", frontendHead + "listen = \":70000\"\n",
			`vrrplb.toml:4: frontend "apiserver": listen: ":70000": port "70000": must be 1..65535`},
		{"a backend needs a port", "[[frontend]]\nname = \"apiserver\"\nbackends = [\"10.0.0.1\"]\n",
			`vrrplb.toml:3: frontend "apiserver": backends: "10.0.0.1": must be host:port`},
		{"a backend needs a host", "[[frontend]]\nname = \"apiserver\"\nbackends = [\":6443\"]\n",
			`vrrplb.toml:3: frontend "apiserver": backends: ":6443": needs a host`},
		{"backends are required", "[[frontend]]\nname = \"apiserver\"\n",
			`vrrplb.toml:1: frontend "apiserver": backends: required: at least one host:port`},
		{"a backend listed twice is refused", "[[frontend]]\nname = \"apiserver\"\nbackends = [\"10.0.0.1:6443\", \"10.0.0.1:6443\"]\n",
			`vrrplb.toml:3: frontend "apiserver": backends: "10.0.0.1:6443": listed twice`},
		{"an unknown balance is refused", frontendHead + "balance = \"fastest\"\n",
			`vrrplb.toml:4: frontend "apiserver": balance: "fastest": must be one of leastconn, roundrobin, source, random2`},
		{"a connect_timeout of zero is refused", frontendHead + "connect_timeout = \"0s\"\n",
			`vrrplb.toml:4: frontend "apiserver": connect_timeout: "0s": must be positive`},
		{"negative retries are refused", frontendHead + "retries = -1\n",
			`vrrplb.toml:4: frontend "apiserver": retries: -1: must be 0..100`},
		{"negative max_connections are refused", frontendHead + "max_connections = -1\n",
			`vrrplb.toml:4: frontend "apiserver": max_connections: -1: must be at least 0`},
		{"an unknown health type is refused", frontendHead + "[frontend.health]\ntype = \"grpc\"\n",
			`vrrplb.toml:5: frontend "apiserver": health: type: "grpc": must be one of tcp, tls, http, https, none`},
		{"a health path starts with a slash", frontendHead + "[frontend.health]\npath = \"readyz\"\n",
			`vrrplb.toml:5: frontend "apiserver": health: path: "readyz": must start with "/"`},
		{"expect_status must be HTTP statuses", frontendHead + "[frontend.health]\nexpect_status = [200, 600]\n",
			`vrrplb.toml:5: frontend "apiserver": health: expect_status: 600: must be an HTTP status 100..599`},
		{"expect_status below 100 is refused", frontendHead + "[frontend.health]\nexpect_status = [99]\n",
			`vrrplb.toml:5: frontend "apiserver": health: expect_status: 99: must be an HTTP status 100..599`},
		{"a health rise of 0 is refused", frontendHead + "[frontend.health]\nrise = 0\n",
			`vrrplb.toml:5: frontend "apiserver": health: rise: 0: must be at least 1`},
		{"a health fall of 0 is refused", frontendHead + "[frontend.health]\nfall = 0\n",
			`vrrplb.toml:5: frontend "apiserver": health: fall: 0: must be at least 1`},
		{"a health interval of zero is refused", frontendHead + "[frontend.health]\ninterval = \"0s\"\n",
			`vrrplb.toml:5: frontend "apiserver": health: interval: "0s": must be positive`},
		{"a ca_file that cannot be read is refused", frontendHead + "[frontend.health]\nca_file = \"" + filepath.Join(caDir, "missing.pem") + "\"\n",
			`vrrplb.toml:5: frontend "apiserver": health: ca_file: "` + filepath.Join(caDir, "missing.pem") + `": not readable: no such file or directory`},
		{"an unknown log level is refused", "[log]\nlevel = \"verbose\"\n",
			`vrrplb.toml:2: log: level: "verbose": must be one of debug, info, warn, error`},
		{"an unknown log format is refused", "[log]\nformat = \"xml\"\n",
			`vrrplb.toml:2: log: format: "xml": must be text or json`},
		{"an admin listen address needs a port", "[admin]\nlisten = \"localhost\"\n",
			`vrrplb.toml:2: admin: listen: "localhost": must be host:port`},
		{"a key after a multi-line array is still located", instanceHead + "virtual_ips = [\n  \"192.0.2.1\",\n  \"192.0.2.2\",\n]\nprioriti = 1\n",
			`vrrplb.toml:9: instance "vip": prioriti: unknown key`},
		{"the second instance's error points at the second instance", instanceHead + "virtual_ips = [\"192.0.2.1\"]\n[[instance]]\nname = \"b\"\ninterface = \"eth0\"\nvirtual_router_id = 52\nvirtual_ips = [\"192.0.2.2\"]\npriority = 256\n",
			`vrrplb.toml:11: instance "b": priority: 256: must be 1..255`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("vrrplb.toml", []byte(tt.text))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.text)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is %T, want Errors: %v", err, err)
			}
			if got := es[0].Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("first error:\n got %s\nwant %s…\nall errors:\n%v", got, tt.want, err)
			}
		})
	}
}

func TestParseReportsEveryProblemInLineOrder(t *testing.T) {
	text := instanceHead + "priority = 0\nversion = 9\nvirtual_ips = [\"x\"]\n"
	_, err := Parse("f.toml", []byte(text))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v, want Errors", err)
	}
	var got []int
	for _, e := range es {
		got = append(got, e.Line)
	}
	if diff := cmp.Diff([]int{5, 6, 7}, got); diff != "" {
		t.Errorf("error lines (-want +got):\n%s\n%v", diff, err)
	}
}

func TestParseFillsDefaults(t *testing.T) {
	text := frontendHead + instanceHead + "virtual_ips = [\"192.0.2.10/24\", \"192.0.2.11\"]\n[[instance.track_frontend]]\nname = \"apiserver\"\n[[instance.track_script]]\ncommand = [\"/bin/check\", \"-q\"]\n"
	got, err := Parse("vrrplb.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path:  "vrrplb.toml",
		Admin: Admin{Listen: "127.0.0.1:9100", Socket: "/run/vrrplb/admin.sock"},
		Log:   Log{Level: slog.LevelInfo, Format: LogText},
		Instances: []Instance{{
			Name: "vip", Interface: "eth0", VirtualRouterID: 51, Priority: 100, Version: 3,
			AdvertInterval: time.Second, Preempt: true,
			VirtualIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24"), netip.MustParsePrefix("192.0.2.11/32")},
			Family:     IPv4,
			GARPRepeat: 5, GARPInterval: 100 * time.Millisecond,
			TakeoverReset: true, TakeoverPort: 5798,
			TrackFrontends: []TrackFrontend{{Name: "apiserver"}},
			TrackScripts: []TrackScript{{Command: []string{"/bin/check", "-q"}, Interval: 2 * time.Second,
				Timeout: 2 * time.Second, Fall: 2, Rise: 1}},
		}},
		Frontends: []Frontend{{
			Name: "apiserver", Listen: ":8443", Balance: LeastConn, Backends: []string{"10.0.0.1:6443"},
			ConnectTimeout: time.Second, Retries: 2, TCPKeepAlive: 30 * time.Second, DrainTimeout: 30 * time.Second,
			CloseOnBackendDown: true, FailOpen: true,
			Health: Health{Type: CheckHTTPS, Path: "/readyz", ExpectStatus: []int{200}, Interval: 2 * time.Second,
				Timeout: time.Second, Rise: 2, Fall: 2},
		}},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), ignoreSource); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	if string(got.Source) != text {
		t.Errorf("Source is %q, want the text parsed", got.Source)
	}
}

func TestParseAcceptsIPv6AndBareVIPs(t *testing.T) {
	text := instanceHead + "virtual_ips = [\"2001:db8::10\", \"2001:db8::11/64\"]\nunicast_peers = [\"fe80::2\"]\nsource_ip = \"fe80::1\"\n"
	cfg, err := Parse("vrrplb.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Instances[0]
	if in.Family != IPv6 {
		t.Errorf("family = %v, want ipv6", in.Family)
	}
	if got := in.VirtualIPs[0].Bits(); got != 128 {
		t.Errorf("a bare IPv6 VIP has /%d, want /128", got)
	}
	if got, want := in.Key(), (InstanceKey{VirtualRouterID: 51, Interface: "eth0", Family: IPv6}); got != want {
		t.Errorf("Key() = %+v, want %+v", got, want)
	}
}

func TestConfigWithOnlyFrontendsOrOnlyInstancesIsValid(t *testing.T) {
	for name, text := range map[string]string{
		"frontends only": frontendHead,
		"instances only": instanceHead + "virtual_ips = [\"192.0.2.1\"]\n",
		"empty file":     "",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse("vrrplb.toml", []byte(text)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func TestRelativeCAFileIsReadBesideTheConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(filepath.Join(dir, "vrrplb.toml"), []byte(frontendHead+"[frontend.health]\nca_file = \"ca.pem\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Frontends[0].Health.CAFile, filepath.Join(dir, "ca.pem"); got != want {
		t.Errorf("ca_file = %q, want %q", got, want)
	}
}

// Every example we ship must parse, and render back to the same config.
func TestShippedExamplesParseAndRoundTrip(t *testing.T) {
	files, err := filepath.Glob("../deploy/examples/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, cfg)
		})
	}
}

// ignoreSource leaves out the parsed text, which differs after a render.
var ignoreSource = cmpopts.IgnoreFields(Config{}, "Source")

func roundTrip(t *testing.T, cfg *Config) {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	again, err := Parse(cfg.Path, buf.Bytes())
	if err != nil {
		t.Fatalf("rendered config does not parse: %v\n%s", err, buf.String())
	}
	if diff := cmp.Diff(cfg, again, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), ignoreSource); diff != "" {
		t.Errorf("render → parse (-want +got):\n%s", diff)
	}
}

func TestRenderQuotesStringsTheTOMLWay(t *testing.T) {
	cfg, err := Parse("vrrplb.toml", []byte(instanceHead+"virtual_ips = [\"192.0.2.1\"]\nnotify = [\"/bin/echo\", \"a \\\"b\\\" \\\\ \\t\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cfg)
}

func TestLocateFindsKeysAndHeaders(t *testing.T) {
	text := `# comment
[admin]
listen = "x"

[[instance]]
name = "a"
notify = """
[[not a header]]
"""
[[instance.track_script]]
command = ["a",
  "b]"]
weight = -5
[[instance]]
"name" = "b"
[[frontend]]
name = "f"
[frontend.health]
path = "/r"
`
	l := locate(text)
	for path, want := range map[string]int{
		"admin":                              2,
		"admin.listen":                       3,
		"instance[0]":                        5,
		"instance[0].notify":                 7,
		"instance[0].track_script[0]":        10,
		"instance[0].track_script[0].weight": 13,
		"instance[1]":                        14,
		"instance[1].name":                   15,
		"frontend[0].health.path":            19,
		"frontend[0].health.type":            18, // omitted: its table
		"instance[1].track_script[0]":        14, // omitted: nearest ancestor
	} {
		if got := l.line(path); got != want {
			t.Errorf("line(%q) = %d, want %d", path, got, want)
		}
	}
}

// TestRenderWritesEveryKeyTheSchemaReads guards the one-place rule of
// keys.go: a key the decoder reads but Render leaves out would vanish from
// `vrrplb check`'s output and from a round trip.
func TestRenderWritesEveryKeyTheSchemaReads(t *testing.T) {
	src := instanceHead + `virtual_ips = ["192.0.2.1"]
  [[instance.track_frontend]]
  name = "apiserver"
  [[instance.track_script]]
  command = ["/bin/true"]
  [[instance.track_interface]]
  name = "eth1"
` + frontendHead
	asked, written := renderAndDecode(t, src)
	for key := range asked {
		if !written[key] {
			t.Errorf("the decoder reads %s but Render does not write it", key)
		}
	}
}

// renderAndDecode parses src, renders it and decodes what Render wrote: the
// keys the decoder asked for and the keys the rendered file has (without
// array indexes).
func renderAndDecode(t *testing.T, src string) (asked, written map[string]bool) {
	t.Helper()
	cfg, err := Parse("vrrplb.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	d := &decoder{file: "rendered.toml", lines: locate(buf.String()), asked: map[string]bool{}}
	var root map[string]any
	if err := toml.Unmarshal(buf.Bytes(), &root); err != nil {
		t.Fatal(err)
	}
	d.config(&table{d: d, m: root})
	if len(d.errs) > 0 {
		t.Fatal(d.errs)
	}
	written = map[string]bool{}
	for path := range d.lines.at {
		written[stripIndexes(path)] = true
	}
	return d.asked, written
}
