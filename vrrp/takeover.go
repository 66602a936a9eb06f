package vrrp

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/clock"
)

// Takeover after a crash. A master that stops, yields or is preempted
// resets its clients itself (instance_handover.go); a master that crashed
// cannot, and its clients (watches that only receive) would wait for their
// next keepalive or ping, 30 s and more, before they notice. So the master
// streams the client connections it holds on the virtual IPs to the other
// LB hosts of the instance (the takeover stream, takeover_wire.go), and a
// host that becomes master because the master went silent (its
// Master_Down_Timer ran out with no priority-0 advert before) sends each of
// those clients one TCP segment from the virtual IP that its TCP answers
// with an ACK (a SYN on a synchronized connection draws a challenge ACK
// whatever its sequence number, RFC 5961 §4.2). This host has no socket for
// that connection, so its kernel answers the ACK with an RST, which the
// client takes (its sequence number is the client's own ACK's), and the
// client reconnects at once, here. The prompts wait a confirmation window
// first (promptConfirmAdverts of the old master's advert intervals) and go
// only if this host is still master and the old master has not spoken: a
// takeover from a master that was only late must not reset the clients of
// a master that is alive.

// StreamConn carries an instance's takeover stream: UDP datagrams with TTL
// (hop limit) 255 to the unicast peers or the instance's multicast group.
type StreamConn interface {
	// Send writes one datagram to dst: a unicast peer or the group.
	Send(b []byte, dst netip.Addr) error
	// Receive blocks until a datagram arrives, copies it into b and
	// reports its length, its source and the hop limit it arrived with.
	// It returns an error once Close is called.
	Receive(b []byte) (n int, from netip.Addr, hopLimit int, err error)
	Close() error
}

// ConnLister lists the TCP connections whose local address is addr
// (SockDiagResetter.List).
type ConnLister interface {
	List(addr netip.Addr) ([]Tuple, error)
}

// Prompter sends the remote end of a connection one TCP segment from its
// local end that makes its TCP answer with an ACK. A Prompter serves one
// round of prompts; Close ends it.
type Prompter interface {
	Prompt(t Tuple) error
	Close() error
}

// TakeoverOptions are the OS side of the takeover stream and prompts.
type TakeoverOptions struct {
	// Conn carries the stream; the instance closes it when Run returns.
	Conn StreamConn
	// Lister lists the master's client connections on the virtual IPs.
	Lister ConnLister
	// NewPrompter opens a Prompter for one round of prompts.
	NewPrompter func() (Prompter, error)
	// NormalPriority, when set, takes the calling OS thread out of the
	// engine's real-time policy. The stream's sender (listing every
	// connection) and receiver (a MAC per datagram, a forger's flood
	// included) each run on a thread of their own with it, so that they
	// never take a core from the proxy at real-time priority; the adverts
	// and the prompts keep it.
	NormalPriority func() error
}

// Takeover stream and prompt bounds.
const (
	// streamMinPeriod is the shortest time between two snapshots.
	streamMinPeriod = 200 * time.Millisecond
	// streamMaxRate bounds the datagrams a master sends a second, on
	// average: a larger set is sent less often.
	streamMaxRate = 2000
	// streamBurst datagrams go out back to back, then streamBurstPause.
	streamBurst      = 64
	streamBurstPause = 20 * time.Millisecond
	// streamMaxSkew is how far a datagram's timestamp may be from this
	// host's clock: the LB hosts' clocks must agree within it.
	streamMaxSkew = 30 * time.Second
	// promptBurst prompts go out back to back, then promptPause: at most
	// about 25000 a second.
	promptBurst = 256
	promptPause = 10 * time.Millisecond
	// maxStreamSenders bounds the senders whose last timestamp is kept.
	maxStreamSenders = 64
)

// PromptCancel is why a round of takeover prompts was dropped: the reason
// label of vrrplb_takeover_prompts_cancelled_total.
type PromptCancel string

// Prompt cancel reasons.
const (
	// PromptCancelAlive: the old master advertised within the confirmation
	// window or while the prompts went out: it was late, not dead.
	PromptCancelAlive PromptCancel = "old_master_alive"
	// PromptCancelNotMaster: this host lost mastership (to a router whose
	// advert made it back up, or by leaving) before or while prompting.
	PromptCancelNotMaster PromptCancel = "not_master"
)

// promptCancels lists every PromptCancel, so the metric starts at zero.
var promptCancels = []PromptCancel{PromptCancelAlive, PromptCancelNotMaster}

// StreamDrop is why a takeover stream datagram was dropped: the reason
// label of vrrplb_takeover_stream_dropped_total.
type StreamDrop string

// Stream drop reasons.
const (
	StreamDropHopLimit  StreamDrop = "hop_limit"  // TTL / hop limit not 255: sent from off the segment
	StreamDropNotPeer   StreamDrop = "not_peer"   // a source not in unicast_peers
	StreamDropMalformed StreamDrop = "malformed"  // short, not the stream, another family or virtual router
	StreamDropBadMAC    StreamDrop = "bad_mac"    // another key, or altered
	StreamDropOversize  StreamDrop = "oversize"   // more tuples or chunks than the bounds
	StreamDropNotMaster StreamDrop = "not_master" // a peer that is not the master this host follows
	StreamDropReplay    StreamDrop = "replay"     // a timestamp not above the sender's last one
	StreamDropStale     StreamDrop = "stale"      // a timestamp further than streamMaxSkew from this host's clock
)

// streamDrops lists every StreamDrop, so the metric starts at zero.
var streamDrops = []StreamDrop{StreamDropHopLimit, StreamDropNotPeer, StreamDropMalformed, StreamDropBadMAC,
	StreamDropOversize, StreamDropNotMaster, StreamDropReplay, StreamDropStale}

// takeover is an instance's end of the stream: the sender while master,
// the receiver and the held set while backup, and the prompts after a
// takeover from a silent master. Its goroutines run under Instance.Run.
type takeover struct {
	log     *slog.Logger
	metrics *instanceMetrics
	opts    TakeoverOptions
	now     func() time.Time // the stream's timestamps: the hosts' wall clocks
	clock   clock.Clock      // the prompts' confirmation window
	wake    chan struct{}    // tells the sender the state changed

	mu        sync.Mutex
	key       []byte
	v4        bool
	vrid      uint8
	peers     []netip.Addr // unicast_peers; empty in multicast
	dsts      []netip.Addr // the peers or the group
	vips      []netip.Addr
	interval  time.Duration // the instance's advert interval
	master    bool
	following netip.Addr // the master this host follows, when backup
	last      map[netip.Addr]int64
	pending   *assembly
	held      []Tuple
	heldFrom  netip.Addr
	heldAt    time.Time
	heldFor   time.Duration             // how long the held set stays fresh
	sent      uint32                    // snapshots sent
	lastTS    int64                     // timestamp of the last datagram sent
	round     *promptRound              // the round of prompts waiting or going out; nil when none
	rounds    sync.Mutex                // one round of prompts at a time
	dropLog   map[StreamDrop]*rateLimit // receive problems, in the receive goroutine
	sendLog   rateLimit                 // send problems, in the send goroutine
}

// promptRound is one takeover's prompts to the clients of the silent
// master from.
type promptRound struct {
	from   netip.Addr
	tuples []Tuple
	// cancelled says why the round was dropped; "" while it stands.
	// Guarded by takeover.mu.
	cancelled PromptCancel
}

// assembly is a snapshot whose chunks are arriving.
type assembly struct {
	from     netip.Addr
	snapshot uint32
	got      []bool
	left     int
	total    int
	period   time.Duration
	tuples   []Tuple
}

// newTakeover returns an instance's stream end; c times the prompts'
// confirmation window (nil: clock.System).
func newTakeover(log *slog.Logger, m *instanceMetrics, opts TakeoverOptions, c clock.Clock) *takeover {
	tk := &takeover{
		log:     log,
		metrics: m,
		opts:    opts,
		now:     time.Now,
		clock:   clock.Or(c),
		wake:    make(chan struct{}, 1),
		last:    map[netip.Addr]int64{},
		dropLog: map[StreamDrop]*rateLimit{},
		sendLog: rateLimit{every: logEvery},
	}
	for _, r := range streamDrops {
		tk.dropLog[r] = &rateLimit{every: logEvery}
	}
	return tk
}

// configure takes the instance's settings (at start and on reload).
func (tk *takeover) configure(key []byte, v4 bool, vrid uint8, peers, dsts, vips []netip.Addr, interval time.Duration) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.key, tk.v4, tk.vrid = slices.Clone(key), v4, vrid
	tk.peers, tk.dsts, tk.vips = slices.Clone(peers), slices.Clone(dsts), slices.Clone(vips)
	tk.interval = interval
}

// follow tells the stream the instance's state after each event: whether
// it is master, and the master it follows otherwise. A change of master
// drops what the previous one sent.
func (tk *takeover) follow(master bool, masterAddr netip.Addr) {
	masterAddr = masterAddr.Unmap().WithZone("")
	tk.mu.Lock()
	changed := master != tk.master
	tk.master = master
	var cancelled *promptRound
	if !master && tk.cancelLocked(PromptCancelNotMaster) {
		cancelled = tk.round
	}
	if master {
		masterAddr = netip.Addr{}
	}
	if masterAddr != tk.following {
		tk.following = masterAddr
		tk.pending = nil
		if tk.heldFrom != masterAddr {
			tk.dropHeldLocked()
		}
	}
	tk.mu.Unlock()
	if cancelled != nil {
		tk.logCancel(cancelled, PromptCancelNotMaster)
	}
	if changed {
		select {
		case tk.wake <- struct{}{}:
		default:
		}
	}
}

// heard tells the stream of an advert from: the old master speaking
// cancels the prompts to its clients.
func (tk *takeover) heard(from netip.Addr) {
	from = from.Unmap().WithZone("")
	tk.mu.Lock()
	r := tk.round
	alive := r != nil && r.from == from && tk.cancelLocked(PromptCancelAlive)
	tk.mu.Unlock()
	if alive {
		tk.logCancel(r, PromptCancelAlive)
	}
}

// cancelLocked drops the standing round for why and counts it; it reports
// whether there was one. tk.mu is held.
func (tk *takeover) cancelLocked(why PromptCancel) bool {
	r := tk.round
	if r == nil || r.cancelled != "" {
		return false
	}
	r.cancelled = why
	tk.metrics.promptsCancelled[why].Inc()
	return true
}

func (tk *takeover) logCancel(r *promptRound, why PromptCancel) {
	msg := "takeover prompts cancelled: the old master is alive"
	if why == PromptCancelNotMaster {
		msg = "takeover prompts cancelled: this host is no longer master"
	}
	tk.log.Info(msg, "reason", string(why), "old_master", r.from, "connections", len(r.tuples))
}

// standing reports whether r may still prompt. A round starts as this
// host becomes master, and follow cancels it on any report that it is not.
func (tk *takeover) standing(r *promptRound) bool {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return r.cancelled == ""
}

// endRound forgets r once its prompts are over.
func (tk *takeover) endRound(r *promptRound) {
	tk.mu.Lock()
	if tk.round == r {
		tk.round = nil
	}
	tk.mu.Unlock()
}

func (tk *takeover) dropHeldLocked() {
	tk.held, tk.heldFrom, tk.heldAt = nil, netip.Addr{}, time.Time{}
	tk.metrics.tuplesHeld.Set(0)
}

// ownThread locks the calling goroutine to its OS thread and takes that
// thread out of the real-time policy. The goroutine never unlocks: the
// thread ends with it, and no other goroutine ever runs at its priority.
func (tk *takeover) ownThread(what string) {
	if tk.opts.NormalPriority == nil {
		return
	}
	runtime.LockOSThread()
	if err := tk.opts.NormalPriority(); err != nil {
		tk.log.Warn("the takeover stream runs at the engine's priority", "goroutine", what, "err", err)
	}
}

// receive reads the stream until done: run it in its own goroutine.
func (tk *takeover) receive(done <-chan struct{}) {
	tk.ownThread("receive")
	buf := make([]byte, streamMaxDatagram+1)
	for {
		n, from, hop, err := tk.opts.Conn.Receive(buf)
		if err != nil {
			select {
			case <-done:
			default:
				tk.log.Error("receiving the takeover stream failed", "err", err)
			}
			return
		}
		if why := tk.accept(buf[:n], from, hop); why != "" {
			tk.dropped(why, from)
		}
	}
}

// dropped counts a dropped datagram and logs it, at most once per reason
// per logEvery with the count of those not logged since, so that a flood
// (forged or not) floods nothing. A datagram from a master this host no
// longer follows is expected while the VIP moves: debug only.
func (tk *takeover) dropped(why StreamDrop, from netip.Addr) {
	tk.metrics.streamDropped[why].Inc()
	l := tk.dropLog[why]
	if !l.allow(tk.clock.Now()) {
		return
	}
	level := slog.LevelWarn
	if why == StreamDropNotMaster {
		level = slog.LevelDebug
	}
	tk.log.Log(context.Background(), level, "dropped a takeover stream datagram", "reason", string(why), "from", from,
		"suppressed", l.take())
}

// accept checks one datagram and adds it to the snapshot it belongs to;
// it returns why it was dropped, or "".
func (tk *takeover) accept(b []byte, from netip.Addr, hop int) StreamDrop {
	from = from.Unmap().WithZone("")
	if hop != TTL {
		return StreamDropHopLimit
	}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if len(tk.peers) > 0 && !slices.Contains(tk.peers, from) {
		return StreamDropNotPeer
	}
	c, err := decodeChunk(tk.key, b)
	switch {
	case errors.Is(err, errStreamMAC):
		return StreamDropBadMAC
	case errors.Is(err, errStreamOversize):
		return StreamDropOversize
	case err != nil || c.v4 != tk.v4 || c.vrid != tk.vrid:
		return StreamDropMalformed
	case tk.master || from != tk.following:
		return StreamDropNotMaster
	case c.timestamp <= tk.last[from]:
		return StreamDropReplay
	}
	now := tk.now()
	if d := now.Sub(time.Unix(0, c.timestamp)); d > streamMaxSkew || d < -streamMaxSkew {
		return StreamDropStale
	}
	if len(tk.last) >= maxStreamSenders {
		clear(tk.last)
	}
	tk.last[from] = c.timestamp
	a := tk.pending
	if a == nil || a.from != from || a.snapshot != c.snapshot {
		a = &assembly{from: from, snapshot: c.snapshot, got: make([]bool, c.chunks), left: int(c.chunks),
			total: int(c.total), period: c.period, tuples: make([]Tuple, 0, c.total)}
		tk.pending = a
	}
	if int(c.chunk) >= len(a.got) || a.got[c.chunk] {
		return "" // a duplicate: the same tuples again
	}
	if len(a.tuples)+len(c.tuples) > a.total {
		tk.pending = nil
		return StreamDropOversize
	}
	a.got[c.chunk] = true
	a.left--
	a.tuples = append(a.tuples, c.tuples...)
	if a.left == 0 {
		tk.held, tk.heldFrom, tk.heldAt = a.tuples, from, now
		tk.heldFor = 2*max(a.period, streamMinPeriod) + 4*tk.interval + time.Second
		tk.pending = nil
		tk.metrics.tuplesHeld.Set(float64(len(a.tuples)))
	}
	return ""
}

// send streams snapshots while the instance is master, until done: run it
// in its own goroutine.
func (tk *takeover) send(done <-chan struct{}) {
	tk.ownThread("send")
	for {
		tk.mu.Lock()
		master := tk.master
		tk.mu.Unlock()
		if !master {
			select {
			case <-done:
				return
			case <-tk.wake:
				continue
			}
		}
		period := tk.sendSnapshot(done)
		select {
		case <-done:
			return
		case <-tk.wake:
		case <-time.After(period):
		}
	}
}

// sendSnapshot lists the connections on the virtual IPs and sends them;
// it returns how long to wait before the next snapshot.
func (tk *takeover) sendSnapshot(done <-chan struct{}) time.Duration {
	tk.mu.Lock()
	vips, dsts, key, v4, vrid := tk.vips, tk.dsts, tk.key, tk.v4, tk.vrid
	tk.mu.Unlock()
	var tuples []Tuple
	for _, v := range vips {
		ts, err := tk.opts.Lister.List(v)
		if err != nil {
			if tk.sendLog.allow(tk.now()) {
				tk.log.Error("listing the connections on a virtual IP", "vip", v, "err", err)
			}
			return streamMinPeriod
		}
		tuples = append(tuples, ts...)
		if len(tuples) >= maxStreamTuples {
			tuples = tuples[:maxStreamTuples]
			break
		}
	}
	chunks := max(1, (len(tuples)+tuplesPerChunk(v4)-1)/tuplesPerChunk(v4))
	period := max(streamMinPeriod, time.Duration(chunks*len(dsts))*time.Second/streamMaxRate)
	tk.mu.Lock()
	tk.sent++
	ts := max(tk.now().UnixNano(), tk.lastTS+1)
	tk.lastTS = ts + int64(chunks)
	snapshot := tk.sent
	tk.mu.Unlock()
	n := 0
	for _, b := range encodeSnapshot(key, v4, vrid, ts, snapshot, period, tuples) {
		for _, dst := range dsts {
			if err := tk.opts.Conn.Send(b, dst); err != nil && tk.sendLog.allow(tk.now()) {
				tk.log.Warn("sending the takeover stream", "to", dst, "err", err)
			}
			if n++; n%streamBurst == 0 {
				select {
				case <-done:
					return period
				case <-time.After(streamBurstPause):
				}
			}
		}
	}
	return period
}

// takeHeld returns the held set if it is fresh, and the master that sent
// it, and forgets it: a set is used for one takeover only.
func (tk *takeover) takeHeld() ([]Tuple, netip.Addr) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	held, at, fresh, from := tk.held, tk.heldAt, tk.heldFor, tk.heldFrom
	vips := tk.vips
	tk.dropHeldLocked()
	if len(held) == 0 {
		return nil, from
	}
	if age := tk.now().Sub(at); age > fresh {
		tk.log.Info("not prompting the old master's clients: their list is too old", "age", age.Round(time.Millisecond), "connections", len(held))
		return nil, from
	}
	// Only connections on this instance's virtual IPs, each once.
	out := make([]Tuple, 0, len(held))
	seen := make(map[Tuple]bool, len(held))
	for _, t := range held {
		if slices.Contains(vips, t.Local.Addr().Unmap()) && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, from
}

// prompt starts a round of prompts to the clients the silent master held:
// after wait (the confirmation window), if this host is still master and
// that master has not advertised, each once, at a bounded rate, while both
// stay true, until done.
func (tk *takeover) prompt(done <-chan struct{}, wg *sync.WaitGroup, wait time.Duration) {
	tuples, from := tk.takeHeld()
	if len(tuples) == 0 {
		return
	}
	r := &promptRound{from: from, tuples: tuples}
	tk.mu.Lock()
	tk.round = r
	tk.mu.Unlock()
	tk.log.Info("took over from a silent master: prompting its clients to reset unless it speaks first",
		"old_master", r.from, "connections", len(tuples), "wait", wait)
	due := make(chan struct{})
	t := tk.clock.AfterFunc(wait, func() { close(due) })
	wg.Go(func() {
		defer tk.endRound(r)
		defer t.Stop()
		select {
		case <-done:
			return
		case <-due:
		}
		tk.rounds.Lock()
		defer tk.rounds.Unlock()
		tk.sendPrompts(done, r)
	})
}

// sendPrompts sends r's prompts, checking before each that r still stands.
func (tk *takeover) sendPrompts(done <-chan struct{}, r *promptRound) {
	if !tk.standing(r) {
		return
	}
	p, err := tk.opts.NewPrompter()
	if err != nil {
		tk.log.Error("prompting the old master's clients", "err", err)
		return
	}
	defer p.Close()
	sent, failed := 0, 0
	var firstErr error
	for i, t := range r.tuples {
		if !tk.standing(r) {
			tk.log.Info("stopped prompting the old master's clients", "sent", sent, "left", len(r.tuples)-i)
			return
		}
		if i > 0 && i%promptBurst == 0 {
			select {
			case <-done:
				return
			case <-time.After(promptPause):
			}
		}
		if err := p.Prompt(t); err != nil {
			failed++
			firstErr = firstOf(firstErr, err)
			continue
		}
		sent++
		tk.metrics.takeoverResets.Inc()
	}
	if failed > 0 {
		tk.log.Error("prompting the old master's clients", "sent", sent, "failed", failed, "err", firstErr)
		return
	}
	tk.log.Info("prompted the old master's clients to reset", "sent", sent)
}

// firstOf returns a if it is set, else b.
func firstOf(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// configureTakeover hands the instance's settings to its stream.
func (in *Instance) configureTakeover(cfg config.Instance, d derived) {
	in.tk.configure(cfg.TakeoverKey, in.local.Is4(), cfg.VirtualRouterID, cfg.UnicastPeers, d.dsts, d.vips, cfg.AdvertInterval)
}
