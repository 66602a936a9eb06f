package vrrp

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/poll"
)

// openTransport opens a RawTransport inside namespace ns.
func openTransport(t *testing.T, ns, ifname string, family config.Family, src netip.Addr, peers []netip.Addr) *RawTransport {
	t.Helper()
	var (
		tr  *RawTransport
		err error
	)
	inNetns(t, ns, func() { tr, err = NewTransport(ifname, family, src, peers, TransportOptions{}) })
	if err != nil {
		t.Fatalf("NewTransport(%s in %s, %s): %v", ifname, ns, family, err)
	}
	transportNS.Store(tr, ns)
	t.Cleanup(func() { _ = tr.Close(); transportNS.Delete(tr) })
	return tr
}

// transportNS maps a test's transports to their namespaces, so that sends
// run there as they do in the daemon (whatever the send path looks up, it
// looks up in the thread's namespace).
var transportNS sync.Map

// sendFrom sends on tr from a thread in tr's namespace.
func sendFrom(t *testing.T, tr *RawTransport, msg []byte, dst netip.Addr) error {
	t.Helper()
	ns, ok := transportNS.Load(tr)
	if !ok {
		return tr.Send(msg, dst)
	}
	var err error
	inNetns(t, ns.(string), func() { err = tr.Send(msg, dst) })
	return err
}

type gotPacket struct {
	msg  []byte
	info PacketInfo
	err  error
}

// receiveOne receives on rx in the background while sending msg from tx to
// dst every 50ms, for at most 5s; it returns the first message whose payload
// is msg.
func receiveOne(t *testing.T, tx, rx *RawTransport, dst netip.Addr, msg []byte) gotPacket {
	t.Helper()
	got := make(chan gotPacket, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, info, err := rx.Receive(buf)
			if err != nil || bytes.Equal(buf[:n], msg) {
				got <- gotPacket{msg: append([]byte(nil), buf[:n]...), info: info, err: err}
				return
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		if err := sendFrom(t, tx, msg, dst); err != nil && i == 0 {
			t.Fatalf("Send to %s: %v", dst, err)
		}
		select {
		case r := <-got:
			return r
		case <-tick.C:
		case <-deadline:
			_ = rx.Close() // ends the receiving goroutine
			t.Fatalf("no message to %s arrived within 5s", dst)
		}
	}
}

func TestTransportExchangesMessagesOnAVethPair(t *testing.T) {
	l := newTestLink(t)
	llA := l.linkLocal(t, l.NSA, l.IfA)
	ifB := interfaceIn(t, l.NSB, l.IfB).Index
	tests := []struct {
		name   string
		family config.Family
		// unicast: the destination is B's address, else the group
		unicast bool
		wantSrc netip.Addr
		dst     netip.Addr
	}{
		{name: "IPv4 multicast reaches the group from the primary address", family: config.IPv4, wantSrc: l.A4.Addr(), dst: GroupIPv4},
		{name: "IPv4 unicast reaches the peer", family: config.IPv4, unicast: true, wantSrc: l.A4.Addr(), dst: l.B4.Addr()},
		{name: "IPv6 multicast reaches the group from the link-local address", family: config.IPv6, wantSrc: llA, dst: GroupIPv6},
		{name: "IPv6 unicast reaches the peer", family: config.IPv6, unicast: true, wantSrc: llA, dst: l.B6.Addr()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var peersA, peersB []netip.Addr
			if tt.unicast {
				peersA, peersB = []netip.Addr{tt.dst}, []netip.Addr{tt.wantSrc}
			}
			a := openTransport(t, l.NSA, l.IfA, tt.family, netip.Addr{}, peersA)
			b := openTransport(t, l.NSB, l.IfB, tt.family, netip.Addr{}, peersB)
			if got := a.LocalAddr(); got != tt.wantSrc {
				t.Fatalf("LocalAddr() = %s, want %s", got, tt.wantSrc)
			}
			msg := []byte("vrrp test " + tt.name)
			r := receiveOne(t, a, b, tt.dst, msg)
			if r.err != nil {
				t.Fatalf("Receive: %v", r.err)
			}
			want := gotPacket{msg: msg, info: PacketInfo{Src: tt.wantSrc, Dst: tt.dst, HopLimit: 255, IfIndex: ifB}}
			if diff := cmp.Diff(want, r, cmp.AllowUnexported(gotPacket{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("received packet (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTransportSendsFromTheConfiguredSource(t *testing.T) {
	l := newTestLink(t)
	// A second address on A: the configured source, not the primary one.
	run(t, "ip", "-n", l.NSA, "addr", "add", "10.231.0.11/24", "dev", l.IfA)
	src := netip.MustParseAddr("10.231.0.11")
	a := openTransport(t, l.NSA, l.IfA, config.IPv4, src, nil)
	b := openTransport(t, l.NSB, l.IfB, config.IPv4, netip.Addr{}, nil)
	r := receiveOne(t, a, b, GroupIPv4, []byte("from the configured source"))
	if r.err != nil || r.info.Src != src {
		t.Fatalf("received from %s (err %v), want %s", r.info.Src, r.err, src)
	}
}

// warmTransports opens transports at both ends of a new link, a sending to
// group and b receiving, and sees one message through.
func warmTransports(t *testing.T, family config.Family, group netip.Addr) (a, b *RawTransport) {
	t.Helper()
	l := newTestLink(t)
	a = openTransport(t, l.NSA, l.IfA, family, netip.Addr{}, nil)
	b = openTransport(t, l.NSB, l.IfB, family, netip.Addr{}, nil)
	if r := receiveOne(t, a, b, group, []byte("warm up")); r.err != nil {
		t.Fatal(r.err)
	}
	return a, b
}

// groups are the multicast groups of the two families.
var groups = []struct {
	family config.Family
	group  netip.Addr
}{{config.IPv4, GroupIPv4}, {config.IPv6, GroupIPv6}}

// allocRuns messages, counted, are what the allocation tests send.
const allocRuns = 20

var counted = []byte("counted")

func TestTransportReceiveDoesNotAllocate(t *testing.T) {
	for _, tt := range groups {
		t.Run(tt.family.String(), func(t *testing.T) {
			// Make sure the path works, then queue the messages AllocsPerRun reads.
			a, b := warmTransports(t, tt.family, tt.group)
			for range allocRuns + 1 {
				if err := sendFrom(t, a, counted, tt.group); err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, 1500)
			seen := 0
			allocs := testing.AllocsPerRun(allocRuns, func() {
				for { // skip extra copies of the warm-up message
					n, _, err := b.Receive(buf)
					if err != nil {
						t.Fatal(err)
					}
					if bytes.Equal(buf[:n], counted) {
						seen++
						return
					}
				}
			})
			if allocs != 0 {
				t.Errorf("Receive allocates %.1f times per message, want 0", allocs)
			}
			if seen != allocRuns+1 {
				t.Errorf("received %d counted messages, want %d", seen, allocRuns+1)
			}
		})
	}
}

func TestTransportSendDoesNotAllocate(t *testing.T) {
	for _, tt := range groups {
		t.Run(tt.family.String(), func(t *testing.T) {
			a, b := warmTransports(t, tt.family, tt.group)
			allocs := testing.AllocsPerRun(allocRuns, func() {
				if err := a.Send(counted, tt.group); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("Send allocates %.1f times per message, want 0", allocs)
			}
			// Every message sent arrives, from a's address; a lost one
			// ends the wait after 5 s.
			stop := time.AfterFunc(5*time.Second, func() { _ = b.Close() })
			defer stop.Stop()
			buf := make([]byte, 1500)
			for seen := 0; seen < allocRuns+1; {
				n, info, err := b.Receive(buf)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf[:n], counted) {
					continue
				}
				if info.Src != a.LocalAddr() {
					t.Fatalf("message from %s, want %s", info.Src, a.LocalAddr())
				}
				seen++
			}
		})
	}
}

func TestTransportFollowsItsInterfaceWhenItIsRecreated(t *testing.T) {
	for _, tt := range groups {
		t.Run(tt.family.String()+" sender and receiver both carry on", func(t *testing.T) {
			l := newTestLink(t)
			a := openTransport(t, l.NSA, l.IfA, tt.family, netip.Addr{}, nil)
			b := openTransport(t, l.NSB, l.IfB, tt.family, netip.Addr{}, nil)
			before := interfaceIn(t, l.NSB, l.IfB).Index
			// Talk once first: whatever the send path caches about the
			// interface is then cached.
			if r := receiveOne(t, a, b, tt.group, []byte("before recreate")); r.err != nil {
				t.Fatal(r.err)
			}

			l.recreate(t)
			after := interfaceIn(t, l.NSB, l.IfB).Index
			if before == after {
				t.Fatalf("interface index did not change (%d): the test proves nothing", before)
			}
			// The new link has a new MAC, so IPv6 a new link-local source.
			want := l.A4.Addr()
			if tt.family == config.IPv6 {
				want = l.linkLocal(t, l.NSA, l.IfA)
			}
			deadline := time.Now().Add(5 * time.Second)
			for a.LocalAddr() != want {
				if time.Now().After(deadline) {
					t.Fatalf("LocalAddr() = %s 5s after the interface came back, want %s", a.LocalAddr(), want)
				}
				time.Sleep(10 * time.Millisecond)
			}
			r := receiveOne(t, a, b, tt.group, []byte("after recreate"))
			if r.err != nil {
				t.Fatalf("Receive after the interface came back: %v", r.err)
			}
			if r.info.IfIndex != after || r.info.Src != want {
				t.Errorf("received from %s on ifindex %d, want from %s on the new %d", r.info.Src, r.info.IfIndex, want, after)
			}
		})
	}
}

func TestTransportReturnsClosedAfterClose(t *testing.T) {
	l := newTestLink(t)
	b := openTransport(t, l.NSB, l.IfB, config.IPv4, netip.Addr{}, nil)
	errc := make(chan error, 1)
	go func() {
		_, _, err := b.Receive(make([]byte, 100))
		errc <- err
	}()
	// Close must wake a blocked Receive.
	time.AfterFunc(50*time.Millisecond, func() { _ = b.Close() })
	if err := poll.Receive(t, errc, 5*time.Second, "Receive to return after Close"); !errors.Is(err, ErrTransportClosed) {
		t.Errorf("Receive after Close: %v, want ErrTransportClosed", err)
	}
	if err := b.Send([]byte("x"), GroupIPv4); !errors.Is(err, ErrTransportClosed) {
		t.Errorf("Send after Close: %v, want ErrTransportClosed", err)
	}
}

// TestTransportWithoutCapabilitiesSaysWhatItNeeds runs itself again with every
// capability dropped and checks the error names the capabilities.
func TestTransportWithoutCapabilitiesSaysWhatItNeeds(t *testing.T) {
	if os.Getenv("VRRP_TEST_NOCAPS") == "1" {
		_, err := NewTransport("lo", config.IPv4, netip.Addr{}, nil, TransportOptions{})
		if err == nil {
			t.Fatal("NewTransport succeeded without capabilities")
		}
		t.Log("error:", err)
		if !strings.Contains(err.Error(), "CAP_NET_RAW") {
			t.Fatalf("error %q does not name CAP_NET_RAW", err)
		}
		return
	}
	requireRoot(t, "creates network namespaces and raw sockets")
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	cmd := exec.Command("setpriv", "--bounding-set=-all", "--inh-caps=-all", "--",
		os.Args[0], "-test.run=^TestTransportWithoutCapabilitiesSaysWhatItNeeds$", "-test.v")
	cmd.Env = append(os.Environ(), "VRRP_TEST_NOCAPS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("without capabilities: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "CAP_NET_RAW") {
		t.Fatalf("child did not report the capability error:\n%s", out)
	}
}

func TestTransportFollowsThePrimaryAddressButNeverAVIP(t *testing.T) {
	l := newTestLink(t)
	// The VIP is the interface's first address; the real one comes second.
	run(t, "ip", "-n", l.NSA, "addr", "del", l.A4.String(), "dev", l.IfA)
	run(t, "ip", "-n", l.NSA, "addr", "add", "10.231.0.100/24", "dev", l.IfA)
	run(t, "ip", "-n", l.NSA, "addr", "add", l.A4.String(), "dev", l.IfA)
	var (
		a   *RawTransport
		err error
	)
	inNetns(t, l.NSA, func() {
		a, err = NewTransport(l.IfA, config.IPv4, netip.Addr{}, nil,
			TransportOptions{VirtualIPs: []netip.Prefix{netip.MustParsePrefix("10.231.0.100/24")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if got := a.LocalAddr(); got != l.A4.Addr() {
		t.Fatalf("LocalAddr() = %s, want %s and never the VIP", got, l.A4.Addr())
	}

	// The host is renumbered: the source follows.
	renumbered := netip.MustParseAddr("10.231.0.7")
	run(t, "ip", "-n", l.NSA, "addr", "del", "10.231.0.100/24", "dev", l.IfA) // takes its secondaries along
	run(t, "ip", "-n", l.NSA, "addr", "add", "10.231.0.7/24", "dev", l.IfA)
	deadline := time.Now().Add(5 * time.Second)
	for a.LocalAddr() != renumbered {
		if time.Now().After(deadline) {
			t.Fatalf("LocalAddr() = %s 5s after renumbering, want %s", a.LocalAddr(), renumbered)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b := openTransport(t, l.NSB, l.IfB, config.IPv4, netip.Addr{}, nil)
	r := receiveOne(t, a, b, GroupIPv4, []byte("renumbered"))
	if r.err != nil || r.info.Src != renumbered {
		t.Fatalf("received from %s (err %v), want %s", r.info.Src, r.err, renumbered)
	}
}
