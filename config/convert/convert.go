package convert

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/config/haproxy"
	"github.com/vrrplb/vrrplb/config/keepalived"
	"github.com/vrrplb/vrrplb/config/nginx"
)

// Options names the files to convert. At least one is needed; Nginx and
// HAProxy exclude each other.
type Options struct {
	// Keepalived is a keepalived.conf: it gives the [[instance]] tables.
	Keepalived string
	// Nginx is an nginx.conf, or a file with a stream { } block or the
	// upstream and server blocks of one: it gives the [[frontend]] tables.
	Nginx string
	// HAProxy is a haproxy.cfg: it gives the [[frontend]] tables.
	HAProxy string
	// ConfigID selects the lines of a conditional keepalived.conf, as
	// keepalived's -i does: "@ID line" is read when ID is ConfigID, "@^ID
	// line" when it is not.
	ConfigID string
	// ScriptRoot, when not "", is prepended to the absolute paths of track
	// scripts read to see what they check (tests use a fake root).
	ScriptRoot string
}

// ErrNoInput is returned when Options names no file.
var ErrNoInput = errors.New("convert: give --keepalived FILE, --nginx FILE or --haproxy FILE")

// Convert reads the files opts names and returns an equivalent vrrplb.toml.
// A problem in an input is an error that names its file and line.
func Convert(opts Options) ([]byte, error) {
	if opts.Keepalived == "" && opts.Nginx == "" && opts.HAProxy == "" {
		return nil, ErrNoInput
	}
	if opts.Nginx != "" && opts.HAProxy != "" {
		return nil, errors.New("convert: give --nginx or --haproxy, not both: vrrplb replaces the one proxy that runs beside keepalived")
	}
	var ka *keepalivedResult
	if opts.Keepalived != "" {
		nodes, err := keepalived.Load(opts.Keepalived)
		if err != nil {
			return nil, err
		}
		if ka, err = fromKeepalived(nodes, opts); err != nil {
			return nil, err
		}
	}
	var px *proxyResult
	var err error
	proxyKind := ""
	switch {
	case opts.Nginx != "":
		px, err = loadAndMap(opts.Nginx, nginx.Load, fromNginx)
		proxyKind = "nginx"
	case opts.HAProxy != "":
		px, err = loadAndMap(opts.HAProxy, haproxy.Load, fromHaproxy)
		proxyKind = "haproxy"
	}
	if err != nil {
		return nil, err
	}
	return render(opts, ka, px, proxyKind), nil
}

// loadAndMap reads the proxy config at path with its importer's load and
// maps what it read with convert.
func loadAndMap[T, R any](path string, load func(string) (T, error), convert func(T) (R, error)) (R, error) {
	t, err := load(path)
	if err != nil {
		var none R
		return none, err
	}
	return convert(t)
}

// dropOverlappingListens keeps the first of frontends whose listen addresses
// collide (":P" beside "127.0.0.1:P"): vrrplb cannot bind both, and `check`
// refuses them. The one dropped is named on the one kept.
func dropOverlappingListens(px *proxyResult) {
	var kept []*frontend
	for _, f := range px.frontends {
		var into *frontend
		for _, k := range kept {
			if config.ListenOverlap(f.listen, k.listen) {
				into = k
				break
			}
		}
		if into == nil {
			kept = append(kept, f)
			continue
		}
		note := extraListen(f.at, "listen "+f.listen+" of "+f.name, f.listen, into.listen)
		if !slices.Equal(f.backends, into.backends) {
			note = "WARNING: " + note + fmt.Sprintf("; its backends (%s) differ from these, so connections the proxy sent there now go to these", strings.Join(f.backends, ", "))
		}
		into.note(config.KeyFrontendListen, note)
	}
	px.frontends = kept
}

// link turns process checks into track_frontend and compares listen
// addresses with the virtual IPs.
func link(ka *keepalivedResult, px *proxyResult, proxyKind string) {
	var frontends []*frontend
	if px != nil {
		frontends = px.frontends
	}
	for _, in := range ka.instances {
		ownerIgnoresWeights(in)
		for _, pc := range in.procChecks {
			linkProcessCheck(in, pc, frontends, proxyKind)
		}
		in.procChecks = nil
		shiftPositiveWeights(in)
	}
	if px == nil || len(ka.instances) == 0 {
		return
	}
	var vips []netip.Prefix
	var vipText []string
	for _, in := range ka.instances {
		vips = append(vips, in.vips...)
		for _, v := range in.vips {
			vipText = append(vipText, v.Addr().String())
		}
	}
	for _, f := range px.frontends {
		host := listenHost(f.listen)
		if host == "" {
			continue
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			f.note(config.KeyFrontendListen, fmt.Sprintf("listen host %s is a name: vrrplb listens on what it resolves to; the virtual IPs are %s", host, joinAnd(vipText)))
			continue
		}
		isVIP := false
		for _, v := range vips {
			if v.Addr() == a {
				isVIP = true
			}
		}
		switch {
		case isVIP:
			f.note(config.KeyFrontendListen, fmt.Sprintf("bound to the virtual IP %s: that works only while this host holds it, or with net.ipv4.ip_nonlocal_bind=1 as %s needed; listen = \":PORT\" answers on the VIP wherever it moves", a, proxyKind))
		case a.IsLoopback():
			f.note(config.KeyFrontendListen, fmt.Sprintf("WARNING: the keepalived and %s files disagree: this listens on loopback only, so clients of the virtual IP (%s) do not reach it", proxyKind, joinAnd(vipText)))
		default:
			f.note(config.KeyFrontendListen, fmt.Sprintf("WARNING: the keepalived and %s files disagree: %s is not a virtual IP (%s), so clients of the VIP do not reach this frontend", proxyKind, a, joinAnd(vipText)))
		}
	}
}

// linkProcessCheck tracks the frontends a process check of the proxy stood
// for: the apiserver frontends when they can be told apart, each with an
// equal share of the weight, so that the drops do not add up to more than
// the one check took.
func linkProcessCheck(in *instance, pc procCheck, frontends []*frontend, proxyKind string) {
	if len(frontends) == 0 {
		ts := pc.script
		ts.notes = append(ts.notes, fmt.Sprintf("only checks that %s runs (judged from %s): kept as it is, since no proxy configuration was converted; with --nginx or --haproxy it becomes [[instance.track_frontend]]", pc.proxy, pc.evidence))
		in.scripts = append(in.scripts, ts)
		return
	}
	tracked := frontends
	var apis, others []string
	for _, f := range frontends {
		if f.servesAPIServers() {
			apis = append(apis, f.name)
		} else {
			others = append(others, f.name)
		}
	}
	if len(apis) > 0 && len(others) > 0 {
		tracked = nil
		for _, f := range frontends {
			if f.servesAPIServers() {
				tracked = append(tracked, f)
			}
		}
		in.note(config.KeyInstancePriority, fmt.Sprintf("%s %s checked the one %s process that served every frontend: it is tracked as only the apiserver %s %s (backends on :%s or a /readyz, /healthz check), not as %s, so an empty pool there does not move the VIP",
			pc.kind, pc.name, pc.proxy, plural(len(apis), "frontend", "frontends")[2:], joinAnd(apis), apiserverPort, joinAnd(others)))
	}
	shares := splitWeight(pc.weight, len(tracked))
	if len(tracked) > 1 && pc.weight != 0 {
		in.note(config.KeyInstancePriority, fmt.Sprintf("%s %s: its weight %d is split over the %d frontends it stands for, so that all of them empty drop the priority by %d, as the one check did", pc.kind, pc.name, pc.weight, len(tracked), -pc.weight))
	}
	for i, f := range tracked {
		tf := trackFrontend{name: f.name, weight: shares[i]}
		tf.notes = append(tf.notes, fmt.Sprintf("replaces %s %s (%s), which only checked that %s runs (judged from %s): vrrplb's own proxy with its active /readyz checks replaces the process, and a process check never saw a dead apiserver", pc.kind, pc.name, pc.at, pc.proxy, pc.evidence))
		if proxyKind != "" && pc.proxy != proxyKind {
			tf.notes = append(tf.notes, fmt.Sprintf("the check looked for %s, but the proxy converted is %s", pc.proxy, proxyKind))
		}
		tf.notes = append(tf.notes, fmt.Sprintf("the check's interval, fall and rise are not carried over (the frontend's health interval, rise and fall decide); %s", weightMeaning(shares[i], "the frontend has no healthy backend")))
		in.frontends = append(in.frontends, tf)
	}
}

// splitWeight divides w into n shares that add up to w.
func splitWeight(w, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = w / n
	}
	for i := 0; i < abs(w%n); i++ {
		if w < 0 {
			out[i]--
		} else {
			out[i]++
		}
	}
	return out
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// ownerIgnoresWeights drops weighted trackers of an address owner (priority
// 255), as keepalived does ("ignoring tracked script ... due to
// address_owner"): its priority never moves. Weight-0 trackers stay.
func ownerIgnoresWeights(in *instance) {
	if in.priority != kaOwnerPriority {
		return
	}
	why := func(what, name, at string, w int) {
		in.note(config.KeyInstancePriority, notCarried(at, fmt.Sprintf("%s %s weight %d", what, name, w), "priority 255 is the address owner, whose priority never moves: keepalived logs \"ignoring tracked ... due to address owner\" and drops the tracker, and so does this"))
	}
	in.procChecks = weightZeroOnly(in.procChecks, func(pc procCheck) int { return pc.weight },
		func(pc procCheck) { why(pc.kind, pc.name, pc.at, pc.weight) })
	in.scripts = weightZeroOnly(in.scripts, func(ts trackScript) int { return ts.weight },
		func(ts trackScript) { why("track_script", ts.name, ts.at, ts.weight) })
	in.ifaces = weightZeroOnly(in.ifaces, func(ti trackIface) int { return ti.weight },
		func(ti trackIface) { why("track_interface", ti.name, ti.at, ti.weight) })
}

// weightZeroOnly returns the trackers of ts whose weight is 0, in order
// (nil when none), and calls dropped with each of the others.
func weightZeroOnly[T any](ts []T, weight func(T) int, dropped func(T)) []T {
	var keep []T
	for _, t := range ts {
		if weight(t) != 0 {
			dropped(t)
			continue
		}
		keep = append(keep, t)
	}
	return keep
}

// shiftPositiveWeights rewrites positive track_frontend and track_interface
// weights, which vrrplb does not take: keepalived adds w while the tracked
// thing is up; vrrplb gets the same priorities from priority + w and -w while
// it is down.
func shiftPositiveWeights(in *instance) {
	total := 0
	for i := range in.frontends {
		if w := in.frontends[i].weight; w > 0 {
			total += w
			in.frontends[i].weight = -w
		}
	}
	for i := range in.ifaces {
		if w := in.ifaces[i].weight; w > 0 {
			total += w
			in.ifaces[i].weight = -w
			in.ifaces[i].notes = append(in.ifaces[i].notes, fmt.Sprintf("keepalived weight %d added while up: priority is raised by %d and this subtracts it while down", w, w))
		}
	}
	if total == 0 {
		return
	}
	base := in.priority
	in.priority = min(base+total, 254)
	in.note(config.KeyInstancePriority, fmt.Sprintf("keepalived priority %d plus %d, the positive weights of tracks that were up: vrrplb subtracts them while the tracks are down instead", base, total))
	if base+total > 254 {
		in.note(config.KeyInstancePriority, fmt.Sprintf("WARNING: %d + %d is above 254, the highest priority of a router that does not own the address; capped, as keepalived caps it", base, total))
	}
}

func weightMeaning(w int, what string) string {
	switch {
	case w == 0:
		return "weight 0: while " + what + ", this host hands the VIP over and stays in the election at the lowest priority (keepalived put the instance in FAULT while the script failed; now, when no host has a healthy backend, one still holds the VIP)"
	case w < 0:
		return fmt.Sprintf("weight %d: the priority drops by %d while %s, as it did while the script failed", w, -w, what)
	}
	return fmt.Sprintf("keepalived weight %d added while the script passed: priority is raised by %d and this subtracts it while %s", w, w, what)
}

func render(opts Options, ka *keepalivedResult, px *proxyResult, proxyKind string) []byte {
	if px != nil {
		dropOverlappingListens(px) // before link, which tracks frontends by name
	}
	var b strings.Builder
	b.WriteString("# vrrplb.toml converted by `vrrplb convert` from:\n")
	if opts.Keepalived != "" {
		writeComment(&b, "", "  keepalived: "+opts.Keepalived)
	}
	if opts.Nginx != "" {
		writeComment(&b, "", "  nginx: "+opts.Nginx)
	}
	if opts.HAProxy != "" {
		writeComment(&b, "", "  haproxy: "+opts.HAProxy)
	}
	b.WriteString("# Read every comment before use: \"not carried over\" marks what vrrplb does not do.\n")
	if ka != nil {
		link(ka, px, proxyKind)
		for _, n := range ka.header {
			writeComment(&b, "", n)
		}
	}
	if px != nil {
		for _, n := range px.header {
			writeComment(&b, "", n)
		}
		if ka == nil {
			writeComment(&b, "", "No keepalived input: frontends only, no virtual IP. That is a local apiserver proxy on every node (kubespray's nginx-proxy); convert the keepalived.conf too for a VIP.")
		}
	}
	if ka != nil && px == nil {
		writeComment(&b, "", "No proxy input: instances only. Convert the nginx or haproxy configuration too to get frontends.")
	}
	var tables []*table
	if ka != nil && (ka.scriptsUser != "" || len(ka.scriptNotes) > 0) {
		t := &table{name: config.TableScripts, notes: ka.scriptNotes}
		if ka.scriptsUser != "" {
			t.set(config.KeyScriptsUser, ka.scriptsUser, "keepalived script_user")
		}
		tables = append(tables, t)
	}
	if ka != nil {
		for _, in := range ka.instances {
			tables = append(tables, instanceTable(in))
		}
	}
	if px != nil {
		for _, f := range px.frontends {
			tables = append(tables, frontendTable(f))
		}
	}
	for _, t := range tables {
		b.WriteString("\n")
		t.render(&b, 0)
	}
	return []byte(b.String())
}

func instanceTable(in *instance) *table {
	t := &table{name: config.TableInstance, array: true}
	t.notes = append([]string{fmt.Sprintf("from keepalived vrrp_instance %s at %s", in.name, in.at)}, in.notes...)
	kn := func(k string) []string { return in.keyNotes[k] }
	t.set(config.KeyInstanceName, in.name)
	t.set(config.KeyInstanceInterface, in.iface)
	t.set(config.KeyInstanceVirtualRouterID, in.vrid)
	t.set(config.KeyInstancePriority, in.priority, kn(config.KeyInstancePriority)...)
	vnotes := kn(config.KeyInstanceVersion)
	if len(vnotes) == 0 && in.version == 2 {
		vnotes = []string{"VRRPv2, keepalived's default (vrrplb's is 3): the other routers of this VRID speak it"}
	}
	t.set(config.KeyInstanceVersion, in.version, vnotes...)
	t.set(config.KeyInstanceAdvertInterval, in.advert, kn(config.KeyInstanceAdvertInterval)...)
	t.set(config.KeyInstancePreempt, in.preempt, kn(config.KeyInstancePreempt)...)
	if in.preemptDelay > 0 || len(kn(config.KeyInstancePreemptDelay)) > 0 {
		t.set(config.KeyInstancePreemptDelay, floor(in.preemptDelay, config.MinDuration), append(kn(config.KeyInstancePreemptDelay), floorNote(in.preemptDelay, config.MinDuration)...)...)
	}
	vips := make([]string, len(in.vips))
	for i, v := range in.vips {
		vips[i] = v.String()
	}
	vipNotes := kn(config.KeyInstanceVirtualIPs)
	if len(in.vips) == 0 {
		vipNotes = append(vipNotes, "WARNING: keepalived had no virtual_ipaddress for this instance")
	}
	t.set(config.KeyInstanceVirtualIPs, vips, vipNotes...)
	if in.sourceIP != "" {
		t.set(config.KeyInstanceSourceIP, in.sourceIP, kn(config.KeyInstanceSourceIP)...)
	} else {
		t.notes = append(t.notes, kn(config.KeyInstanceSourceIP)...)
	}
	if len(in.peers) > 0 || len(kn(config.KeyInstanceUnicastPeers)) > 0 {
		t.set(config.KeyInstanceUnicastPeers, in.peers, kn(config.KeyInstanceUnicastPeers)...)
	}
	if in.authPass != "" || len(kn(config.KeyInstanceAuthPass)) > 0 {
		t.set(config.KeyInstanceAuthPass, in.authPass, kn(config.KeyInstanceAuthPass)...)
	}
	if in.garp.repeat != nil {
		t.set(config.KeyInstanceGARPRepeat, *in.garp.repeat, kn(config.KeyInstanceGARPRepeat)...)
	} else if len(kn(config.KeyInstanceGARPRepeat)) > 0 {
		t.notes = append(t.notes, kn(config.KeyInstanceGARPRepeat)...)
	}
	switch {
	case in.garp.interval == nil:
	case *in.garp.interval == 0:
		t.notes = append(t.notes, "keepalived's garp_interval 0 sent the gratuitous ARPs back to back; vrrplb spaces them by garp_interval (default 100ms)")
	default:
		t.set(config.KeyInstanceGARPInterval, floor(*in.garp.interval, config.MinDuration), append(kn(config.KeyInstanceGARPInterval), floorNote(*in.garp.interval, config.MinDuration)...)...)
	}
	if in.garp.refresh != nil {
		t.set(config.KeyInstanceGARPRefresh, floor(*in.garp.refresh, config.MinDuration), append(kn(config.KeyInstanceGARPRefresh), floorNote(*in.garp.refresh, config.MinDuration)...)...)
	}
	if in.notify != nil {
		t.set(config.KeyInstanceNotify, in.notify, kn(config.KeyInstanceNotify)...)
	}
	t.notes = append(t.notes, "not in keepalived: with "+config.KeyInstanceTakeoverKeyFile+
		" (the same key on every LB host, mode 0600) a host that takes over from a crashed master prompts its clients to reset, so they reconnect at once (README, \"Taking over from a crashed master\")")
	for _, tf := range in.frontends {
		t.children = append(t.children, trackTable(config.TableTrackFrontend, tf.name, tf.weight, tf.notes))
	}
	for _, ts := range in.scripts {
		c := &table{name: config.Dotted(config.TableInstance, config.TableTrackScript), array: true, notes: ts.notes}
		c.set(config.KeyTrackScriptCommand, ts.command)
		c.set(config.KeyTrackScriptInterval, floor(ts.interval, config.MinScriptInterval), floorNote(ts.interval, config.MinScriptInterval)...)
		if ts.timeout > 0 {
			c.set(config.KeyTrackScriptTimeout, floor(ts.timeout, config.MinDuration), floorNote(ts.timeout, config.MinDuration)...)
		}
		c.set(config.KeyTrackScriptFall, ts.fall)
		c.set(config.KeyTrackScriptRise, ts.rise)
		c.set(config.KeyTrackWeight, ts.weight)
		t.children = append(t.children, c)
	}
	for _, ti := range in.ifaces {
		t.children = append(t.children, trackTable(config.TableTrackInterface, ti.name, ti.weight, ti.notes))
	}
	return t
}

// trackTable is an instance's [[instance.track_frontend]] or
// [[instance.track_interface]] table: a name and a weight.
func trackTable(kind, name string, weight int, notes []string) *table {
	c := &table{name: config.Dotted(config.TableInstance, kind), array: true, notes: notes}
	c.set(config.KeyTrackName, name)
	c.set(config.KeyTrackWeight, weight)
	return c
}

func frontendTable(f *frontend) *table {
	t := &table{name: config.TableFrontend, array: true, notes: f.notes}
	kn := func(k string) []string { return f.keyNotes[k] }
	t.set(config.KeyFrontendName, f.name)
	t.set(config.KeyFrontendListen, f.listen, kn(config.KeyFrontendListen)...)
	t.set(config.KeyFrontendBalance, f.balance, kn(config.KeyFrontendBalance)...)
	t.set(config.KeyFrontendBackends, f.backends, kn(config.KeyFrontendBackends)...)
	if f.connectTimeout != nil {
		t.set(config.KeyFrontendConnectTimeout, floor(*f.connectTimeout, config.MinDuration), append(kn(config.KeyFrontendConnectTimeout), floorNote(*f.connectTimeout, config.MinDuration)...)...)
	}
	if f.retries != nil {
		t.set(config.KeyFrontendRetries, *f.retries, kn(config.KeyFrontendRetries)...)
	}
	if f.idleTimeout != nil {
		t.set(config.KeyFrontendIdleTimeout, *f.idleTimeout, kn(config.KeyFrontendIdleTimeout)...)
	}
	if f.maxConnections > 0 {
		t.set(config.KeyFrontendMaxConnections, f.maxConnections, kn(config.KeyFrontendMaxConnections)...)
	}
	h := f.health
	c := &table{name: config.Dotted(config.TableFrontend, config.TableHealth), notes: h.notes}
	c.set(config.KeyHealthType, h.typ)
	if h.path != "" {
		c.set(config.KeyHealthPath, h.path)
	}
	if len(h.expectStatus) > 0 {
		c.set(config.KeyHealthExpectStatus, h.expectStatus)
	}
	if h.interval > 0 {
		c.set(config.KeyHealthInterval, floor(h.interval, config.MinHealthInterval), floorNote(h.interval, config.MinHealthInterval)...)
	}
	if h.timeout > 0 {
		c.set(config.KeyHealthTimeout, floor(h.timeout, config.MinDuration), floorNote(h.timeout, config.MinDuration)...)
	}
	if h.rise > 0 {
		c.set(config.KeyHealthRise, h.rise)
	}
	if h.fall > 0 {
		c.set(config.KeyHealthFall, h.fall)
	}
	if h.caFile != "" {
		c.set(config.KeyHealthCAFile, h.caFile)
	}
	if h.serverName != "" {
		c.set(config.KeyHealthServerName, h.serverName)
	}
	t.children = append(t.children, c)
	return t
}

// floor raises a duration shorter than vrrplb takes to the shortest it takes
// (0, "off", stays 0); floorNote says so.
func floor(d, min time.Duration) time.Duration {
	if d > 0 && d < min {
		return min
	}
	return d
}

func floorNote(d, min time.Duration) []string {
	if d > 0 && d < min {
		return []string{fmt.Sprintf("%v raised to %v, the shortest vrrplb takes here", d, config.FormatDuration(min))}
	}
	return nil
}
