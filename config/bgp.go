package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults of [bgp] and [[announce]] (DESIGN.md).
const (
	DefaultBGPHoldTime          = 3 * time.Second
	DefaultBGPConnectRetry      = 2 * time.Second
	DefaultBGPGracefulShutdown  = 5 * time.Second
	DefaultBGPPort              = 179
	DefaultPrependWhenUnhealthy = 3
)

// BGP protocol limits.
const (
	minHoldTime     = 3 * time.Second     // RFC 4271 §4.2: 0 or at least 3 s; 0 (no keepalives) is refused
	maxHoldTime     = 65535 * time.Second // RFC 4271 §4.2: 16-bit seconds
	minConnectRetry = 2 * time.Second     // the speaker's floor
	maxMD5Key       = 80                  // Linux TCP_MD5SIG_MAXKEYLEN
	maxPrepend      = 16
	asTrans         = 23456 // RFC 6793 §9: AS_TRANS, never a real AS
)

// BGP is the [bgp] table: this host's BGP speaker.
type BGP struct {
	// LocalASN is this host's AS; 0 when [bgp] is absent.
	LocalASN uint32
	// RouterID is the BGP identifier; the zero Addr means the first IPv4
	// source address towards the first peer, found at start.
	RouterID netip.Addr
	// HoldTime is offered to every peer; the session uses the smaller offer.
	HoldTime time.Duration
	// ConnectRetry is the wait after a failed connect or a dropped session.
	ConnectRetry time.Duration
	// GracefulShutdown is how long a stopping host announces with
	// GRACEFUL_SHUTDOWN (and keeps accepting) before withdrawing.
	GracefulShutdown time.Duration
	Peers            []BGPPeer
}

// BGPPeer is one [[bgp.peer]].
type BGPPeer struct {
	Address netip.Addr
	ASN     uint32
	Port    int
	// Password turns on TCP MD5 (RFC 2385); "" means none.
	Password string
	// SourceIP is the session's local address; the zero Addr lets the kernel choose.
	SourceIP netip.Addr
	// EBGPMultihop is the TTL for a peer that is not directly connected; 0
	// means directly connected.
	EBGPMultihop int
}

// Announce is one [[announce]]: VIPs announced over BGP as host routes.
type Announce struct {
	Name string
	// Prefixes are /32 or /128.
	Prefixes []netip.Prefix
	// Communities are "ASN:value" standard and "ASN:a:b" large communities,
	// as configured.
	Communities []string
	// PrependWhenUnhealthy is how often the local AS is prepended while a
	// tracked frontend has no healthy backend; 0 withdraws instead.
	PrependWhenUnhealthy int
	TrackFrontends       []string
}

// Community is a parsed BGP community: Large is false for a standard one
// (RFC 1997, in Standard), true for a large one (RFC 8092, in ASN, Data1, Data2).
type Community struct {
	Large             bool
	Standard          uint32
	ASN, Data1, Data2 uint32
}

// ParseCommunity reads "65000:100" (standard) or "65000:1:2" (large).
func ParseCommunity(s string) (Community, error) {
	parts := strings.Split(s, ":")
	num := func(p string, max uint64) (uint32, error) {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil || n > max {
			return 0, fmt.Errorf("%q is not a number 0..%d", p, max)
		}
		return uint32(n), nil
	}
	switch len(parts) {
	case 2:
		hi, err := num(parts[0], math.MaxUint16)
		if err != nil {
			return Community{}, err
		}
		lo, err := num(parts[1], math.MaxUint16)
		if err != nil {
			return Community{}, err
		}
		return Community{Standard: hi<<16 | lo}, nil
	case 3:
		var v [3]uint32
		for i, p := range parts {
			n, err := num(p, math.MaxUint32)
			if err != nil {
				return Community{}, err
			}
			v[i] = n
		}
		return Community{Large: true, ASN: v[0], Data1: v[1], Data2: v[2]}, nil
	}
	return Community{}, fmt.Errorf("must be ASN:value (standard) or ASN:value:value (large)")
}

// asn reads an AS number key: 1..4294967294 without AS_TRANS (RFC 6793)
// and the reserved 65535 and 4294967295 (RFC 7300).
func (t *table) asn(key string) uint32 {
	n := t.integer(key, 0, 1, math.MaxUint32-1)
	if n == asTrans || n == math.MaxUint16 {
		t.errf(key, "%d: reserved (RFC 6793, RFC 7300); use a private AS such as 64512..65534", n)
		return 0
	}
	return uint32(n)
}

// wholeSeconds reads a duration that BGP carries in whole seconds.
func (t *table) wholeSeconds(key string, def, min, max time.Duration) time.Duration {
	d := t.duration(key, def, positive)
	if _, ok := t.m[key]; !ok {
		return d
	}
	if d%time.Second != 0 || d < min || d > max {
		t.errf(key, "%v: must be whole seconds from %v to %v", d, min, max)
		return def
	}
	return d
}

// bgp reads [bgp] and [[announce]]; it runs after instances and frontends,
// which announcements refer to.
func (d *decoder) bgp(root *table, cfg *Config) {
	if _, ok := root.m[TableBGP]; ok {
		t := root.sub(TableBGP, TableBGP)
		b := &cfg.BGP
		if t.required(KeyBGPLocalASN) {
			b.LocalASN = t.asn(KeyBGPLocalASN)
		}
		if s := t.str(KeyBGPRouterID, ""); s != "" {
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Unmap().Is4() {
				t.errf(KeyBGPRouterID, "%q: must be an IPv4 address (RFC 6286 keeps the BGP identifier 32 bits)", s)
			} else {
				b.RouterID = a.Unmap()
			}
		}
		b.HoldTime = t.wholeSeconds(KeyBGPHoldTime, DefaultBGPHoldTime, minHoldTime, maxHoldTime)
		b.ConnectRetry = t.wholeSeconds(KeyBGPConnectRetry, DefaultBGPConnectRetry, minConnectRetry, time.Hour)
		b.GracefulShutdown = t.duration(KeyBGPGracefulShutdown, DefaultBGPGracefulShutdown, nonNegative)
		seen := map[netip.Addr]bool{}
		for _, pt := range t.tables(TablePeer, within(TableBGP, TablePeer)) {
			p := d.peer(pt)
			if p.Address.IsValid() {
				if seen[p.Address] {
					pt.errf(KeyPeerAddress, "%v: another [[bgp.peer]] has this address", p.Address)
				}
				seen[p.Address] = true
			}
			b.Peers = append(b.Peers, p)
		}
		t.done()
	}
	if _, ok := root.m[TableAnnounce]; !ok {
		return
	}
	tables := root.tables(TableAnnounce, named(TableAnnounce))
	for _, t := range tables {
		cfg.Announces = append(cfg.Announces, d.announce(t, cfg))
	}
	d.uniqueAnnounces(root, tables, cfg)
}

func (d *decoder) peer(t *table) BGPPeer {
	p := BGPPeer{}
	if t.required(KeyPeerAddress) {
		s := t.str(KeyPeerAddress, "")
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			t.errf(KeyPeerAddress, "%q: not an IP address", s)
		} else {
			p.Address = a.Unmap()
		}
	}
	if t.required(KeyPeerASN) {
		p.ASN = t.asn(KeyPeerASN)
	}
	p.Port = t.integer(KeyPeerPort, DefaultBGPPort, 1, 65535)
	p.Password = t.str(KeyPeerPassword, "")
	if len(p.Password) > maxMD5Key {
		t.errf(KeyPeerPassword, "%d bytes: a TCP MD5 key has at most %d", len(p.Password), maxMD5Key)
	}
	if s := t.str(KeyPeerSourceIP, ""); s != "" {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil || a.Zone() != "":
			t.errf(KeyPeerSourceIP, "%q: not an IP address", s)
		case p.Address.IsValid() && FamilyOf(a) != FamilyOf(p.Address):
			t.errf(KeyPeerSourceIP, "%q: must be %s like the peer's address", s, FamilyOf(p.Address))
		default:
			p.SourceIP = a.Unmap()
		}
	}
	p.EBGPMultihop = t.integer(KeyPeerEBGPMultihop, 0, 0, 255)
	t.done()
	return p
}

func (d *decoder) announce(t *table, cfg *Config) Announce {
	a := Announce{}
	a.Name = t.name(KeyAnnounceName)
	prefixes := t.list(KeyAnnouncePrefixes, "/32 or /128")
	for _, s := range prefixes {
		p, err := parseVIP(s)
		switch {
		case err != nil:
			t.errf(KeyAnnouncePrefixes, "%q: %v", s, err)
		case p.Bits() != p.Addr().BitLen():
			t.errf(KeyAnnouncePrefixes, "%q: only host routes are announced (/32 for IPv4, /128 for IPv6)", s)
		case !familyCarried(cfg.BGP.Peers, FamilyOf(p.Addr())):
			t.errf(KeyAnnouncePrefixes, "%q: no [[bgp.peer]] carries %s: add a peer with an %s address", s, FamilyOf(p.Addr()), FamilyOf(p.Addr()))
			a.Prefixes = append(a.Prefixes, p)
		default:
			a.Prefixes = append(a.Prefixes, p)
		}
	}
	for _, s := range t.strings(KeyAnnounceCommunities, nil) {
		if _, err := ParseCommunity(s); err != nil {
			t.errf(KeyAnnounceCommunities, "%q: %v", s, err)
			continue
		}
		a.Communities = append(a.Communities, s)
	}
	a.PrependWhenUnhealthy = t.integer(KeyAnnouncePrependWhenUnhealthy, DefaultPrependWhenUnhealthy, 0, maxPrepend)
	for _, ft := range t.tables(TableTrackFrontend, within(t.ctx, TableTrackFrontend)) {
		if name, ok := ft.trackedFrontend(cfg); ok {
			a.TrackFrontends = append(a.TrackFrontends, name)
		}
		ft.done()
	}
	t.done()
	return a
}

func familyCarried(peers []BGPPeer, f Family) bool {
	for _, p := range peers {
		if p.Address.IsValid() && FamilyOf(p.Address) == f {
			return true
		}
	}
	return false
}

// uniqueAnnounces checks the rules across announcements: unique names,
// each prefix in one place only (not twice, not also a VRRP virtual IP),
// and a [bgp] to announce them with.
func (d *decoder) uniqueAnnounces(root *table, tables []*table, cfg *Config) {
	if len(cfg.Announces) > 0 && cfg.BGP.LocalASN == 0 {
		if _, ok := root.m[TableBGP]; !ok {
			tables[0].errf("", "[[announce]] needs a [bgp] table with local_asn and at least one [[bgp.peer]]")
		}
	}
	vips := map[netip.Addr]string{}
	for _, in := range cfg.Instances {
		for _, v := range in.VirtualIPs {
			vips[v.Addr()] = in.Name
		}
	}
	names := map[string]bool{}
	owner := map[netip.Addr]string{}
	for i, a := range cfg.Announces {
		t := tables[i]
		t.unique(names, KeyAnnounceName, a.Name, "[[announce]]")
		for _, p := range a.Prefixes {
			if in, ok := vips[p.Addr()]; ok {
				t.errf(KeyAnnouncePrefixes, "%v: also a virtual IP of instance %q; an address is either VRRP's or BGP's", p.Addr(), in)
			}
			if other, ok := owner[p.Addr()]; ok {
				t.errf(KeyAnnouncePrefixes, "%v: announce %q has it too", p.Addr(), other)
			}
			owner[p.Addr()] = a.Name
		}
	}
}
