package bgp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/vrrplb/vrrplb/internal/freeaddr"
	"github.com/vrrplb/vrrplb/internal/poll"
)

// router is a second GoBGP on loopback standing in for the router: it
// listens on a free port and peers with the speaker under test.
type router struct {
	s    *server.BgpServer
	port int
}

func freePort(t *testing.T) int {
	t.Helper()
	return int(freeaddr.Loopback(t).Port())
}

func newRouter(t *testing.T, speakerAddr string, holdTime uint64) *router {
	return newRouterOn(t, "127.0.0.1", speakerAddr, holdTime)
}

func newRouterOn(t *testing.T, listen, speakerAddr string, holdTime uint64) *router {
	t.Helper()
	r := &router{s: server.NewBgpServer(), port: freePort(t)}
	go r.s.Serve()
	ctx := context.Background()
	if err := r.s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 64512, RouterId: "10.90.0.1", ListenPort: int32(r.port), ListenAddresses: []string{listen},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.s.Stop)
	if err := r.s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: speakerAddr, PeerAsn: 64601},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: holdTime, KeepaliveInterval: holdTime / 3}},
		Transport: &api.Transport{PassiveMode: true},
	}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// path returns the router's best path to p, or nil.
func (r *router) path(t *testing.T, p netip.Prefix) *apiutil.Path {
	t.Helper()
	var best *apiutil.Path
	fam := gbgp.RF_IPv4_UC
	if p.Addr().Is6() {
		fam = gbgp.RF_IPv6_UC
	}
	err := r.s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam},
		func(prefix gbgp.NLRI, paths []*apiutil.Path) {
			if prefix.String() == p.String() && len(paths) > 0 {
				best = paths[0]
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	return best
}

// waitFor polls cond until it holds or 20s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 20*time.Second, what, cond)
}

func attr[T gbgp.PathAttributeInterface](p *apiutil.Path) (T, bool) {
	for _, a := range p.Attrs {
		if v, ok := a.(T); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// TestGoBGPSpeakerAgainstARouter runs the real speaker over loopback TCP:
// the session comes up with the smaller hold time, and the router sees the
// announcement, its prepending, GRACEFUL_SHUTDOWN and the withdrawal.
func TestGoBGPSpeakerAgainstARouter(t *testing.T) {
	const self = "127.0.0.2"
	rt := newRouter(t, self, 9)
	sp := NewGoBGP(slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if err := sp.Start(ctx, Global{ASN: 64601, RouterID: netip.MustParseAddr("10.90.0.2")}); err != nil {
		t.Fatal(err)
	}
	defer sp.Stop(ctx)
	peer := Peer{Address: netip.MustParseAddr("127.0.0.1"), ASN: 64512, Port: uint16(rt.port),
		SourceIP: netip.MustParseAddr(self), HoldTime: 3 * time.Second, ConnectRetry: 2 * time.Second}
	if err := sp.AddPeer(ctx, peer); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session is established", func() bool {
		ps, err := sp.Peers(ctx)
		return err == nil && len(ps) == 1 && ps[0].State == Established && !ps[0].Since.IsZero()
	})
	// The router's side may reach Established a moment after ours: its
	// negotiated hold time reads 0 until then.
	var hold uint64
	waitFor(t, "the router has the session's hold time", func() bool {
		_ = rt.s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) { hold = p.Timers.State.NegotiatedHoldTime })
		return hold != 0
	})
	if hold != 3 {
		t.Errorf("negotiated hold time %ds, want 3s (the smaller offer)", hold)
	}

	vip := netip.MustParsePrefix("10.77.0.100/32")
	if err := sp.Announce(ctx, Route{Prefix: vip, ASPath: []uint32{64601, 64601}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router has the prefix with two prepends", func() bool {
		p := rt.path(t, vip)
		if p == nil {
			return false
		}
		asp, _ := attr[*gbgp.PathAttributeAsPath](p)
		return asp != nil && asp.String() == "{AsPath: 64601 64601 64601}"
	})
	p := rt.path(t, vip)
	if nh, ok := attr[*gbgp.PathAttributeNextHop](p); !ok || nh.Value.String() != self {
		t.Errorf("next hop %v, want the session's local address %s", nh, self)
	}

	if err := sp.Announce(ctx, Route{Prefix: vip, Communities: []uint32{CommunityGracefulShutdown}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router has the prefix with GRACEFUL_SHUTDOWN and no prepends", func() bool {
		p := rt.path(t, vip)
		if p == nil {
			return false
		}
		c, ok := attr[*gbgp.PathAttributeCommunities](p)
		asp, _ := attr[*gbgp.PathAttributeAsPath](p)
		return ok && len(c.Value) == 1 && c.Value[0] == CommunityGracefulShutdown && asp.String() == "{AsPath: 64601}"
	})

	if err := sp.Withdraw(ctx, vip); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router has no route", func() bool { return rt.path(t, vip) == nil })

	// A route from the router stays out of the speaker's RIB: this host
	// never passes one router's routes to another.
	learned := netip.MustParsePrefix("192.0.2.0/24")
	nlri, _ := gbgp.NewIPAddrPrefix(learned)
	nh, _ := gbgp.NewPathAttributeNextHop(netip.MustParseAddr("127.0.0.1"))
	if _, err := rt.s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: gbgp.RF_IPv4_UC, Nlri: nlri,
		Attrs: []gbgp.PathAttributeInterface{gbgp.NewPathAttributeOrigin(0), nh}}}}); err != nil {
		t.Fatal(err)
	}
	received := func() (n uint64) {
		_ = rt.s.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
			for _, af := range p.AfiSafis {
				if af.State != nil {
					n += af.State.Advertised
				}
			}
		})
		return n
	}
	waitFor(t, "the router has sent its route", func() bool { return received() == 1 })
	time.Sleep(200 * time.Millisecond) // the UPDATE is in flight; a wrongly accepted path would show by now
	own := &router{s: sp.(*goBGP).s}
	if p := own.path(t, learned); p != nil {
		t.Errorf("the speaker's RIB holds the router's route %v: it could pass it on to another peer", learned)
	}

	ups := func() uint64 { ps, _ := sp.Peers(ctx); return ps[0].UpdatesSent }
	if n := ups(); n < 3 {
		t.Errorf("%d updates sent, want at least 3", n)
	}
}

// TestGoBGPSpeakerAnnouncesIPv6 runs an IPv6 session over ::1: a /128 goes
// out in MP_REACH_NLRI with the session's address as next hop.
func TestGoBGPSpeakerAnnouncesIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	l.Close()
	rt := newRouterOn(t, "::1", "::1", 9)
	sp := NewGoBGP(slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if err := sp.Start(ctx, Global{ASN: 64601, RouterID: netip.MustParseAddr("10.90.0.2")}); err != nil {
		t.Fatal(err)
	}
	defer sp.Stop(ctx)
	if err := sp.AddPeer(ctx, Peer{Address: netip.MustParseAddr("::1"), ASN: 64512, Port: uint16(rt.port),
		HoldTime: 3 * time.Second, ConnectRetry: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session is established", func() bool {
		ps, err := sp.Peers(ctx)
		return err == nil && len(ps) == 1 && ps[0].State == Established
	})
	vip := netip.MustParsePrefix("2001:db8::100/128")
	if err := sp.Announce(ctx, Route{Prefix: vip}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router has the IPv6 prefix", func() bool { return rt.path(t, vip) != nil })
	mp, ok := attr[*gbgp.PathAttributeMpReachNLRI](rt.path(t, vip))
	if !ok || mp.Nexthop.String() != "::1" {
		t.Errorf("MP_REACH_NLRI %v, want next hop ::1", mp)
	}
	if err := sp.Withdraw(ctx, vip); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router has no IPv6 route", func() bool { return rt.path(t, vip) == nil })
}
