package vrrp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testLink is two network namespaces joined by a veth pair: end A in NSA,
// end B in NSB, with the addresses below, DAD off so IPv6 works at once.
type testLink struct {
	NSA, NSB string
	IfA, IfB string
	A4, B4   netip.Prefix
	A6, B6   netip.Prefix
}

// newTestLink creates the namespaces and the veth pair and removes them at
// cleanup. Names carry the pid and a random suffix so parallel runs do not meet.
func newTestLink(t *testing.T) *testLink {
	t.Helper()
	requireRoot(t, "creates network namespaces and raw sockets")
	id := fmt.Sprintf("%d%04x", os.Getpid()%100000, rand.IntN(0x10000))
	l := &testLink{
		NSA: "vt" + id + "a", NSB: "vt" + id + "b",
		IfA: "va" + id, IfB: "vb" + id,
		A4: netip.MustParsePrefix("10.231.0.1/24"), B4: netip.MustParsePrefix("10.231.0.2/24"),
		A6: netip.MustParsePrefix("fd00:231::1/64"), B6: netip.MustParsePrefix("fd00:231::2/64"),
	}
	for _, ns := range []string{l.NSA, l.NSB} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "link", "add", l.IfA, "netns", l.NSA, "type", "veth", "peer", "name", l.IfB, "netns", l.NSB)
	l.setup(t)
	return l
}

// setup addresses both ends and brings them up.
func (l *testLink) setup(t *testing.T) {
	t.Helper()
	for _, end := range []struct {
		ns, ifname string
		v4, v6     netip.Prefix
	}{{l.NSA, l.IfA, l.A4, l.A6}, {l.NSB, l.IfB, l.B4, l.B6}} {
		run(t, "ip", "netns", "exec", end.ns, "sysctl", "-qw", "net.ipv6.conf."+end.ifname+".accept_dad=0")
		run(t, "ip", "-n", end.ns, "addr", "add", end.v4.String(), "dev", end.ifname)
		run(t, "ip", "-n", end.ns, "addr", "add", end.v6.String(), "dev", end.ifname, "nodad")
		run(t, "ip", "-n", end.ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", end.ns, "link", "set", end.ifname, "up")
	}
	// The link-local addresses appear when the links come up.
	l.linkLocal(t, l.NSA, l.IfA)
	l.linkLocal(t, l.NSB, l.IfB)
}

// recreate deletes the veth pair and creates it again with the same names
// and addresses: new interface indexes, as after a driver reload.
func (l *testLink) recreate(t *testing.T) {
	t.Helper()
	run(t, "ip", "-n", l.NSA, "link", "del", l.IfA)
	run(t, "ip", "link", "add", l.IfA, "netns", l.NSA, "type", "veth", "peer", "name", l.IfB, "netns", l.NSB)
	l.setup(t)
}

// linkLocal waits for the interface's IPv6 link-local address and returns it.
func (l *testLink) linkLocal(t *testing.T, ns, ifname string) netip.Addr {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := run(t, "ip", "-n", ns, "-6", "-o", "addr", "show", "dev", ifname, "scope", "link")
		for _, f := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() && !strings.Contains(out, "tentative") {
				return p.Addr()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no link-local address on %s in %s: %s", ifname, ns, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inNetns runs fn on an OS thread switched into the named namespace.
// Sockets and goroutines that fn creates stay in that namespace.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	target, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("netns %s: %v", name, err)
	}
	defer target.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Errorf("current netns: %v", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			t.Errorf("enter netns %s: %v", name, err)
			return
		}
		fn()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		// Otherwise the thread stays locked and dies with the goroutine.
	}()
	<-done
}
