package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// State is how an announcement's prefixes go out, as status and metrics
// show it.
type State int

// States.
const (
	StateWithdrawn   State = iota // not announced
	StateAnnounced                // announced with no penalty
	StateDepreferred              // announced, but routers prefer other hosts
)

// String is the name /status uses.
func (s State) String() string {
	switch s {
	case StateAnnounced:
		return "announced"
	case StateDepreferred:
		return "depreferred"
	}
	return "withdrawn"
}

// Value is the bgp_announced gauge: 1 announced, 0.5 depreferred, 0 withdrawn.
func (s State) Value() float64 {
	switch s {
	case StateAnnounced:
		return 1
	case StateDepreferred:
		return 0.5
	}
	return 0
}

// Phase is where the daemon is in its life, as far as announcing goes.
type Phase int

// Phases.
const (
	// PhaseRunning announces by health and maintenance.
	PhaseRunning Phase = iota
	// PhaseGracefulShutdown re-announces with GRACEFUL_SHUTDOWN while the
	// proxy still accepts: routers move new flows away first.
	PhaseGracefulShutdown
	// PhaseStopped withdraws everything.
	PhaseStopped
)

// Why says why an announcement is in its state; it is logged with a change.
type Why string

// Reasons.
const (
	WhyHealthy          Why = "healthy"
	WhyStarting         Why = "health_unknown"     // a tracked frontend has no verdict yet
	WhyUnhealthy        Why = "no_healthy_backend" // depreferred by prepending
	WhyUnhealthyStrict  Why = "no_healthy_backend_strict"
	WhyMaintenance      Why = "maintenance"
	WhyGracefulShutdown Why = "graceful_shutdown"
	WhyStopped          Why = "stopped"
)

// CommunityGracefulShutdown is GRACEFUL_SHUTDOWN, 65535:0 (RFC 8326 §4):
// a receiver lowers the path's preference so traffic moves before the
// session or the route goes.
const CommunityGracefulShutdown uint32 = 0xFFFF0000

// LargeCommunity is an RFC 8092 large community, ASN:data1:data2.
type LargeCommunity struct {
	ASN, Data1, Data2 uint32
}

// Announcement is one [[announce]]: prefixes that go out together.
type Announcement struct {
	Name string
	// Prefixes are /32 or /128 host routes.
	Prefixes []netip.Prefix
	// Communities are standard (RFC 1997) communities, high 16 bits the ASN.
	Communities []uint32
	Large       []LargeCommunity
	// PrependWhenUnhealthy is how often the local AS is prepended while a
	// tracked frontend has no healthy backend; 0 withdraws instead.
	PrependWhenUnhealthy int
	// TrackFrontends are the frontends whose verdicts decide the path.
	TrackFrontends []string
}

// Situation is everything the path of one announcement depends on.
type Situation struct {
	// Known is false until every tracked frontend has its first verdict.
	Known bool
	// Healthy is true while every tracked frontend has a healthy backend
	// (and always when none is tracked).
	Healthy     bool
	Maintenance bool
	Phase       Phase
}

// Advert is how an announcement's prefixes go out.
type Advert struct {
	State State
	Why   Why
	// Prepend is how often the local AS is prepended to the AS path (eBGP
	// adds it once more on the way out).
	Prepend int
	// GracefulShutdown adds the GRACEFUL_SHUTDOWN community.
	GracefulShutdown bool
}

// Decide says how a's prefixes go out in s. It has no side effects.
func Decide(a Announcement, s Situation) Advert {
	switch {
	case s.Phase == PhaseStopped:
		return Advert{State: StateWithdrawn, Why: WhyStopped}
	case s.Maintenance:
		return Advert{State: StateWithdrawn, Why: WhyMaintenance}
	case !s.Known:
		// Announcing before the checks have spoken could pull traffic
		// to a host whose backends are all down.
		return Advert{State: StateWithdrawn, Why: WhyStarting}
	}
	adv := Advert{State: StateAnnounced, Why: WhyHealthy}
	if !s.Healthy {
		if a.PrependWhenUnhealthy == 0 {
			return Advert{State: StateWithdrawn, Why: WhyUnhealthyStrict}
		}
		adv = Advert{State: StateDepreferred, Why: WhyUnhealthy, Prepend: a.PrependWhenUnhealthy}
	}
	if s.Phase == PhaseGracefulShutdown {
		adv.State, adv.Why, adv.GracefulShutdown = StateDepreferred, WhyGracefulShutdown, true
	}
	return adv
}

// Route is one prefix as the speaker announces it; Withdraw means it is
// not announced at all.
type Route struct {
	Prefix   netip.Prefix
	Withdraw bool
	// ASPath is the path the speaker starts from (the local AS, Prepend
	// times); eBGP adds the local AS once more.
	ASPath      []uint32
	Communities []uint32
	Large       []LargeCommunity
}

// Routes are the routes of a's prefixes under adv, for local AS localAS.
func Routes(a Announcement, adv Advert, localAS uint32) []Route {
	routes := make([]Route, 0, len(a.Prefixes))
	for _, p := range a.Prefixes {
		r := Route{Prefix: p}
		if adv.State == StateWithdrawn {
			r.Withdraw = true
			routes = append(routes, r)
			continue
		}
		for range adv.Prepend {
			r.ASPath = append(r.ASPath, localAS)
		}
		r.Communities = slices.Clone(a.Communities)
		if adv.GracefulShutdown && !slices.Contains(r.Communities, CommunityGracefulShutdown) {
			r.Communities = append(r.Communities, CommunityGracefulShutdown)
		}
		r.Large = slices.Clone(a.Large)
		routes = append(routes, r)
	}
	return routes
}

// Equal reports whether r and o announce the same thing.
func (r Route) Equal(o Route) bool {
	return r.Prefix == o.Prefix && r.Withdraw == o.Withdraw && slices.Equal(r.ASPath, o.ASPath) &&
		slices.Equal(r.Communities, o.Communities) && slices.Equal(r.Large, o.Large)
}

// Global is the speaker's own identity.
type Global struct {
	ASN      uint32
	RouterID netip.Addr
}

// Peer is one configured BGP neighbour.
type Peer struct {
	Address netip.Addr
	ASN     uint32
	// Port is the peer's TCP port; 0 means 179.
	Port uint16
	// Password turns on TCP MD5 signatures (RFC 2385); "" means none.
	Password string
	// SourceIP is the local end of the session; the zero Addr lets the
	// kernel choose.
	SourceIP netip.Addr
	// EBGPMultihop is the TTL for a peer that is not directly connected; 0
	// means directly connected.
	EBGPMultihop int
	// HoldTime is offered in OPEN (whole seconds, at least 3 s); the
	// session uses the smaller of both offers (RFC 4271 §4.2).
	HoldTime time.Duration
	// ConnectRetry is the wait after a failed connect or a dropped session.
	ConnectRetry time.Duration
}

// Key identifies a peer across reloads.
func (p Peer) Key() netip.Addr { return p.Address }

// Config is what the announcer runs: the [bgp] table and the [[announce]]s.
type Config struct {
	Global        Global
	Peers         []Peer
	Announcements []Announcement
	// GracefulShutdown is how long stop keeps the prefixes announced with
	// GRACEFUL_SHUTDOWN (and the proxy accepting) before withdrawing them.
	GracefulShutdown time.Duration
}

// check refuses what the speaker cannot run: config validates the file,
// this guards callers that build a Config by hand.
func (c Config) check() error {
	if c.Global.ASN == 0 {
		return fmt.Errorf("local ASN must be set")
	}
	if !c.Global.RouterID.Is4() {
		return fmt.Errorf("router ID %v: must be an IPv4 address", c.Global.RouterID)
	}
	seen := map[netip.Prefix]string{}
	for _, a := range c.Announcements {
		for _, p := range a.Prefixes {
			if p.Bits() != p.Addr().BitLen() {
				return fmt.Errorf("announce %q: %v: only host routes (/32, /128) are announced", a.Name, p)
			}
			if other, ok := seen[p]; ok {
				return fmt.Errorf("announce %q: %v: announce %q has it too", a.Name, p, other)
			}
			seen[p] = a.Name
		}
	}
	for _, p := range c.Peers {
		if p.HoldTime < 3*time.Second {
			return fmt.Errorf("peer %v: hold time %v: must be at least 3s", p.Address, p.HoldTime)
		}
	}
	return nil
}
