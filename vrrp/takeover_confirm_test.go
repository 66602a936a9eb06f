package vrrp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vrrplb/vrrplb/internal/clock/clocktest"
	"github.com/vrrplb/vrrplb/internal/poll"
)

// roundOver waits until b's round of prompts, if any, is over: nothing
// more can be prompted after it.
func roundOver(t *testing.T, b *host) {
	t.Helper()
	poll.Until(t, 5*time.Second, "b's round of prompts to end", func() bool {
		b.in.tk.mu.Lock()
		defer b.in.tk.mu.Unlock()
		return b.in.tk.round == nil
	})
}

// A backup that missed the master's adverts for a Master_Down_Interval (it
// was starved, or a burst was lost) takes over, but prompts the master's
// clients only if the master stays silent for the confirmation window:
// a master that speaks again keeps its clients.
func TestTakeoverPromptsWaitUntilTheOldMasterStaysSilent(t *testing.T) {
	held := clientTuples(netip.MustParseAddr("192.0.2.100"), client4, 3)
	window := promptConfirmAdverts * time.Second // a's adverts are 1s apart

	t.Run("the old master heard within the window: no prompt, the cancel counted", func(t *testing.T) {
		h, a, b, p := takeoverPair(t, held)
		b.transport.unplug() // b hears nothing, as if starved
		h.advance(mdi(100) + 10*time.Millisecond)
		if got := b.in.Status().State; got != "master" {
			t.Fatalf("b is %s after missing a's adverts, want master", got)
		}
		b.transport.plug()
		h.advance(window + time.Second)
		if diff := cmp.Diff([]string{"master", "backup"}, []string{a.in.Status().State, b.in.Status().State}); diff != "" {
			t.Fatalf("states once b hears a again (-want +got):\n%s", diff)
		}
		roundOver(t, b)
		if len(p) != 0 {
			t.Errorf("b prompted %d of a's clients while a was alive, want 0", len(p))
		}
		if got := testutil.ToFloat64(b.in.metrics.promptsCancelled[PromptCancelAlive]); got != 1 {
			t.Errorf("%s{reason=%q} = %v, want 1", MetricTakeoverCancelled, PromptCancelAlive, got)
		}
		if got := testutil.ToFloat64(b.in.metrics.takeoverResets); got != 0 {
			t.Errorf("%s = %v, want 0", MetricTakeoverResets, got)
		}
		if logs := b.logs.String(); strings.Count(logs, "takeover prompts cancelled: the old master is alive") != 1 {
			t.Errorf("want one info line for the cancel, logs:\n%s", logs)
		}
	})

	t.Run("the old master silent: the prompts go after the window, not before", func(t *testing.T) {
		h, a, b, p := takeoverPair(t, held)
		a.transport.unplug() // a crashed
		took := h.clock.Now()
		for b.in.Status().State != "master" && h.clock.Now().Sub(took) < 2*mdi(100) {
			h.advance(10 * time.Millisecond)
		}
		took = h.clock.Now()
		if got := b.in.Status().State; got != "master" {
			t.Fatalf("b is %s after a went silent, want master", got)
		}
		h.advance(window - 20*time.Millisecond)
		if got := p.within(len(held), 200*time.Millisecond); len(got) != 0 {
			t.Fatalf("b prompted %d clients %v after taking over, before the %v window ended", len(got), h.clock.Now().Sub(took), window)
		}
		h.advance(20 * time.Millisecond)
		if diff := cmp.Diff(held, p.prompted(len(held)), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("prompted once the window ended (-want +got):\n%s", diff)
		}
		roundOver(t, b)
		for _, why := range promptCancels {
			if got := testutil.ToFloat64(b.in.metrics.promptsCancelled[why]); got != 0 {
				t.Errorf("%s{reason=%q} = %v, want 0", MetricTakeoverCancelled, why, got)
			}
		}
	})
}

// losingPrompter records the prompts and reports the loss of mastership to
// tk once it has sent lose of them.
type losingPrompter struct {
	tk   *takeover
	lose int
	sent []Tuple
}

func (l *losingPrompter) Prompt(t Tuple) error {
	l.sent = append(l.sent, t)
	if len(l.sent) == l.lose {
		l.tk.follow(false, addrHigh)
	}
	return nil
}

func (l *losingPrompter) Close() error { return nil }

// A host that loses mastership while it prompts stops at once: the rest
// are clients of the new master's, or of a master that was alive.
func TestPromptsStopAtOnceWhenMastershipIsLost(t *testing.T) {
	m, _ := NewMetrics(nil)
	im := m.forInstance("vip")
	clk := clocktest.New(t0)
	lp := &losingPrompter{lose: 5}
	tk := newTakeover(slog.New(slog.DiscardHandler), im, TakeoverOptions{NewPrompter: func() (Prompter, error) { return lp, nil }}, clk)
	lp.tk = tk
	tk.configure(testKey, true, 51, nil, nil, []netip.Addr{vip4}, time.Second)
	tk.follow(false, addrLow)
	held := clientTuples(vip4, client4, 600)
	for _, d := range encodeSnapshot(testKey, true, 51, time.Now().UnixNano(), 1, 0, held) {
		if why := tk.accept(d, addrLow, TTL); why != "" {
			t.Fatalf("dropped the master's snapshot: %s", why)
		}
	}
	done := make(chan struct{})
	defer close(done)
	var wg sync.WaitGroup
	tk.prompt(done, &wg, time.Second)
	tk.follow(true, addrMid)
	clk.Advance(time.Second)
	wg.Wait()
	if len(lp.sent) != lp.lose {
		t.Errorf("sent %d prompts, want %d: none after mastership was lost", len(lp.sent), lp.lose)
	}
	if got := testutil.ToFloat64(im.promptsCancelled[PromptCancelNotMaster]); got != 1 {
		t.Errorf("%s{reason=%q} = %v, want 1", MetricTakeoverCancelled, PromptCancelNotMaster, got)
	}
}

// scriptedStream is a StreamConn that receives the datagrams given, then
// blocks until closed.
type scriptedStream struct {
	fakeStream
	in chan datagramIn
}

type datagramIn struct {
	from netip.Addr
	b    []byte
}

func (s *scriptedStream) Receive(b []byte) (int, netip.Addr, int, error) {
	select {
	case d := <-s.in:
		return copy(b, d.b), d.from, TTL, nil
	case <-s.closed:
		return s.fakeStream.Receive(b)
	}
}

// Dropped stream datagrams are logged once per reason per logEvery, with
// the count not logged since: a forged flood floods no log, and one cause
// does not hide another. A datagram from a master this host no longer
// follows is expected while the VIP moves: debug only.
func TestDroppedStreamDatagramsAreLoggedOncePerReasonAndANotMasterAtDebug(t *testing.T) {
	master, former := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.3")
	m, _ := NewMetrics(nil)
	im := m.forInstance("vip")
	clk := clocktest.New(t0)
	logs := &syncBuffer{}
	st := &scriptedStream{fakeStream: *newFakeStream(), in: make(chan datagramIn, 1024)}
	tk := newTakeover(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), im,
		TakeoverOptions{Conn: st}, clk)
	tk.configure(testKey, true, 51, []netip.Addr{master, former}, nil, []netip.Addr{vip4}, time.Second)
	tk.follow(false, master)
	now := time.Now().UnixNano()
	good := func(i int) []byte {
		return encodeSnapshot(testKey, true, 51, now+int64(i), uint32(i+1), 0, clientTuples(vip4, client4, 1))[0]
	}
	forged := encodeSnapshot([]byte("another key of 16+ bytes"), true, 51, now, 1, 0, clientTuples(vip4, client4, 1))[0]
	stranger := netip.MustParseAddr("198.51.100.9")
	const flood = 100
	for i := range flood {
		st.in <- datagramIn{former, good(i)}
		st.in <- datagramIn{master, forged}
		st.in <- datagramIn{stranger, good(i)}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { tk.receive(done) })
	defer func() { close(done); st.Close(); wg.Wait() }()
	counted := func(r StreamDrop, n float64) func() bool {
		return func() bool { return testutil.ToFloat64(im.streamDropped[r]) >= n }
	}
	poll.Until(t, 5*time.Second, "the flood to be counted", counted(StreamDropNotPeer, flood))
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "dropped a takeover stream datagram") {
				f := strings.Fields(l)
				out = append(out, strings.Join(slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "time=") }), " "))
			}
		}
		return out
	}
	want := []string{
		`level=DEBUG msg="dropped a takeover stream datagram" reason=not_master from=192.0.2.3 suppressed=0`,
		`level=WARN msg="dropped a takeover stream datagram" reason=bad_mac from=192.0.2.1 suppressed=0`,
		`level=WARN msg="dropped a takeover stream datagram" reason=not_peer from=198.51.100.9 suppressed=0`,
	}
	if diff := cmp.Diff(want, lines()); diff != "" {
		t.Fatalf("log lines after %d of each (-want +got):\n%s", flood, diff)
	}
	for _, r := range []StreamDrop{StreamDropNotMaster, StreamDropBadMAC, StreamDropNotPeer} {
		if got := testutil.ToFloat64(im.streamDropped[r]); got != flood {
			t.Errorf("%s{reason=%q} = %v, want %d", MetricTakeoverDropped, r, got, flood)
		}
	}
	clk.Advance(logEvery)
	st.in <- datagramIn{master, forged}
	poll.Until(t, 5*time.Second, "the next forged datagram to be logged", func() bool { return len(lines()) > len(want) })
	want = append(want, fmt.Sprintf(`level=WARN msg="dropped a takeover stream datagram" reason=bad_mac from=192.0.2.1 suppressed=%d`, flood-1))
	if diff := cmp.Diff(want, lines()); diff != "" {
		t.Errorf("log lines a minute later (-want +got):\n%s", diff)
	}
}
