package main

import (
	"context"
	"testing"
	"time"
)

// fakeClock advances only when slept on; oversleep adds extra time to the
// sleeps listed in it (by sleep number), as a loaded host would.
type fakeClock struct {
	now       time.Time
	sleeps    int
	slept     []time.Duration
	oversleep map[int]time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(d time.Duration) {
	d += c.oversleep[c.sleeps]
	c.sleeps++
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
}

type released struct {
	i       int64
	due, at time.Time
}

func runPace(t *testing.T, clk *fakeClock, rate float64, total int64) []released {
	t.Helper()
	var got []released
	n := pace(context.Background(), clk, rate, total, time.Millisecond, func(i int64, due time.Time) {
		got = append(got, released{i: i, due: due, at: clk.Now()})
	})
	if n != total || int64(len(got)) != total {
		t.Fatalf("pace returned %d and released %d, want %d", n, len(got), total)
	}
	for k, r := range got {
		if r.i != int64(k) {
			t.Fatalf("request %d released as number %d", k, r.i)
		}
	}
	return got
}

func TestPaceReleasesEachRequestOnTime(t *testing.T) {
	start := time.Unix(1000, 0)
	clk := &fakeClock{now: start}
	got := runPace(t, clk, 3000, 300) // 0.1 s of 3,000/s
	for _, r := range got {
		want := start.Add(time.Duration(r.i) * time.Second / 3000)
		if d := r.due.Sub(want); d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("request %d due at +%v, want +%v", r.i, r.due.Sub(start), want.Sub(start))
		}
		if r.at.Before(r.due) {
			t.Fatalf("request %d released at +%v, before it was due at +%v", r.i, r.at.Sub(start), r.due.Sub(start))
		}
		if late := r.at.Sub(r.due); late >= time.Millisecond {
			t.Fatalf("request %d released %v late, want under one tick", r.i, late)
		}
	}
	if last := got[len(got)-1].at.Sub(start); last > 100*time.Millisecond {
		t.Errorf("last request released at +%v, want within the 100 ms the load lasts", last)
	}
}

func TestPaceSleepsAtMostOneTickAndNotPastTheNextRequest(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	runPace(t, clk, 10, 5) // one request every 100 ms: sleeps are capped at the tick
	for i, d := range clk.slept {
		if d > time.Millisecond {
			t.Fatalf("sleep %d lasted %v, want at most one 1 ms tick", i, d)
		}
	}
	if clk.sleeps < 400 || clk.sleeps > 401 {
		t.Errorf("slept %d times over 400 ms at 1 ms ticks, want 400", clk.sleeps)
	}
	clk = &fakeClock{now: time.Unix(0, 0)}
	runPace(t, clk, 5000, 10) // every 200 µs: sleeps end at the next due request
	for i, d := range clk.slept {
		if d != 200*time.Microsecond {
			t.Fatalf("sleep %d lasted %v, want 200µs (the gap to the next request)", i, d)
		}
	}
}

func TestPaceKeepsTheScheduleAfterALateWakeUp(t *testing.T) {
	start := time.Unix(0, 0)
	// The third sleep overruns by 30 ms: the requests due meanwhile go out
	// at once with their own due times, and the schedule does not shift.
	clk := &fakeClock{now: start, oversleep: map[int]time.Duration{2: 30 * time.Millisecond}}
	got := runPace(t, clk, 1000, 100)
	burst := 0
	for _, r := range got {
		if r.due != start.Add(time.Duration(r.i)*time.Millisecond) {
			t.Fatalf("request %d due at +%v, want +%dms", r.i, r.due.Sub(start), r.i)
		}
		if r.at.Sub(r.due) > time.Millisecond {
			burst++
		}
	}
	if burst < 25 || burst > 31 {
		t.Errorf("%d requests released late after a 30 ms overrun, want about 30", burst)
	}
	if end := got[len(got)-1].at.Sub(start); end != 99*time.Millisecond {
		t.Errorf("last request released at +%v, want +99ms (the schedule did not shift)", end)
	}
}

func TestPaceStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := &fakeClock{now: time.Unix(0, 0)}
	var n int64
	got := pace(ctx, clk, 1000, 1000, time.Millisecond, func(i int64, _ time.Time) {
		if n++; n == 10 {
			cancel()
		}
	})
	if got < 10 || got > 11 {
		t.Errorf("released %d after cancelling at the 10th, want 10 or 11", got)
	}
}

func TestPaceWithNothingToDo(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	if n := pace(context.Background(), clk, 0, 100, time.Millisecond, func(int64, time.Time) { t.Fatal("released at rate 0") }); n != 0 {
		t.Errorf("released %d at rate 0", n)
	}
}

// TestOpenLoopAgainstTheBackends offers a short load to the bench's own
// backends on loopback and checks every request is answered once.
func TestOpenLoopAgainstTheBackends(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	clientTLS, err := writeBenchCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, apiAddr := freeAddr(), freeAddr()
	errs := make(chan error, 2)
	go func() { errs <- serveHTTP(ctx, httpAddr) }()
	go func() { errs <- serveAPIServer(ctx, apiAddr, dir) }()
	for _, a := range []string{httpAddr, apiAddr} {
		if err := waitListening(a); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		spec loadSpec
	}{
		{"a new connection per request", loadSpec{addr: httpAddr, rate: 500, duration: 200 * time.Millisecond, conns: 8}},
		{"keep-alive", loadSpec{addr: httpAddr, rate: 1000, duration: 200 * time.Millisecond, keepAlive: true, conns: 4}},
		{"keep-alive HTTPS to the stand-in apiserver", loadSpec{addr: apiAddr, rate: 200, duration: 200 * time.Millisecond, keepAlive: true, conns: 4, tls: clientTLS}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readyCalls := 0
			res, err := openLoop(ctx, tt.spec, func() { readyCalls++ })
			if err != nil {
				t.Fatal(err)
			}
			want := int64(tt.spec.rate * tt.spec.duration.Seconds())
			if res.done != want || res.failed != 0 || res.dropped != 0 {
				t.Errorf("done %d, failed %d, dropped %d; want %d answered", res.done, res.failed, res.dropped, want)
			}
			if readyCalls != 1 {
				t.Errorf("ready called %d times, want once", readyCalls)
			}
			if int64(len(res.latencies)) != res.done || res.quantile(0.99) <= 0 {
				t.Errorf("%d latencies for %d answers, p99 %v", len(res.latencies), res.done, res.quantile(0.99))
			}
		})
	}
	cancel()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("backend: %v", err)
		}
	}
}
