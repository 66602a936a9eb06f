package config

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Render writes cfg as TOML with every key spelled out, defaults included:
// what `vrrplb check` prints, and a file that parses back to the same Config.
func Render(w io.Writer, cfg *Config) error {
	var b strings.Builder
	p := func(indent, key string, value string) {
		fmt.Fprintf(&b, "%s%s = %s\n", indent, key, value)
	}

	b.WriteString("[admin]\n")
	p("", "listen", quote(cfg.Admin.Listen))
	b.WriteString("\n[log]\n")
	p("", "level", quote(strings.ToLower(cfg.Log.Level.String())))
	p("", "format", quote(string(cfg.Log.Format)))
	b.WriteString("\n[scripts]\n")
	p("", "user", quote(cfg.Scripts.User))

	for _, in := range cfg.Instances {
		b.WriteString("\n[[instance]]\n")
		p("", "name", quote(in.Name))
		p("", "interface", quote(in.Interface))
		p("", "virtual_router_id", strconv.Itoa(int(in.VirtualRouterID)))
		p("", "priority", strconv.Itoa(int(in.Priority)))
		p("", "version", strconv.Itoa(in.Version))
		p("", "advert_interval", duration(in.AdvertInterval))
		p("", "preempt", strconv.FormatBool(in.Preempt))
		p("", "preempt_delay", duration(in.PreemptDelay))
		p("", "virtual_ips", list(in.VirtualIPs, func(v netip.Prefix) string { return quote(vipString(v)) }))
		src := ""
		if in.SourceIP.IsValid() {
			src = in.SourceIP.String()
		}
		p("", "source_ip", quote(src))
		p("", "unicast_peers", list(in.UnicastPeers, func(a netip.Addr) string { return quote(a.String()) }))
		p("", "auth_pass", quote(in.AuthPass))
		p("", "garp_repeat", strconv.Itoa(in.GARPRepeat))
		p("", "garp_interval", duration(in.GARPInterval))
		p("", "garp_refresh", duration(in.GARPRefresh))
		p("", "notify", list(in.Notify, quote))
		for _, tf := range in.TrackFrontends {
			b.WriteString("\n  [[instance.track_frontend]]\n")
			p("  ", "name", quote(tf.Name))
			p("  ", "weight", strconv.Itoa(tf.Weight))
		}
		for _, ts := range in.TrackScripts {
			b.WriteString("\n  [[instance.track_script]]\n")
			p("  ", "command", list(ts.Command, quote))
			p("  ", "interval", duration(ts.Interval))
			p("  ", "timeout", duration(ts.Timeout))
			p("  ", "fall", strconv.Itoa(ts.Fall))
			p("  ", "rise", strconv.Itoa(ts.Rise))
			p("  ", "weight", strconv.Itoa(ts.Weight))
		}
		for _, ti := range in.TrackInterfaces {
			b.WriteString("\n  [[instance.track_interface]]\n")
			p("  ", "name", quote(ti.Name))
			p("  ", "weight", strconv.Itoa(ti.Weight))
		}
	}

	for _, fe := range cfg.Frontends {
		b.WriteString("\n[[frontend]]\n")
		p("", "name", quote(fe.Name))
		p("", "listen", quote(fe.Listen))
		p("", "balance", quote(string(fe.Balance)))
		p("", "backends", list(fe.Backends, quote))
		p("", "connect_timeout", duration(fe.ConnectTimeout))
		p("", "retries", strconv.Itoa(fe.Retries))
		p("", "idle_timeout", duration(fe.IdleTimeout))
		p("", "tcp_keepalive", duration(fe.TCPKeepAlive))
		p("", "drain_timeout", duration(fe.DrainTimeout))
		p("", "close_on_backend_down", strconv.FormatBool(fe.CloseOnBackendDown))
		p("", "max_connections", strconv.Itoa(fe.MaxConnections))
		h := fe.Health
		b.WriteString("\n  [frontend.health]\n")
		p("  ", "type", quote(string(h.Type)))
		p("  ", "path", quote(h.Path))
		p("  ", "expect_status", list(h.ExpectStatus, strconv.Itoa))
		p("  ", "interval", duration(h.Interval))
		p("  ", "timeout", duration(h.Timeout))
		p("  ", "rise", strconv.Itoa(h.Rise))
		p("  ", "fall", strconv.Itoa(h.Fall))
		p("  ", "ca_file", quote(h.CAFile))
		p("  ", "server_name", quote(h.ServerName))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// vipString writes a host VIP (/32, /128) as a bare address, as people write it.
func vipString(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

func quote(s string) string { return TOMLString(s) }

func duration(d time.Duration) string { return quote(FormatDuration(d)) }

func list[T any](vs []T, f func(T) string) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = f(v)
	}
	return "[" + strings.Join(s, ", ") + "]"
}
