package group

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Group runs Tasks under the context of its Run. Its owner keeps its own
// lock (the one it passes to Run) around Running and Go, so that a member
// added while Run starts is started exactly once.
type Group struct {
	name    string          // for errors: "vrrp set"
	ctx     context.Context // from Run; nil before
	failure chan error      // the first task that failed
	wg      sync.WaitGroup
}

// New returns a group that is not running; name prefixes its own errors.
func New(name string) *Group {
	return &Group{name: name, failure: make(chan error, 1)}
}

// Running reports whether Run has begun. The caller holds the owner's lock.
func (g *Group) Running() bool { return g.ctx != nil }

// Go runs fn as t under Run's context; Run must have begun (Running) and
// the caller holds the owner's lock. If fn returns before t is stopped,
// with an error or without, Run ends with "what: err".
func (g *Group) Go(t *Task, what string, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(g.ctx)
	t.cancel, t.done = cancel, make(chan struct{})
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer close(t.done)
		err := fn(ctx)
		if ctx.Err() != nil {
			return // asked to stop
		}
		if err == nil {
			err = errors.New("stopped on its own")
		}
		select {
		case g.failure <- fmt.Errorf("%s: %w", what, err):
		default:
		}
	}()
}

// Run takes ctx for the tasks and, under mu, calls startLocked to start
// those added before it (with Go). It returns when ctx ends (nil) or a task
// fails (its error), after it has stopped every task and waited for them.
func (g *Group) Run(ctx context.Context, mu sync.Locker, startLocked func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mu.Lock()
	if g.ctx != nil {
		mu.Unlock()
		return fmt.Errorf("%s: Run called twice", g.name)
	}
	g.ctx = ctx
	startLocked()
	mu.Unlock()
	var err error
	select {
	case <-ctx.Done():
	case err = <-g.failure:
	}
	cancel()
	g.wg.Wait()
	return err
}

// Task is one running member of a Group; its zero value has not started.
type Task struct {
	cancel context.CancelFunc // nil until started
	done   chan struct{}
}

// Started reports whether Go has started t.
func (t *Task) Started() bool { return t != nil && t.cancel != nil }

// Stop asks t to stop and waits until it has; a nil or never started task
// returns at once.
func (t *Task) Stop() {
	if !t.Started() {
		return
	}
	t.cancel()
	<-t.done
}
