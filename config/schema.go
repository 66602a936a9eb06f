package config

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults of DESIGN.md's config contract: what an omitted key means.
const (
	DefaultAdminListen    = "127.0.0.1:9100"
	DefaultAdminSocket    = "/run/vrrplb/admin.sock"
	DefaultPriority       = 100
	DefaultVersion        = 3
	DefaultAdvertInterval = time.Second
	DefaultGARPRepeat     = 5
	DefaultGARPInterval   = 100 * time.Millisecond
	DefaultTakeoverPort   = 5798 // UDP; the number of VRRPv3's RFC

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

// The shortest intervals vrrplb takes (`vrrplb convert` raises shorter ones).
const (
	MinScriptInterval = 100 * time.Millisecond // a process started per interval
	MinHealthInterval = 10 * time.Millisecond  // a connection per backend per interval
)

// Protocol limits.
const (
	maxV2Interval = 255 * time.Second            // RFC 3768 §5.3.7: 8-bit seconds
	maxV3Interval = 4095 * 10 * time.Millisecond // RFC 5798 §5.2.7: 12-bit centiseconds
	v3Tick        = 10 * time.Millisecond        // RFC 5798 §5.2.7
	maxAuthPass   = 8                            // RFC 3768 §5.3.6.1: 8 octets of text
	maxWeight     = 254                          // a weight may move any priority to any other
	unlimited     = math.MaxInt32                // upper bound for "at least" checks
	maxUnixPath   = 107                          // sun_path is 108 bytes with its NUL (unix(7))
)

func (d *decoder) config(root *table) *Config {
	cfg := &Config{Path: d.file}

	admin := root.sub(TableAdmin, TableAdmin)
	cfg.Admin.Listen = admin.str(KeyAdminListen, DefaultAdminListen)
	if cfg.Admin.Listen != "" {
		if err := CheckHostPort(cfg.Admin.Listen); err != nil {
			admin.errf(KeyAdminListen, "%q: %v", cfg.Admin.Listen, err)
		}
	}
	cfg.Admin.Socket = admin.str(KeyAdminSocket, DefaultAdminSocket)
	switch s := cfg.Admin.Socket; {
	case s == "":
	case !filepath.IsAbs(s):
		admin.errf(KeyAdminSocket, "%q: must be an absolute path, or \"\" to disable it", s)
	case len(s) > maxUnixPath:
		admin.errf(KeyAdminSocket, "%q: longer than the %d bytes a unix socket path can have", s, maxUnixPath)
	}
	admin.done()

	logT := root.sub(TableLog, TableLog)
	level := logT.str(KeyLogLevel, "info")
	if err := cfg.Log.Level.UnmarshalText([]byte(level)); err != nil || !oneOf(level, "debug", "info", "warn", "error") {
		logT.errf(KeyLogLevel, "%q: must be one of debug, info, warn, error", level)
		cfg.Log.Level = slog.LevelInfo
	}
	cfg.Log.Format = LogFormat(logT.str(KeyLogFormat, string(LogText)))
	if !oneOf(string(cfg.Log.Format), string(LogText), string(LogJSON)) {
		logT.errf(KeyLogFormat, "%q: must be text or json", cfg.Log.Format)
	}
	logT.done()

	scripts := root.sub(TableScripts, TableScripts)
	cfg.Scripts.User = scripts.str(KeyScriptsUser, "")
	scripts.done()

	// Frontends first: instances refer to them by name.
	for _, t := range root.tables(TableFrontend, named(TableFrontend)) {
		cfg.Frontends = append(cfg.Frontends, d.frontend(t))
	}
	for _, t := range root.tables(TableInstance, named(TableInstance)) {
		cfg.Instances = append(cfg.Instances, d.instance(t, cfg))
	}
	d.bgp(root, cfg) // bgp.go: after what announcements refer to
	root.done()

	d.unique(root, cfg)
	return cfg
}

func (d *decoder) instance(t *table, cfg *Config) Instance {
	in := Instance{}
	instanceIdentity(t, &in)
	instanceVIPs(t, &in)
	instanceAddresses(t, &in)
	instanceRest(t, &in)
	d.instanceTakeover(t, &in)
	trackFrontends(t, &in, cfg)
	trackScripts(t, &in)
	trackInterfaces(t, &in)
	t.done()
	return in
}

// instanceIdentity reads who the router is and how it advertises.
func instanceIdentity(t *table, in *Instance) {
	in.Name = t.name(KeyInstanceName)
	if t.required(KeyInstanceInterface) {
		in.Interface = t.str(KeyInstanceInterface, "")
		if in.Interface == "" || len(in.Interface) > 15 || strings.ContainsAny(in.Interface, "/ \t") {
			t.errf(KeyInstanceInterface, "%q: not an interface name", in.Interface)
		}
	}
	if t.required(KeyInstanceVirtualRouterID) {
		in.VirtualRouterID = uint8(t.integer(KeyInstanceVirtualRouterID, 1, 1, 255))
	}
	in.Priority = uint8(t.integer(KeyInstancePriority, DefaultPriority, 1, 255))
	in.Version = t.integer(KeyInstanceVersion, DefaultVersion, 2, 3)
	in.AdvertInterval = t.duration(KeyInstanceAdvertInterval, DefaultAdvertInterval, positive)
	switch in.Version {
	case 2:
		if in.AdvertInterval%time.Second != 0 || in.AdvertInterval > maxV2Interval {
			t.errf(KeyInstanceAdvertInterval, "%v: version 2 needs whole seconds from 1s to 255s (use version 3 for shorter intervals)", in.AdvertInterval)
		}
	case 3:
		if in.AdvertInterval%v3Tick != 0 || in.AdvertInterval > maxV3Interval {
			t.errf(KeyInstanceAdvertInterval, "%v: version 3 needs a multiple of 10ms up to 40.95s", in.AdvertInterval)
		}
	}
	in.Preempt = t.boolean(KeyInstancePreempt, true)
	in.PreemptDelay = t.duration(KeyInstancePreemptDelay, 0, nonNegative)

}

// instanceVIPs reads the virtual IPs, which set the family.
func instanceVIPs(t *table, in *Instance) {
	vips := t.list(KeyInstanceVirtualIPs, "virtual IP")
	for _, s := range vips {
		p, err := parseVIP(s)
		if err != nil {
			t.errf(KeyInstanceVirtualIPs, "%q: %v", s, err)
			continue
		}
		f := FamilyOf(p.Addr())
		if len(in.VirtualIPs) > 0 && f != in.Family {
			t.errf(KeyInstanceVirtualIPs, "%q: mixes IPv4 and IPv6; use one instance per address family", s)
			continue
		}
		in.Family = f
		in.VirtualIPs = append(in.VirtualIPs, p)
	}
	if in.Family == IPv6 && in.Version == 2 {
		t.errf(KeyInstanceVirtualIPs, "IPv6 virtual IPs need version 3 (VRRP v2 is IPv4 only)")
	}

}

// instanceAddresses reads the advert source and unicast peers, of the VIPs' family.
func instanceAddresses(t *table, in *Instance) {
	if s := t.str(KeyInstanceSourceIP, ""); s != "" {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil:
			t.errf(KeyInstanceSourceIP, "%q: not an IP address", s)
		case len(in.VirtualIPs) > 0 && FamilyOf(a) != in.Family:
			t.errf(KeyInstanceSourceIP, "%q: must be %s like the virtual IPs", s, in.Family)
		default:
			in.SourceIP = a.Unmap()
		}
	}
	for _, s := range t.strings(KeyInstanceUnicastPeers, nil) {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil:
			t.errf(KeyInstanceUnicastPeers, "%q: not an IP address", s)
		case len(in.VirtualIPs) > 0 && FamilyOf(a) != in.Family:
			t.errf(KeyInstanceUnicastPeers, "%q: must be %s like the virtual IPs", s, in.Family)
		default:
			in.UnicastPeers = append(in.UnicastPeers, a.Unmap())
		}
	}

}

// instanceRest reads authentication, gratuitous ARP and notify.
func instanceRest(t *table, in *Instance) {
	in.AuthPass = t.str(KeyInstanceAuthPass, "")
	if in.AuthPass != "" {
		if in.Version != 2 {
			t.errf(KeyInstanceAuthPass, "only version 2 has authentication (RFC 5798 removed it); remove auth_pass or set version = 2")
		}
		if len(in.AuthPass) > maxAuthPass {
			t.errf(KeyInstanceAuthPass, "%d bytes: at most %d (keepalived truncates longer passwords silently; vrrplb refuses them)", len(in.AuthPass), maxAuthPass)
		}
	}
	in.GARPRepeat = t.integer(KeyInstanceGARPRepeat, DefaultGARPRepeat, 0, 1000)
	in.GARPInterval = t.duration(KeyInstanceGARPInterval, DefaultGARPInterval, positive)
	in.GARPRefresh = t.duration(KeyInstanceGARPRefresh, 0, nonNegative)
	in.Notify = t.strings(KeyInstanceNotify, nil)
	if _, ok := t.m[KeyInstanceNotify]; ok && len(in.Notify) > 0 && in.Notify[0] == "" {
		t.errf(KeyInstanceNotify, "the command (first element) must not be empty")
	}

}

// trackFrontends reads [[instance.track_frontend]].
func trackFrontends(t *table, in *Instance, cfg *Config) {
	for _, ft := range t.tables(TableTrackFrontend, within(t.ctx, TableTrackFrontend)) {
		tf := TrackFrontend{}
		tf.Name, _ = ft.trackedFrontend(cfg)
		tf.Weight = ownerWeight(ft, in.Priority, trackWeight(ft, false))
		ft.done()
		in.TrackFrontends = append(in.TrackFrontends, tf)
	}
}

// trackScripts reads [[instance.track_script]].
func trackScripts(t *table, in *Instance) {
	for _, st := range t.tables(TableTrackScript, within(t.ctx, TableTrackScript)) {
		ts := TrackScript{}
		if st.required(KeyTrackScriptCommand) {
			ts.Command = st.strings(KeyTrackScriptCommand, nil)
			if len(ts.Command) == 0 || ts.Command[0] == "" {
				st.errf(KeyTrackScriptCommand, "must be a non-empty argv array such as [\"/etc/vrrplb/check.sh\"]")
			}
		}
		ts.Interval = st.duration(KeyTrackScriptInterval, DefaultScriptInterval, positive)
		st.atLeast(KeyTrackScriptInterval, ts.Interval, MinScriptInterval, "the script is started once per interval")
		ts.Timeout = st.duration(KeyTrackScriptTimeout, DefaultScriptTimeout, positive)
		ts.Fall = st.integer(KeyTrackScriptFall, DefaultScriptFall, 1, unlimited)
		ts.Rise = st.integer(KeyTrackScriptRise, DefaultScriptRise, 1, unlimited)
		ts.Weight = ownerWeight(st, in.Priority, trackWeight(st, true))
		st.done()
		in.TrackScripts = append(in.TrackScripts, ts)
	}
}

// trackInterfaces reads [[instance.track_interface]].
func trackInterfaces(t *table, in *Instance) {
	for _, it := range t.tables(TableTrackInterface, within(t.ctx, TableTrackInterface)) {
		ti := TrackInterface{}
		ti.Name = it.name(KeyTrackName)
		ti.Weight = ownerWeight(it, in.Priority, trackWeight(it, false))
		it.done()
		in.TrackInterfaces = append(in.TrackInterfaces, ti)
	}
}

// ownerWeight refuses a weight other than 0 on an address owner: its
// priority stays 255 (RFC 5798 §5.2.4), so the weight would do nothing
// (keepalived ignores it silently).
func ownerWeight(t *table, priority uint8, weight int) int {
	if priority == 255 && weight != 0 {
		t.errf(KeyTrackWeight, "%d: priority 255 (address owner) stays 255 whatever a tracker says; use weight = 0 or a priority below 255", weight)
	}
	return weight
}

// trackWeight reads a tracker's weight: 0 means FAULT (track_frontend:
// yield, see DESIGN.md), negative subtracts, positive adds (scripts only:
// the others have no "passing" bonus).
func trackWeight(t *table, positiveAllowed bool) int {
	if positiveAllowed {
		return t.integer(KeyTrackWeight, 0, -maxWeight, maxWeight)
	}
	return t.integer(KeyTrackWeight, 0, -maxWeight, 0)
}

func (d *decoder) frontend(t *table) Frontend {
	fe := Frontend{}
	fe.Name = t.name(KeyFrontendName)
	fe.Listen = t.str(KeyFrontendListen, DefaultListen)
	if err := CheckHostPort(fe.Listen); err != nil {
		t.errf(KeyFrontendListen, "%q: %v", fe.Listen, err)
	}
	fe.Balance = Balance(t.str(KeyFrontendBalance, string(DefaultBalance)))
	if !oneOf(string(fe.Balance), string(LeastConn), string(RoundRobin), string(Source), string(Random2)) {
		t.errf(KeyFrontendBalance, "%q: must be one of leastconn, roundrobin, source, random2", fe.Balance)
	}
	backends := t.list(KeyFrontendBackends, "host:port")
	seen := map[string]bool{}
	for _, b := range backends {
		if err := CheckHostPort(b); err != nil {
			t.errf(KeyFrontendBackends, "%q: %v", b, err)
			continue
		}
		if host, _, _ := net.SplitHostPort(b); host == "" {
			t.errf(KeyFrontendBackends, "%q: needs a host", b)
			continue
		}
		if seen[b] {
			t.errf(KeyFrontendBackends, "%q: listed twice", b)
			continue
		}
		seen[b] = true
		fe.Backends = append(fe.Backends, b)
	}
	fe.ConnectTimeout = t.duration(KeyFrontendConnectTimeout, DefaultConnectTimeout, positive)
	fe.Retries = t.integer(KeyFrontendRetries, DefaultRetries, 0, 100)
	fe.IdleTimeout = t.duration(KeyFrontendIdleTimeout, 0, nonNegative)
	fe.TCPKeepAlive = t.duration(KeyFrontendTCPKeepAlive, DefaultTCPKeepAlive, nonNegative)
	t.atLeast(KeyFrontendTCPKeepAlive, fe.TCPKeepAlive, time.Second, "the kernel counts TCP keepalive in whole seconds; 0 turns it off")
	fe.DrainTimeout = t.duration(KeyFrontendDrainTimeout, DefaultDrainTimeout, nonNegative)
	fe.CloseOnBackendDown = t.boolean(KeyFrontendCloseOnBackendDown, true)
	fe.MaxConnections = t.integer(KeyFrontendMaxConnections, 0, 0, unlimited)
	fe.FailOpen = t.boolean(KeyFrontendFailOpen, true)

	h := t.sub(TableHealth, t.ctx+": "+TableHealth)
	fe.Health.Type = HealthType(h.str(KeyHealthType, string(DefaultHealthType)))
	if !oneOf(string(fe.Health.Type), string(CheckTCP), string(CheckTLS), string(CheckHTTP), string(CheckHTTPS), string(CheckNone)) {
		h.errf(KeyHealthType, "%q: must be one of tcp, tls, http, https, none", fe.Health.Type)
	}
	fe.Health.Path = h.str(KeyHealthPath, DefaultHealthPath)
	if !strings.HasPrefix(fe.Health.Path, "/") {
		h.errf(KeyHealthPath, "%q: must start with \"/\"", fe.Health.Path)
	}
	fe.Health.ExpectStatus = h.ints(KeyHealthExpectStatus, []int{200})
	if len(fe.Health.ExpectStatus) == 0 {
		h.errf(KeyHealthExpectStatus, "must list at least one status code")
	}
	for _, s := range fe.Health.ExpectStatus {
		if s < 100 || s > 599 {
			h.errf(KeyHealthExpectStatus, "%d: must be an HTTP status 100..599", s)
		}
	}
	fe.Health.Interval = h.duration(KeyHealthInterval, DefaultHealthInterval, positive)
	h.atLeast(KeyHealthInterval, fe.Health.Interval, MinHealthInterval, "every backend is checked once per interval")
	fe.Health.Timeout = h.duration(KeyHealthTimeout, DefaultHealthTimeout, positive)
	fe.Health.Rise = h.integer(KeyHealthRise, DefaultHealthRise, 1, unlimited)
	fe.Health.Fall = h.integer(KeyHealthFall, DefaultHealthFall, 1, unlimited)
	if ca := h.str(KeyHealthCAFile, ""); ca != "" {
		fe.Health.CAFile = d.resolvePath(ca)
		if _, err := ReadFile(fe.Health.CAFile); err != nil {
			h.errf(KeyHealthCAFile, "%q: not readable: %v", ca, unwrapPathError(err))
		}
	}
	fe.Health.ServerName = h.str(KeyHealthServerName, "")
	d.clientCert(h, &fe.Health)
	h.done()
	t.done()
	return fe
}

// clientCert reads cert_file and key_file: both or neither, for tls and
// https checks only, each readable PEM, and the key the certificate's.
func (d *decoder) clientCert(h *table, hc *Health) {
	certRaw, keyRaw := h.str(KeyHealthCertFile, ""), h.str(KeyHealthKeyFile, "")
	switch {
	case certRaw == "" && keyRaw == "":
		return
	case keyRaw == "":
		h.errf(KeyHealthCertFile, "needs key_file too (the client certificate's private key)")
		return
	case certRaw == "":
		h.errf(KeyHealthKeyFile, "needs cert_file too (the client certificate)")
		return
	case hc.Type != CheckTLS && hc.Type != CheckHTTPS:
		h.errf(KeyHealthCertFile, "only tls and https checks present a client certificate; type is %q", hc.Type)
		return
	}
	hc.CertFile, hc.KeyFile = d.resolvePath(certRaw), d.resolvePath(keyRaw)
	certPEM, err := ReadFile(hc.CertFile)
	if err != nil {
		h.errf(KeyHealthCertFile, "%q: not readable: %v", certRaw, unwrapPathError(err))
	}
	keyPEM, kerr := ReadFile(hc.KeyFile)
	if kerr != nil {
		h.errf(KeyHealthKeyFile, "%q: not readable: %v", keyRaw, unwrapPathError(kerr))
	}
	if err != nil || kerr != nil {
		return
	}
	if err := checkKeyPair(certPEM, keyPEM); err != nil {
		var kpe *keyPairError
		if errors.As(err, &kpe) && kpe.Cert {
			h.errf(KeyHealthCertFile, "%q: %v", certRaw, kpe.Err)
		} else {
			h.errf(KeyHealthKeyFile, "%q: %v", keyRaw, err)
		}
	}
}

// keyPairError says which half of a certificate and key pair is wrong.
type keyPairError struct {
	Cert bool // the certificate; otherwise the key
	Err  error
}

func (e *keyPairError) Error() string { return e.Err.Error() }
func (e *keyPairError) Unwrap() error { return e.Err }

// checkKeyPair checks that certPEM holds a certificate, keyPEM a private
// key, and that the key is the certificate's.
func checkKeyPair(certPEM, keyPEM []byte) error {
	if !hasPEM(certPEM, func(t string) bool { return t == "CERTIFICATE" }) {
		return &keyPairError{Cert: true, Err: errors.New("no PEM certificate in it")}
	}
	if !hasPEM(keyPEM, func(t string) bool { return strings.HasSuffix(t, "PRIVATE KEY") }) {
		return &keyPairError{Err: errors.New("no PEM private key in it")}
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return &keyPairError{Err: errors.New("does not match cert_file")}
		}
		return &keyPairError{Err: err}
	}
	return nil
}

// hasPEM reports whether data holds a PEM block of a type that ok accepts.
func hasPEM(data []byte, ok func(blockType string) bool) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if ok(b.Type) {
			return true
		}
	}
}

// unique checks the rules that span several blocks.
func (d *decoder) unique(root *table, cfg *Config) {
	instances := root.tables(TableInstance, named(TableInstance))
	names := map[string]bool{}
	keys := map[InstanceKey]string{}
	for i, in := range cfg.Instances {
		t := instances[i]
		t.unique(names, KeyInstanceName, in.Name, "[[instance]]")
		if in.Interface == "" || len(in.VirtualIPs) == 0 {
			continue
		}
		if other, ok := keys[in.Key()]; ok {
			t.errf(KeyInstanceVirtualRouterID, "%d: instance %q already uses it on %s for %s; (interface, virtual_router_id, family) must be unique",
				in.VirtualRouterID, other, in.Interface, in.Family)
		}
		keys[in.Key()] = in.Name
	}
	uniqueTakeoverPorts(instances, cfg)
	frontends := root.tables(TableFrontend, named(TableFrontend))
	fnames := map[string]bool{}
	for i, fe := range cfg.Frontends {
		frontends[i].unique(fnames, KeyFrontendName, fe.Name, "[[frontend]]")
	}
	d.listenOverlaps(frontends, cfg)
}

// listenOverlaps rejects frontends (and the admin server) whose listen
// addresses cannot all be bound: `check` must refuse what `run` would fail
// to start with "address already in use".
func (d *decoder) listenOverlaps(frontends []*table, cfg *Config) {
	type bound struct{ what, listen string }
	var seen []bound
	if cfg.Admin.Listen != "" && CheckHostPort(cfg.Admin.Listen) == nil {
		seen = append(seen, bound{"the [admin] listen", cfg.Admin.Listen})
	}
	for i, fe := range cfg.Frontends {
		if CheckHostPort(fe.Listen) != nil {
			continue
		}
		for _, b := range seen {
			if ListenOverlap(fe.Listen, b.listen) {
				frontends[i].errf(KeyFrontendListen, "%q overlaps %s %q: both cannot be bound; give them different ports, or make them one frontend",
					fe.Listen, b.what, b.listen)
				break
			}
		}
		seen = append(seen, bound{fmt.Sprintf("%s %q's listen", TableFrontend, fe.Name), fe.Listen})
	}
}

// ListenOverlap reports whether two TCP listen addresses collide: the same
// port with the same host, or with a wildcard host on either side (":P",
// "0.0.0.0:P" and "[::]:P" bind every address, of both families).
func ListenOverlap(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	if wild(ha) || wild(hb) {
		return true
	}
	ia, errA := netip.ParseAddr(ha)
	ib, errB := netip.ParseAddr(hb)
	if errA != nil || errB != nil {
		return ha == hb // names: only the same name is known to collide
	}
	return ia.Unmap() == ib.Unmap()
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
