package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLabHostsReachEachOtherAndCleanupLeavesNothing(t *testing.T) {
	requireRoot(t)
	var id string
	t.Run("three hosts on one bridge reach each other over IPv4 and IPv6", func(t *testing.T) {
		l := NewLab(t, 3)
		id = l.ID
		for _, from := range l.Hosts {
			for _, to := range l.Hosts {
				if from == to {
					continue
				}
				for _, a := range []netip.Addr{to.Addr4.Addr(), to.Addr6.Addr()} {
					if err := from.Reach(to, a, 2*time.Second); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if !l.Host(2).HasAddr(LabAddr4(2)) || l.Host(2).HasAddr(LabAddr4(1)) {
			t.Errorf("HasAddr on h2 is wrong: %v", must(t, "ip", "-n", l.Host(2).NS, "addr"))
		}
		// The link goes down at the bridge: no traffic passes.
		l.Host(3).SetLink(false)
		if err := l.Host(1).Reach(l.Host(3), LabAddr4(3), 300*time.Millisecond); err == nil {
			t.Error("h1 reached h3 with h3's link down")
		}
		l.Host(3).SetLink(true)
		Eventually(t, 5*time.Second, func() (bool, string) {
			err := l.Host(1).Reach(l.Host(3), LabAddr4(3), 300*time.Millisecond)
			return err == nil, fmt.Sprintf("after the link came back: %v", err)
		})
		// A process runs inside the host and is logged.
		p := l.Host(1).Start("ip", "ip", "-br", "addr", "show", "dev", HostIfname)
		if err := p.WaitExit(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.Output(), LabAddr4(1).String()) {
			t.Errorf("process output %q does not show h1's address", p.Output())
		}
		// A long-running process is killed at cleanup.
		l.Host(2).Start("sleeper", "sleep", "600")
	})
	if id == "" {
		t.Fatal("the lab was not created")
	}
	if ns := must(t, "ip", "netns", "list"); strings.Contains(ns, id) {
		t.Errorf("namespaces left behind:\n%s", ns)
	}
	if links := must(t, "ip", "-br", "link"); strings.Contains(links, id) {
		t.Errorf("links left behind:\n%s", links)
	}
	if ps := must(t, "ps", "-eo", "args"); strings.Contains(ps, "sleep 600") {
		t.Errorf("processes left behind:\n%s", ps)
	}
}

func TestLabAddressesStayInTheLabSubnets(t *testing.T) {
	for i := 1; i <= 50; i++ {
		if !LabSubnet4.Contains(LabAddr4(i)) || !LabSubnet6.Contains(LabAddr6(i)) {
			t.Fatalf("host %d's addresses %s %s leave the lab subnets", i, LabAddr4(i), LabAddr6(i))
		}
	}
	if got := LabAddr6(3); got != netip.MustParseAddr("fd77::3") {
		t.Errorf("LabAddr6(3) = %s, want fd77::3", got)
	}
}
