package config

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults of DESIGN.md's config contract: what an omitted key means.
const (
	DefaultAdminListen    = "127.0.0.1:9100"
	DefaultPriority       = 100
	DefaultVersion        = 3
	DefaultAdvertInterval = time.Second
	DefaultGARPRepeat     = 5
	DefaultGARPInterval   = 100 * time.Millisecond

	DefaultScriptInterval = 2 * time.Second
	DefaultScriptTimeout  = 2 * time.Second
	DefaultScriptFall     = 2
	DefaultScriptRise     = 1

	DefaultListen         = ":8443"
	DefaultBalance        = LeastConn
	DefaultConnectTimeout = time.Second
	DefaultRetries        = 2
	DefaultTCPKeepAlive   = 30 * time.Second
	DefaultDrainTimeout   = 30 * time.Second

	DefaultHealthType     = CheckHTTPS
	DefaultHealthPath     = "/readyz"
	DefaultHealthInterval = 2 * time.Second
	DefaultHealthTimeout  = time.Second
	DefaultHealthRise     = 2
	DefaultHealthFall     = 2
)

// Protocol limits.
const (
	maxV2Interval = 255 * time.Second            // RFC 3768 §5.3.7: 8-bit seconds
	maxV3Interval = 4095 * 10 * time.Millisecond // RFC 5798 §5.2.7: 12-bit centiseconds
	v3Tick        = 10 * time.Millisecond        // RFC 5798 §5.2.7
	maxAuthPass   = 8                            // RFC 3768 §5.3.6.1: 8 octets of text
	maxWeight     = 254                          // a weight may move any priority to any other
	unlimited     = math.MaxInt32                // upper bound for "at least" checks
)

func (d *decoder) config(root *table) *Config {
	cfg := &Config{Path: d.file}

	admin := root.sub("admin", "admin")
	cfg.Admin.Listen = admin.str("listen", DefaultAdminListen)
	if cfg.Admin.Listen != "" {
		if err := CheckHostPort(cfg.Admin.Listen); err != nil {
			admin.errf("listen", "%q: %v", cfg.Admin.Listen, err)
		}
	}
	admin.done()

	logT := root.sub("log", "log")
	level := logT.str("level", "info")
	if err := cfg.Log.Level.UnmarshalText([]byte(level)); err != nil || !oneOf(level, "debug", "info", "warn", "error") {
		logT.errf("level", "%q: must be one of debug, info, warn, error", level)
		cfg.Log.Level = slog.LevelInfo
	}
	cfg.Log.Format = LogFormat(logT.str("format", string(LogText)))
	if !oneOf(string(cfg.Log.Format), string(LogText), string(LogJSON)) {
		logT.errf("format", "%q: must be text or json", cfg.Log.Format)
	}
	logT.done()

	scripts := root.sub("scripts", "scripts")
	cfg.Scripts.User = scripts.str("user", "")
	scripts.done()

	// Frontends first: instances refer to them by name.
	for _, t := range root.tables("frontend", named("frontend")) {
		cfg.Frontends = append(cfg.Frontends, d.frontend(t))
	}
	for _, t := range root.tables("instance", named("instance")) {
		cfg.Instances = append(cfg.Instances, d.instance(t, cfg))
	}
	root.done()

	d.unique(root, cfg)
	return cfg
}

func (d *decoder) instance(t *table, cfg *Config) Instance {
	in := Instance{}
	if t.required("name") {
		in.Name = t.str("name", "")
		if in.Name == "" {
			t.errf("name", "must not be empty")
		}
	}
	if t.required("interface") {
		in.Interface = t.str("interface", "")
		if in.Interface == "" || len(in.Interface) > 15 || strings.ContainsAny(in.Interface, "/ \t") {
			t.errf("interface", "%q: not an interface name", in.Interface)
		}
	}
	if t.required("virtual_router_id") {
		in.VirtualRouterID = uint8(t.integer("virtual_router_id", 1, 1, 255))
	}
	in.Priority = uint8(t.integer("priority", DefaultPriority, 1, 255))
	in.Version = t.integer("version", DefaultVersion, 2, 3)
	in.AdvertInterval = t.duration("advert_interval", DefaultAdvertInterval, positive)
	switch in.Version {
	case 2:
		if in.AdvertInterval%time.Second != 0 || in.AdvertInterval > maxV2Interval {
			t.errf("advert_interval", "%v: version 2 needs whole seconds from 1s to 255s (use version 3 for shorter intervals)", in.AdvertInterval)
		}
	case 3:
		if in.AdvertInterval%v3Tick != 0 || in.AdvertInterval > maxV3Interval {
			t.errf("advert_interval", "%v: version 3 needs a multiple of 10ms up to 40.95s", in.AdvertInterval)
		}
	}
	in.Preempt = t.boolean("preempt", true)
	in.PreemptDelay = t.duration("preempt_delay", 0, nonNegative)

	vips := t.strings("virtual_ips", nil)
	if _, ok := t.m["virtual_ips"]; !ok {
		t.errf("virtual_ips", "required: at least one virtual IP")
	} else if len(vips) == 0 {
		t.errf("virtual_ips", "must list at least one virtual IP")
	}
	for _, s := range vips {
		p, err := parseVIP(s)
		if err != nil {
			t.errf("virtual_ips", "%q: %v", s, err)
			continue
		}
		f := FamilyOf(p.Addr())
		if len(in.VirtualIPs) > 0 && f != in.Family {
			t.errf("virtual_ips", "%q: mixes IPv4 and IPv6; use one instance per address family", s)
			continue
		}
		in.Family = f
		in.VirtualIPs = append(in.VirtualIPs, p)
	}
	if in.Family == IPv6 && in.Version == 2 {
		t.errf("virtual_ips", "IPv6 virtual IPs need version 3 (VRRP v2 is IPv4 only)")
	}

	if s := t.str("source_ip", ""); s != "" {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil:
			t.errf("source_ip", "%q: not an IP address", s)
		case len(in.VirtualIPs) > 0 && FamilyOf(a) != in.Family:
			t.errf("source_ip", "%q: must be %s like the virtual IPs", s, in.Family)
		default:
			in.SourceIP = a.Unmap()
		}
	}
	for _, s := range t.strings("unicast_peers", nil) {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil:
			t.errf("unicast_peers", "%q: not an IP address", s)
		case len(in.VirtualIPs) > 0 && FamilyOf(a) != in.Family:
			t.errf("unicast_peers", "%q: must be %s like the virtual IPs", s, in.Family)
		default:
			in.UnicastPeers = append(in.UnicastPeers, a.Unmap())
		}
	}

	in.AuthPass = t.str("auth_pass", "")
	if in.AuthPass != "" {
		if in.Version != 2 {
			t.errf("auth_pass", "only version 2 has authentication (RFC 5798 removed it); remove auth_pass or set version = 2")
		}
		if len(in.AuthPass) > maxAuthPass {
			t.errf("auth_pass", "%d bytes: at most %d (keepalived truncates longer passwords silently; vrrplb refuses them)", len(in.AuthPass), maxAuthPass)
		}
	}
	in.GARPRepeat = t.integer("garp_repeat", DefaultGARPRepeat, 0, 1000)
	in.GARPInterval = t.duration("garp_interval", DefaultGARPInterval, positive)
	in.GARPRefresh = t.duration("garp_refresh", 0, nonNegative)
	in.Notify = t.strings("notify", nil)
	if _, ok := t.m["notify"]; ok && len(in.Notify) > 0 && in.Notify[0] == "" {
		t.errf("notify", "the command (first element) must not be empty")
	}

	for _, ft := range t.tables("track_frontend", within(t.ctx, "track_frontend")) {
		tf := TrackFrontend{}
		if ft.required("name") {
			tf.Name = ft.str("name", "")
			if _, ok := cfg.Frontend(tf.Name); !ok {
				ft.errf("name", "%q: no [[frontend]] has this name", tf.Name)
			}
		}
		tf.Weight = ownerWeight(ft, in.Priority, trackWeight(ft, false))
		ft.done()
		in.TrackFrontends = append(in.TrackFrontends, tf)
	}
	for _, st := range t.tables("track_script", within(t.ctx, "track_script")) {
		ts := TrackScript{}
		if st.required("command") {
			ts.Command = st.strings("command", nil)
			if len(ts.Command) == 0 || ts.Command[0] == "" {
				st.errf("command", "must be a non-empty argv array such as [\"/etc/vrrplb/check.sh\"]")
			}
		}
		ts.Interval = st.duration("interval", DefaultScriptInterval, positive)
		ts.Timeout = st.duration("timeout", DefaultScriptTimeout, positive)
		ts.Fall = st.integer("fall", DefaultScriptFall, 1, unlimited)
		ts.Rise = st.integer("rise", DefaultScriptRise, 1, unlimited)
		ts.Weight = ownerWeight(st, in.Priority, trackWeight(st, true))
		st.done()
		in.TrackScripts = append(in.TrackScripts, ts)
	}
	for _, it := range t.tables("track_interface", within(t.ctx, "track_interface")) {
		ti := TrackInterface{}
		if it.required("name") {
			ti.Name = it.str("name", "")
			if ti.Name == "" {
				it.errf("name", "must not be empty")
			}
		}
		ti.Weight = ownerWeight(it, in.Priority, trackWeight(it, false))
		it.done()
		in.TrackInterfaces = append(in.TrackInterfaces, ti)
	}
	t.done()
	return in
}

// ownerWeight refuses a weight other than 0 on an address owner: its
// priority stays 255 (RFC 5798 §5.2.4), so the weight would do nothing
// (keepalived ignores it silently).
func ownerWeight(t *table, priority uint8, weight int) int {
	if priority == 255 && weight != 0 {
		t.errf("weight", "%d: priority 255 (address owner) stays 255 whatever a tracker says; use weight = 0 or a priority below 255", weight)
	}
	return weight
}

// trackWeight reads a tracker's weight: 0 means FAULT (track_frontend:
// yield, see DESIGN.md), negative subtracts, positive adds (scripts only:
// the others have no "passing" bonus).
func trackWeight(t *table, positiveAllowed bool) int {
	if positiveAllowed {
		return t.integer("weight", 0, -maxWeight, maxWeight)
	}
	return t.integer("weight", 0, -maxWeight, 0)
}

func (d *decoder) frontend(t *table) Frontend {
	fe := Frontend{}
	if t.required("name") {
		fe.Name = t.str("name", "")
		if fe.Name == "" {
			t.errf("name", "must not be empty")
		}
	}
	fe.Listen = t.str("listen", DefaultListen)
	if err := CheckHostPort(fe.Listen); err != nil {
		t.errf("listen", "%q: %v", fe.Listen, err)
	}
	fe.Balance = Balance(t.str("balance", string(DefaultBalance)))
	if !oneOf(string(fe.Balance), string(LeastConn), string(RoundRobin), string(Source), string(Random2)) {
		t.errf("balance", "%q: must be one of leastconn, roundrobin, source, random2", fe.Balance)
	}
	backends := t.strings("backends", nil)
	if _, ok := t.m["backends"]; !ok {
		t.errf("backends", "required: at least one host:port")
	} else if len(backends) == 0 {
		t.errf("backends", "must list at least one host:port")
	}
	seen := map[string]bool{}
	for _, b := range backends {
		if err := CheckHostPort(b); err != nil {
			t.errf("backends", "%q: %v", b, err)
			continue
		}
		if host, _, _ := net.SplitHostPort(b); host == "" {
			t.errf("backends", "%q: needs a host", b)
			continue
		}
		if seen[b] {
			t.errf("backends", "%q: listed twice", b)
			continue
		}
		seen[b] = true
		fe.Backends = append(fe.Backends, b)
	}
	fe.ConnectTimeout = t.duration("connect_timeout", DefaultConnectTimeout, positive)
	fe.Retries = t.integer("retries", DefaultRetries, 0, 100)
	fe.IdleTimeout = t.duration("idle_timeout", 0, nonNegative)
	fe.TCPKeepAlive = t.duration("tcp_keepalive", DefaultTCPKeepAlive, nonNegative)
	fe.DrainTimeout = t.duration("drain_timeout", DefaultDrainTimeout, nonNegative)
	fe.CloseOnBackendDown = t.boolean("close_on_backend_down", true)
	fe.MaxConnections = t.integer("max_connections", 0, 0, unlimited)

	h := t.sub("health", t.ctx+": health")
	fe.Health.Type = HealthType(h.str("type", string(DefaultHealthType)))
	if !oneOf(string(fe.Health.Type), string(CheckTCP), string(CheckTLS), string(CheckHTTP), string(CheckHTTPS), string(CheckNone)) {
		h.errf("type", "%q: must be one of tcp, tls, http, https, none", fe.Health.Type)
	}
	fe.Health.Path = h.str("path", DefaultHealthPath)
	if !strings.HasPrefix(fe.Health.Path, "/") {
		h.errf("path", "%q: must start with \"/\"", fe.Health.Path)
	}
	fe.Health.ExpectStatus = h.ints("expect_status", []int{200})
	if len(fe.Health.ExpectStatus) == 0 {
		h.errf("expect_status", "must list at least one status code")
	}
	for _, s := range fe.Health.ExpectStatus {
		if s < 100 || s > 599 {
			h.errf("expect_status", "%d: must be an HTTP status 100..599", s)
		}
	}
	fe.Health.Interval = h.duration("interval", DefaultHealthInterval, positive)
	fe.Health.Timeout = h.duration("timeout", DefaultHealthTimeout, positive)
	fe.Health.Rise = h.integer("rise", DefaultHealthRise, 1, unlimited)
	fe.Health.Fall = h.integer("fall", DefaultHealthFall, 1, unlimited)
	if ca := h.str("ca_file", ""); ca != "" {
		fe.Health.CAFile = d.resolvePath(ca)
		if f, err := os.Open(fe.Health.CAFile); err != nil {
			h.errf("ca_file", "%q: not readable: %v", ca, unwrapPathError(err))
		} else {
			f.Close()
		}
	}
	fe.Health.ServerName = h.str("server_name", "")
	h.done()
	t.done()
	return fe
}

// unique checks the rules that span several blocks.
func (d *decoder) unique(root *table, cfg *Config) {
	instances := root.tables("instance", named("instance"))
	names := map[string]bool{}
	keys := map[InstanceKey]string{}
	for i, in := range cfg.Instances {
		t := instances[i]
		if in.Name != "" {
			if names[in.Name] {
				t.errf("name", "%q: another [[instance]] has this name", in.Name)
			}
			names[in.Name] = true
		}
		if in.Interface == "" || len(in.VirtualIPs) == 0 {
			continue
		}
		if other, ok := keys[in.Key()]; ok {
			t.errf("virtual_router_id", "%d: instance %q already uses it on %s for %s; (interface, virtual_router_id, family) must be unique",
				in.VirtualRouterID, other, in.Interface, in.Family)
		}
		keys[in.Key()] = in.Name
	}
	frontends := root.tables("frontend", named("frontend"))
	fnames := map[string]bool{}
	for i, fe := range cfg.Frontends {
		if fe.Name == "" {
			continue
		}
		if fnames[fe.Name] {
			frontends[i].errf("name", "%q: another [[frontend]] has this name", fe.Name)
		}
		fnames[fe.Name] = true
	}
}

// parseVIP reads "192.0.2.10/24", or a bare address meaning /32 or /128.
func parseVIP(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an address or address/prefix")
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("a zone is not allowed")
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("not an address or address/prefix")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// CheckHostPort accepts "host:port" and ":port" with a port 1..65535 and a
// host without blanks or slashes: the rule for listen and backends, which
// convert applies too so that what it writes always parses.
func CheckHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be host:port (IPv6 as [addr]:port)")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: must be 1..65535", port)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("host %q: not a host name or address", host)
	}
	return nil
}

func oneOf(s string, values ...string) bool {
	for _, v := range values {
		if s == v {
			return true
		}
	}
	return false
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
