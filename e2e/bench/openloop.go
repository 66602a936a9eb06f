package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// clock is the time the open-loop pacer reads and waits on; tests drive a
// fake one.
type clock interface {
	Now() time.Time
	Sleep(d time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time        { return time.Now() }
func (realClock) Sleep(d time.Duration) { time.Sleep(d) }

// pace releases total requests at rate per second, request i due at
// start + i/rate, whatever happened to the earlier ones (open loop: a slow
// answer does not slow the offered load). It wakes every tick and releases
// everything that has come due, with the time it was due, so a late wake-up
// releases a burst instead of shifting the schedule. It returns the number
// released: total, or fewer when ctx ends first.
func pace(ctx context.Context, clk clock, rate float64, total int64, tick time.Duration, release func(i int64, due time.Time)) int64 {
	if rate <= 0 || total <= 0 {
		return 0
	}
	start := clk.Now()
	dueAt := func(i int64) time.Time {
		return start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
	}
	var sent int64
	for sent < total && ctx.Err() == nil {
		now := clk.Now()
		for sent < total && !dueAt(sent).After(now) {
			release(sent, dueAt(sent))
			sent++
		}
		if sent < total {
			clk.Sleep(min(tick, max(dueAt(sent).Sub(now), 0)))
		}
	}
	return sent
}

// loadSpec is one open-loop run against addr.
type loadSpec struct {
	addr      string
	rate      float64       // requests per second offered
	duration  time.Duration // how long the load is offered
	keepAlive bool          // false: a new connection per request (Connection: close)
	conns     int           // workers: connections held (keep-alive) or requests in flight at most
	tls       *tls.Config   // nil: plain HTTP
}

// loadResult is what an open-loop run did: requests answered, failed, and
// dropped because every worker was busy when they came due (the offered
// rate was above what the path carried), and each answer's latency from
// its due time.
type loadResult struct {
	done, failed, dropped int64
	latencies             []time.Duration
	elapsed               time.Duration
}

func (r loadResult) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// paceTick is how often the pacer wakes: well under a millisecond would
// cost the host more wake-ups than the requests themselves.
const paceTick = time.Millisecond

// openLoop offers spec's load and waits for every answer. ready is called
// once the keep-alive connections are up, just before the first request,
// so the caller can start its CPU accounting there.
func openLoop(ctx context.Context, spec loadSpec, ready func()) (loadResult, error) {
	spec.conns = max(spec.conns, 1)
	total := int64(spec.rate * spec.duration.Seconds())
	queue := make(chan time.Time, 4096)
	type worker struct {
		done, failed int64
		lat          []time.Duration
	}
	workers := make([]worker, spec.conns)
	var conns []*clientConn
	if spec.keepAlive {
		for range spec.conns {
			c, err := dialHTTP(spec)
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return loadResult{}, err
			}
			conns = append(conns, c)
		}
	}
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.lat = make([]time.Duration, 0, total/int64(spec.conns)+16)
		var c *clientConn
		if spec.keepAlive {
			c = conns[i]
		}
		wg.Go(func() {
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for due := range queue {
				var err error
				if spec.keepAlive {
					if c == nil {
						c, err = dialHTTP(spec)
					}
					if err == nil {
						err = c.roundTrip(false)
					}
					if err != nil && c != nil {
						c.Close()
						c = nil
					}
				} else {
					err = oneShot(spec)
				}
				if err != nil {
					w.failed++
					continue
				}
				w.done++
				w.lat = append(w.lat, time.Since(due))
			}
		})
	}
	ready()
	start := time.Now()
	var dropped int64
	pace(ctx, realClock{}, spec.rate, total, paceTick, func(_ int64, due time.Time) {
		select {
		case queue <- due:
		default:
			dropped++
		}
	})
	close(queue)
	wg.Wait()
	res := loadResult{dropped: dropped, elapsed: time.Since(start)}
	for _, w := range workers {
		res.done += w.done
		res.failed += w.failed
		res.latencies = append(res.latencies, w.lat...)
	}
	return res, ctx.Err()
}

// clientConn is one client connection speaking HTTP/1.1.
type clientConn struct {
	net.Conn
	r *bufio.Reader
}

var (
	reqKeepAlive = []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
	reqClose     = []byte("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
)

func dialHTTP(spec loadSpec) (*clientConn, error) {
	c, err := net.DialTimeout("tcp", spec.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if spec.tls != nil {
		tc := tls.Client(c, spec.tls)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", spec.addr, err)
		}
		c = tc
	}
	return &clientConn{Conn: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

// roundTrip sends one request and reads its whole answer.
func (c *clientConn) roundTrip(closing bool) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := reqKeepAlive
	if closing {
		req = reqClose
	}
	if _, err := c.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// oneShot is a request on a connection of its own, closed after the answer.
func oneShot(spec loadSpec) error {
	c, err := dialHTTP(spec)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.roundTrip(true)
}
