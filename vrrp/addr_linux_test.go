package vrrp

import (
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// addrsOf lists the addresses of ifname in ns as "prefix flags..." lines of
// `ip -o addr`, scope global only, sorted.
func addrsOf(t *testing.T, ns, ifname string) []string {
	t.Helper()
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(run(t, "ip", "-n", ns, "-o", "addr", "show", "dev", ifname, "scope", "global")), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 {
			got = append(got, f[3])
		}
	}
	sort.Strings(got)
	return got
}

func newAddrManagerIn(t *testing.T, ns, ifname string) *NetlinkAddrs {
	t.Helper()
	var (
		m   *NetlinkAddrs
		err error
	)
	inNetns(t, ns, func() { m, err = NewAddrManager(ifname) })
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAddrManagerAddsAndRemovesOnlyItsAddresses(t *testing.T) {
	l := newTestLink(t)
	m := newAddrManagerIn(t, l.NSA, l.IfA)
	vip4 := netip.MustParsePrefix("10.231.0.100/24")
	vip6 := netip.MustParsePrefix("fd00:231::100/64")
	before := addrsOf(t, l.NSA, l.IfA)

	for _, p := range []netip.Prefix{vip4, vip6} {
		for range 2 { // the second add must be a no-op
			if err := m.Add(p); err != nil {
				t.Fatalf("Add(%s): %v", p, err)
			}
		}
		if has, err := m.Has(p); err != nil || !has {
			t.Fatalf("Has(%s) after Add = %v, %v; want true", p, has, err)
		}
	}
	want := append(append([]string(nil), before...), vip4.String(), vip6.String())
	sort.Strings(want)
	if diff := cmp.Diff(want, addrsOf(t, l.NSA, l.IfA)); diff != "" {
		t.Errorf("addresses after adding the VIPs twice (-want +got):\n%s", diff)
	}

	// The IPv6 VIP is usable at once: no duplicate address detection.
	out := run(t, "ip", "-n", l.NSA, "-6", "-o", "addr", "show", "dev", l.IfA, "to", vip6.String())
	if strings.Contains(out, "tentative") || !strings.Contains(out, "nodad") {
		t.Errorf("IPv6 VIP should be nodad and not tentative: %s", out)
	}

	// A prefix of the same address with another length is another address.
	if has, err := m.Has(netip.MustParsePrefix("10.231.0.100/32")); err != nil || has {
		t.Errorf("Has(10.231.0.100/32) = %v, %v; want false", has, err)
	}

	for _, p := range []netip.Prefix{vip4, vip6} {
		for range 2 { // removing an absent address is not an error
			if err := m.Remove(p); err != nil {
				t.Fatalf("Remove(%s): %v", p, err)
			}
		}
		if has, err := m.Has(p); err != nil || has {
			t.Fatalf("Has(%s) after Remove = %v, %v; want false", p, has, err)
		}
	}
	if diff := cmp.Diff(before, addrsOf(t, l.NSA, l.IfA)); diff != "" {
		t.Errorf("addresses after removing the VIPs (-want +got):\n%s", diff)
	}
}

func TestAddrManagerReportsAMissingInterface(t *testing.T) {
	l := newTestLink(t)
	m := newAddrManagerIn(t, l.NSA, "nosuchif0")
	p := netip.MustParsePrefix("10.231.0.100/24")
	if err := m.Add(p); err == nil || !strings.Contains(err.Error(), "nosuchif0") {
		t.Errorf("Add on a missing interface: %v, want an error naming it", err)
	}
	if _, err := m.Has(p); err == nil {
		t.Error("Has on a missing interface: no error")
	}
}
