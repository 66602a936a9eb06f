package convert

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/config/keepalived"
)

// keepalived's defaults, where they differ from vrrplb's or matter to a mapping.
const (
	kaDefaultPriority = 100 // VRRP_PRIO_DFL
	kaOwnerPriority   = 255 // VRRP_PRIO_OWNER
	kaMaxAuthPass     = 8   // keepalived truncates auth_pass to 8 bytes (RFC 3768 §5.3.6.1 field size)
)

// instance is one vrrp_instance on its way to an [[instance]] table.
type instance struct {
	at           string
	notes        []string
	keyNotes     map[string][]string
	name         string
	iface        string
	vrid         int
	priority     int
	version      int
	advert       time.Duration
	preempt      bool
	preemptDelay time.Duration
	vips         []netip.Prefix
	sourceIP     string
	peers        []string
	authPass     string
	garpRepeat   *int
	garpInterval *time.Duration
	garpRefresh  *time.Duration
	notify       []string

	procChecks []procCheck
	scripts    []trackScript
	ifaces     []trackIface
	frontends  []trackFrontend
}

func (in *instance) note(key, text string) {
	if in.keyNotes == nil {
		in.keyNotes = map[string][]string{}
	}
	in.keyNotes[key] = append(in.keyNotes[key], text)
}

// procCheck is a track_script that only checks the proxy process exists.
type procCheck struct {
	at       string
	name     string
	proxy    string
	evidence string
	weight   int
	script   trackScript // kept when there is no frontend to track instead
}

type trackScript struct {
	notes    []string
	command  []string
	interval time.Duration
	timeout  time.Duration // 0: not set
	fall     int
	rise     int
	weight   int
}

type trackIface struct {
	notes  []string
	name   string
	weight int
}

type trackFrontend struct {
	notes  []string
	name   string
	weight int
}

// vrrpScript is a vrrp_script block.
type vrrpScript struct {
	node     *keepalived.Node
	line     string
	argv     []string
	interval time.Duration
	timeout  time.Duration
	weight   int
	fall     int
	rise     int
	notes    []string
	used     bool
}

// keepalivedResult is what keepalived.conf contributes.
type keepalivedResult struct {
	header      []string
	scriptsUser string
	scriptNotes []string
	instances   []*instance
}

// kaGlobals are the global_defs that instances inherit.
type kaGlobals struct {
	version      int
	garpRepeat   *int
	garpInterval *time.Duration
	garpRefresh  *time.Duration
	garpDelay    string
}

func loc(n *keepalived.Node) string { return fmt.Sprintf("%s:%d", n.File, n.Line) }

func notCarried(where, what, why string) string {
	return fmt.Sprintf("not carried over: %s %s (%s)", where, what, why)
}

func quoteLine(n *keepalived.Node) string { return strings.Join(n.Args, " ") }

func fromKeepalived(nodes []*keepalived.Node, scriptRoot string) (*keepalivedResult, error) {
	res := &keepalivedResult{}
	g := kaGlobals{version: 2}
	scripts := map[string]*vrrpScript{}
	var scriptOrder []*vrrpScript
	for _, n := range nodes {
		switch n.Keyword() {
		case "global_defs":
			if err := kaGlobalDefs(n, &g, res); err != nil {
				return nil, err
			}
		case "vrrp_script":
			if len(n.Args) != 2 {
				return nil, n.Errorf("vrrp_script needs one name")
			}
			s, err := kaScript(n)
			if err != nil {
				return nil, err
			}
			if _, dup := scripts[n.Args[1]]; dup {
				return nil, n.Errorf("vrrp_script %q is defined twice", n.Args[1])
			}
			scripts[n.Args[1]] = s
			scriptOrder = append(scriptOrder, s)
		}
	}
	names := map[string]bool{}
	for _, n := range nodes {
		switch n.Keyword() {
		case "global_defs", "vrrp_script":
		case "vrrp_instance":
			in, err := kaInstance(n, g, scripts, scriptRoot)
			if err != nil {
				return nil, err
			}
			if names[in.name] {
				return nil, n.Errorf("vrrp_instance %q is defined twice", in.name)
			}
			names[in.name] = true
			if len(in.vips) == 0 {
				res.header = append(res.header, notCarried(in.at, "vrrp_instance "+in.name, "it has no virtual_ipaddress: a vrrplb instance holds at least one"))
				continue
			}
			for _, other := range res.instances {
				if other.vrid == in.vrid && other.iface == in.iface && other.vips[0].Addr().Is4() == in.vips[0].Addr().Is4() {
					return nil, n.Errorf("vrrp_instance %q: virtual_router_id %d on %s is already used by vrrp_instance %q", in.name, in.vrid, in.iface, other.name)
				}
			}
			res.instances = append(res.instances, in)
		case "vrrp_sync_group":
			res.header = append(res.header, notCarried(loc(n), quoteLine(n), "vrrplb has no sync groups: each instance moves on its own; give them the same tracks so they fail together"))
		case "virtual_server", "virtual_server_group":
			res.header = append(res.header, notCarried(loc(n), quoteLine(n), "LVS virtual servers: vrrplb proxies TCP itself, see [[frontend]]"))
		default:
			res.header = append(res.header, notCarried(loc(n), quoteLine(n), "no vrrplb equivalent"))
		}
	}
	for _, s := range scriptOrder {
		if !s.used {
			res.header = append(res.header, notCarried(loc(s.node), quoteLine(s.node), "no vrrp_instance tracks it"))
		}
	}
	return res, nil
}

func kaGlobalDefs(n *keepalived.Node, g *kaGlobals, res *keepalivedResult) error {
	for _, c := range n.Children {
		switch c.Keyword() {
		case "router_id":
			res.header = append(res.header, fmt.Sprintf("keepalived router_id %s (%s): only a name in keepalived's logs and mails; vrrplb has none", strings.Join(c.Args[1:], " "), loc(c)))
		case "vrrp_version":
			v, err := intArg(c, 2, 3)
			if err != nil {
				return err
			}
			g.version = v
		case "script_user":
			if len(c.Args) < 2 {
				return c.Errorf("script_user needs a user name")
			}
			res.scriptsUser = c.Args[1]
			if len(c.Args) > 2 {
				res.scriptNotes = append(res.scriptNotes, notCarried(loc(c), "the group "+c.Args[2], "scripts run with the user's own groups"))
			}
		case "enable_script_security":
			res.scriptNotes = append(res.scriptNotes, notCarried(loc(c), "enable_script_security", "vrrplb does not check who can write the scripts it runs: keep them owned by root"))
		case "vrrp_garp_master_repeat":
			v, err := intArg(c, 1, 255)
			if err != nil {
				return err
			}
			g.garpRepeat = &v
		case "vrrp_garp_master_refresh":
			d, err := secondsArg(c)
			if err != nil {
				return err
			}
			g.garpRefresh = &d
		case "vrrp_garp_interval", "vrrp_gna_interval":
			d, err := secondsArg(c)
			if err != nil {
				return err
			}
			g.garpInterval = &d
		case "vrrp_garp_master_delay":
			g.garpDelay = loc(c) + " " + quoteLine(c)
		case "notification_email", "notification_email_from", "smtp_server", "smtp_connect_timeout", "smtp_helo_name":
			res.header = append(res.header, notCarried(loc(c), c.Keyword(), "vrrplb sends no mail: use notify"))
		default:
			res.header = append(res.header, notCarried(loc(c), quoteLine(c), "a global_defs setting with no vrrplb equivalent"))
		}
	}
	return nil
}

func kaScript(n *keepalived.Node) (*vrrpScript, error) {
	s := &vrrpScript{node: n, interval: time.Second, fall: 1, rise: 1}
	for _, c := range n.Children {
		var err error
		switch c.Keyword() {
		case "script":
			s.line = commandLine(c.Raw)
			s.argv, err = splitCommand(s.line)
			if err == nil && len(s.argv) == 0 {
				err = fmt.Errorf("empty command")
			}
			if err != nil {
				return nil, c.Errorf("script: %v", err)
			}
			if strings.ContainsAny(s.line, "|&;<>$`") && !isShell(s.argv) {
				s.notes = append(s.notes, fmt.Sprintf("keepalived ran %q without a shell, as vrrplb does: shell syntax in it reaches the program as arguments; use [\"/bin/sh\", \"-c\", ...] if a shell was meant", s.line))
			}
		case "interval":
			s.interval, err = secondsArg(c)
		case "timeout":
			s.timeout, err = secondsArg(c)
		case "weight":
			if len(c.Args) > 2 && c.Args[2] == "reverse" {
				return nil, c.Errorf("weight ... reverse is only read in track_script")
			}
			s.weight, err = intArg(c, -253, 253)
		case "fall":
			s.fall, err = intArg(c, 1, math.MaxInt32)
		case "rise":
			s.rise, err = intArg(c, 1, math.MaxInt32)
		case "user":
			s.notes = append(s.notes, notCarried(loc(c), quoteLine(c), "vrrplb runs every script as [scripts] user"))
		case "init_fail":
			s.notes = append(s.notes, notCarried(loc(c), "init_fail", "vrrplb starts a script as passing until it has failed fall times"))
		}
		if err != nil {
			return nil, err
		}
	}
	if s.argv == nil {
		return nil, n.Errorf("vrrp_script %q has no script line", n.Args[1])
	}
	if s.interval <= 0 {
		return nil, n.Errorf("vrrp_script %q: interval must be above 0", n.Args[1])
	}
	return s, nil
}

func isShell(argv []string) bool {
	switch argv[0] {
	case "sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash", "/usr/bin/env":
		return true
	}
	return false
}

func kaInstance(n *keepalived.Node, g kaGlobals, scripts map[string]*vrrpScript, scriptRoot string) (*instance, error) {
	if len(n.Args) != 2 {
		return nil, n.Errorf("vrrp_instance needs one name")
	}
	in := &instance{at: loc(n), name: n.Args[1], preempt: true}
	var (
		state, stateAt                string
		priorityAt, versionAt         string
		nopreemptAt, preemptDelayNode string
		advertRaw                     float64
		advertNode                    *keepalived.Node
		authType, authTypeAt          string
		authPass                      string
		authPassNode                  *keepalived.Node
		version                       = g.version
		fractional                    bool
	)
	in.advert = time.Second
	in.garpRepeat, in.garpInterval, in.garpRefresh = g.garpRepeat, g.garpInterval, g.garpRefresh
	garpDelay := g.garpDelay
	var scriptLines []*keepalived.Node
	for _, c := range n.Children {
		var err error
		switch c.Keyword() {
		case "state":
			if len(c.Args) != 2 {
				return nil, c.Errorf("state takes MASTER or BACKUP")
			}
			state, stateAt = strings.ToUpper(c.Args[1]), loc(c)
		case "interface":
			if len(c.Args) != 2 {
				return nil, c.Errorf("interface takes one name")
			}
			in.iface = c.Args[1]
		case "virtual_router_id":
			in.vrid, err = intArg(c, 1, 255)
		case "priority":
			in.priority, err = intArg(c, 1, 255)
			priorityAt = loc(c)
		case "version":
			version, err = intArg(c, 2, 3)
			versionAt = loc(c)
		case "advert_int":
			advertRaw, err = floatArg(c)
			advertNode = c
		case "nopreempt":
			in.preempt = false
			nopreemptAt = loc(c)
		case "preempt":
			in.preempt = true
		case "preempt_delay":
			in.preemptDelay, err = secondsArg(c)
			preemptDelayNode = loc(c)
		case "authentication":
			for _, a := range c.Children {
				if len(a.Args) != 2 {
					return nil, a.Errorf("%s takes one value", a.Keyword())
				}
				if a.Keyword() == "auth_type" {
					authType, authTypeAt = strings.ToUpper(a.Args[1]), loc(a)
				} else {
					authPass, authPassNode = a.Args[1], a
				}
			}
		case "virtual_ipaddress":
			err = kaVIPs(c, in)
		case "mcast_src_ip", "unicast_src_ip":
			if len(c.Args) != 2 {
				return nil, c.Errorf("%s takes one address", c.Keyword())
			}
			a, perr := netip.ParseAddr(c.Args[1])
			if perr != nil {
				return nil, c.Errorf("%s %q: not an IP address", c.Keyword(), c.Args[1])
			}
			if in.sourceIP != "" && in.sourceIP != a.String() {
				in.note(config.KeyInstanceSourceIP, notCarried(loc(c), quoteLine(c), "vrrplb has one source_ip; the first one is kept"))
				continue
			}
			in.sourceIP = a.String()
			in.note(config.KeyInstanceSourceIP, fmt.Sprintf("%s (%s)", c.Keyword(), loc(c)))
		case "unicast_peer":
			for _, p := range c.Children {
				a, perr := netip.ParseAddr(p.Args[0])
				if perr != nil {
					return nil, p.Errorf("unicast_peer %q: not an IP address", p.Args[0])
				}
				in.peers = append(in.peers, a.String())
				if len(p.Args) > 1 {
					in.note(config.KeyInstanceUnicastPeers, notCarried(loc(p), quoteLine(p), "vrrplb has no per-peer options"))
				}
			}
		case "track_interface":
			for _, t := range c.Children {
				ti := trackIface{name: t.Args[0]}
				rest := t.Args[1:]
				if len(rest) >= 2 && rest[0] == "weight" {
					ti.weight, err = strconv.Atoi(rest[1])
					if err != nil || ti.weight < -254 || ti.weight > 254 {
						return nil, t.Errorf("track_interface %s: weight %q: must be -254..254", t.Args[0], rest[1])
					}
					rest = rest[2:]
				}
				if len(rest) > 0 {
					ti.notes = append(ti.notes, notCarried(loc(t), strings.Join(rest, " "), "vrrplb has no reverse tracking of interfaces"))
				}
				in.ifaces = append(in.ifaces, ti)
			}
		case "track_script":
			scriptLines = append(scriptLines, c.Children...)
		case "notify":
			line := commandLine(c.Raw)
			in.notify, err = splitCommand(line)
			if err != nil {
				return nil, c.Errorf("notify: %v", err)
			}
			in.note(config.KeyInstanceNotify, fmt.Sprintf("from %s: keepalived called it with INSTANCE %s STATE PRIORITY appended; vrrplb appends the instance name and the new state only: check how the script reads its arguments", loc(c), in.name))
		case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify_deleted", "notify_master_rx_lower_pri":
			in.notes = append(in.notes, notCarried(loc(c), c.Keyword()+" "+commandLine(c.Raw), "vrrplb runs one notify command on every transition with the instance and the new state appended: call this from a script that switches on the last argument"))
		case "garp_master_repeat":
			var v int
			v, err = intArg(c, 1, 255)
			in.garpRepeat = &v
		case "garp_master_refresh":
			var d time.Duration
			d, err = secondsArg(c)
			in.garpRefresh = &d
		case "garp_interval", "gna_interval":
			var d time.Duration
			d, err = secondsArg(c)
			in.garpInterval = &d
		case "garp_master_delay":
			garpDelay = loc(c) + " " + quoteLine(c)
		case "accept":
			// vrrplb always runs in accept mode.
		case "no_accept":
			in.notes = append(in.notes, notCarried(loc(c), "no_accept", "vrrplb always accepts traffic to the VIP: its proxy answers there"))
		case "use_vmac", "vmac_xmit_base":
			in.notes = append(in.notes, notCarried(loc(c), quoteLine(c), "vrrplb uses the interface's own MAC address and announces the VIP with gratuitous ARP"))
		case "native_ipv6":
			// IPv6 VIPs make version 3 below.
		case "dont_track_primary":
			in.notes = append(in.notes, notCarried(loc(c), "dont_track_primary", "no vrrplb equivalent"))
		case "lower_prio_no_advert", "higher_prio_send_advert":
			in.notes = append(in.notes, notCarried(loc(c), quoteLine(c), "vrrplb always answers a lower-priority advert at once, as RFC 5798 §6.4.3 asks"))
		case "smtp_alert":
			in.notes = append(in.notes, notCarried(loc(c), quoteLine(c), "vrrplb sends no mail: use notify"))
		case "virtual_ipaddress_excluded":
			in.notes = append(in.notes, notCarried(loc(c), "virtual_ipaddress_excluded", "vrrplb holds only the addresses it advertises: add them to virtual_ips if the master must hold them"))
		default:
			in.notes = append(in.notes, notCarried(loc(c), quoteLine(c), "no vrrplb equivalent"))
		}
		if err != nil {
			return nil, err
		}
	}
	if in.iface == "" {
		return nil, n.Errorf("vrrp_instance %q has no interface", in.name)
	}
	if len(in.iface) > 15 || strings.ContainsAny(in.iface, "/ \t") {
		return nil, n.Errorf("vrrp_instance %q: interface %q: not an interface name", in.name, in.iface)
	}
	familyMatch(in)
	if in.vrid == 0 {
		return nil, n.Errorf("vrrp_instance %q has no virtual_router_id", in.name)
	}

	// Priority: keepalived derives a missing one from the initial state.
	if priorityAt == "" {
		if state == "MASTER" {
			in.priority = kaOwnerPriority
			in.note(config.KeyInstancePriority, fmt.Sprintf("WARNING: %s has state MASTER and no priority: keepalived then takes priority 255 (the address owner; vrrp.c, vrrp_complete_instance), so this host takes the VIP at once and is never preempted; set a priority below 255 unless it really owns the address", in.name))
		} else {
			in.priority = kaDefaultPriority
			in.note(config.KeyInstancePriority, "keepalived's default priority when none is set")
		}
	}
	if stateAt != "" && state != "MASTER" && state != "BACKUP" {
		return nil, n.Errorf("vrrp_instance %q: state %q: must be MASTER or BACKUP", in.name, state)
	}

	// Version: IPv6 and sub-second adverts need VRRPv3.
	if len(in.vips) > 0 && !in.vips[0].Addr().Is4() && version != 3 {
		if versionAt != "" {
			in.note(config.KeyInstanceVersion, fmt.Sprintf("from %s: version 2 changed to 3: keepalived itself uses VRRPv3 for IPv6 virtual addresses", versionAt))
		} else {
			in.note(config.KeyInstanceVersion, "IPv6 virtual addresses: keepalived uses VRRPv3 for them, and so does vrrplb")
		}
		version = 3
	}
	if advertNode != nil {
		if advertRaw <= 0 {
			return nil, advertNode.Errorf("advert_int %v: must be above 0", advertRaw)
		}
		if advertRaw != math.Trunc(advertRaw) {
			fractional = true
			if version != 3 {
				in.note(config.KeyInstanceVersion, fmt.Sprintf("advert_int %v at %s is a fraction of a second: VRRPv2 counts whole seconds, so this is VRRPv3 (keepalived does the same)", advertRaw, loc(advertNode)))
				version = 3
			}
		}
		cs := math.Round(advertRaw * 100)
		if version == 3 && (cs < 1 || cs > 4095) {
			return nil, advertNode.Errorf("advert_int %v: VRRPv3 takes 0.01 to 40.95 seconds", advertRaw)
		}
		if version == 2 && (advertRaw < 1 || advertRaw > 255) {
			return nil, advertNode.Errorf("advert_int %v: VRRPv2 takes 1 to 255 seconds", advertRaw)
		}
		in.advert = time.Duration(cs) * 10 * time.Millisecond
		if fractional && cs != advertRaw*100 {
			in.note(config.KeyInstanceAdvertInterval, fmt.Sprintf("advert_int %v rounded to the 10 ms units of VRRPv3", advertRaw))
		}
	}
	in.version = version

	// nopreempt and preempt_delay, as keepalived 2.x applies them
	// (vrrp.c, vrrp_complete_instance).
	if !in.preempt {
		switch {
		case in.priority == kaOwnerPriority:
			in.preempt = true
			in.note(config.KeyInstancePreempt, fmt.Sprintf("nopreempt at %s is ignored by keepalived at priority 255 (\"nopreempt is incompatible with priority 255 - resetting nopreempt\"), so preempt stays on", nopreemptAt))
		case state == "MASTER":
			in.preempt = true
			in.note(config.KeyInstancePreempt, fmt.Sprintf("nopreempt at %s with state MASTER: keepalived 2.x clears it (\"nopreempt will not work with initial state MASTER - clearing\"), so this host did preempt; set preempt = false (and state BACKUP in keepalived) if it should not", nopreemptAt))
		default:
			in.note(config.KeyInstancePreempt, fmt.Sprintf("nopreempt (%s): a higher-priority router that comes back stays backup", nopreemptAt))
		}
	}
	if in.preemptDelay > 0 {
		switch {
		case state == "MASTER":
			in.note(config.KeyInstancePreemptDelay, notCarried(preemptDelayNode, "preempt_delay", "keepalived 2.x clears it with state MASTER (\"preempt delay will not work with initial state MASTER - clearing\")"))
			in.preemptDelay = 0
		case !in.preempt:
			in.note(config.KeyInstancePreemptDelay, notCarried(preemptDelayNode, "preempt_delay", "keepalived clears it with nopreempt: there is no preemption to delay"))
			in.preemptDelay = 0
		}
	}

	// Authentication: simple text in v2 only.
	switch {
	case authType == "" && authPass == "":
	case authType == "AH":
		in.notes = append(in.notes, notCarried(authTypeAt, "auth_type AH", "vrrplb supports only the simple text password of VRRPv2; AH was removed from VRRP by RFC 3768 §5.3.6"))
	case authType != "PASS" && authType != "":
		return nil, n.Errorf("vrrp_instance %q: auth_type %q: must be PASS or AH", in.name, authType)
	case version == 3:
		in.notes = append(in.notes, notCarried(authTypeAt, "authentication", "VRRPv3 has no authentication (RFC 5798 §9); keepalived ignores it too"))
	case authPass == "":
		return nil, n.Errorf("vrrp_instance %q: auth_type PASS without auth_pass", in.name)
	default:
		if len(authPass) > kaMaxAuthPass {
			in.note(config.KeyInstanceAuthPass, fmt.Sprintf("auth_pass %q at %s is longer than 8 bytes: keepalived sends only its first 8 (\"Truncating auth_pass to 8 characters\"), and so does this", authPass, loc(authPassNode)))
			authPass = authPass[:kaMaxAuthPass]
		}
		in.authPass = authPass
	}

	if garpDelay != "" {
		in.note(config.KeyInstanceGARPRepeat, notCarried(garpDelay, "", "keepalived sends a second burst of gratuitous ARPs that long after becoming master; vrrplb sends one burst of garp_repeat, and another whenever it hears a lower-priority advert"))
	}

	// Track scripts: a process check of the proxy becomes track_frontend later.
	for _, t := range scriptLines {
		s, ok := scripts[t.Args[0]]
		if !ok {
			return nil, t.Errorf("track_script %q: no vrrp_script of that name", t.Args[0])
		}
		s.used = true
		weight := s.weight
		rest := t.Args[1:]
		reverse := false
		if len(rest) >= 2 && rest[0] == "weight" {
			w, err := strconv.Atoi(rest[1])
			if err != nil || w < -253 || w > 253 {
				return nil, t.Errorf("track_script %s: weight %q: must be -253..253", t.Args[0], rest[1])
			}
			weight = w
			rest = rest[2:]
			if len(rest) > 0 && rest[0] == "reverse" {
				reverse = true
				rest = rest[1:]
			}
		}
		if len(rest) > 0 {
			return nil, t.Errorf("track_script %s: unexpected %q", t.Args[0], strings.Join(rest, " "))
		}
		ts := trackScript{command: s.argv, interval: s.interval, timeout: s.timeout, fall: s.fall, rise: s.rise, weight: weight}
		ts.notes = append(ts.notes, fmt.Sprintf("vrrp_script %s (%s)", t.Args[0], loc(s.node)))
		ts.notes = append(ts.notes, s.notes...)
		if reverse {
			ts.command = append([]string{"/bin/sh", "-c", `! "$0" "$@"`}, s.argv...)
			ts.notes = append(ts.notes, "weight ... reverse: the command's exit status is inverted by the shell, as keepalived inverts it")
		}
		if proxy, evidence, ok := processCheck(s.argv, s.line, scriptRoot); ok && !reverse {
			in.procChecks = append(in.procChecks, procCheck{at: loc(t), name: t.Args[0], proxy: proxy, evidence: evidence, weight: weight, script: ts})
			continue
		}
		in.scripts = append(in.scripts, ts)
	}
	return in, nil
}

// kaVIPs reads virtual_ipaddress lines: ADDRESS[/PREFIX] [dev IF] [label L] ...
func kaVIPs(c *keepalived.Node, in *instance) error {
	for _, v := range c.Children {
		p, err := parseVIP(v.Args[0])
		if err != nil {
			return v.Errorf("virtual_ipaddress %q: not an address or address/prefix", v.Args[0])
		}
		if len(in.vips) > 0 && in.vips[0].Addr().Is4() != p.Addr().Is4() {
			in.note(config.KeyInstanceVirtualIPs, notCarried(loc(v), p.String(), "one address family per instance: make another instance with its own virtual_router_id for it"))
			continue
		}
		in.vips = append(in.vips, p)
		opts := v.Args[1:]
		for i := 0; i < len(opts); i++ {
			switch opts[i] {
			case "dev":
				if i+1 < len(opts) && opts[i+1] != in.iface {
					in.note(config.KeyInstanceVirtualIPs, notCarried(loc(v), "dev "+opts[i+1]+" for "+p.String(), "vrrplb adds every VIP to the instance's interface"))
				}
				i++
			case "label":
				if i+1 < len(opts) {
					in.note(config.KeyInstanceVirtualIPs, notCarried(loc(v), "label "+opts[i+1]+" for "+p.String(), "vrrplb adds VIPs without an interface label; tools that look for the label must look for the address"))
				}
				i++
			case "brd", "broadcast", "scope", "preferred_lft", "track_group":
				in.note(config.KeyInstanceVirtualIPs, notCarried(loc(v), opts[i]+" "+wordAt(opts, i+1)+" for "+p.String(), "vrrplb adds VIPs with the prefix only"))
				i++
			default:
				in.note(config.KeyInstanceVirtualIPs, notCarried(loc(v), opts[i]+" for "+p.String(), "vrrplb adds VIPs with the prefix only"))
			}
		}
	}
	return nil
}

// parseVIP reads ADDRESS or ADDRESS/PREFIX; keepalived takes /32 or /128
// when the prefix is left out.
func parseVIP(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func intArg(n *keepalived.Node, lo, hi int) (int, error) {
	if len(n.Args) != 2 {
		return 0, n.Errorf("%s takes one number", n.Keyword())
	}
	v, err := strconv.Atoi(n.Args[1])
	if err != nil || v < lo || v > hi {
		return 0, n.Errorf("%s %q: must be a whole number %d..%d", n.Keyword(), n.Args[1], lo, hi)
	}
	return v, nil
}

func floatArg(n *keepalived.Node) (float64, error) {
	if len(n.Args) != 2 {
		return 0, n.Errorf("%s takes one number of seconds", n.Keyword())
	}
	v, err := strconv.ParseFloat(n.Args[1], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e6 {
		return 0, n.Errorf("%s %q: must be a number of seconds", n.Keyword(), n.Args[1])
	}
	return v, nil
}

func secondsArg(n *keepalived.Node) (time.Duration, error) {
	v, err := floatArg(n)
	if err != nil {
		return 0, err
	}
	return time.Duration(math.Round(v * float64(time.Second))), nil
}

// familyMatch drops a source address and peers of the other family than the
// virtual IPs, as keepalived ignores them ("MUST be of the same family").
func familyMatch(in *instance) {
	if len(in.vips) == 0 {
		return
	}
	v4 := in.vips[0].Addr().Is4()
	if in.sourceIP != "" {
		if a := netip.MustParseAddr(in.sourceIP); a.Unmap().Is4() != v4 {
			in.note(config.KeyInstanceSourceIP, notCarried("", in.sourceIP, "not the family of the virtual IPs; keepalived ignores it too"))
			in.sourceIP = ""
		}
	}
	var peers []string
	for _, p := range in.peers {
		if netip.MustParseAddr(p).Unmap().Is4() != v4 {
			in.note(config.KeyInstanceUnicastPeers, notCarried("", p, "not the family of the virtual IPs"))
			continue
		}
		peers = append(peers, p)
	}
	in.peers = peers
}
