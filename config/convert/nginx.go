package convert

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/config/nginx"
)

// nginx's defaults that matter to a mapping.
const (
	ngxDefaultConnectTimeout = 60 * time.Second
	ngxDefaultProxyTimeout   = 10 * time.Minute
)

// proxyResult is what an nginx or haproxy configuration contributes.
type proxyResult struct {
	header    []string
	frontends []*frontend
}

func nloc(d *nginx.Directive) string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

func nline(d *nginx.Directive) string {
	return strings.TrimSpace(d.Name + " " + strings.Join(d.Args, " "))
}

// ngxUpstream is an upstream block.
type ngxUpstream struct {
	d        *nginx.Directive
	servers  []string
	balance  string
	notes    []string // on the frontend
	bnotes   []string // on the balance key
	maxFails []string // max_fails/fail_timeout as written, with location
	fall     int      // from max_fails; 0 when not set
}

// ngxSettings are the stream-level directives a server block inherits.
type ngxSettings struct {
	connectTimeout *time.Duration
	connectAt      string
	proxyTimeout   *time.Duration
	timeoutAt      string
	nextUpstream   bool
	tries          int
}

func fromNginx(ds []*nginx.Directive) (*proxyResult, error) {
	res := &proxyResult{}
	var stream []*nginx.Directive
	var mainNames []string
	for _, d := range ds {
		switch d.Name {
		case "stream":
			stream = append(stream, d.Children...)
		case "upstream", "server":
			stream = append(stream, d) // a file included inside stream { }
		case "http", "events", "mail":
			res.header = append(res.header, notCarried(nloc(d), d.Name+" { }", "vrrplb is a TCP proxy: only stream { } is read"))
		default:
			mainNames = append(mainNames, d.Name)
		}
	}
	if len(mainNames) > 0 {
		res.header = append(res.header, fmt.Sprintf("not carried over: nginx's process settings (%s): vrrplb is one process; its systemd unit or static pod sets user and limits", strings.Join(dedupe(mainNames), ", ")))
	}

	upstreams := map[string]*ngxUpstream{}
	set := ngxSettings{nextUpstream: true}
	var servers []*nginx.Directive
	var logNames []string
	for _, d := range stream {
		var err error
		switch d.Name {
		case "upstream":
			if len(d.Args) != 1 {
				return nil, d.Errorf("upstream needs one name")
			}
			if _, dup := upstreams[d.Args[0]]; dup {
				return nil, d.Errorf("duplicate upstream %q", d.Args[0])
			}
			u, err := ngxReadUpstream(d)
			if err != nil {
				return nil, err
			}
			upstreams[d.Args[0]] = u
		case "server":
			servers = append(servers, d)
		case "access_log", "error_log", "log_format", "open_log_file_cache":
			logNames = append(logNames, d.Name)
		default:
			var handled bool
			handled, err = ngxSetting(d, &set)
			if !handled {
				res.header = append(res.header, notCarried(nloc(d), nline(d), "a stream setting with no vrrplb equivalent"))
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if len(logNames) > 0 {
		res.header = append(res.header, fmt.Sprintf("not carried over: stream %s (vrrplb logs transitions and errors; per-connection facts are Prometheus metrics at [admin] listen /metrics)", strings.Join(dedupe(logNames), ", ")))
	}

	taken := map[string]bool{}
	for _, s := range servers {
		fs, err := ngxServer(s, set, upstreams, taken)
		if err != nil {
			return nil, err
		}
		res.frontends = append(res.frontends, fs...)
	}
	if len(stream) > 0 && len(servers) == 0 {
		res.header = append(res.header, "nginx: stream { } has no server block: no frontend to convert")
	}
	return res, nil
}

// ngxSetting applies a proxy_* directive valid in stream and server blocks.
func ngxSetting(d *nginx.Directive, set *ngxSettings) (bool, error) {
	var err error
	switch d.Name {
	case "proxy_connect_timeout":
		var t time.Duration
		t, err = ngxTimeArg(d)
		if err == nil && t <= 0 {
			err = d.Errorf("proxy_connect_timeout %q: must be above 0", d.Args[0])
		}
		set.connectTimeout = &t
		set.connectAt = nloc(d)
	case "proxy_timeout":
		var t time.Duration
		t, err = ngxTimeArg(d)
		set.proxyTimeout = &t
		set.timeoutAt = nloc(d)
	case "proxy_next_upstream":
		if len(d.Args) != 1 || (d.Args[0] != "on" && d.Args[0] != "off") {
			return true, d.Errorf(`proxy_next_upstream takes "on" or "off"`)
		}
		set.nextUpstream = d.Args[0] == "on"
	case "proxy_next_upstream_tries":
		if len(d.Args) != 1 {
			return true, d.Errorf("proxy_next_upstream_tries takes one number")
		}
		set.tries, err = strconv.Atoi(d.Args[0])
		if err != nil || set.tries < 0 {
			return true, d.Errorf("proxy_next_upstream_tries %q: must be a number", d.Args[0])
		}
	default:
		return false, nil
	}
	return true, err
}

func ngxReadUpstream(d *nginx.Directive) (*ngxUpstream, error) {
	u := &ngxUpstream{d: d, balance: "roundrobin"}
	u.bnotes = []string{"nginx's default: weighted round robin"}
	for _, c := range d.Children {
		switch c.Name {
		case "server":
			if err := ngxUpstreamServer(c, u); err != nil {
				return nil, err
			}
		case "least_conn":
			u.balance, u.bnotes = "leastconn", []string{fmt.Sprintf("least_conn (%s)", nloc(c))}
		case "hash":
			if len(c.Args) >= 1 && c.Args[0] == "$remote_addr" {
				u.balance = "source"
				u.bnotes = []string{fmt.Sprintf("%s (%s): vrrplb's source is a consistent hash of the client address", nline(c), nloc(c))}
			} else {
				u.balance = "roundrobin"
				u.bnotes = []string{notCarried(nloc(c), nline(c), "vrrplb hashes only the client address (balance = \"source\")")}
			}
		case "random":
			u.balance = "random2"
			switch {
			case len(c.Args) >= 1 && c.Args[0] == "two":
				u.bnotes = []string{fmt.Sprintf("%s (%s): the less loaded of two random backends", nline(c), nloc(c))}
			default:
				u.bnotes = []string{fmt.Sprintf("%s (%s): vrrplb has no plain random; random2 picks the less loaded of two random backends", nline(c), nloc(c))}
			}
		default:
			u.notes = append(u.notes, notCarried(nloc(c), nline(c), "an upstream setting with no vrrplb equivalent"))
		}
	}
	if len(u.servers) == 0 {
		return nil, d.Errorf("upstream %q has no usable server", d.Args[0])
	}
	return u, nil
}

func ngxUpstreamServer(c *nginx.Directive, u *ngxUpstream) error {
	if len(c.Args) == 0 {
		return c.Errorf("server needs an address")
	}
	addr := c.Args[0]
	if strings.HasPrefix(addr, "unix:") {
		u.notes = append(u.notes, notCarried(nloc(c), nline(c), "vrrplb connects to TCP backends only"))
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return c.Errorf("server %q: needs host:port (nginx stream has no default port)", addr)
	}
	addr, err = joinPort(host, port)
	if err != nil {
		return c.Errorf("server %q: %v", c.Args[0], err)
	}
	down := false
	for _, p := range c.Args[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "weight":
			if v != "1" {
				u.notes = append(u.notes, notCarried(nloc(c), p+" for "+addr, "vrrplb balances all backends alike"))
			}
		case "max_fails":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return c.Errorf("server %s: %s: must be a number", addr, p)
			}
			if n > 0 && u.fall == 0 {
				u.fall = n
			}
			u.maxFails = append(u.maxFails, p)
		case "fail_timeout":
			u.maxFails = append(u.maxFails, p)
		case "backup":
			u.notes = append(u.notes, notCarried(nloc(c), "backup for "+addr, "vrrplb has no backup role: it is a backend like the others and takes its share while healthy"))
		case "down":
			u.notes = append(u.notes, notCarried(nloc(c), nline(c), "marked down in nginx, so left out of backends"))
			down = true
		default:
			u.notes = append(u.notes, notCarried(nloc(c), p+" for "+addr, "no vrrplb equivalent"))
		}
	}
	switch {
	case down:
	case slices.Contains(u.servers, addr):
		u.notes = append(u.notes, notCarried(nloc(c), "a second server "+addr, "vrrplb lists a backend once"))
	default:
		u.servers = append(u.servers, addr)
	}
	return nil
}

// ngxServer maps one stream server { } to a frontend per listen.
func ngxServer(s *nginx.Directive, inherited ngxSettings, upstreams map[string]*ngxUpstream, taken map[string]bool) ([]*frontend, error) {
	set := inherited
	var listens []*nginx.Directive
	var pass *nginx.Directive
	var notes []string
	for _, c := range s.Children {
		switch c.Name {
		case "listen":
			if len(c.Args) == 0 {
				return nil, c.Errorf("listen needs an address")
			}
			listens = append(listens, c)
		case "proxy_pass":
			if len(c.Args) != 1 {
				return nil, c.Errorf("proxy_pass takes one upstream or address")
			}
			pass = c
		default:
			handled, err := ngxSetting(c, &set)
			if err != nil {
				return nil, err
			}
			if !handled {
				notes = append(notes, notCarried(nloc(c), nline(c), "no vrrplb equivalent"))
			}
		}
	}
	if len(listens) == 0 {
		return nil, s.Errorf(`no "listen" is defined for server`)
	}
	if pass == nil {
		return nil, s.Errorf("server has no proxy_pass: nothing to convert")
	}
	var backends []string
	var up *ngxUpstream
	name := ""
	if u, ok := upstreams[pass.Args[0]]; ok {
		up = u
		backends = u.servers
		name = pass.Args[0]
	} else {
		host, port, err := net.SplitHostPort(pass.Args[0])
		if err != nil || host == "" {
			return nil, pass.Errorf("proxy_pass %q: no upstream of that name and not host:port", pass.Args[0])
		}
		b, err := joinPort(host, port)
		if err != nil {
			return nil, pass.Errorf("proxy_pass %q: %v", pass.Args[0], err)
		}
		backends = []string{b}
	}

	var out []*frontend
	for _, l := range listens {
		listen, lnotes, skip, err := ngxListen(l)
		if err != nil {
			return nil, err
		}
		if skip != "" {
			out = append(out, nil)
			notes = append(notes, skip)
			continue
		}
		fname := name
		if fname == "" {
			_, port, _ := net.SplitHostPort(listen)
			fname = "stream-" + port
		}
		f := &frontend{at: nloc(s), name: uniqueName(fname, taken), listen: listen, backends: backends, balance: "roundrobin"}
		f.notes = append(f.notes, fmt.Sprintf("from nginx stream server at %s", nloc(s)))
		f.note(config.KeyFrontendListen, fmt.Sprintf("listen %s (%s)", strings.Join(l.Args, " "), nloc(l)))
		for _, n := range lnotes {
			f.note(config.KeyFrontendListen, n)
		}
		if up != nil {
			f.balance = up.balance
			for _, n := range up.bnotes {
				f.note(config.KeyFrontendBalance, n)
			}
			f.note(config.KeyFrontendBackends, fmt.Sprintf("upstream %s (%s)", name, nloc(up.d)))
			for _, n := range up.notes {
				f.note(config.KeyFrontendBackends, n)
			}
		}
		ngxTimeouts(f, set)
		ngxHealth(f, up)
		f.notes = append(f.notes, notes...)
		out = append(out, f)
	}
	var kept []*frontend
	for _, f := range out {
		if f != nil {
			kept = append(kept, f)
		}
	}
	if len(kept) == 0 {
		return nil, nil
	}
	// Notes about skipped listens go on the first frontend kept.
	kept[0].notes = dedupe(kept[0].notes)
	return kept, nil
}

// ngxListen maps a listen directive to vrrplb's listen; skip says why the
// listen cannot be carried over at all.
func ngxListen(l *nginx.Directive) (listen string, notes []string, skip string, err error) {
	addr := l.Args[0]
	host, port := "", addr
	switch {
	case strings.HasPrefix(addr, "unix:"):
		return "", nil, notCarried(nloc(l), nline(l), "vrrplb listens on TCP only"), nil
	case strings.ContainsAny(addr, ":"):
		if host, port, err = net.SplitHostPort(addr); err != nil {
			return "", nil, "", l.Errorf("listen %q: not host:port", addr)
		}
		if host == "*" {
			host = ""
		}
	}
	if listen, err = joinPort(host, port); err != nil {
		return "", nil, "", l.Errorf("listen %q: %v", addr, err)
	}
	for _, p := range l.Args[1:] {
		switch {
		case p == "udp":
			return "", nil, notCarried(nloc(l), nline(l), "vrrplb proxies TCP only"), nil
		case p == "ssl":
			notes = append(notes, "WARNING: "+notCarried(nloc(l), "ssl", "nginx terminated TLS here; vrrplb passes the client's TLS through to the backends untouched, so clients now talk TLS to the backends directly"))
		case p == "proxy_protocol":
			notes = append(notes, notCarried(nloc(l), "proxy_protocol", "vrrplb does not read the PROXY protocol: whatever sends it must stop"))
		case strings.HasPrefix(p, "so_keepalive"):
			notes = append(notes, notCarried(nloc(l), p, "vrrplb sets tcp_keepalive on both sides (default 30s)"))
		default:
			notes = append(notes, notCarried(nloc(l), p, "a socket option vrrplb does not set"))
		}
	}
	return listen, notes, "", nil
}

func ngxTimeouts(f *frontend, set ngxSettings) {
	if set.connectTimeout != nil {
		f.connectTimeout = set.connectTimeout
		f.note(config.KeyFrontendConnectTimeout, fmt.Sprintf("proxy_connect_timeout (%s)", set.connectAt))
	} else {
		f.notes = append(f.notes, fmt.Sprintf("nginx's default proxy_connect_timeout was %s; vrrplb's default connect_timeout (1s) gives up on a dead apiserver sooner and tries the next one", config.FormatDuration(ngxDefaultConnectTimeout)))
	}
	zero := time.Duration(0)
	if set.proxyTimeout != nil {
		f.idleTimeout = &zero
		f.note(config.KeyFrontendIdleTimeout, fmt.Sprintf("not proxy_timeout %s (%s): nginx closed a connection idle that long, which cuts kubectl get -w, logs -f and exec; 0s (none) is what watches need, and tcp_keepalive finds dead peers instead", config.FormatDuration(*set.proxyTimeout), set.timeoutAt))
	} else {
		f.idleTimeout = &zero
		f.note(config.KeyFrontendIdleTimeout, fmt.Sprintf("none: nginx's default proxy_timeout %s cut kubectl get -w, logs -f and exec after %s idle; vrrplb's default 0s (none) keeps them open", config.FormatDuration(ngxDefaultProxyTimeout), config.FormatDuration(ngxDefaultProxyTimeout)))
	}
	var r int
	switch {
	case !set.nextUpstream:
		r = 0
		f.note(config.KeyFrontendRetries, "proxy_next_upstream off: a failed connect is not retried")
	case set.tries > 0:
		r = min(set.tries-1, max(len(f.backends)-1, 0))
		f.note(config.KeyFrontendRetries, fmt.Sprintf("proxy_next_upstream_tries %d: the first try and %d more", set.tries, r))
	default:
		r = max(len(f.backends)-1, 0)
		f.note(config.KeyFrontendRetries, "nginx tries every other server after a failed connect (proxy_next_upstream on, proxy_next_upstream_tries 0)")
	}
	f.retries = &r
}

func ngxHealth(f *frontend, up *ngxUpstream) {
	h := &f.health
	if allOnPort(f.backends, apiserverPort) {
		h.apiserverDefault()
		h.notes = append(h.notes, "an active https GET /readyz check, vrrplb's default for apiservers on :6443: nginx's stream module had no active check and kept sending to an apiserver that accepted TCP but was not ready")
	} else {
		h.typ = "tcp"
		h.notes = append(h.notes, "backends not on :6443: a TCP connect check, nginx's own test of a server (set type = \"https\" and a path if they are apiservers)")
	}
	if up != nil && len(up.maxFails) > 0 {
		h.notes = append(h.notes, fmt.Sprintf("%s (%s): nginx marked a server failed after max_fails failed connects within fail_timeout and left it alone for fail_timeout; vrrplb checks every interval and also marks a backend down at once when a connect fails", strings.Join(dedupe(up.maxFails), " "), nloc(up.d)))
		if up.fall > 0 {
			h.fall = up.fall
		}
	}
}

// ngxTimeArg reads an nginx time: "30" (seconds), "500ms", "10m", "1m30s".
func ngxTimeArg(d *nginx.Directive) (time.Duration, error) {
	if len(d.Args) != 1 {
		return 0, d.Errorf("%s takes one time", d.Name)
	}
	t, err := parseNginxTime(d.Args[0])
	if err != nil {
		return 0, d.Errorf("%s %q: %v", d.Name, d.Args[0], err)
	}
	return t, nil
}

func parseNginxTime(s string) (time.Duration, error) {
	units := map[string]time.Duration{
		"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
		"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "M": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour,
	}
	if s == "" {
		return 0, fmt.Errorf("empty time")
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 {
			return 0, fmt.Errorf("not a time")
		}
		n, _ := strconv.Atoi(rest[:i])
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		unit := rest[:j]
		rest = rest[j:]
		if unit == "" {
			if rest != "" || total != 0 {
				return 0, fmt.Errorf("not a time")
			}
			unit = "s"
		}
		u, ok := units[unit]
		if !ok {
			return 0, fmt.Errorf("unknown unit %q", unit)
		}
		total += time.Duration(n) * u
		if total > 365*24*time.Hour*10 {
			return 0, fmt.Errorf("too long")
		}
	}
	return total, nil
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
