package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vrrplb/vrrplb/bgp"
	"github.com/vrrplb/vrrplb/config"
)

// bgpShutdownTimeout bounds the graceful part of a stop beyond
// graceful_shutdown itself.
const bgpShutdownTimeout = 10 * time.Second

// bgpWiring is the daemon's side of BGP mode: one bgp.Announcer for the
// whole life of the daemon, idle while the config has no [bgp], so a reload
// can add, change or remove BGP like any other part.
type bgpWiring struct {
	d *daemon
	a *bgp.Announcer

	mu sync.Mutex
	// derived is the router ID found from the first IPv4 peer when
	// router_id is empty; kept for the process's life so a reload does not
	// restart every session because a route changed.
	derived netip.Addr
}

// wireBGP starts the announcer and hooks it into status, metrics, reload,
// maintenance and the graceful stop.
func wireBGP(d *daemon, cfg *config.Config) error {
	w := &bgpWiring{d: d}
	bc, err := w.announcerConfig(cfg)
	if err != nil {
		return err
	}
	a, err := bgp.New(bc, bgp.Options{
		Logger: d.log,
		Tracker: func(name string) (bgp.Tracker, error) {
			if d.frontendTracker == nil {
				return nil, fmt.Errorf("no frontend %q", name)
			}
			return d.frontendTracker(name)
		},
	})
	if err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	w.a = a
	if err := d.reg.Register(a); err != nil {
		return fmt.Errorf("bgp metrics: %w", err)
	}
	if err := d.sup.Start("bgp", a); err != nil {
		return err
	}
	d.status = append(d.status, func(_ context.Context, doc *statusDoc) { w.fillStatus(doc) })
	d.checks = append(d.checks, func(next *config.Config) error {
		_, err := w.announcerConfig(next)
		return err
	})
	d.reloaders = append(d.reloaders, w.prepare)
	d.beforeStop = append(d.beforeStop, w.shutdown)
	vrrpMaintenance := d.commands.maintenance
	d.commands.maintenance = func(req maintenanceRequest) ([]string, error) {
		return w.maintenance(req, vrrpMaintenance)
	}
	return nil
}

// announcerConfig turns the [bgp] and [[announce]] of cfg into the
// announcer's config; with no [bgp] it is the idle, empty one.
func (w *bgpWiring) announcerConfig(cfg *config.Config) (bgp.Config, error) {
	b := cfg.BGP
	if b.LocalASN == 0 {
		return bgp.Config{}, nil
	}
	id, err := w.routerID(b)
	if err != nil {
		return bgp.Config{}, err
	}
	out := bgp.Config{
		Global:           bgp.Global{ASN: b.LocalASN, RouterID: id},
		GracefulShutdown: b.GracefulShutdown,
	}
	for _, p := range b.Peers {
		out.Peers = append(out.Peers, bgp.Peer{
			Address:      p.Address,
			ASN:          p.ASN,
			Port:         uint16(p.Port),
			Password:     p.Password,
			SourceIP:     p.SourceIP,
			EBGPMultihop: p.EBGPMultihop,
			HoldTime:     b.HoldTime,
			ConnectRetry: b.ConnectRetry,
		})
	}
	for _, an := range cfg.Announces {
		ba := bgp.Announcement{
			Name:                 an.Name,
			Prefixes:             slices.Clone(an.Prefixes),
			PrependWhenUnhealthy: an.PrependWhenUnhealthy,
			TrackFrontends:       slices.Clone(an.TrackFrontends),
		}
		for _, s := range an.Communities {
			c, err := config.ParseCommunity(s)
			if err != nil {
				return bgp.Config{}, fmt.Errorf("announce %q: community %q: %w", an.Name, s, err)
			}
			if c.Large {
				ba.Large = append(ba.Large, bgp.LargeCommunity{ASN: c.ASN, Data1: c.Data1, Data2: c.Data2})
			} else {
				ba.Communities = append(ba.Communities, c.Standard)
			}
		}
		out.Announcements = append(out.Announcements, ba)
	}
	return out, nil
}

// routerID is router_id, or the first IPv4 source address towards the
// first IPv4 peer (DESIGN.md).
func (w *bgpWiring) routerID(b config.BGP) (netip.Addr, error) {
	if b.RouterID.IsValid() {
		return b.RouterID, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.derived.IsValid() {
		return w.derived, nil
	}
	for _, p := range b.Peers {
		if !p.Address.Is4() {
			continue
		}
		if p.SourceIP.IsValid() {
			w.derived = p.SourceIP
			return w.derived, nil
		}
		// A UDP "connection" only looks the route up; nothing is sent.
		c, err := net.Dial("udp4", net.JoinHostPort(p.Address.String(), strconv.Itoa(p.Port)))
		if err != nil {
			return netip.Addr{}, fmt.Errorf("bgp: router_id: no route to peer %v to take a source address from (%w); set [bgp] router_id", p.Address, err)
		}
		local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		c.Close()
		w.derived = local
		return local, nil
	}
	return netip.Addr{}, errors.New("bgp: router_id: no IPv4 peer to take it from; set [bgp] router_id to an IPv4 address of this host")
}

// prepare checks the new [bgp] and [[announce]]; the announcer applies
// them at commit.
func (w *bgpWiring) prepare(next *config.Config) (reloadPlan, error) {
	bc, err := w.announcerConfig(next)
	if err != nil {
		return nil, err
	}
	return bgpPlan{w: w, bc: bc}, nil
}

// bgpPlan is a checked announcer config.
type bgpPlan struct {
	w  *bgpWiring
	bc bgp.Config
}

func (p bgpPlan) Commit() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.w.a.Reload(ctx, p.bc)
}

func (bgpPlan) Discard() {}

// shutdown is the graceful part of a stop, run before the proxy stops
// accepting: GRACEFUL_SHUTDOWN for graceful_shutdown, then withdrawal.
func (w *bgpWiring) shutdown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, w.d.config().BGP.GracefulShutdown+bgpShutdownTimeout)
	defer cancel()
	if err := w.a.Shutdown(ctx); err != nil {
		w.d.log.Error("bgp graceful shutdown", "err", err)
	}
}

// maintenance puts every announcement in maintenance beside what
// vrrpMaintenance does for the instances: `vrrplb maintenance on` without
// --instance covers both; --instance names a VRRP instance only.
func (w *bgpWiring) maintenance(req maintenanceRequest, vrrpMaintenance func(maintenanceRequest) ([]string, error)) ([]string, error) {
	cfg := w.d.config()
	hasBGP := len(cfg.Announces) > 0
	if req.Instance != "" || !hasBGP {
		if vrrpMaintenance == nil {
			return nil, errors.New("this vrrplb has no VRRP instances and no [[announce]]: nothing to put in maintenance")
		}
		return vrrpMaintenance(req)
	}
	var done []string
	if len(cfg.Instances) > 0 && vrrpMaintenance != nil {
		d, err := vrrpMaintenance(req)
		if err != nil {
			return d, err
		}
		done = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := w.a.SetMaintenance(ctx, req.On); err != nil {
		return done, fmt.Errorf("bgp: %w", err)
	}
	for _, an := range cfg.Announces {
		if req.On {
			done = append(done, fmt.Sprintf("announce %s: maintenance on: withdrawn from every peer; the proxy still answers on it", an.Name))
		} else {
			done = append(done, fmt.Sprintf("announce %s: maintenance off: announced by health again", an.Name))
		}
	}
	return done, nil
}

// bgpStatus is /status "bgp".
type bgpStatus struct {
	Peers         []bgpPeerStatus         `json:"peers"`
	Announcements []bgpAnnouncementStatus `json:"announcements"`
	Maintenance   bool                    `json:"maintenance"`
}

type bgpPeerStatus struct {
	Address string `json:"address"`
	ASN     uint32 `json:"asn"`
	State   string `json:"state"` // idle, connect, active, opensent, openconfirm, established
	// EstablishedSince is RFC 3339; "" unless established.
	EstablishedSince string `json:"established_since,omitempty"`
}

type bgpAnnouncementStatus struct {
	Name     string   `json:"name"`
	Prefixes []string `json:"prefixes"`
	State    string   `json:"state"`  // announced, depreferred, withdrawn
	Reason   string   `json:"reason"` // why, as the log says it
}

func (w *bgpWiring) fillStatus(doc *statusDoc) {
	if w.d.config().BGP.LocalASN == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st := w.a.Status(ctx)
	out := &bgpStatus{Peers: []bgpPeerStatus{}, Announcements: []bgpAnnouncementStatus{}, Maintenance: st.Maintenance}
	for _, p := range st.Peers {
		ps := bgpPeerStatus{Address: p.Address.String(), ASN: p.ASN, State: p.State}
		if !p.Since.IsZero() {
			ps.EstablishedSince = p.Since.UTC().Format(time.RFC3339)
		}
		out.Peers = append(out.Peers, ps)
	}
	for _, an := range st.Announcements {
		as := bgpAnnouncementStatus{Name: an.Name, Prefixes: []string{}, State: an.State.String(), Reason: string(an.Why)}
		for _, p := range an.Prefixes {
			as.Prefixes = append(as.Prefixes, p.String())
		}
		out.Announcements = append(out.Announcements, as)
	}
	doc.BGP = out
}

// printBGPStatus writes the BGP part of `vrrplb status`: peers with their
// session state and uptime, announcements with their state.
func printBGPStatus(tw io.Writer, st *bgpStatus, now time.Time) {
	fmt.Fprintln(tw, "BGP PEER\tASN\tSTATE\tUPTIME")
	for _, p := range st.Peers {
		up := "-"
		if t, err := time.Parse(time.RFC3339, p.EstablishedSince); err == nil {
			up = now.Sub(t).Truncate(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", p.Address, p.ASN, strings.ToUpper(p.State), up)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "ANNOUNCE\tSTATE\tREASON\tPREFIXES")
	for _, an := range st.Announcements {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", an.Name, strings.ToUpper(an.State), an.Reason, strings.Join(an.Prefixes, ","))
	}
	if st.Maintenance {
		fmt.Fprintln(tw, "\nbgp: maintenance on: every announcement is withdrawn (vrrplb maintenance off restores them)")
	}
}
