package convert

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/config/keepalived"
)

// kaTrackers are the named trackers instances refer to.
type kaTrackers struct {
	scripts   map[string]*vrrpScript
	processes map[string]*vrrpProcess
}

// kaBuild is one vrrp_instance while its lines are read: the instance, and
// what the settings that depend on one another need once all are read.
type kaBuild struct {
	in                          *instance
	state, stateAt              string
	priorityAt, versionAt       string
	nopreemptAt, preemptDelayAt string
	advertRaw                   float64
	advertNode                  *keepalived.Node
	authType, authTypeAt        string
	authPass                    string
	authPassNode                *keepalived.Node
	version                     int
	garpDelay                   string
	scriptLines, processLines   []*keepalived.Node
	notifyLine                  *keepalived.Node
	notifyState                 map[string]*keepalived.Node // master, backup, fault
}

// kaHandler maps one keyword of a vrrp_instance.
type kaHandler func(b *kaBuild, c *keepalived.Node) error

// kaInstanceKeywords are the vrrp_instance keywords convert maps.
var kaInstanceKeywords = map[string]kaHandler{
	"state":             kaState,
	"interface":         kaInterface,
	"virtual_router_id": func(b *kaBuild, c *keepalived.Node) (err error) { b.in.vrid, err = intArg(c, 1, 255); return },
	"priority":          kaPriority,
	"version":           kaVersion,
	"advert_int":        kaAdvert,
	"nopreempt":         func(b *kaBuild, c *keepalived.Node) error { b.in.preempt, b.nopreemptAt = false, loc(c); return nil },
	"preempt":           func(b *kaBuild, c *keepalived.Node) error { b.in.preempt = true; return nil },
	"preempt_delay":     kaPreemptDelay,
	"authentication":    kaAuthentication,
	"virtual_ipaddress": func(b *kaBuild, c *keepalived.Node) error { return kaVIPs(c, b.in) },
	"mcast_src_ip":      kaSourceIP,
	"unicast_src_ip":    kaSourceIP,
	"unicast_peer":      kaPeers,
	"track_interface":   kaTrackInterfaces,
	"track_script": func(b *kaBuild, c *keepalived.Node) error {
		b.scriptLines = append(b.scriptLines, c.Children...)
		return nil
	},
	"track_process": func(b *kaBuild, c *keepalived.Node) error {
		b.processLines = append(b.processLines, c.Children...)
		return nil
	},
	"notify":              func(b *kaBuild, c *keepalived.Node) error { b.notifyLine = c; return nil },
	"notify_master":       kaNotifyState,
	"notify_backup":       kaNotifyState,
	"notify_fault":        kaNotifyState,
	"garp_master_repeat":  kaGARP,
	"garp_master_refresh": kaGARP,
	"garp_interval":       kaGARP,
	"gna_interval":        kaGARP,
	"garp_master_delay":   func(b *kaBuild, c *keepalived.Node) error { b.garpDelay = loc(c) + " " + quoteLine(c); return nil },
	"accept":              func(*kaBuild, *keepalived.Node) error { return nil }, // vrrplb always runs in accept mode
	"native_ipv6":         func(*kaBuild, *keepalived.Node) error { return nil }, // IPv6 VIPs make version 3
}

// kaNotCarried are the vrrp_instance keywords keepalived knows and convert
// does not map, with the reason.
var kaNotCarried = map[string]string{
	"no_accept":                  "vrrplb always accepts traffic to the VIP: its proxy answers there",
	"use_vmac":                   "vrrplb uses the interface's own MAC address and announces the VIP with gratuitous ARP",
	"vmac_xmit_base":             "vrrplb uses the interface's own MAC address and announces the VIP with gratuitous ARP",
	"dont_track_primary":         "no vrrplb equivalent",
	"lower_prio_no_advert":       "vrrplb answers a lower-priority advert at once, as RFC 5798 §6.4.3 asks (rate-limited)",
	"higher_prio_send_advert":    "vrrplb answers a lower-priority advert at once, as RFC 5798 §6.4.3 asks (rate-limited)",
	"smtp_alert":                 "vrrplb sends no mail: use notify",
	"virtual_ipaddress_excluded": "vrrplb holds only the addresses it advertises: add them to virtual_ips if the master must hold them",
	"notify_stop":                "vrrplb runs notify on state changes; on stop a master hands over and its VIPs go, which notify does not see",
	"notify_deleted":             "vrrplb runs notify on state changes only",
	"notify_master_rx_lower_pri": "vrrplb runs notify on state changes only",
	"virtual_routes":             "vrrplb adds no routes with the VIP",
	"virtual_rules":              "vrrplb adds no routing rules with the VIP",
	"track_file":                 "vrrplb has no file tracker: a track_script that reads the file does the same",
	"track_bfd":                  "vrrplb has no BFD",
	"strict_mode":                "vrrplb follows RFC 5798 always",
}

func kaInstance(n *keepalived.Node, g kaGlobals, tr kaTrackers, scriptRoot string) (*instance, error) {
	if len(n.Args) != 2 {
		return nil, n.Errorf("vrrp_instance needs one name")
	}
	b := &kaBuild{
		in:          &instance{at: loc(n), name: n.Args[1], preempt: true, advert: time.Second},
		version:     g.version,
		garpDelay:   g.garpDelay,
		notifyState: map[string]*keepalived.Node{},
	}
	in := b.in
	in.garp = g.garp
	for key, at := range g.garpAt {
		in.note(key, at)
	}
	for _, c := range n.Children {
		h, mapped := kaInstanceKeywords[c.Keyword()]
		switch {
		case c.Unknown:
			in.notes = append(in.notes, unknownKeyword(c))
		case mapped:
			if err := h(b, c); err != nil {
				return nil, err
			}
		case kaNotCarried[c.Keyword()] != "":
			in.notes = append(in.notes, notCarried(loc(c), quoteLine(c), kaNotCarried[c.Keyword()]))
		default:
			in.notes = append(in.notes, notCarried(loc(c), quoteLine(c), "no vrrplb equivalent"))
		}
	}
	for _, step := range []func(*kaBuild, *keepalived.Node) error{kaCheckIdentity, kaFinishPriority, kaFinishVersion, kaFinishPreempt, kaFinishAuth, kaFinishNotify} {
		if err := step(b, n); err != nil {
			return nil, err
		}
	}
	if b.garpDelay != "" {
		in.note(config.KeyInstanceGARPRepeat, notCarried(b.garpDelay, "", "keepalived sends a second burst of gratuitous ARPs that long after becoming master; vrrplb sends one burst of garp_repeat, and another whenever it hears a lower-priority advert"))
	}
	if err := kaTrackScripts(b, tr.scripts, scriptRoot); err != nil {
		return nil, err
	}
	return in, kaTrackProcesses(b, tr.processes)
}

func kaState(b *kaBuild, c *keepalived.Node) error {
	if len(c.Args) != 2 {
		return c.Errorf("state takes MASTER or BACKUP")
	}
	b.state, b.stateAt = strings.ToUpper(c.Args[1]), loc(c)
	if b.state != "MASTER" && b.state != "BACKUP" {
		b.in.note(config.KeyInstancePriority, fmt.Sprintf("WARNING: state %s (%s) is neither MASTER nor BACKUP: keepalived logs it and takes BACKUP, and so does this", config.Word(c.Args[1]), loc(c)))
		b.state = "BACKUP"
	}
	return nil
}

func kaInterface(b *kaBuild, c *keepalived.Node) error {
	if len(c.Args) != 2 {
		return c.Errorf("interface takes one name")
	}
	b.in.iface = c.Args[1]
	return nil
}

func kaPriority(b *kaBuild, c *keepalived.Node) (err error) {
	b.in.priority, err = intArg(c, 1, 255)
	b.priorityAt = loc(c)
	return err
}

func kaVersion(b *kaBuild, c *keepalived.Node) (err error) {
	b.version, err = intArg(c, 2, 3)
	b.versionAt = loc(c)
	return err
}

func kaAdvert(b *kaBuild, c *keepalived.Node) (err error) {
	b.advertRaw, err = floatArg(c)
	b.advertNode = c
	return err
}

func kaPreemptDelay(b *kaBuild, c *keepalived.Node) (err error) {
	b.in.preemptDelay, err = secondsArg(c)
	b.preemptDelayAt = loc(c)
	return err
}

func kaAuthentication(b *kaBuild, c *keepalived.Node) error {
	for _, a := range c.Children {
		if a.Unknown {
			b.in.notes = append(b.in.notes, unknownKeyword(a))
			continue
		}
		if len(a.Args) != 2 {
			return a.Errorf("%s takes one value", a.Keyword())
		}
		if a.Keyword() == "auth_type" {
			b.authType, b.authTypeAt = strings.ToUpper(a.Args[1]), loc(a)
		} else {
			b.authPass, b.authPassNode = a.Args[1], a
		}
	}
	return nil
}

func kaSourceIP(b *kaBuild, c *keepalived.Node) error {
	if len(c.Args) != 2 {
		return c.Errorf("%s takes one address", c.Keyword())
	}
	a, err := netip.ParseAddr(c.Args[1])
	if err != nil {
		return c.Errorf("%s %q: not an IP address", c.Keyword(), c.Args[1])
	}
	if b.in.sourceIP != "" && b.in.sourceIP != a.String() {
		b.in.note(config.KeyInstanceSourceIP, notCarried(loc(c), quoteLine(c), "vrrplb has one source_ip; the first one is kept"))
		return nil
	}
	b.in.sourceIP = a.String()
	b.in.note(config.KeyInstanceSourceIP, fmt.Sprintf("%s (%s)", c.Keyword(), loc(c)))
	return nil
}

func kaPeers(b *kaBuild, c *keepalived.Node) error {
	for _, p := range c.Children {
		a, err := netip.ParseAddr(p.Args[0])
		if err != nil {
			return p.Errorf("unicast_peer %q: not an IP address", p.Args[0])
		}
		b.in.peers = append(b.in.peers, a.String())
		if len(p.Args) > 1 {
			b.in.note(config.KeyInstanceUnicastPeers, notCarried(loc(p), quoteLine(p), "vrrplb has no per-peer options"))
		}
	}
	return nil
}

func kaTrackInterfaces(b *kaBuild, c *keepalived.Node) error {
	for _, t := range c.Children {
		ti := trackIface{name: t.Args[0], at: loc(t)}
		rest := t.Args[1:]
		if len(rest) >= 2 && rest[0] == "weight" {
			w, err := strconv.Atoi(rest[1])
			if err != nil || w < -254 || w > 254 {
				return t.Errorf("track_interface %s: weight %q: must be -254..254", t.Args[0], rest[1])
			}
			ti.weight = w
			rest = rest[2:]
		}
		if len(rest) > 0 {
			ti.notes = append(ti.notes, notCarried(loc(t), strings.Join(rest, " "), "vrrplb has no reverse tracking of interfaces"))
		}
		b.in.ifaces = append(b.in.ifaces, ti)
	}
	return nil
}

func kaNotifyState(b *kaBuild, c *keepalived.Node) error {
	state := strings.TrimPrefix(c.Keyword(), "notify_")
	b.notifyState[state] = c
	return nil
}

// kaGARP takes an instance's own garp_* setting, which replaces the global
// one.
func kaGARP(b *kaBuild, c *keepalived.Node) error {
	key, at, err := b.in.garp.set(c)
	delete(b.in.keyNotes, key)
	b.in.note(key, at)
	return err
}

// kaCheckIdentity checks what every instance needs: an interface and a router id.
func kaCheckIdentity(b *kaBuild, n *keepalived.Node) error {
	in := b.in
	if in.iface == "" {
		return n.Errorf("vrrp_instance %q has no interface", in.name)
	}
	if len(in.iface) > 15 || strings.ContainsAny(in.iface, "/ \t") {
		return n.Errorf("vrrp_instance %q: interface %q: not an interface name", in.name, in.iface)
	}
	familyMatch(in)
	if in.vrid == 0 {
		return n.Errorf("vrrp_instance %q has no virtual_router_id", in.name)
	}
	return nil
}

// kaFinishPriority derives a missing priority from the state, as keepalived does.
func kaFinishPriority(b *kaBuild, _ *keepalived.Node) error {
	if b.priorityAt != "" {
		return nil
	}
	in := b.in
	if b.state == "MASTER" {
		in.priority = kaOwnerPriority
		in.note(config.KeyInstancePriority, fmt.Sprintf("WARNING: %s has state MASTER and no priority: keepalived then takes priority 255 (the address owner; vrrp.c, vrrp_complete_instance), so this host takes the VIP at once and is never preempted; set a priority below 255 unless it really owns the address", in.name))
	} else {
		in.priority = kaDefaultPriority
		in.note(config.KeyInstancePriority, "keepalived's default priority when none is set")
	}
	return nil
}

// kaFinishVersion picks the VRRP version: IPv6 and sub-second adverts need v3.
func kaFinishVersion(b *kaBuild, _ *keepalived.Node) error {
	in := b.in
	if len(in.vips) > 0 && !in.vips[0].Addr().Is4() && b.version != 3 {
		if b.versionAt != "" {
			in.note(config.KeyInstanceVersion, fmt.Sprintf("from %s: version 2 changed to 3: keepalived itself uses VRRPv3 for IPv6 virtual addresses", b.versionAt))
		} else {
			in.note(config.KeyInstanceVersion, "IPv6 virtual addresses: keepalived uses VRRPv3 for them, and so does vrrplb")
		}
		b.version = 3
	}
	if b.advertNode != nil {
		if err := kaFinishAdvert(b); err != nil {
			return err
		}
	}
	in.version = b.version
	return nil
}

func kaFinishAdvert(b *kaBuild) error {
	in, raw, node := b.in, b.advertRaw, b.advertNode
	if raw <= 0 {
		return node.Errorf("advert_int %v: must be above 0", raw)
	}
	fractional := raw != math.Trunc(raw)
	if fractional && b.version != 3 {
		in.note(config.KeyInstanceVersion, fmt.Sprintf("advert_int %v at %s is a fraction of a second: VRRPv2 counts whole seconds, so this is VRRPv3 (keepalived does the same)", raw, loc(node)))
		b.version = 3
	}
	cs := math.Round(raw * 100)
	if b.version == 3 && (cs < 1 || cs > 4095) {
		return node.Errorf("advert_int %v: VRRPv3 takes 0.01 to 40.95 seconds", raw)
	}
	if b.version == 2 && (raw < 1 || raw > 255) {
		return node.Errorf("advert_int %v: VRRPv2 takes 1 to 255 seconds", raw)
	}
	in.advert = time.Duration(cs) * 10 * time.Millisecond
	if fractional && cs != raw*100 {
		in.note(config.KeyInstanceAdvertInterval, fmt.Sprintf("advert_int %v rounded to the 10 ms units of VRRPv3", raw))
	}
	return nil
}

// kaFinishPreempt applies nopreempt and preempt_delay as keepalived 2.x does
// (vrrp.c, vrrp_complete_instance).
func kaFinishPreempt(b *kaBuild, _ *keepalived.Node) error {
	in := b.in
	if !in.preempt {
		switch {
		case in.priority == kaOwnerPriority:
			in.preempt = true
			in.note(config.KeyInstancePreempt, fmt.Sprintf("nopreempt at %s is ignored by keepalived at priority 255 (\"nopreempt is incompatible with priority 255 - resetting nopreempt\"), so preempt stays on", b.nopreemptAt))
		case b.state == "MASTER":
			in.preempt = true
			in.note(config.KeyInstancePreempt, fmt.Sprintf("nopreempt at %s with state MASTER: keepalived 2.x clears it (\"nopreempt will not work with initial state MASTER - clearing\"), so this host did preempt; set preempt = false (and state BACKUP in keepalived) if it should not", b.nopreemptAt))
		default:
			in.note(config.KeyInstancePreempt, fmt.Sprintf("nopreempt (%s): a higher-priority router that comes back stays backup", b.nopreemptAt))
		}
	}
	if in.preemptDelay > 0 {
		switch {
		case b.state == "MASTER":
			in.note(config.KeyInstancePreemptDelay, notCarried(b.preemptDelayAt, "preempt_delay", "keepalived 2.x clears it with state MASTER (\"preempt delay will not work with initial state MASTER - clearing\")"))
			in.preemptDelay = 0
		case !in.preempt:
			in.note(config.KeyInstancePreemptDelay, notCarried(b.preemptDelayAt, "preempt_delay", "keepalived clears it with nopreempt: there is no preemption to delay"))
			in.preemptDelay = 0
		}
	}
	return nil
}

// kaFinishAuth maps authentication: simple text in v2 only.
func kaFinishAuth(b *kaBuild, n *keepalived.Node) error {
	in, authPass := b.in, b.authPass
	switch {
	case b.authType == "" && authPass == "":
	case b.authType == "AH":
		in.notes = append(in.notes, notCarried(b.authTypeAt, "auth_type AH", "vrrplb supports only the simple text password of VRRPv2; AH was removed from VRRP by RFC 3768 §5.3.6"))
	case b.authType != "PASS" && b.authType != "":
		return n.Errorf("vrrp_instance %q: auth_type %q: must be PASS or AH", in.name, b.authType)
	case b.version == 3:
		in.notes = append(in.notes, notCarried(b.authTypeAt, "authentication", "VRRPv3 has no authentication (RFC 5798 §9); keepalived ignores it too"))
	case authPass == "":
		return n.Errorf("vrrp_instance %q: auth_type PASS without auth_pass", in.name)
	default:
		if len(authPass) > kaMaxAuthPass {
			in.note(config.KeyInstanceAuthPass, fmt.Sprintf("auth_pass at %s is longer than 8 bytes: keepalived sends only its first 8 (\"Truncating auth_pass to 8 characters\"), and so does this", loc(b.authPassNode)))
			authPass = authPass[:kaMaxAuthPass]
		}
		if !utf8.ValidString(authPass) {
			// A TOML string holds UTF-8 only: the bytes keepalived sends
			// cannot be written into vrrplb.toml.
			return b.authPassNode.Errorf("vrrp_instance %q: auth_pass: the password keepalived sends (its first 8 bytes) is not valid UTF-8, which a vrrplb config cannot hold; choose one of ASCII characters on every router", in.name)
		}
		in.authPass = authPass
	}
	return nil
}

// kaTrackScripts maps the track_script lines; a process check of the proxy
// becomes track_frontend later, in link.
func kaTrackScripts(b *kaBuild, scripts map[string]*vrrpScript, scriptRoot string) error {
	for _, t := range b.scriptLines {
		s, ok := scripts[t.Args[0]]
		if !ok {
			return t.Errorf("track_script %q: no vrrp_script of that name", t.Args[0])
		}
		s.used = true
		weight, reverse, err := trackWeightArgs(t, s.weight, -253, 253)
		if err != nil {
			return err
		}
		ts := trackScript{at: loc(t), name: t.Args[0], command: s.argv, interval: s.interval, timeout: s.timeout, fall: s.fall, rise: s.rise, weight: weight}
		ts.notes = append(ts.notes, fmt.Sprintf("vrrp_script %s (%s)", t.Args[0], loc(s.node)))
		ts.notes = append(ts.notes, s.notes...)
		if reverse {
			ts.command = append([]string{"/bin/sh", "-c", `! "$0" "$@"`}, s.argv...)
			ts.notes = append(ts.notes, "weight ... reverse: the command's exit status is inverted by the shell, as keepalived inverts it")
		}
		if proxy, evidence, ok := processCheck(s.argv, s.line, scriptRoot); ok && !reverse {
			b.in.procChecks = append(b.in.procChecks, procCheck{at: loc(t), kind: "track_script", name: t.Args[0], proxy: proxy, evidence: evidence, weight: weight, script: ts})
			continue
		}
		b.in.scripts = append(b.in.scripts, ts)
	}
	return nil
}

// trackWeightArgs reads "NAME [weight W [reverse]]" of a track_script or
// track_process line.
func trackWeightArgs(t *keepalived.Node, def, lo, hi int) (weight int, reverse bool, err error) {
	weight = def
	rest := t.Args[1:]
	if len(rest) >= 2 && rest[0] == "weight" {
		w, err := strconv.Atoi(rest[1])
		if err != nil || w < lo || w > hi {
			return 0, false, t.Errorf("%s: weight %q: must be %d..%d", t.Args[0], rest[1], lo, hi)
		}
		weight = w
		rest = rest[2:]
		if len(rest) > 0 && rest[0] == "reverse" {
			reverse = true
			rest = rest[1:]
		}
	}
	if len(rest) > 0 {
		return 0, false, t.Errorf("%s: unexpected %q", t.Args[0], strings.Join(rest, " "))
	}
	return weight, reverse, nil
}

// kaTrackProcesses maps the track_process lines: a process check of the
// proxy (track_frontend later, in link), or any other process, checked by
// pgrep as keepalived checked it by name.
func kaTrackProcesses(b *kaBuild, processes map[string]*vrrpProcess) error {
	for _, t := range b.processLines {
		p, ok := processes[t.Args[0]]
		if !ok {
			return t.Errorf("track_process %q: no vrrp_track_process of that name", t.Args[0])
		}
		p.used = true
		weight, reverse, err := trackWeightArgs(t, p.weight, -254, 254)
		if err != nil {
			return err
		}
		ts := trackScript{at: loc(t), name: t.Args[0], command: []string{"/usr/bin/pgrep", "-x", p.process}, interval: time.Second, fall: 1, rise: 1, weight: weight}
		ts.notes = append(ts.notes, fmt.Sprintf("vrrp_track_process %s (%s): keepalived watched for a process named %s; pgrep -x looks for it every second", t.Args[0], loc(p.node), p.process))
		ts.notes = append(ts.notes, p.notes...)
		if reverse {
			ts.command = append([]string{"/bin/sh", "-c", `! "$0" "$@"`}, ts.command...)
			ts.notes = append(ts.notes, "weight ... reverse: the command's exit status is inverted by the shell, as keepalived inverts it")
		}
		if m := proxyName.FindString(p.process); m == p.process && !reverse {
			b.in.procChecks = append(b.in.procChecks, procCheck{at: loc(t), kind: "track_process", name: t.Args[0], proxy: m, evidence: "vrrp_track_process of the " + m + " process", weight: weight, script: ts})
			continue
		}
		b.in.scripts = append(b.in.scripts, ts)
	}
	return nil
}

// kaFinishNotify maps notify, and notify_master, notify_backup and
// notify_fault into one notify command: vrrplb runs one command on every
// transition with the instance and the new state appended, so a shell
// dispatches on the state to the command keepalived ran for it.
func kaFinishNotify(b *kaBuild, _ *keepalived.Node) error {
	in := b.in
	var generic []string
	if c := b.notifyLine; c != nil {
		argv, err := splitCommand(commandLine(c.Raw))
		if err == nil && (len(argv) == 0 || argv[0] == "") {
			err = fmt.Errorf("empty command")
		}
		if err != nil {
			return c.Errorf("notify: %v", err)
		}
		generic = argv
		in.note(config.KeyInstanceNotify, fmt.Sprintf("from %s: keepalived called it with INSTANCE %s STATE PRIORITY appended; vrrplb appends the instance name and the new state (master, backup, fault) only: check how the script reads its arguments", loc(c), in.name))
	}
	if len(b.notifyState) == 0 {
		in.notify = generic
		return nil
	}
	var script strings.Builder
	script.WriteString(`case "$2" in`)
	for _, state := range []string{"master", "backup", "fault"} {
		c, ok := b.notifyState[state]
		if !ok {
			continue
		}
		argv, err := splitCommand(commandLine(c.Raw))
		if err != nil || len(argv) == 0 || argv[0] == "" {
			return c.Errorf("%s: not a command", c.Keyword())
		}
		fmt.Fprintf(&script, " %s) %s ;;", state, shellQuote(argv))
		in.note(config.KeyInstanceNotify, fmt.Sprintf("%s (%s) runs when the new state is %s", c.Keyword(), loc(c), state))
	}
	script.WriteString(" esac")
	if generic != nil {
		fmt.Fprintf(&script, `; exec %s "$@"`, shellQuote(generic))
	}
	in.notify = []string{"/bin/sh", "-c", script.String(), "vrrplb-notify"}
	return nil
}

// shellQuote writes argv as words /bin/sh reads back unchanged.
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
