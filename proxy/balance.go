package proxy

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"

	"github.com/vrrplb/vrrplb/config"
)

// balancer chooses the backend for a new connection.
type balancer interface {
	// pick returns one of cands, which is never empty: the healthy backends
	// not yet tried for this connection, in configured order. client is the
	// client's address (the zero Addr when unknown).
	pick(cands []*backend, client netip.Addr) *backend
}

func newBalancer(b config.Balance) (balancer, error) {
	switch b {
	case config.LeastConn, "":
		return &leastConn{}, nil
	case config.RoundRobin:
		return &roundRobin{}, nil
	case config.Source:
		return sourceHash{}, nil
	case config.Random2:
		return randomTwo{}, nil
	}
	return nil, fmt.Errorf("unknown balance %q", b)
}

// leastConn picks the backend with the fewest active connections, rotating
// among equals so that idle backends share new connections evenly. It suits
// the apiserver's long-lived watches, where connection count is load.
type leastConn struct{ next atomic.Uint64 }

func (l *leastConn) pick(cands []*backend, _ netip.Addr) *backend {
	n := uint64(len(cands))
	start := l.next.Add(1)
	var best *backend
	var bestActive int64
	for i := range n {
		b := cands[(start+i)%n]
		if a := b.load(); best == nil || a < bestActive {
			best, bestActive = b, a
		}
	}
	return best
}

// load is what leastconn and random2 weigh: the backend's connections,
// counting those whose connect is under way.
func (b *backend) load() int64 { return b.active.Load() + b.connecting.Load() }

// roundRobin takes the candidates in turn.
type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) pick(cands []*backend, _ netip.Addr) *backend {
	return cands[(r.next.Add(1)-1)%uint64(len(cands))]
}

// sourceHash sends a client IP to the same backend every time. It is
// rendezvous (highest random weight) hashing: each backend scores the client
// and the highest score wins, so removing one of N backends (or it going
// down, or it being excluded for a retry) moves only the clients that backend
// had; the others keep theirs.
type sourceHash struct{}

func (sourceHash) pick(cands []*backend, client netip.Addr) *backend {
	key := hashBytes(client.AsSlice())
	var best *backend
	var bestScore uint64
	for _, b := range cands {
		if s := mix64(key ^ b.hash); best == nil || s > bestScore {
			best, bestScore = b, s
		}
	}
	return best
}

// randomTwo is the power of two choices: two distinct backends at random, the
// one with fewer active connections wins. It spreads load nearly as well as
// leastconn without every picker converging on the same idle backend.
type randomTwo struct{}

func (randomTwo) pick(cands []*backend, _ netip.Addr) *backend {
	n := len(cands)
	if n == 1 {
		return cands[0]
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	if cands[j].load() < cands[i].load() {
		return cands[j]
	}
	return cands[i]
}

func hashBytes(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// mix64 is the splitmix64 finalizer: it spreads the bits of x so that
// FNV-hashed keys that differ a little score very differently.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
