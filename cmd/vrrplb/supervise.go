package main

import (
	"context"
	"fmt"
	"sync"
)

// supervisor runs components that come and go while the daemon runs: a
// reload starts the instances and frontends it adds and stops the ones it
// removes, each by its own key, without touching the others.
//
// A component that fails (returns an error before it was asked to stop)
// stops the daemon: Run returns that error once every component has stopped.
type supervisor struct {
	mu      sync.Mutex
	ctx     context.Context // parent of every component's context; nil until Run
	pending []pendingStart  // added before Run, started by Run in this order
	running map[string]*child
	failed  error
	failure chan struct{} // closed on the first failure
	wg      sync.WaitGroup
}

type pendingStart struct {
	key string
	c   component
}

type child struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newSupervisor() *supervisor {
	return &supervisor{running: map[string]*child{}, failure: make(chan struct{})}
}

// Run starts the components added so far, in the order they were added
// (dependencies first), and lets them run until ctx ends or one fails; then
// it stops them all and waits for them.
func (s *supervisor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.ctx = ctx
	pending := s.pending
	s.pending = nil
	for _, p := range pending {
		s.launchLocked(p.key, p.c)
	}
	s.mu.Unlock()

	select {
	case <-ctx.Done():
	case <-s.failure:
	}
	cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Start runs c under key: at once while Run runs, or when Run starts.
func (s *supervisor) Start(key string, c component) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.running[key]; ok {
		return fmt.Errorf("component %q is already running", key)
	}
	if s.ctx == nil {
		for _, p := range s.pending {
			if p.key == key {
				return fmt.Errorf("component %q is already added", key)
			}
		}
		s.pending = append(s.pending, pendingStart{key, c})
		return nil
	}
	s.launchLocked(key, c)
	return nil
}

func (s *supervisor) launchLocked(key string, c component) {
	ctx, cancel := context.WithCancel(s.ctx)
	ch := &child{cancel: cancel, done: make(chan struct{})}
	s.running[key] = ch
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(ch.done)
		err := c.Run(ctx)
		switch {
		case ctx.Err() != nil:
			// Asked to stop: whatever it returned is how it stopped.
		case err != nil:
			s.fail(fmt.Errorf("%s: %w", key, err))
		default:
			s.fail(fmt.Errorf("%s: stopped on its own", key))
		}
	}()
}

func (s *supervisor) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = err
		close(s.failure)
	}
}

// Stop asks the component under key to stop and waits until it has (a
// frontend drains, an instance hands its VIP over). Stopping an unknown key
// does nothing.
func (s *supervisor) Stop(key string) {
	s.mu.Lock()
	ch, ok := s.running[key]
	delete(s.running, key)
	for i, p := range s.pending {
		if p.key == key {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	ch.cancel()
	<-ch.done
}

// Running reports whether a component runs under key.
func (s *supervisor) Running(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.running[key]
	return ok
}
