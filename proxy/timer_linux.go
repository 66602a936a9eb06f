package proxy

import (
	"container/heap"
	"math"
	"time"
)

// A loop's timers: one heap of deadlines read from the loop's clock, and a
// tick that sweeps the connection table for what no event announces (idle
// timeouts, keepalive on connections that have lived a while).

// tickEvery is how often a loop that holds connections looks for idle ones
// (idle_timeout) and sets keepalive on connections that have lived a while.
const tickEvery = 250 * time.Millisecond

// keepAliveAfter is how long a connection lives before its backend socket
// gets tcp_keepalive: short ones save the setsockopt calls. (The client
// socket has it from the listener.)
const keepAliveAfter = time.Second

type timer struct {
	when int64
	fn   func()
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when < h[j].when }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = timer{}
	*h = old[:len(old)-1]
	return t
}

// never is the due time of nothing: a loop with no connection and no timer
// waits without a deadline.
const never = math.MaxInt64

// nextDue is when the next timer or tick is due, in unix nanoseconds, or
// never. A loop without connections has no tick: the sweep would find
// nothing, and an idle daemon would wake every loop four times a second.
func (l *loop) nextDue() int64 {
	due := int64(never)
	if l.live > 0 {
		due = l.nextTick
	}
	if len(l.timers) > 0 && l.timers[0].when < due {
		due = l.timers[0].when
	}
	return due
}

// runTimers runs the timers that are due and, once per tick, the sweep.
func (l *loop) runTimers() {
	for len(l.timers) > 0 && l.timers[0].when <= l.now {
		t := heap.Pop(&l.timers).(timer)
		t.fn()
	}
	if l.live > 0 && l.now >= l.nextTick {
		l.nextTick = l.now + int64(tickEvery)
		l.sweep()
	}
}

// after runs fn on the loop once d has passed. It counts from the loop's
// clock (l.now, read once per batch), not from a clock read of its own: a
// connect sets one of these per new client.
func (l *loop) after(d time.Duration, fn func()) {
	heap.Push(&l.timers, timer{when: l.now + int64(d), fn: fn})
}

// sweep closes connections idle for idle_timeout and quiet connections of
// a backend that is down (close_on_backend_down), and gives the backend
// socket of a connection that has lived keepAliveAfter its tcp_keepalive.
func (l *loop) sweep() {
	st := l.f.state.Load()
	idle := int64(st.cfg.IdleTimeout)
	// While the frontend fails open there is no better backend to move to.
	cut := st.cfg.CloseOnBackendDown && !l.f.failOpen.Load()
	for _, c := range l.conns {
		if c == nil || c.cstate != connProxying {
			continue
		}
		if idle > 0 && l.now-c.lastActive >= idle {
			l.closeConn(c)
			continue
		}
		if cut && c.b.cutting.Load() && l.quiet(c) {
			l.closeConn(c)
			continue
		}
		if !c.keepAliveSet && l.now-c.since >= int64(keepAliveAfter) {
			c.keepAliveSet = true
			if p := c.st.cfg.TCPKeepAlive; p > 0 {
				_ = setKeepAliveFD(c.bfd, p)
			}
		}
	}
}
