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
	// nameWeight writes an instance's [[instance.track_frontend]] or
	// [[instance.track_interface]].
	nameWeight := func(table, name string, weight int) {
		b.WriteString("\n")
		header(&b, "  ", Dotted(TableInstance, table), true)
		p("  ", KeyTrackName, quote(name))
		p("  ", KeyTrackWeight, strconv.Itoa(weight))
	}

	header(&b, "", TableAdmin, false)
	p("", KeyAdminListen, quote(cfg.Admin.Listen))
	p("", KeyAdminSocket, quote(cfg.Admin.Socket))
	b.WriteString("\n")
	header(&b, "", TableLog, false)
	p("", KeyLogLevel, quote(strings.ToLower(cfg.Log.Level.String())))
	p("", KeyLogFormat, quote(string(cfg.Log.Format)))
	b.WriteString("\n")
	header(&b, "", TableScripts, false)
	p("", KeyScriptsUser, quote(cfg.Scripts.User))

	for _, in := range cfg.Instances {
		b.WriteString("\n")
		header(&b, "", TableInstance, true)
		p("", KeyInstanceName, quote(in.Name))
		p("", KeyInstanceInterface, quote(in.Interface))
		p("", KeyInstanceVirtualRouterID, strconv.Itoa(int(in.VirtualRouterID)))
		p("", KeyInstancePriority, strconv.Itoa(int(in.Priority)))
		p("", KeyInstanceVersion, strconv.Itoa(in.Version))
		p("", KeyInstanceAdvertInterval, duration(in.AdvertInterval))
		p("", KeyInstancePreempt, strconv.FormatBool(in.Preempt))
		p("", KeyInstancePreemptDelay, duration(in.PreemptDelay))
		p("", KeyInstanceVirtualIPs, list(in.VirtualIPs, func(v netip.Prefix) string { return quote(vipString(v)) }))
		src := ""
		if in.SourceIP.IsValid() {
			src = in.SourceIP.String()
		}
		p("", KeyInstanceSourceIP, quote(src))
		p("", KeyInstanceUnicastPeers, list(in.UnicastPeers, func(a netip.Addr) string { return quote(a.String()) }))
		p("", KeyInstanceAuthPass, quote(in.AuthPass))
		p("", KeyInstanceGARPRepeat, strconv.Itoa(in.GARPRepeat))
		p("", KeyInstanceGARPInterval, duration(in.GARPInterval))
		p("", KeyInstanceGARPRefresh, duration(in.GARPRefresh))
		p("", KeyInstanceNotify, list(in.Notify, quote))
		p("", KeyInstanceTakeoverReset, strconv.FormatBool(in.TakeoverReset))
		p("", KeyInstanceTakeoverKeyFile, quote(in.TakeoverKeyFile))
		p("", KeyInstanceTakeoverPort, strconv.Itoa(int(in.TakeoverPort)))
		for _, tf := range in.TrackFrontends {
			nameWeight(TableTrackFrontend, tf.Name, tf.Weight)
		}
		for _, ts := range in.TrackScripts {
			b.WriteString("\n")
			header(&b, "  ", Dotted(TableInstance, TableTrackScript), true)
			p("  ", KeyTrackScriptCommand, list(ts.Command, quote))
			p("  ", KeyTrackScriptInterval, duration(ts.Interval))
			p("  ", KeyTrackScriptTimeout, duration(ts.Timeout))
			p("  ", KeyTrackScriptFall, strconv.Itoa(ts.Fall))
			p("  ", KeyTrackScriptRise, strconv.Itoa(ts.Rise))
			p("  ", KeyTrackWeight, strconv.Itoa(ts.Weight))
		}
		for _, ti := range in.TrackInterfaces {
			nameWeight(TableTrackInterface, ti.Name, ti.Weight)
		}
	}

	for _, fe := range cfg.Frontends {
		b.WriteString("\n")
		header(&b, "", TableFrontend, true)
		p("", KeyFrontendName, quote(fe.Name))
		p("", KeyFrontendListen, quote(fe.Listen))
		p("", KeyFrontendBalance, quote(string(fe.Balance)))
		p("", KeyFrontendBackends, list(fe.Backends, quote))
		p("", KeyFrontendConnectTimeout, duration(fe.ConnectTimeout))
		p("", KeyFrontendRetries, strconv.Itoa(fe.Retries))
		p("", KeyFrontendIdleTimeout, duration(fe.IdleTimeout))
		p("", KeyFrontendTCPKeepAlive, duration(fe.TCPKeepAlive))
		p("", KeyFrontendDrainTimeout, duration(fe.DrainTimeout))
		p("", KeyFrontendCloseOnBackendDown, strconv.FormatBool(fe.CloseOnBackendDown))
		p("", KeyFrontendMaxConnections, strconv.Itoa(fe.MaxConnections))
		p("", KeyFrontendFailOpen, strconv.FormatBool(fe.FailOpen))
		h := fe.Health
		b.WriteString("\n")
		header(&b, "  ", Dotted(TableFrontend, TableHealth), false)
		p("  ", KeyHealthType, quote(string(h.Type)))
		p("  ", KeyHealthPath, quote(h.Path))
		p("  ", KeyHealthExpectStatus, list(h.ExpectStatus, strconv.Itoa))
		p("  ", KeyHealthInterval, duration(h.Interval))
		p("  ", KeyHealthTimeout, duration(h.Timeout))
		p("  ", KeyHealthRise, strconv.Itoa(h.Rise))
		p("  ", KeyHealthFall, strconv.Itoa(h.Fall))
		p("  ", KeyHealthCAFile, quote(h.CAFile))
		p("  ", KeyHealthServerName, quote(h.ServerName))
		p("  ", KeyHealthCertFile, quote(h.CertFile))
		p("  ", KeyHealthKeyFile, quote(h.KeyFile))
	}
	renderBGP(&b, cfg, p)
	_, err := io.WriteString(w, b.String())
	return err
}

// renderBGP writes [bgp] (when configured) and the [[announce]]s.
func renderBGP(b *strings.Builder, cfg *Config, p func(indent, key, value string)) {
	addr := func(a netip.Addr) string {
		if !a.IsValid() {
			return quote("")
		}
		return quote(a.String())
	}
	if bg := cfg.BGP; bg.LocalASN != 0 {
		b.WriteString("\n")
		header(b, "", TableBGP, false)
		p("", KeyBGPLocalASN, strconv.FormatUint(uint64(bg.LocalASN), 10))
		p("", KeyBGPRouterID, addr(bg.RouterID))
		p("", KeyBGPHoldTime, duration(bg.HoldTime))
		p("", KeyBGPConnectRetry, duration(bg.ConnectRetry))
		p("", KeyBGPGracefulShutdown, duration(bg.GracefulShutdown))
		for _, peer := range bg.Peers {
			b.WriteString("\n")
			header(b, "  ", Dotted(TableBGP, TablePeer), true)
			p("  ", KeyPeerAddress, addr(peer.Address))
			p("  ", KeyPeerASN, strconv.FormatUint(uint64(peer.ASN), 10))
			p("  ", KeyPeerPort, strconv.Itoa(peer.Port))
			p("  ", KeyPeerPassword, quote(peer.Password))
			p("  ", KeyPeerSourceIP, addr(peer.SourceIP))
			p("  ", KeyPeerEBGPMultihop, strconv.Itoa(peer.EBGPMultihop))
		}
	}
	for _, a := range cfg.Announces {
		b.WriteString("\n")
		header(b, "", TableAnnounce, true)
		p("", KeyAnnounceName, quote(a.Name))
		p("", KeyAnnouncePrefixes, list(a.Prefixes, func(v netip.Prefix) string { return quote(v.String()) }))
		p("", KeyAnnounceCommunities, list(a.Communities, quote))
		p("", KeyAnnouncePrependWhenUnhealthy, strconv.Itoa(a.PrependWhenUnhealthy))
		for _, name := range a.TrackFrontends {
			b.WriteString("\n")
			header(b, "  ", Dotted(TableAnnounce, TableTrackFrontend), true)
			p("  ", KeyTrackName, quote(name))
		}
	}
}

// header writes a table header: [name], or [[name]] for an array element.
func header(b *strings.Builder, indent, name string, array bool) {
	if array {
		fmt.Fprintf(b, "%s[[%s]]\n", indent, name)
		return
	}
	fmt.Fprintf(b, "%s[%s]\n", indent, name)
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
