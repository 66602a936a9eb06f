package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/vrrplb/vrrplb/vrrp"
)

// DefaultSnapshotInterval is the shortest time between two requests for the
// engine's figures: however many scrapers ask, the real-time engine
// answers at most this often (50 times a second, about 3% of a core at
// the 0.7 ms a snapshot costs), and everyone in between gets the last
// answer, never older than this. Short, so that a state change shows in
// /status and /metrics at once.
const DefaultSnapshotInterval = 20 * time.Millisecond

// Snapshot is the engine's figures at one moment.
type Snapshot struct {
	// At is when the engine answered; zero if it never has.
	At time.Time
	// Instances are the engine's VRRP instances, in config order.
	Instances []vrrp.InstanceStatus
	metrics   []byte
}

// snapshots keeps the last Snapshot and refreshes it at most once per
// interval, one request at a time.
type snapshots struct {
	c        *Client
	interval time.Duration

	mu         sync.Mutex
	last       Snapshot
	outdated   bool // a reload changed what last shows
	lastErr    error
	refreshing chan struct{} // closed when the refresh in flight ends
	requests   int           // snapshot requests sent, for tests
}

func (s *snapshots) init(c *Client, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultSnapshotInterval
	}
	s.c, s.interval = c, interval
}

// invalidate makes the next ask go to the engine (after a reload).
func (s *snapshots) invalidate() {
	s.mu.Lock()
	s.outdated = true
	s.mu.Unlock()
}

// get returns a snapshot no older than the interval, asking the engine if
// needed, or the last one when ctx ends first (fresh is then false).
func (s *snapshots) get(ctx context.Context) (snap Snapshot, fresh bool, err error) {
	s.mu.Lock()
	if !s.outdated && !s.last.At.IsZero() && time.Since(s.last.At) < s.interval {
		snap = s.last
		s.mu.Unlock()
		return snap, true, nil
	}
	if s.refreshing == nil {
		s.refreshing = make(chan struct{})
		s.requests++
		go s.refresh(s.refreshing)
	}
	wait := s.refreshing
	s.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.last, false, fmt.Errorf("VRRP engine: no answer in time: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.lastErr == nil, s.lastErr
}

// refresh asks the engine for its figures.
func (s *snapshots) refresh(done chan struct{}) {
	defer close(done)
	var (
		r   reply
		err = errors.New("VRRP engine: not running")
	)
	if p := s.c.current(); p != nil {
		r, err = p.request(request{Snapshot: true}, queryTimeout)
		if err != nil {
			err = fmt.Errorf("VRRP engine: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshing = nil
	s.lastErr = err
	if err == nil {
		s.last, s.outdated = Snapshot{At: time.Now(), Instances: r.Instances, metrics: r.Metrics}, false
	}
}

// Snapshot returns the engine's figures, at most the snapshot interval
// old, waiting for the engine until ctx ends. When the engine does not
// answer in time (busy, restarting), it returns the last answer with
// fresh false and the reason.
func (c *Client) Snapshot(ctx context.Context) (snap Snapshot, fresh bool, err error) {
	snap, fresh, err = c.snaps.get(ctx)
	snap.Instances = slices.Clone(snap.Instances)
	return snap, fresh, err
}

// Running reports whether an engine should be running: a config had
// instances.
func (c *Client) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

// Gather is the engine's metrics for /metrics, from the snapshot: the
// engine answers at most once per snapshot interval however many scrape.
func (c *Client) Gather() ([]*dto.MetricFamily, error) {
	if !c.Running() {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	snap, _, err := c.Snapshot(ctx)
	if err != nil && snap.At.IsZero() {
		return nil, err
	}
	var out []*dto.MetricFamily
	dec := expfmt.NewDecoder(bytes.NewReader(snap.metrics), expfmt.NewFormat(expfmt.TypeProtoDelim))
	for {
		mf := new(dto.MetricFamily)
		if derr := dec.Decode(mf); derr != nil {
			if errors.Is(derr, io.EOF) {
				return out, err
			}
			return out, fmt.Errorf("VRRP engine metrics: %w", derr)
		}
		out = append(out, mf)
	}
}
