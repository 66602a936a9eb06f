package vrrp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// interfaceIn is the interface ifname inside namespace ns.
func interfaceIn(t *testing.T, ns, ifname string) *net.Interface {
	t.Helper()
	var (
		ifi *net.Interface
		err error
	)
	inNetns(t, ns, func() { ifi, err = net.InterfaceByName(ifname) })
	if err != nil {
		t.Fatalf("interface %s in %s: %v", ifname, ns, err)
	}
	return ifi
}

// listenOnB runs listen inside the link's namespace B on its end there.
func listenOnB(t *testing.T, l *testLink, listen func(*net.Interface) error) {
	t.Helper()
	ifi := interfaceIn(t, l.NSB, l.IfB)
	var err error
	inNetns(t, l.NSB, func() { err = listen(ifi) })
	if err != nil {
		t.Fatal(err)
	}
}

// announceFromA announces vip on the link's end A, from inside its namespace.
func announceFromA(t *testing.T, l *testLink, vip netip.Addr) {
	t.Helper()
	var err error
	inNetns(t, l.NSA, func() { err = NewAnnouncer(l.IfA).Announce([]netip.Addr{vip}) })
	if err != nil {
		t.Fatalf("Announce: %v", err)
	}
}

func TestAnnouncerSendsGratuitousARPFromTheInterfaceMAC(t *testing.T) {
	l := newTestLink(t)
	vip := netip.MustParseAddr("10.231.0.100")
	macA := interfaceIn(t, l.NSA, l.IfA).HardwareAddr

	// Capture ARP on the peer end before announcing.
	var c *arp.Client
	listenOnB(t, l, func(ifi *net.Interface) (err error) {
		c, err = arp.Dial(ifi)
		return err
	})
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}

	announceFromA(t, l, vip)
	for {
		p, f, err := c.Read()
		if err != nil {
			t.Fatalf("no gratuitous ARP for %s arrived: %v", vip, err)
		}
		if p.SenderIP != vip {
			continue
		}
		if p.Operation != arp.OperationRequest || p.TargetIP != vip {
			t.Errorf("ARP %v target %s, want a request for %s itself", p.Operation, p.TargetIP, vip)
		}
		if p.SenderHardwareAddr.String() != macA.String() || f.Source.String() != macA.String() {
			t.Errorf("ARP from %s (frame %s), want the interface MAC %s", p.SenderHardwareAddr, f.Source, macA)
		}
		if f.Destination.String() != ethernet.Broadcast.String() {
			t.Errorf("frame to %s, want broadcast", f.Destination)
		}
		return
	}
}

func TestAnnouncerSendsUnsolicitedNeighbourAdvertisement(t *testing.T) {
	l := newTestLink(t)
	vip := netip.MustParseAddr("fd00:231::100")
	macA := interfaceIn(t, l.NSA, l.IfA).HardwareAddr

	var c *ndp.Conn
	listenOnB(t, l, func(ifi *net.Interface) (err error) {
		c, _, err = ndp.Listen(ifi, ndp.LinkLocal)
		return err
	})
	defer c.Close()
	if err := c.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}

	announceFromA(t, l, vip)
	for {
		m, cm, _, err := c.ReadFrom()
		if err != nil {
			t.Fatalf("no neighbour advertisement for %s arrived: %v", vip, err)
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok || na.TargetAddress != vip {
			continue
		}
		if !na.Override || na.Solicited {
			t.Errorf("NA override=%v solicited=%v, want an unsolicited override", na.Override, na.Solicited)
		}
		var lla string
		for _, o := range na.Options {
			if a, ok := o.(*ndp.LinkLayerAddress); ok && a.Direction == ndp.Target {
				lla = a.Addr.String()
			}
		}
		if lla != macA.String() {
			t.Errorf("target link-layer address %q, want %s", lla, macA)
		}
		if cm == nil || cm.HopLimit != 255 || !cm.Dst.Equal(allNodes.AsSlice()) {
			t.Errorf("control message %v, want hop limit 255 to %s", cm, allNodes)
		}
		return
	}
}
