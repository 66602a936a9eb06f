package vrrp

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/internal/clock"
	"github.com/vrrplb/vrrplb/internal/poll"
)

// The fakes below let instances run end to end without root: a fake clock
// driven by the test, an in-memory network segment, and recording address
// managers and announcers. Every event handed to an instance's loop (a fired
// timer, a delivered packet, a tracker report) is counted in its node's
// pending count, and the loop's onEvent hook counts it done, so the test knows
// when every instance has finished reacting before it moves time on.

// node is the test's handle on one instance's pending work.
type node struct {
	pending atomic.Int64
}

// segment is an in-memory link: multicast reaches every other transport,
// unicast the one with that address.
type segment struct {
	mu      sync.Mutex
	members []*fakeTransport
}

type sentPacket struct {
	at   time.Time
	dst  netip.Addr
	msg  []byte
	from netip.Addr
}

type fakeTransport struct {
	seg    *segment
	n      *node
	clock  clock.Clock
	local  netip.Addr
	queue  chan received
	closed chan struct{}
	once   sync.Once

	mu   sync.Mutex
	sent []sentPacket
	cut  bool // unplugged: sends and deliveries are lost
}

func (s *segment) join(n *node, c clock.Clock, local netip.Addr) *fakeTransport {
	t := &fakeTransport{seg: s, n: n, clock: c, local: local, queue: make(chan received, 256), closed: make(chan struct{})}
	s.mu.Lock()
	s.members = append(s.members, t)
	s.mu.Unlock()
	return t
}

func (t *fakeTransport) Send(msg []byte, dst netip.Addr) error {
	select {
	case <-t.closed:
		return errors.New("closed")
	default:
	}
	t.mu.Lock()
	from := t.local
	t.sent = append(t.sent, sentPacket{at: t.clock.Now(), dst: dst, msg: slices.Clone(msg), from: from})
	cut := t.cut
	t.mu.Unlock()
	if cut {
		return nil
	}
	t.seg.mu.Lock()
	defer t.seg.mu.Unlock()
	for _, m := range t.seg.members {
		if m == t || (!dst.IsMulticast() && m.LocalAddr() != dst) {
			continue
		}
		m.deliver(msg, PacketInfo{Src: from, Dst: dst, HopLimit: TTL})
	}
	return nil
}

// deliver queues msg for the instance on t, unless t is closed or unplugged.
func (t *fakeTransport) deliver(msg []byte, info PacketInfo) {
	t.mu.Lock()
	cut := t.cut
	t.mu.Unlock()
	if cut {
		return
	}
	select {
	case <-t.closed:
		return
	default:
	}
	t.n.pending.Add(1)
	t.queue <- received{buf: slices.Clone(msg), n: len(msg), info: info}
}

func (t *fakeTransport) Receive(buf []byte) (int, PacketInfo, error) {
	select {
	case p := <-t.queue:
		return copy(buf, p.buf[:p.n]), p.info, nil
	case <-t.closed:
		return 0, PacketInfo{}, errors.New("closed")
	}
}

func (t *fakeTransport) LocalAddr() netip.Addr {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.local
}

// setLocal changes the source address, as when the interface's address changes.
func (t *fakeTransport) setLocal(a netip.Addr) {
	t.mu.Lock()
	t.local = a
	t.mu.Unlock()
}

func (t *fakeTransport) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

func (t *fakeTransport) unplug() { t.setCut(true) }

// plug undoes unplug: what is sent from now on goes through.
func (t *fakeTransport) plug() { t.setCut(false) }

func (t *fakeTransport) setCut(cut bool) {
	t.mu.Lock()
	t.cut = cut
	t.mu.Unlock()
}

// sentAdverts decodes what t sent.
func (t *fakeTransport) sentAdverts(tb testing.TB) []sentAdvert {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []sentAdvert
	for _, p := range t.sent {
		var a Advertisement
		if err := a.Decode(p.msg, p.from, p.dst); err != nil {
			tb.Fatalf("sent an undecodable advert %x: %v", p.msg, err)
		}
		out = append(out, sentAdvert{at: p.at, dst: p.dst, priority: a.Priority})
	}
	return out
}

type sentAdvert struct {
	at       time.Time
	dst      netip.Addr
	priority uint8
}

// fakeAddrs is an interface's address list.
type fakeAddrs struct {
	mu    sync.Mutex
	addrs []netip.Prefix
	ops   []string
}

func (f *fakeAddrs) Add(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "add "+p.String())
	if !slices.Contains(f.addrs, p) {
		f.addrs = append(f.addrs, p)
	}
	return nil
}

func (f *fakeAddrs) Remove(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "remove "+p.String())
	f.addrs = slices.DeleteFunc(f.addrs, func(a netip.Prefix) bool { return a == p })
	return nil
}

func (f *fakeAddrs) Has(p netip.Prefix) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.addrs, p), nil
}

func (f *fakeAddrs) list() []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.addrs)
}

// record is a list that the code under test appends to while the test
// reads it.
type record[T any] struct {
	mu   sync.Mutex
	list []T
}

func (r *record[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, v)
}

// all is a copy of the list so far.
func (r *record[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

// fakeAnnouncer records when it was asked to announce.
type fakeAnnouncer struct {
	clock clock.Clock
	at    record[time.Time]
}

func (f *fakeAnnouncer) Announce(addrs []netip.Addr) error {
	f.at.add(f.clock.Now())
	return nil
}

func (f *fakeAnnouncer) times() []time.Time { return f.at.all() }

// fakeNotifier records the states it is told of.
type fakeNotifier struct {
	states record[string]
}

func (f *fakeNotifier) Notify(instance, state string) { f.states.add(instance + " " + state) }

func (f *fakeNotifier) got() []string { return f.states.all() }

// fakeTracker reports what the test sets.
type fakeTracker struct {
	name string
	n    *node
	// silent: Run does not report at start; otherwise it reports passing.
	silent bool
	mu     sync.Mutex
	report func(bool)
	ready  chan struct{}
}

func newFakeTracker(name string, n *node) *fakeTracker {
	return &fakeTracker{name: name, n: n, ready: make(chan struct{})}
}

func (f *fakeTracker) Name() string { return f.name }

func (f *fakeTracker) Run(ctx context.Context, report func(ok bool)) error {
	f.mu.Lock()
	f.report = report
	f.mu.Unlock()
	close(f.ready)
	if !f.silent {
		report(true) // counted as pending by harness.start
	}
	<-ctx.Done()
	return nil
}

// set reports ok through the instance, counting it as the instance's work.
func (f *fakeTracker) set(t *testing.T, ok bool) {
	t.Helper()
	poll.Receive(t, f.ready, 5*time.Second, "the tracker to start")
	f.mu.Lock()
	report := f.report
	f.mu.Unlock()
	f.n.pending.Add(1)
	report(ok)
}
