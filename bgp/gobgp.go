package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// localOnlyPolicy is the import policy that keeps routes learned from the
// peers out of the speaker's RIB: this host originates its VIPs and is
// never a transit between two routers.
const localOnlyPolicy = "vrrplb-local-only"

// goBGP is the Speaker: GoBGP's BgpServer run in this process, without its
// gRPC API and without a listening port (sessions are opened from here).
type goBGP struct {
	log *slog.Logger
	s   *server.BgpServer
}

// NewGoBGP returns a GoBGP speaker that logs to log.
func NewGoBGP(log *slog.Logger) Speaker {
	return &goBGP{log: log}
}

func (g *goBGP) Start(ctx context.Context, gl Global) error {
	logger := slog.New(snakeHandler{h: g.log.Handler()}).With("component", "gobgp")
	level := new(slog.LevelVar) // GoBGP changes it only through its API, unused here
	g.s = server.NewBgpServer(server.LoggerOption(logger, level))
	go g.s.Serve()
	err := g.s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        gl.ASN,
		RouterId:   gl.RouterID.String(),
		ListenPort: -1, // no listener: GoBGP's default would bind :179
	}})
	if err != nil {
		g.s.Stop()
		return err
	}
	// Accept only locally originated paths into the RIB (see localOnlyPolicy).
	err = g.s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{
		Name: localOnlyPolicy,
		Statements: []*api.Statement{{
			Name:       localOnlyPolicy + "-accept-local",
			Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
		}},
	}})
	if err == nil {
		err = g.s.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name:          "global",
			Direction:     api.PolicyDirection_POLICY_DIRECTION_IMPORT,
			Policies:      []*api.Policy{{Name: localOnlyPolicy}},
			DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
		}})
	}
	if err != nil {
		g.s.Stop()
		return fmt.Errorf("import policy: %w", err)
	}
	return nil
}

func family(a netip.Addr) *api.Family {
	if a.Is4() {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

func seconds(d interface{ Seconds() float64 }) uint64 { return uint64(d.Seconds()) }

func (g *goBGP) AddPeer(ctx context.Context, p Peer) error {
	hold := seconds(p.HoldTime)
	retry := seconds(p.ConnectRetry)
	peer := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			AuthPassword:    p.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          hold,
			KeepaliveInterval: max(hold/3, 1), // RFC 4271 §10: a third of the hold time
			ConnectRetry:      retry,
			// After an administrative reset GoBGP waits this long (default 30 s).
			IdleHoldTimeAfterReset: retry,
		}},
		Transport: &api.Transport{RemotePort: uint32(p.Port)},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family(p.Address), Enabled: true}}},
	}
	if p.SourceIP.IsValid() {
		peer.Transport.LocalAddress = p.SourceIP.String()
	}
	if p.EBGPMultihop > 0 {
		peer.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.EBGPMultihop)}
	}
	return g.s.AddPeer(ctx, &api.AddPeerRequest{Peer: peer})
}

func (g *goBGP) DeletePeer(ctx context.Context, addr netip.Addr) error {
	return g.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()})
}

// path is r in GoBGP's native form. Next hop "unspecified": GoBGP puts the
// session's local address there for each peer.
func path(r Route) (*apiutil.Path, error) {
	nlri, err := gbgp.NewIPAddrPrefix(r.Prefix)
	if err != nil {
		return nil, err
	}
	fam := gbgp.RF_IPv4_UC
	nh := netip.IPv4Unspecified()
	if r.Prefix.Addr().Is6() {
		fam, nh = gbgp.RF_IPv6_UC, netip.IPv6Unspecified()
	}
	attrs := []gbgp.PathAttributeInterface{gbgp.NewPathAttributeOrigin(gbgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	var segs []gbgp.AsPathParamInterface
	if len(r.ASPath) > 0 {
		segs = append(segs, gbgp.NewAs4PathParam(gbgp.BGP_ASPATH_ATTR_TYPE_SEQ, r.ASPath))
	}
	attrs = append(attrs, gbgp.NewPathAttributeAsPath(segs))
	if fam == gbgp.RF_IPv4_UC {
		a, err := gbgp.NewPathAttributeNextHop(nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	} else {
		a, err := gbgp.NewPathAttributeMpReachNLRI(fam, []gbgp.PathNLRI{{NLRI: nlri}}, nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	}
	if len(r.Communities) > 0 {
		attrs = append(attrs, gbgp.NewPathAttributeCommunities(r.Communities))
	}
	if len(r.Large) > 0 {
		lcs := make([]*gbgp.LargeCommunity, 0, len(r.Large))
		for _, l := range r.Large {
			lcs = append(lcs, gbgp.NewLargeCommunity(l.ASN, l.Data1, l.Data2))
		}
		attrs = append(attrs, gbgp.NewPathAttributeLargeCommunities(lcs))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs}, nil
}

func (g *goBGP) Announce(_ context.Context, r Route) error {
	p, err := path(r)
	if err != nil {
		return fmt.Errorf("%v: %w", r.Prefix, err)
	}
	_, err = g.s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}})
	return err
}

func (g *goBGP) Withdraw(_ context.Context, prefix netip.Prefix) error {
	p, err := path(Route{Prefix: prefix})
	if err != nil {
		return fmt.Errorf("%v: %w", prefix, err)
	}
	return g.s.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{p}})
}

func (g *goBGP) Peers(ctx context.Context) ([]PeerStatus, error) {
	var out []PeerStatus
	err := g.s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.Conf == nil || p.State == nil {
			return
		}
		addr, err := netip.ParseAddr(p.Conf.NeighborAddress)
		if err != nil {
			return
		}
		st := PeerStatus{
			Address: addr,
			ASN:     p.Conf.PeerAsn,
			State:   strings.ToLower(strings.TrimPrefix(p.State.SessionState.String(), "SESSION_STATE_")),
		}
		if st.State == "unspecified" {
			st.State = "idle"
		}
		if st.State == Established && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			st.Since = p.Timers.State.Uptime.AsTime()
		}
		if m := p.State.Messages; m != nil && m.Sent != nil {
			st.UpdatesSent = m.Sent.Update
		}
		out = append(out, st)
	})
	return out, err
}

func (g *goBGP) Stop(context.Context) error {
	g.s.Stop()
	return nil
}

// snakeHandler passes GoBGP's log records on with the daemon's key style:
// lower_snake keys, "err" for the error.
type snakeHandler struct{ h slog.Handler }

func (s snakeHandler) Enabled(ctx context.Context, l slog.Level) bool { return s.h.Enabled(ctx, l) }

func (s snakeHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(snakeAttr(a))
		return true
	})
	return s.h.Handle(ctx, out)
}

func (s snakeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	conv := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		conv[i] = snakeAttr(a)
	}
	return snakeHandler{h: s.h.WithAttrs(conv)}
}

func (s snakeHandler) WithGroup(name string) slog.Handler {
	return snakeHandler{h: s.h.WithGroup(snakeKey(name))}
}

func snakeAttr(a slog.Attr) slog.Attr {
	a.Key = snakeKey(a.Key)
	return a
}

// snakeKey turns "Key", "Communicated-Reason" or "Error" into "key",
// "communicated_reason" and "err".
func snakeKey(k string) string {
	var b strings.Builder
	for i, r := range k {
		switch {
		case r == '-' || r == ' ':
			b.WriteByte('_')
		case r >= 'A' && r <= 'Z':
			if i > 0 && k[i-1] >= 'a' && k[i-1] <= 'z' {
				b.WriteByte('_')
			}
			b.WriteRune(r - 'A' + 'a')
		default:
			b.WriteRune(r)
		}
	}
	if b.String() == "error" {
		return "err"
	}
	return b.String()
}
