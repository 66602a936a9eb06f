package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkBGPConnections measures new connections per second through the
// VIP with 1, 2 and 3 LB hosts behind the FRR router: each connection is a
// TLS handshake with an apiserver behind and one GET /version, from 8
// clients at once. Not run by make test (go test -run '^$' -bench BGP ./e2e).
// Every process shares this machine's cores, so it shows what ECMP costs
// and spreads here, not what separate LB hosts would add.
func BenchmarkBGPConnections(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			lab := NewBGPLab(b, n)
			backends, _ := lab.StartBackends()
			for i, h := range lab.LBs {
				h.StartVRRPLB(lab.BGPConf(h, backends[i], ""))
			}
			Eventually(b, 20*time.Second, func() (bool, string) {
				got := lab.NextHops(BGPVIP)
				want := Gateways(lab.LBs...)
				return strings.Join(got, ",") == strings.Join(want, ","), fmt.Sprintf("next hops %v, want %v", got, want)
			})
			vip := netip.AddrPortFrom(BGPVIP, 8443).String()
			const workers = 8
			var (
				next   atomic.Int64
				failed atomic.Int64
				wg     sync.WaitGroup
			)
			b.ResetTimer()
			start := time.Now()
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// The loop runs on a thread inside the client's namespace.
					_ = lab.Client.Do(func() error {
						for next.Add(1) <= int64(b.N) {
							if err := benchConnection(vip); err != nil {
								failed.Add(1)
							}
						}
						return nil
					})
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "conn/s")
			b.ReportMetric(float64(failed.Load()), "failed")
		})
	}
}

func benchConnection(addr string) error {
	var d net.Dialer
	return getVersion(d.DialContext, addr, 5*time.Second)
}
