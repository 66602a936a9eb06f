package convert

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/config/haproxy"
)

// haproxy's defaults that matter to a mapping.
const (
	hapDefaultInter = 2 * time.Second
	hapDefaultFall  = 3
	hapDefaultRise  = 2
)

func hloc(l *haproxy.Line) string { return fmt.Sprintf("%s:%d", l.File, l.Line) }

func sloc(s *haproxy.Section) string { return fmt.Sprintf("%s:%d", s.File, s.Line) }

func hline(l *haproxy.Line) string { return strings.Join(l.Words, " ") }

// hapProxy is the effective settings of a defaults, listen, frontend or
// backend section, defaults applied first.
type hapProxy struct {
	mode, modeAt string
	balance      *haproxy.Line
	timeouts     map[string]time.Duration // connect, client, server, tunnel, check
	timeoutAt    map[string]string
	retries      *int
	retriesAt    string
	maxconn      int
	maxconnAt    string
	httpchk      *haproxy.Line
	checkConnect *haproxy.Line // http-check connect ...
	checkSend    *haproxy.Line // http-check send ...
	checkExpect  *haproxy.Line // http-check expect ...
	sslHello     *haproxy.Line
	defaultSrv   []*haproxy.Line
	notes        []string
	ownCheck     bool // this section has http-check lines of its own

	// Not inherited from defaults:
	binds          []*haproxy.Line
	servers        []*haproxy.Line
	defaultBackend *haproxy.Line
	useBackends    []*haproxy.Line
}

func (p *hapProxy) inherit() *hapProxy {
	c := *p
	c.timeouts = map[string]time.Duration{}
	c.timeoutAt = map[string]string{}
	for k, v := range p.timeouts {
		c.timeouts[k] = v
		c.timeoutAt[k] = p.timeoutAt[k]
	}
	c.defaultSrv = append([]*haproxy.Line(nil), p.defaultSrv...)
	c.notes = nil
	c.binds, c.servers, c.defaultBackend, c.useBackends = nil, nil, nil, nil
	return &c
}

func newHapProxy() *hapProxy {
	return &hapProxy{mode: "tcp", timeouts: map[string]time.Duration{}, timeoutAt: map[string]string{}}
}

// apply reads one section's lines over the inherited settings.
func (p *hapProxy) apply(s *haproxy.Section) error {
	p.ownCheck = false
	for _, l := range s.Lines {
		w := l.Words
		if w[0] == "no" || w[0] == "default" {
			p.notes = append(p.notes, notCarried(hloc(l), hline(l), "no vrrplb equivalent"))
			continue
		}
		h, ok := hapKeywords[w[0]]
		if !ok {
			p.notes = append(p.notes, notCarried(hloc(l), hline(l), "no vrrplb equivalent"))
			continue
		}
		if err := h(p, l); err != nil {
			return err
		}
	}
	return nil
}

// hapKeywords map the proxy-section keywords convert reads.
var hapKeywords = map[string]func(p *hapProxy, l *haproxy.Line) error{
	"mode": func(p *hapProxy, l *haproxy.Line) error {
		if len(l.Words) != 2 {
			return l.Errorf("mode takes tcp or http")
		}
		p.mode, p.modeAt = l.Words[1], hloc(l)
		return nil
	},
	"balance": func(p *hapProxy, l *haproxy.Line) error {
		if len(l.Words) < 2 {
			return l.Errorf("balance needs an algorithm")
		}
		p.balance = l
		return nil
	},
	"timeout":    hapTimeout,
	"contimeout": hapOldTimeout,
	"clitimeout": hapOldTimeout,
	"srvtimeout": hapOldTimeout,
	"retries": func(p *hapProxy, l *haproxy.Line) error {
		n, err := hapCount(l)
		p.retries, p.retriesAt = &n, hloc(l)
		return err
	},
	"maxconn": func(p *hapProxy, l *haproxy.Line) (err error) {
		p.maxconn, err = hapCount(l)
		p.maxconnAt = hloc(l)
		return err
	},
	"option":         hapOption,
	"http-check":     hapHTTPCheck,
	"default-server": func(p *hapProxy, l *haproxy.Line) error { p.defaultSrv = append(p.defaultSrv, l); return nil },
	"bind":           func(p *hapProxy, l *haproxy.Line) error { p.binds = append(p.binds, l); return nil },
	"server":         func(p *hapProxy, l *haproxy.Line) error { p.servers = append(p.servers, l); return nil },
	"default_backend": func(p *hapProxy, l *haproxy.Line) error {
		if len(l.Words) != 2 {
			return l.Errorf("default_backend takes one backend name")
		}
		p.defaultBackend = l
		return nil
	},
	"use_backend": func(p *hapProxy, l *haproxy.Line) error { p.useBackends = append(p.useBackends, l); return nil },
	"log": func(p *hapProxy, l *haproxy.Line) error {
		p.notes = append(p.notes, notCarried(hloc(l), hline(l), "vrrplb logs to stderr, which journald or the kubelet collects"))
		return nil
	},
}

// hapCount reads the one non-negative number of a retries or maxconn line.
func hapCount(l *haproxy.Line) (int, error) {
	if len(l.Words) != 2 {
		return 0, l.Errorf("%s takes a number", l.Words[0])
	}
	n, err := strconv.Atoi(l.Words[1])
	if err != nil || n < 0 {
		return 0, l.Errorf("%s %q: must be a number", l.Words[0], l.Words[1])
	}
	return n, nil
}

func hapTimeout(p *hapProxy, l *haproxy.Line) error {
	w := l.Words
	if len(w) != 3 {
		return l.Errorf("timeout takes a kind and a time")
	}
	d, err := parseHaproxyTime(w[2])
	if err != nil {
		return l.Errorf("timeout %s %q: %v", w[1], w[2], err)
	}
	switch w[1] {
	case "connect", "client", "server", "tunnel", "check":
		p.timeouts[w[1]] = d
		p.timeoutAt[w[1]] = hloc(l)
	default:
		p.notes = append(p.notes, notCarried(hloc(l), hline(l), "vrrplb has connect_timeout and idle_timeout only"))
	}
	return nil
}

// hapOldTimeout reads contimeout, clitimeout and srvtimeout, the old
// spellings of timeout connect, client and server.
func hapOldTimeout(p *hapProxy, l *haproxy.Line) error {
	w := l.Words
	if len(w) != 2 {
		return l.Errorf("%s takes a time", w[0])
	}
	d, err := parseHaproxyTime(w[1])
	if err != nil {
		return l.Errorf("%s %q: %v", w[0], w[1], err)
	}
	kind := map[string]string{"contimeout": "connect", "clitimeout": "client", "srvtimeout": "server"}[w[0]]
	p.timeouts[kind] = d
	p.timeoutAt[kind] = hloc(l)
	return nil
}

// hapOptionNotes are the options not carried over, with the reason.
var hapOptionNotes = map[string]string{
	"tcplog": "vrrplb logs transitions and errors; per-connection facts are Prometheus metrics", "httplog": "vrrplb logs transitions and errors; per-connection facts are Prometheus metrics",
	"dontlognull": "vrrplb logs transitions and errors; per-connection facts are Prometheus metrics", "log-health-checks": "vrrplb logs transitions and errors; per-connection facts are Prometheus metrics",
	"logasap":    "vrrplb logs transitions and errors; per-connection facts are Prometheus metrics",
	"redispatch": "vrrplb always tries another healthy backend after a failed connect",
	"clitcpka":   "vrrplb keeps TCP keepalive on both sides (tcp_keepalive, default 30s)", "srvtcpka": "vrrplb keeps TCP keepalive on both sides (tcp_keepalive, default 30s)",
	"tcpka": "vrrplb keeps TCP keepalive on both sides (tcp_keepalive, default 30s)",
}

func hapOption(p *hapProxy, l *haproxy.Line) error {
	if len(l.Words) < 2 {
		return l.Errorf("option needs a name")
	}
	switch o := l.Words[1]; {
	case o == "httpchk":
		p.httpchk = l
	case o == "ssl-hello-chk":
		p.sslHello = l
	case o == "tcp-check":
		p.httpchk, p.sslHello = nil, nil
	case hapOptionNotes[o] != "":
		p.notes = append(p.notes, notCarried(hloc(l), hline(l), hapOptionNotes[o]))
	default:
		p.notes = append(p.notes, notCarried(hloc(l), hline(l), "no vrrplb equivalent"))
	}
	return nil
}

func hapHTTPCheck(p *hapProxy, l *haproxy.Line) error {
	if len(l.Words) < 2 {
		return l.Errorf("http-check needs an action")
	}
	if !p.ownCheck {
		// A section's own http-check rules replace the inherited ones.
		p.checkConnect, p.checkSend, p.checkExpect = nil, nil, nil
		p.ownCheck = true
	}
	switch l.Words[1] {
	case "connect":
		p.checkConnect = l
	case "send":
		p.checkSend = l
	case "expect":
		p.checkExpect = l
	default:
		p.notes = append(p.notes, notCarried(hloc(l), hline(l), "vrrplb's check is one GET of a path"))
	}
	return nil
}

func fromHaproxy(sections []*haproxy.Section) (*proxyResult, error) {
	res := &proxyResult{}
	defaults := newHapProxy()
	backends := map[string]*hapProxy{}
	backendAt := map[string]*haproxy.Section{}
	used := map[string]bool{}
	type fe struct {
		s *haproxy.Section
		p *hapProxy
	}
	var fronts []fe
	for _, s := range sections {
		switch s.Kind {
		case "global":
			res.header = append(res.header, hapGlobal(s)...)
		case "defaults":
			d := newHapProxy()
			if err := d.apply(s); err != nil {
				return nil, err
			}
			if len(d.binds)+len(d.servers) > 0 {
				return nil, s.Errorf("defaults cannot hold bind or server lines")
			}
			for _, n := range d.notes {
				res.header = append(res.header, "defaults: "+n)
			}
			defaults = d
		case "frontend", "listen", "backend":
			p := defaults.inherit()
			if err := p.apply(s); err != nil {
				return nil, err
			}
			if s.Kind == "backend" {
				if _, dup := backends[s.Name]; dup {
					return nil, s.Errorf("backend %q is defined twice", s.Name)
				}
				backends[s.Name] = p
				backendAt[s.Name] = s
				continue
			}
			fronts = append(fronts, fe{s, p})
		default:
			res.header = append(res.header, notCarried(sloc(s), s.Kind+" "+s.Name, "no vrrplb equivalent"))
		}
	}
	taken := map[string]bool{}
	for _, x := range fronts {
		f, err := hapFrontend(x.s, x.p, backends, backendAt, used, taken)
		if err != nil {
			return nil, err
		}
		if f == nil {
			res.header = append(res.header, notCarried(sloc(x.s), x.s.Kind+" "+x.s.Name, fmt.Sprintf("mode %s: vrrplb proxies TCP only", x.p.mode)))
			continue
		}
		res.frontends = append(res.frontends, f)
	}
	for name, s := range backendAt {
		if !used[name] {
			res.header = append(res.header, notCarried(sloc(s), "backend "+name, "no frontend uses it"))
		}
	}
	return res, nil
}

// hapGlobal reports the global settings that matter to someone switching.
func hapGlobal(s *haproxy.Section) []string {
	var names []string
	var out []string
	for _, l := range s.Lines {
		switch l.Words[0] {
		case "maxconn":
			out = append(out, notCarried(hloc(l), hline(l), "set max_connections on a frontend"))
		case "stats":
			if len(l.Words) > 1 && l.Words[1] == "socket" {
				out = append(out, notCarried(hloc(l), "stats socket", "vrrplb status and [admin] listen /status, /metrics answer instead"))
				continue
			}
			names = append(names, l.Words[0])
		default:
			names = append(names, l.Words[0])
		}
	}
	if len(names) > 0 {
		out = append(out, fmt.Sprintf("not carried over: haproxy global %s (%s) (process settings: vrrplb is one process; its systemd unit or static pod sets user and limits)", strings.Join(dedupe(names), ", "), sloc(s)))
	}
	return out
}

func hapFrontend(s *haproxy.Section, p *hapProxy, backends map[string]*hapProxy, backendAt map[string]*haproxy.Section, used, taken map[string]bool) (*frontend, error) {
	if p.mode != "tcp" {
		return nil, nil // reported by the caller
	}
	if len(p.binds) == 0 {
		return nil, s.Errorf("%s %q has no bind line", s.Kind, s.Name)
	}
	f := &frontend{at: sloc(s), name: uniqueName(s.Name, taken)}
	f.notes = append(f.notes, fmt.Sprintf("from haproxy %s %s at %s", s.Kind, s.Name, sloc(s)))
	listen, port, err := hapBind(f, p.binds)
	if err != nil {
		return nil, err
	}
	f.listen = listen

	// The servers: the listen's own, or those of the backend it sends to.
	be := p
	if s.Kind == "frontend" {
		var name string
		switch {
		case p.defaultBackend != nil:
			name = p.defaultBackend.Words[1]
			for _, u := range p.useBackends {
				f.notes = append(f.notes, notCarried(hloc(u), hline(u), "vrrplb sends every connection of a frontend to the same backends"))
			}
		case len(p.useBackends) > 0 && len(p.useBackends[0].Words) >= 2:
			name = p.useBackends[0].Words[1]
			f.notes = append(f.notes, fmt.Sprintf("no default_backend: the backend of the first use_backend (%s) is used for every connection", hloc(p.useBackends[0])))
			for _, u := range p.useBackends[1:] {
				f.notes = append(f.notes, notCarried(hloc(u), hline(u), "vrrplb sends every connection of a frontend to the same backends"))
			}
		default:
			return nil, s.Errorf("frontend %q has no default_backend", s.Name)
		}
		b, ok := backends[name]
		if !ok {
			return nil, s.Errorf("frontend %q: no backend %q", s.Name, name)
		}
		used[name] = true
		if b.mode != "tcp" {
			return nil, backendAt[name].Errorf("backend %q: mode %s, but frontend %q is mode tcp", name, b.mode, s.Name)
		}
		be = b
		f.note(config.KeyFrontendBackends, fmt.Sprintf("backend %s (%s)", name, sloc(backendAt[name])))
		f.notes = append(f.notes, b.notes...)
	}
	for _, u := range p.useBackends {
		if len(u.Words) >= 2 {
			used[u.Words[1]] = true
		}
	}
	f.notes = append(f.notes, p.notes...)

	srv, err := hapServers(f, be, port)
	if err != nil {
		return nil, err
	}
	hapBalance(f, be)
	hapTimeouts(f, p, be)
	if err := hapHealth(f, be, srv); err != nil {
		return nil, err
	}
	if p.maxconn > 0 {
		f.maxConnections = p.maxconn
		f.note(config.KeyFrontendMaxConnections, fmt.Sprintf("maxconn %d (%s)", p.maxconn, p.maxconnAt))
	}
	return f, nil
}

// hapBind maps the first address of the bind lines; the rest are reported.
func hapBind(f *frontend, binds []*haproxy.Line) (listen, port string, err error) {
	for i, b := range binds {
		if len(b.Words) < 2 {
			return "", "", b.Errorf("bind needs an address")
		}
		addrs := strings.Split(b.Words[1], ",")
		for j, a := range addrs {
			if i > 0 || j > 0 {
				f.note(config.KeyFrontendListen, extraListen(hloc(b), "bind "+a, hapListen(a), listen))
				continue
			}
			a = strings.TrimPrefix(strings.TrimPrefix(a, "ipv4@"), "ipv6@")
			host, p, err := splitHaproxyAddr(a)
			if err != nil || p == "" {
				return "", "", b.Errorf("bind %q: needs an address and a port", a)
			}
			if strings.Contains(p, "-") {
				return "", "", b.Errorf("bind %q: port ranges are not supported", a)
			}
			if host == "*" {
				host = ""
			}
			if listen, err = joinPort(host, p); err != nil {
				return "", "", b.Errorf("bind %q: %v", a, err)
			}
			port = p
			f.note(config.KeyFrontendListen, fmt.Sprintf("bind %s (%s)", a, hloc(b)))
		}
		for k := 2; k < len(b.Words); k++ {
			w := b.Words[k]
			switch w {
			case "ssl":
				f.note(config.KeyFrontendListen, "WARNING: "+notCarried(hloc(b), "ssl", "haproxy terminated TLS here; vrrplb passes the client's TLS through to the backends untouched"))
			case "accept-proxy":
				f.note(config.KeyFrontendListen, notCarried(hloc(b), w, "vrrplb does not read the PROXY protocol"))
			case "crt", "ca-file", "interface", "name", "process", "maxconn", "backlog", "mss", "alpn", "ciphers", "crt-list", "namespace", "nice", "tcp-ut", "mode", "user", "group", "id", "thread":
				f.note(config.KeyFrontendListen, notCarried(hloc(b), w+" "+wordAt(b.Words, k+1), "a bind option vrrplb does not set"))
				k++
			default:
				f.note(config.KeyFrontendListen, notCarried(hloc(b), w, "a bind option vrrplb does not set"))
			}
		}
	}
	return listen, port, nil
}

// hapListen writes a bind address as a listen address, or as it is when it
// is not one.
func hapListen(a string) string {
	host, port, err := splitHaproxyAddr(strings.TrimPrefix(strings.TrimPrefix(a, "ipv4@"), "ipv6@"))
	if err != nil || port == "" {
		return a
	}
	if host == "*" {
		host = ""
	}
	l, err := joinPort(host, port)
	if err != nil {
		return a
	}
	return l
}

func wordAt(w []string, i int) string {
	if i < len(w) {
		return w[i]
	}
	return ""
}

// hapServer is what a server line says about checks.
type hapServer struct {
	check    bool
	checkSSL bool
	inter    time.Duration
	fall     int
	rise     int
	verify   string
	caFile   string
	sni      string
	at       string
	disabled bool
}

// hapServerArgs are the server options that take an argument and are not
// carried over, with the reason.
var hapServerArgs = map[string]string{
	"fastinter": "vrrplb checks every interval, up or down", "downinter": "vrrplb checks every interval, up or down",
	"port": "no vrrplb equivalent", "addr": "no vrrplb equivalent", "maxconn": "no vrrplb equivalent", "maxqueue": "vrrplb queues no connections",
	"minconn": "no vrrplb equivalent", "slowstart": "no vrrplb equivalent", "id": "no vrrplb equivalent", "cookie": "no vrrplb equivalent",
	"agent-port": "no vrrplb equivalent", "agent-inter": "no vrrplb equivalent", "agent-check": "no vrrplb equivalent", "resolvers": "no vrrplb equivalent",
	"init-addr": "no vrrplb equivalent", "on-error": "no vrrplb equivalent", "error-limit": "no vrrplb equivalent",
	"on-marked-down": "no vrrplb equivalent", "on-marked-up": "no vrrplb equivalent", "observe": "no vrrplb equivalent",
	"pool-max-conn": "no vrrplb equivalent", "pool-purge-delay": "no vrrplb equivalent", "source": "no vrrplb equivalent",
	"alpn": "no vrrplb equivalent", "check-alpn": "no vrrplb equivalent", "crt": "no vrrplb equivalent", "ciphers": "no vrrplb equivalent",
	"proto": "no vrrplb equivalent", "check-proto": "no vrrplb equivalent", "namespace": "no vrrplb equivalent",
	"resolve-prefer": "no vrrplb equivalent", "resolve-opts": "no vrrplb equivalent", "resolve-net": "no vrrplb equivalent",
	"max-reuse": "no vrrplb equivalent", "check-via-socks4": "no vrrplb equivalent", "socks4": "no vrrplb equivalent",
	"tcp-ut": "no vrrplb equivalent", "track": "no vrrplb equivalent", "redir": "no vrrplb equivalent",
}

// hapServerOptions reads server options (or those of a default-server line)
// into srv; for names what they apply to in notes ("for 10.0.0.1:6443").
func hapServerOptions(f *frontend, srv *hapServer, l *haproxy.Line, words []string, name, forWhat string) error {
	note := func(text string) { f.note(config.KeyFrontendBackends, text) }
	for i := 0; i < len(words); i++ {
		w, next := words[i], wordAt(words, i+1)
		if why, ok := hapServerArgs[w]; ok {
			note(notCarried(hloc(l), w+" "+next+" "+forWhat, why))
			i++
			continue
		}
		var err error
		switch w {
		case "check":
			srv.check = true
		case "no-check":
			srv.check = false
		case "check-ssl":
			srv.checkSSL = true
		case "inter":
			srv.inter, err = parseHaproxyTime(next)
			if err == nil && srv.inter <= 0 {
				err = fmt.Errorf("must be above 0")
			}
			i++
		case "fall", "rise":
			n, aerr := strconv.Atoi(next)
			if aerr != nil || n < 1 {
				err = fmt.Errorf("must be a number, 1 or more")
			}
			if w == "fall" {
				srv.fall = n
			} else {
				srv.rise = n
			}
			i++
		case "verify", "ca-file", "sni", "check-sni":
			srv.setTLS(w, next)
			i++
		case "weight":
			if next != "1" {
				note(notCarried(hloc(l), "weight "+next+" "+forWhat, "vrrplb balances all backends alike"))
			}
			i++
		case "backup":
			note(notCarried(hloc(l), "backup "+forWhat, "vrrplb has no backup role: it is a backend like the others"))
		case "disabled":
			note(notCarried(hloc(l), hline(l), "disabled in haproxy, so left out of backends"))
			srv.disabled = true
		case "send-proxy", "send-proxy-v2":
			note("WARNING: " + notCarried(hloc(l), w+" "+forWhat, "vrrplb sends no PROXY protocol header: the backend must stop expecting one"))
		case "ssl":
			note("WARNING: " + notCarried(hloc(l), "ssl "+forWhat, "vrrplb does not originate TLS: the client's TLS passes through"))
		default:
			note(notCarried(hloc(l), w+" "+forWhat, "no vrrplb equivalent"))
		}
		if err != nil {
			return l.Errorf("%s: %s %q: %v", name, w, next, err)
		}
	}
	return nil
}

func (srv *hapServer) setTLS(option, value string) {
	switch option {
	case "verify":
		srv.verify = value
	case "ca-file":
		srv.caFile = value
	default:
		srv.sni = value
	}
}

func hapServers(f *frontend, be *hapProxy, bindPort string) ([]hapServer, error) {
	// default-server lines are read once: their notes stand at their own line.
	var template hapServer
	for _, d := range be.defaultSrv {
		if err := hapServerOptions(f, &template, d, d.Words[1:], "default-server", "(default-server)"); err != nil {
			return nil, err
		}
	}
	var out []hapServer
	for _, l := range be.servers {
		if len(l.Words) < 3 {
			return nil, l.Errorf("server needs a name and an address")
		}
		addr, err := hapServerAddr(f, l, bindPort)
		if err != nil {
			return nil, err
		}
		srv := template
		srv.disabled = false
		srv.at = hloc(l)
		if err := hapServerOptions(f, &srv, l, l.Words[3:], "server "+l.Words[1], "for "+addr); err != nil {
			return nil, err
		}
		if srv.disabled {
			continue
		}
		if slices.Contains(f.backends, addr) {
			f.note(config.KeyFrontendBackends, notCarried(hloc(l), "server "+l.Words[1]+" at "+addr, "another server has that address; vrrplb lists a backend once"))
			continue
		}
		f.backends = append(f.backends, addr)
		out = append(out, srv)
	}
	if len(f.backends) == 0 {
		return nil, fmt.Errorf("%s: frontend %q has no usable server", f.at, f.name)
	}
	return out, nil
}

// hapServerAddr reads a server's address; one without a port takes the bind's.
func hapServerAddr(f *frontend, l *haproxy.Line, bindPort string) (string, error) {
	host, port, err := splitHaproxyAddr(strings.TrimPrefix(strings.TrimPrefix(l.Words[2], "ipv4@"), "ipv6@"))
	if err != nil || host == "" {
		return "", l.Errorf("server %s: address %q: needs host:port", l.Words[1], l.Words[2])
	}
	if port == "" {
		port = bindPort
		f.note(config.KeyFrontendBackends, fmt.Sprintf("server %s at %s has no port: haproxy used the client's destination port, %s", l.Words[1], hloc(l), port))
	}
	addr, err := joinPort(host, port)
	if err != nil {
		return "", l.Errorf("server %s: address %q: %v", l.Words[1], l.Words[2], err)
	}
	return addr, nil
}

func hapBalance(f *frontend, be *hapProxy) {
	if be.balance == nil {
		f.balance = "roundrobin"
		f.note(config.KeyFrontendBalance, "haproxy's default: roundrobin")
		return
	}
	l := be.balance
	switch l.Words[1] {
	case "roundrobin", "leastconn", "source":
		f.balance = l.Words[1]
		f.note(config.KeyFrontendBalance, fmt.Sprintf("%s (%s)", hline(l), hloc(l)))
	case "static-rr":
		f.balance = "roundrobin"
		f.note(config.KeyFrontendBalance, fmt.Sprintf("%s (%s): the same without weights", hline(l), hloc(l)))
	case "random":
		f.balance = "random2"
		f.note(config.KeyFrontendBalance, fmt.Sprintf("%s (%s): the less loaded of two random backends", hline(l), hloc(l)))
	default:
		f.balance = "roundrobin"
		f.note(config.KeyFrontendBalance, notCarried(hloc(l), hline(l), "vrrplb balances by leastconn, roundrobin, source or random2"))
	}
}

func hapTimeouts(f *frontend, fe, be *hapProxy) {
	if d, ok := be.timeouts["connect"]; ok && d > 0 {
		f.connectTimeout = &d
		f.note(config.KeyFrontendConnectTimeout, fmt.Sprintf("timeout connect (%s)", be.timeoutAt["connect"]))
	} else if ok {
		f.notes = append(f.notes, notCarried(be.timeoutAt["connect"], "timeout connect 0", "no connect timeout at all; vrrplb's connect_timeout is 1s unless set"))
	}
	// In TCP mode a connection idle longer than timeout client (frontend
	// side) or timeout server (backend side) is closed; timeout tunnel,
	// when set, replaces both. vrrplb writes no idle timeout and says which
	// one it leaves out.
	var from []string
	if d, ok := be.timeouts["tunnel"]; ok {
		from = []string{"timeout tunnel " + config.FormatDuration(d) + " (" + be.timeoutAt["tunnel"] + ")"}
	} else {
		if c, ok := fe.timeouts["client"]; ok {
			from = append(from, "timeout client "+config.FormatDuration(c)+" ("+fe.timeoutAt["client"]+")")
		}
		if s, ok := be.timeouts["server"]; ok {
			from = append(from, "timeout server "+config.FormatDuration(s)+" ("+be.timeoutAt["server"]+")")
		}
	}
	zero := time.Duration(0)
	f.idleTimeout = &zero
	if len(from) > 0 {
		f.note(config.KeyFrontendIdleTimeout, fmt.Sprintf("not %s: haproxy closed a connection idle that long, which cuts kubectl get -w, logs -f and exec; 0s (none) is what watches need, and tcp_keepalive finds dead peers instead", joinAnd(from)))
	} else {
		f.note(config.KeyFrontendIdleTimeout, "none: no timeout client, server or tunnel in the input; 0s keeps watches open")
	}
	if be.retries != nil {
		r := min(*be.retries, max(len(f.backends)-1, 0))
		f.retries = &r
		f.note(config.KeyFrontendRetries, fmt.Sprintf("retries %d (%s): haproxy retried the same server; vrrplb tries another healthy backend each time, at most the other %s", *be.retries, be.retriesAt, plural(len(f.backends)-1, "backend", "backends")))
	}
}

func hapHealth(f *frontend, be *hapProxy, srv []hapServer) error {
	h := &f.health
	anyCheck, ssl := false, false
	first := hapServer{}
	for _, s := range srv {
		if s.check {
			if !anyCheck {
				first = s
			}
			anyCheck = true
			ssl = ssl || s.checkSSL
		}
	}
	if be.checkConnect != nil {
		for _, w := range be.checkConnect.Words[2:] {
			if w == "ssl" {
				ssl = true
			}
		}
	}
	apiservers := allOnPort(f.backends, apiserverPort)
	var desc string
	switch {
	case !anyCheck:
		desc = "haproxy had no check on these servers"
		h.typ = "none"
	case be.httpchk != nil:
		h.typ = "http"
		if ssl {
			h.typ = "https"
		}
		if err := hapHTTPHealth(h, be, ssl); err != nil {
			return err
		}
	case be.sslHello != nil || ssl:
		desc = "haproxy's check was a TLS handshake"
		h.typ = "tls"
	default:
		desc = "haproxy's check was a TCP connect"
		h.typ = "tcp"
	}
	if desc != "" {
		if apiservers {
			h.apiserverDefault()
			h.notes = append(h.notes, desc+": it sees a port open, not an apiserver ready to serve; vrrplb checks https GET /readyz, its default for apiservers on :6443")
		} else {
			h.notes = append(h.notes, desc+" (backends not on :6443, so kept)")
		}
	}
	if h.typ == "https" || h.typ == "tls" {
		hapTLSHealth(h, first)
	}
	if anyCheck {
		hapHealthTiming(h, be, first)
	}
	return nil
}

// hapHTTPHealth carries option httpchk: the path, and the status expected
// from http-check expect status (200 when there is none).
func hapHTTPHealth(h *health, be *hapProxy, ssl bool) error {
	path, err := hapCheckPath(be)
	if err != nil {
		return err
	}
	h.path = path
	h.expectStatus = []int{200}
	if be.checkExpect != nil {
		w := be.checkExpect.Words
		if len(w) == 4 && w[2] == "status" {
			if n, err := strconv.Atoi(w[3]); err == nil && n >= 100 && n <= 599 {
				h.expectStatus = []int{n}
			} else {
				h.notes = append(h.notes, notCarried(hloc(be.checkExpect), hline(be.checkExpect), "vrrplb expects exact status codes"))
			}
		} else {
			h.notes = append(h.notes, notCarried(hloc(be.checkExpect), hline(be.checkExpect), "vrrplb checks the status code only"))
		}
	} else {
		h.notes = append(h.notes, "haproxy took any 2xx or 3xx; vrrplb expects 200, what /readyz answers when ready")
	}
	h.notes = append(h.notes, fmt.Sprintf("option httpchk (%s)%s", hloc(be.httpchk), map[bool]string{true: " over TLS (check-ssl or http-check connect ssl)", false: ""}[ssl]))
	return nil
}

// hapTLSHealth carries the first checked server's verify, ca-file and sni
// into a TLS or HTTPS check.
func hapTLSHealth(h *health, first hapServer) {
	if first.verify == "required" && first.caFile != "" {
		h.caFile = first.caFile
	} else if first.verify == "required" {
		h.notes = append(h.notes, "verify required without ca-file: set ca_file to verify the backends' certificates")
	}
	h.serverName = first.sni
}

// hapHealthTiming carries inter, rise and fall of the first checked server
// (haproxy's defaults where it has none) and timeout check.
func hapHealthTiming(h *health, be *hapProxy, first hapServer) {
	h.interval, h.rise, h.fall = hapDefaultInter, hapDefaultRise, hapDefaultFall
	if first.inter > 0 {
		h.interval = first.inter
	}
	if first.rise > 0 {
		h.rise = first.rise
	}
	if first.fall > 0 {
		h.fall = first.fall
	}
	if d, ok := be.timeouts["check"]; ok {
		h.timeout = min(d, h.interval)
	}
	h.notes = append(h.notes, fmt.Sprintf("interval, rise and fall from the server lines (haproxy's defaults: inter %s, rise %d, fall %d)", config.FormatDuration(hapDefaultInter), hapDefaultRise, hapDefaultFall))
}

// hapCheckPath finds the path of an HTTP check: http-check send uri, or
// option httpchk [METHOD] URI [VERSION].
func hapCheckPath(be *hapProxy) (string, error) {
	if be.checkSend != nil {
		w := be.checkSend.Words
		for i := 2; i+1 < len(w); i++ {
			if w[i] == "uri" {
				if !strings.HasPrefix(w[i+1], "/") {
					return "", be.checkSend.Errorf("http-check send uri %q: not a path", w[i+1])
				}
				return w[i+1], nil
			}
		}
	}
	w := be.httpchk.Words[2:]
	path := "/"
	switch len(w) {
	case 0:
	case 1:
		path = w[0]
	default:
		path = w[1]
	}
	if !strings.HasPrefix(path, "/") {
		return "", be.httpchk.Errorf("option httpchk: %q is not a path", path)
	}
	return path, nil
}

// splitHaproxyAddr splits haproxy's ADDR[:PORT] where an IPv6 address may
// stand without brackets (the port is after the last colon).
func splitHaproxyAddr(a string) (host, port string, err error) {
	if strings.HasPrefix(a, "[") || strings.Count(a, ":") == 1 {
		return net.SplitHostPort(a)
	}
	if strings.Count(a, ":") == 0 {
		return a, "", nil
	}
	i := strings.LastIndexByte(a, ':')
	return a[:i], a[i+1:], nil
}

// parseHaproxyTime reads a haproxy time: a number of milliseconds, or a
// number with a unit (us, ms, s, m, h, d).
func parseHaproxyTime(s string) (time.Duration, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 12 {
		return 0, fmt.Errorf("not a time")
	}
	n, _ := strconv.ParseInt(s[:i], 10, 64)
	units := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	u, ok := units[s[i:]]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", s[i:])
	}
	return time.Duration(n) * u, nil
}
