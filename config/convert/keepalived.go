package convert

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
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
	garp         garpSettings
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

// procCheck is a tracker that only checks the proxy process exists: a
// track_script that greps for it, or a track_process of it.
type procCheck struct {
	at       string
	kind     string // "track_script" or "track_process"
	name     string
	proxy    string
	evidence string
	weight   int
	script   trackScript // kept when there is no frontend to track instead
}

type trackScript struct {
	at       string // the track_script (or track_process) line
	name     string
	notes    []string
	command  []string
	interval time.Duration
	timeout  time.Duration // 0: not set
	fall     int
	rise     int
	weight   int
}

type trackIface struct {
	at     string
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

// vrrpProcess is a vrrp_track_process block.
type vrrpProcess struct {
	node    *keepalived.Node
	process string
	weight  int
	notes   []string
	used    bool
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
	version   int
	garp      garpSettings
	garpAt    map[string]string // where each global garp setting is, by vrrplb key
	garpDelay string
}

// garpSettings are the gratuitous ARP settings of an instance: global_defs'
// vrrp_garp_* ones, which every instance inherits, replaced by the
// instance's own garp_* ones. nil is not set.
type garpSettings struct {
	repeat   *int
	interval *time.Duration
	refresh  *time.Duration
}

// set applies one GARP keyword, global (vrrp_garp_master_repeat) or an
// instance's (garp_master_repeat). It returns the vrrplb key it sets and
// where it was set, for that key's note.
func (g *garpSettings) set(c *keepalived.Node) (key, at string, err error) {
	at = fmt.Sprintf("%s (%s)", c.Keyword(), loc(c))
	switch strings.TrimPrefix(c.Keyword(), "vrrp_") {
	case "garp_master_repeat":
		v, err := intArg(c, 1, 255)
		g.repeat = &v
		return config.KeyInstanceGARPRepeat, at, err
	case "garp_master_refresh":
		d, err := secondsArg(c)
		g.refresh = &d
		return config.KeyInstanceGARPRefresh, at, err
	default: // garp_interval, gna_interval
		d, err := secondsArg(c)
		g.interval = &d
		return config.KeyInstanceGARPInterval, at, err
	}
}

func loc(n *keepalived.Node) string { return fmt.Sprintf("%s:%d", n.File, n.Line) }

func notCarried(where, what, why string) string {
	return fmt.Sprintf("not carried over: %s %s (%s)", where, what, why)
}

func quoteLine(n *keepalived.Node) string { return strings.Join(n.Args, " ") }

// unknownKeyword is the note for a line keepalived itself does not know.
func unknownKeyword(n *keepalived.Node) string {
	return fmt.Sprintf("not carried over: %s %s (keepalived does not know this keyword either: it logged it and skipped the line)", loc(n), config.Word(n.Keyword()))
}

// kaTopLevel are the reasons top-level blocks vrrplb does not import are
// not carried over.
var kaTopLevel = map[string]string{
	"virtual_server":           "LVS virtual servers: vrrplb proxies TCP itself, see [[frontend]]",
	"virtual_server_group":     "LVS virtual servers: vrrplb proxies TCP itself, see [[frontend]]",
	"static_ipaddress":         "vrrplb adds only its virtual IPs; configure static addresses in the host's network setup",
	"static_routes":            "vrrplb adds no routes; configure them in the host's network setup",
	"static_rules":             "vrrplb adds no routing rules; configure them in the host's network setup",
	"garp_group":               "vrrplb sends its gratuitous ARPs per instance (garp_repeat, garp_interval)",
	"track_group":              "vrrplb has no tracking groups: give each instance its own tracks",
	"linkbeat_interfaces":      "vrrplb reads link state from netlink",
	"linkbeat_use_polling":     "vrrplb reads link state from netlink",
	"interface_up_down_delays": "vrrplb acts on a link change at once",
	"vrrp_track_file":          "vrrplb has no file tracker: a track_script that reads the file does the same",
	"track_file":               "vrrplb has no file tracker: a track_script that reads the file does the same",
	"bfd_instance":             "vrrplb has no BFD",
}

func fromKeepalived(nodes []*keepalived.Node, opts Options) (*keepalivedResult, error) {
	nodes, err := selectConditional(nodes, opts.ConfigID)
	if err != nil {
		return nil, err
	}
	res := &keepalivedResult{}
	g := kaGlobals{version: 2, garpAt: map[string]string{}}
	scripts := map[string]*vrrpScript{}
	processes := map[string]*vrrpProcess{}
	var scriptOrder []*vrrpScript
	var processOrder []*vrrpProcess
	for _, n := range nodes {
		var err error
		switch {
		case n.Unknown:
		case n.Keyword() == "global_defs":
			err = kaGlobalDefs(n, &g, res)
		case n.Keyword() == "vrrp_script":
			var s *vrrpScript
			if s, err = kaScript(n, scripts); err == nil {
				scripts[n.Args[1]] = s
				scriptOrder = append(scriptOrder, s)
			}
		case n.Keyword() == "vrrp_track_process":
			var p *vrrpProcess
			if p, err = kaProcess(n, processes); err == nil {
				processes[n.Args[1]] = p
				processOrder = append(processOrder, p)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	groups := syncGroups(nodes, res)
	names := map[string]bool{}
	for _, n := range nodes {
		switch kw := n.Keyword(); {
		case n.Unknown:
			res.header = append(res.header, unknownKeyword(n))
		case kw == "global_defs", kw == "vrrp_script", kw == "vrrp_track_process", kw == "vrrp_sync_group":
		case kw == "vrrp_instance":
			tr := kaTrackers{scripts, processes}
			in, err := kaInstance(n, g, tr, opts.ScriptRoot)
			if err != nil {
				return nil, err
			}
			if sg := groups[in.name]; sg != nil {
				if err := sg.apply(in, tr, opts.ScriptRoot); err != nil {
					return nil, err
				}
			}
			if err := addInstance(res, n, in, names); err != nil {
				return nil, err
			}
		case kaTopLevel[kw] != "":
			res.header = append(res.header, notCarried(loc(n), quoteLine(n), kaTopLevel[kw]))
		default:
			res.header = append(res.header, notCarried(loc(n), quoteLine(n), "no vrrplb equivalent"))
		}
	}
	for _, s := range scriptOrder {
		if !s.used {
			res.header = append(res.header, notCarried(loc(s.node), quoteLine(s.node), "no vrrp_instance tracks it"))
		}
	}
	for _, p := range processOrder {
		if !p.used {
			res.header = append(res.header, notCarried(loc(p.node), quoteLine(p.node), "no vrrp_instance tracks it"))
		}
	}
	return res, nil
}

// selectConditional keeps the lines keepalived reads with config id id (its
// -i); a conditional file without an id is an error that names its ids.
func selectConditional(nodes []*keepalived.Node, id string) ([]*keepalived.Node, error) {
	ids, first := keepalived.Conditions(nodes)
	if len(ids) == 0 {
		return nodes, nil
	}
	if id == "" {
		return nil, first.Errorf("this keepalived.conf is conditional: its lines starting @ID or @^ID are read or skipped by keepalived's config id (-i, by default the host name); it names the ids %s: give --config-id ID", strings.Join(ids, ", "))
	}
	return keepalived.Select(nodes, id), nil
}

// addInstance adds a converted instance to res, or reports why it cannot be.
func addInstance(res *keepalivedResult, n *keepalived.Node, in *instance, names map[string]bool) error {
	if names[in.name] {
		return n.Errorf("vrrp_instance %q is defined twice", in.name)
	}
	names[in.name] = true
	if len(in.vips) == 0 {
		res.header = append(res.header, notCarried(in.at, "vrrp_instance "+in.name, "it has no virtual_ipaddress: a vrrplb instance holds at least one"))
		return nil
	}
	for _, other := range res.instances {
		if other.vrid == in.vrid && other.iface == in.iface && other.vips[0].Addr().Is4() == in.vips[0].Addr().Is4() {
			return n.Errorf("vrrp_instance %q: virtual_router_id %d on %s is already used by vrrp_instance %q", in.name, in.vrid, in.iface, other.name)
		}
	}
	res.instances = append(res.instances, in)
	return nil
}

func kaGlobalDefs(n *keepalived.Node, g *kaGlobals, res *keepalivedResult) error {
	for _, c := range n.Children {
		var err error
		switch c.Keyword() {
		case "router_id":
			res.header = append(res.header, fmt.Sprintf("keepalived router_id %s (%s): only a name in keepalived's logs and mails; vrrplb has none", strings.Join(c.Args[1:], " "), loc(c)))
		case "vrrp_version":
			g.version, err = intArg(c, 2, 3)
		case "script_user":
			if len(c.Args) < 2 {
				return c.Errorf("script_user needs a user name")
			}
			res.scriptsUser = c.Args[1]
			if len(c.Args) > 2 {
				res.scriptNotes = append(res.scriptNotes, notCarried(loc(c), "the group "+c.Args[2], "scripts run with the user's own groups"))
			}
		case "enable_script_security":
			res.scriptNotes = append(res.scriptNotes, notCarried(loc(c), "enable_script_security", "vrrplb refuses scripts that others can change when it runs them with privileges; keep them owned by root"))
		case "vrrp_garp_master_repeat", "vrrp_garp_master_refresh", "vrrp_garp_interval", "vrrp_gna_interval":
			var key, at string
			key, at, err = g.garp.set(c)
			g.garpAt[key] = at
		case "vrrp_garp_master_delay":
			g.garpDelay = loc(c) + " " + quoteLine(c)
		case "notification_email", "notification_email_from", "smtp_server", "smtp_connect_timeout", "smtp_helo_name":
			res.header = append(res.header, notCarried(loc(c), c.Keyword(), "vrrplb sends no mail: use notify"))
		default:
			res.header = append(res.header, notCarried(loc(c), quoteLine(c), "a global_defs setting with no vrrplb equivalent"))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// bashOnly finds bash features in a command line that /bin/sh lacks.
var bashOnly = regexp.MustCompile(`/dev/(tcp|udp)/|\[\[|<\(|>\(`)

func kaScript(n *keepalived.Node, defined map[string]*vrrpScript) (*vrrpScript, error) {
	if len(n.Args) != 2 {
		return nil, n.Errorf("vrrp_script needs one name")
	}
	if _, dup := defined[n.Args[1]]; dup {
		return nil, n.Errorf("vrrp_script %q is defined twice", n.Args[1])
	}
	s := &vrrpScript{node: n, interval: time.Second, fall: 1, rise: 1}
	for _, c := range n.Children {
		var err error
		switch c.Keyword() {
		case "script":
			err = s.setCommand(c)
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
		default:
			s.notes = append(s.notes, unknownKeyword(c))
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

// setCommand reads a vrrp_script's script line.
func (s *vrrpScript) setCommand(c *keepalived.Node) error {
	s.line = commandLine(c.Raw)
	argv, err := splitCommand(s.line)
	if err == nil && (len(argv) == 0 || argv[0] == "") {
		err = fmt.Errorf("empty command")
	}
	if err != nil {
		return c.Errorf("script: %v", err)
	}
	s.argv = argv
	if strings.ContainsAny(s.line, "|&;<>$`") && !isShell(s.argv) {
		shell := "/bin/sh"
		if bashOnly.MatchString(s.line) {
			shell = "/bin/bash" // /dev/tcp and friends are bash's, not sh's
		}
		s.notes = append(s.notes, fmt.Sprintf("keepalived ran %q without a shell, as vrrplb does: shell syntax in it reaches the program as arguments; use [%q, \"-c\", ...] if a shell was meant", s.line, shell))
	}
	return nil
}

// kaProcess reads a vrrp_track_process block.
func kaProcess(n *keepalived.Node, defined map[string]*vrrpProcess) (*vrrpProcess, error) {
	if len(n.Args) != 2 {
		return nil, n.Errorf("vrrp_track_process needs one name")
	}
	if _, dup := defined[n.Args[1]]; dup {
		return nil, n.Errorf("vrrp_track_process %q is defined twice", n.Args[1])
	}
	p := &vrrpProcess{node: n}
	for _, c := range n.Children {
		var err error
		switch c.Keyword() {
		case "process":
			if len(c.Args) < 2 {
				return nil, c.Errorf("process needs a process name")
			}
			p.process = c.Args[1]
			if len(c.Args) > 2 {
				p.notes = append(p.notes, notCarried(loc(c), "the parameters "+strings.Join(c.Args[2:], " "), "pgrep -x matches the process name only"))
			}
		case "weight":
			if len(c.Args) > 2 {
				p.notes = append(p.notes, notCarried(loc(c), quoteLine(c), "vrrplb reads the weight only"))
			}
			if len(c.Args) < 2 {
				return nil, c.Errorf("weight takes a number")
			}
			p.weight, err = strconv.Atoi(c.Args[1])
			if err != nil || p.weight < -254 || p.weight > 254 {
				return nil, c.Errorf("weight %q: must be -254..254", c.Args[1])
			}
		case "quorum", "quorum_max", "delay", "terminate_delay", "fork_delay", "param_match", "full_command":
			p.notes = append(p.notes, notCarried(loc(c), quoteLine(c), "vrrplb checks that one such process runs"))
		default:
			p.notes = append(p.notes, unknownKeyword(c))
		}
		if err != nil {
			return nil, err
		}
	}
	if p.process == "" {
		return nil, n.Errorf("vrrp_track_process %q has no process line", n.Args[1])
	}
	return p, nil
}

func isShell(argv []string) bool {
	switch argv[0] {
	case "sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash", "/usr/bin/env":
		return true
	}
	return false
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
