package vrrp

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vrrplb/vrrplb/config"
)

// newTestTakeover is a backup's stream end following master, with its
// own metrics.
func newTestTakeover(t *testing.T, peers []netip.Addr, master netip.Addr) (*takeover, *instanceMetrics) {
	t.Helper()
	m, _ := NewMetrics(nil)
	im := m.forInstance("vip")
	tk := newTakeover(slog.New(slog.DiscardHandler), im, TakeoverOptions{}, nil)
	tk.configure(testKey, true, 51, peers, peers, []netip.Addr{vip4}, time.Second)
	tk.follow(false, master)
	return tk, im
}

func TestABackupHoldsTheNewestCompleteSetOfItsMasterOnly(t *testing.T) {
	master, other := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.3")
	now := time.Now().UnixNano()
	set := func(ts int64, snapshot uint32, n int) [][]byte {
		return encodeSnapshot(testKey, true, 51, ts, snapshot, 0, clientTuples(vip4, client4, n))
	}
	type datagram struct {
		from netip.Addr
		hop  int
		b    []byte
	}
	all := func(from netip.Addr, ds [][]byte) []datagram {
		var out []datagram
		for _, d := range ds {
			out = append(out, datagram{from, TTL, d})
		}
		return out
	}
	tests := []struct {
		name  string
		peers []netip.Addr
		in    []datagram
		held  int
		drops map[StreamDrop]int
	}{
		{"a complete set from the master is held", []netip.Addr{master, other}, all(master, set(now, 1, 200)), 200, nil},
		{"an incomplete set is not", []netip.Addr{master}, all(master, set(now, 1, 200)[:2]), 0, nil},
		{"a newer set replaces the older one", []netip.Addr{master},
			append(all(master, set(now, 1, 200)), all(master, set(now+10, 2, 5))...), 5, nil},
		{"a replayed datagram is dropped", []netip.Addr{master},
			append(all(master, set(now, 1, 5)), all(master, set(now, 1, 5))...), 5, map[StreamDrop]int{StreamDropReplay: 1}},
		{"a datagram far from this host's clock is dropped", []netip.Addr{master},
			all(master, set(now-int64(time.Minute), 1, 5)), 0, map[StreamDrop]int{StreamDropStale: 1}},
		{"a source not among unicast_peers is dropped", []netip.Addr{master}, all(other, set(now, 1, 5)), 0, map[StreamDrop]int{StreamDropNotPeer: 1}},
		{"a peer that is not the master is dropped", []netip.Addr{master, other}, all(other, set(now, 1, 5)), 0, map[StreamDrop]int{StreamDropNotMaster: 1}},
		{"in multicast any sender but the master is dropped", nil, all(other, set(now, 1, 5)), 0, map[StreamDrop]int{StreamDropNotMaster: 1}},
		{"a datagram with a hop limit below 255 is dropped", []netip.Addr{master}, []datagram{{master, 64, set(now, 1, 5)[0]}}, 0, map[StreamDrop]int{StreamDropHopLimit: 1}},
		{"another key is dropped", []netip.Addr{master},
			all(master, encodeSnapshot([]byte("another key of 16+ bytes"), true, 51, now, 1, 0, clientTuples(vip4, client4, 5))), 0, map[StreamDrop]int{StreamDropBadMAC: 1}},
		{"another virtual router's set is dropped", []netip.Addr{master},
			all(master, encodeSnapshot(testKey, true, 52, now, 1, 0, clientTuples(vip4, client4, 5))), 0, map[StreamDrop]int{StreamDropMalformed: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk, im := newTestTakeover(t, tt.peers, master)
			for _, d := range tt.in {
				if why := tk.accept(d.b, d.from, d.hop); why != "" {
					im.streamDropped[why].Inc()
				}
			}
			if got := testutil.ToFloat64(im.tuplesHeld); got != float64(tt.held) {
				t.Errorf("tuples held (gauge) %v, want %d", got, tt.held)
			}
			if got := len(tk.held); got != tt.held {
				t.Errorf("tuples held %d, want %d", got, tt.held)
			}
			for _, r := range streamDrops {
				if got := testutil.ToFloat64(im.streamDropped[r]); got != float64(tt.drops[r]) {
					t.Errorf("dropped as %s: %v, want %d", r, got, tt.drops[r])
				}
			}
		})
	}
}

func TestTheHeldSetGoesWithItsMasterAndWhenStale(t *testing.T) {
	master, next := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.3")
	tk, im := newTestTakeover(t, nil, master)
	tuples := append(clientTuples(vip4, client4, 3), Tuple{Local: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 22), Remote: netip.AddrPortFrom(client4, 1)})
	tuples = append(tuples, tuples[0])
	hold := func() {
		t.Helper()
		for _, d := range encodeSnapshot(testKey, true, 51, time.Now().UnixNano(), 1, 0, tuples) {
			if why := tk.accept(d, master, TTL); why != "" {
				t.Fatalf("dropped: %s", why)
			}
		}
	}
	hold()
	tk.follow(false, next)
	if len(tk.held) != 0 || testutil.ToFloat64(im.tuplesHeld) != 0 {
		t.Errorf("a new master's backup still holds %d of the old one's connections", len(tk.held))
	}

	tk.follow(false, master)
	hold()
	got, _ := tk.takeHeld()
	if diff := cmp.Diff(clientTuples(vip4, client4, 3), got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("prompted (-want +got): only the virtual IP's connections, each once\n%s", diff)
	}
	if again, _ := tk.takeHeld(); len(again) != 0 {
		t.Errorf("a set is used twice: %d", len(again))
	}

	hold()
	tk.now = func() time.Time { return time.Now().Add(tk.heldFor + time.Millisecond) }
	if got, _ := tk.takeHeld(); len(got) != 0 {
		t.Errorf("a stale set was used: %d connections", len(got))
	}
}

// fakeStream is a StreamConn that sends nowhere and receives nothing.
type fakeStream struct {
	once   sync.Once
	closed chan struct{}
}

func newFakeStream() *fakeStream { return &fakeStream{closed: make(chan struct{})} }

func (f *fakeStream) Send([]byte, netip.Addr) error { return nil }
func (f *fakeStream) Receive([]byte) (int, netip.Addr, int, error) {
	<-f.closed
	return 0, netip.Addr{}, 0, errors.New("closed")
}
func (f *fakeStream) Close() error { f.once.Do(func() { close(f.closed) }); return nil }

// fakePrompter passes on the tuples prompted.
type fakePrompter chan Tuple

func (f fakePrompter) Prompt(t Tuple) error { f <- t; return nil }
func (f fakePrompter) Close() error         { return nil }

// prompted collects n tuples, or what came within a second.
func (f fakePrompter) prompted(n int) []Tuple { return f.within(n, time.Second) }

// within collects n tuples, or what came within d.
func (f fakePrompter) within(n int, d time.Duration) []Tuple {
	var got []Tuple
	timeout := time.After(d)
	for len(got) < n {
		select {
		case tu := <-f:
			got = append(got, tu)
		case <-timeout:
			return got
		}
	}
	return got
}

type noConns struct{}

func (noConns) List(netip.Addr) ([]Tuple, error) { return nil, nil }

// takeoverPair runs a (priority 200, master) and b (100, backup) for five
// seconds, b with a takeover stream whose prompts go to the returned
// fakePrompter and holding a's connections held.
func takeoverPair(t *testing.T, held []Tuple) (h *harness, a, b *host, p fakePrompter) {
	t.Helper()
	h = newHarness(t)
	a = h.add(instanceConfig("a", 200), addrLow, nil)
	b = h.add(instanceConfig("b", 100), addrMid, nil)
	p = make(fakePrompter, 1024)
	b.in.tk = newTakeover(b.in.log, b.in.metrics, TakeoverOptions{Conn: newFakeStream(), Lister: noConns{},
		NewPrompter: func() (Prompter, error) { return p, nil }}, b.in.clock)
	b.in.tk.configure(testKey, true, 51, nil, b.in.dsts, b.in.vips, time.Second)
	h.start(a, b)
	h.advance(5 * time.Second)
	for _, d := range encodeSnapshot(testKey, true, 51, time.Now().UnixNano(), 1, 0, held) {
		if why := b.in.tk.accept(d, addrLow, TTL); why != "" {
			t.Fatalf("b dropped a's snapshot: %s", why)
		}
	}
	return h, a, b, p
}

// A backup holding the master's connections prompts them when it takes
// over from the master gone silent; when the master left with priority 0
// (it resets its clients itself) it prompts none.
func TestATakeoverPromptsTheClientsOfASilentMasterOnly(t *testing.T) {
	held := clientTuples(netip.MustParseAddr("192.0.2.100"), client4, 3)
	for _, how := range []string{"crash", "stop"} {
		t.Run("on "+how, func(t *testing.T) {
			h, a, b, p := takeoverPair(t, held)
			switch how {
			case "crash":
				a.transport.unplug()
				h.advance(mdi(100) + promptConfirmAdverts*time.Second + time.Second)
			case "stop":
				stopAndWaitLeft(t, a)
				h.advance(time.Second)
				waitRunReturned(t, a)
			}
			if got := b.in.Status().State; got != "master" {
				t.Fatalf("b is %s, want master", got)
			}
			want := held
			if how == "stop" {
				want = nil
			}
			if diff := cmp.Diff(want, p.prompted(len(held)), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("prompted (-want +got):\n%s", diff)
			}
			deadline := time.Now().Add(time.Second) // counted just after the prompt
			for testutil.ToFloat64(b.in.metrics.takeoverResets) < float64(len(want)) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if got := testutil.ToFloat64(b.in.metrics.takeoverResets); got != float64(len(want)) {
				t.Errorf("%s = %v, want %d", MetricTakeoverResets, got, len(want))
			}
		})
	}
}

// A reload changes the key in place; turning the stream on or off or
// moving it to another port needs a new instance (a new socket).
func TestAReloadChangesTheTakeoverKeyInPlaceOnly(t *testing.T) {
	on := instanceConfig("vip", 100)
	on.TakeoverReset, on.TakeoverKey, on.TakeoverPort = true, testKey, 5798
	newKey, off, port := on, on, on
	newKey.TakeoverKey = []byte("another key of 16+ bytes")
	off.TakeoverReset = false
	port.TakeoverPort = 5799
	for _, tc := range []struct {
		name string
		b    config.Instance
		want string
	}{
		{"a new key", newKey, ""},
		{"takeover_reset = false", off, "takeover stream turned on or off (takeover_reset, takeover_key_file)"},
		{"another port", port, "takeover_port changed"},
	} {
		if got := NeedsNewInstance(on, tc.b); got != tc.want {
			t.Errorf("%s: NeedsNewInstance = %q, want %q", tc.name, got, tc.want)
		}
	}
}
