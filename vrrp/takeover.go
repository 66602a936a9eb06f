package vrrp

import (
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vrrplb/vrrplb/config"
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
// client reconnects at once, here.

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
	now     func() time.Time
	wake    chan struct{} // tells the sender the state changed

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
	heldFor   time.Duration // how long the held set stays fresh
	sent      uint32        // snapshots sent
	lastTS    int64         // timestamp of the last datagram sent
	rounds    sync.Mutex    // one round of prompts at a time
	dropLog   rateLimit     // receive problems, in the receive goroutine
	sendLog   rateLimit     // send problems, in the send goroutine
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

func newTakeover(log *slog.Logger, m *instanceMetrics, opts TakeoverOptions) *takeover {
	return &takeover{
		log:     log,
		metrics: m,
		opts:    opts,
		now:     time.Now,
		wake:    make(chan struct{}, 1),
		last:    map[netip.Addr]int64{},
		dropLog: rateLimit{every: logEvery},
		sendLog: rateLimit{every: logEvery},
	}
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
	if changed {
		select {
		case tk.wake <- struct{}{}:
		default:
		}
	}
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
			tk.metrics.streamDropped[why].Inc()
			if tk.dropLog.allow(tk.now()) {
				tk.log.Warn("dropped a takeover stream datagram", "reason", string(why), "from", from)
			}
		}
	}
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

// takeHeld returns the held set if it is fresh, and forgets it: a set is
// used for one takeover only.
func (tk *takeover) takeHeld() []Tuple {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	held, at, fresh := tk.held, tk.heldAt, tk.heldFor
	vips := tk.vips
	tk.dropHeldLocked()
	if len(held) == 0 {
		return nil
	}
	if age := tk.now().Sub(at); age > fresh {
		tk.log.Info("not prompting the old master's clients: their list is too old", "age", age.Round(time.Millisecond), "connections", len(held))
		return nil
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
	return out
}

// prompt starts a round of prompts to the clients the silent master held:
// each once, at a bounded rate, while this host is master, until done.
func (tk *takeover) prompt(done <-chan struct{}, wg *sync.WaitGroup) {
	tuples := tk.takeHeld()
	if len(tuples) == 0 {
		return
	}
	tk.log.Info("took over from a silent master: prompting its clients to reset", "connections", len(tuples))
	wg.Go(func() {
		tk.rounds.Lock()
		defer tk.rounds.Unlock()
		p, err := tk.opts.NewPrompter()
		if err != nil {
			tk.log.Error("prompting the old master's clients", "err", err)
			return
		}
		defer p.Close()
		sent, failed := 0, 0
		var firstErr error
		for i, t := range tuples {
			if i > 0 && i%promptBurst == 0 {
				tk.mu.Lock()
				master := tk.master
				tk.mu.Unlock()
				if !master {
					break
				}
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
	})
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
