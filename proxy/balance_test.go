package proxy

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vrrplb/vrrplb/config"
)

func testBackends(n int) []*backend {
	bs := make([]*backend, n)
	for i := range bs {
		addr := fmt.Sprintf("10.0.0.%d:6443", i+1)
		bs[i] = &backend{addr: addr, hash: hashBytes([]byte(addr))}
	}
	return bs
}

func clientIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)})
}

// spread picks n times and counts picks per backend address.
func spread(t *testing.T, bal config.Balance, bs []*backend, n int) map[string]int {
	t.Helper()
	b, err := newBalancer(bal)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]int)
	for i := range n {
		got[b.pick(bs, clientIP(i)).addr]++
	}
	return got
}

func TestBalancersSpreadEvenlyOverIdleBackends(t *testing.T) {
	const picks = 30000
	for _, bal := range []config.Balance{config.LeastConn, config.RoundRobin, config.Source, config.Random2} {
		t.Run(string(bal)+" gives each of three backends about a third", func(t *testing.T) {
			bs := testBackends(3)
			got := spread(t, bal, bs, picks)
			for _, b := range bs {
				share := float64(got[b.addr]) / picks
				if share < 0.30 || share > 0.37 {
					t.Errorf("%s got %.3f of picks, want about 1/3 (all: %v)", b.addr, share, got)
				}
			}
		})
	}
}

func TestRoundRobinTakesBackendsInTurn(t *testing.T) {
	bs := testBackends(3)
	b := &roundRobin{}
	var got []string
	for range 6 {
		got = append(got, b.pick(bs, netip.Addr{}).addr)
	}
	want := []string{"10.0.0.1:6443", "10.0.0.2:6443", "10.0.0.3:6443", "10.0.0.1:6443", "10.0.0.2:6443", "10.0.0.3:6443"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("picks (-want +got):\n%s", diff)
	}
}

func TestLeastConnPrefersTheIdleBackend(t *testing.T) {
	bs := testBackends(3)
	bs[0].active.Store(5)
	bs[1].active.Store(0)
	bs[2].active.Store(2)
	b := &leastConn{}
	for i := range 10 {
		if got := b.pick(bs, netip.Addr{}); got != bs[1] {
			t.Fatalf("pick %d: got %s, want the idle %s", i, got.addr, bs[1].addr)
		}
	}
}

func TestLeastConnFillsUpEvenly(t *testing.T) {
	bs := testBackends(3)
	b := &leastConn{}
	for range 30 {
		b.pick(bs, netip.Addr{}).active.Add(1)
	}
	for _, be := range bs {
		if got := be.active.Load(); got != 10 {
			t.Errorf("%s has %d connections, want 10", be.addr, got)
		}
	}
}

func TestRandomTwoPrefersTheLessLoadedOfTwo(t *testing.T) {
	bs := testBackends(2)
	bs[0].active.Store(100)
	got := spread(t, config.Random2, bs, 1000)
	if got[bs[0].addr] != 0 {
		t.Errorf("the loaded backend got %d picks out of 1000, want 0 (all: %v)", got[bs[0].addr], got)
	}
}

func TestSourceHashIsStickyPerClient(t *testing.T) {
	bs := testBackends(3)
	b := sourceHash{}
	for i := range 100 {
		first := b.pick(bs, clientIP(i))
		for range 3 {
			if got := b.pick(bs, clientIP(i)); got != first {
				t.Fatalf("client %s went to %s then %s", clientIP(i), first.addr, got.addr)
			}
		}
	}
}

func TestSourceHashMovesOnlyTheRemovedBackendsClients(t *testing.T) {
	const clients = 20000
	for _, n := range []int{2, 3, 5, 8} {
		t.Run(fmt.Sprintf("removing one of %d backends moves about 1/%d of clients", n, n), func(t *testing.T) {
			bs := testBackends(n)
			b := sourceHash{}
			before := make([]*backend, clients)
			for i := range clients {
				before[i] = b.pick(bs, clientIP(i))
			}
			removed := bs[n/2]
			rest := append(append([]*backend{}, bs[:n/2]...), bs[n/2+1:]...)
			moved := 0
			for i := range clients {
				after := b.pick(rest, clientIP(i))
				if after == before[i] {
					continue
				}
				moved++
				if before[i] != removed {
					t.Fatalf("client %s moved from %s, which stayed, to %s", clientIP(i), before[i].addr, after.addr)
				}
			}
			share := float64(moved) / clients
			if limit := 1/float64(n) + 0.02; share > limit {
				t.Errorf("%.3f of clients moved, want at most %.3f", share, limit)
			}
		})
	}
}

func TestUnknownBalanceIsAnError(t *testing.T) {
	if _, err := newBalancer("weighted"); err == nil {
		t.Error("newBalancer(weighted) succeeded, want an error")
	}
}
