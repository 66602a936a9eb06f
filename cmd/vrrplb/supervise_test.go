package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/internal/poll"
)

// fakeComponent records its life and can be told to fail.
type fakeComponent struct {
	name    string
	log     *eventLog
	failErr chan error
}

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) has(e string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.events {
		if x == e {
			return true
		}
	}
	return false
}

func (f *fakeComponent) Run(ctx context.Context) error {
	f.log.add("start " + f.name)
	select {
	case <-ctx.Done():
		f.log.add("stop " + f.name)
		return nil
	case err := <-f.failErr:
		return err
	}
}

func newFake(name string, log *eventLog) *fakeComponent {
	return &fakeComponent{name: name, log: log, failErr: make(chan error, 1)}
}

func TestSupervisorStartsAndStopsComponentsByKey(t *testing.T) {
	log := &eventLog{}
	s := newSupervisor()
	a, b := newFake("a", log), newFake("b", log)
	if err := s.Start("a", a); err != nil {
		t.Fatal(err)
	}
	if err := s.Start("a", b); err == nil {
		t.Error("a second component under the same key was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	eventually(t, "a started", func() bool { return log.has("start a") })

	// Added while running: starts at once.
	if err := s.Start("b", b); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b started", func() bool { return log.has("start b") })

	// Stopped alone: the other keeps running, and Stop waits for it.
	s.Stop("b")
	if !log.has("stop b") {
		t.Error("Stop returned before the component stopped")
	}
	if log.has("stop a") {
		t.Error("stopping b stopped a")
	}
	if s.Running("b") || !s.Running("a") {
		t.Errorf("Running: a=%v b=%v, want a only", s.Running("a"), s.Running("b"))
	}
	s.Stop("nothing") // unknown keys are ignored

	cancel()
	if err := poll.Receive(t, done, 5*time.Second, "Run to return"); err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	if !log.has("stop a") {
		t.Error("a was not stopped when Run ended")
	}
}

func TestSupervisorStopsEverythingWhenOneFails(t *testing.T) {
	log := &eventLog{}
	s := newSupervisor()
	a, b := newFake("a", log), newFake("b", log)
	_ = s.Start("a", a)
	_ = s.Start("b", b)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	eventually(t, "both started", func() bool { return log.has("start a") && log.has("start b") })

	b.failErr <- errors.New("listen tcp :8443: address already in use")
	if err := poll.Receive(t, done, 5*time.Second, "Run to return after a failure"); err == nil || !strings.Contains(err.Error(), "b: listen tcp :8443") {
		t.Errorf("Run = %v, want b's error with its key", err)
	}
	if !log.has("stop a") {
		t.Error("a kept running after b failed")
	}
}

func TestSupervisorTreatsAComponentThatEndsByItselfAsAFailure(t *testing.T) {
	s := newSupervisor()
	_ = s.Start("quitter", componentFunc(func(ctx context.Context) error { return nil }))
	select {
	case err := <-func() chan error {
		c := make(chan error, 1)
		go func() { c <- s.Run(context.Background()) }()
		return c
	}():
		if err == nil || !strings.Contains(err.Error(), "quitter: stopped on its own") {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}
