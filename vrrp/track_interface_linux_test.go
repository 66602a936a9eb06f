package vrrp

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/internal/poll"
	"github.com/vrrplb/vrrplb/internal/runtest"
)

func TestInterfaceTrackerFollowsTheLink(t *testing.T) {
	l := newTestLink(t)
	var (
		tr  *InterfaceTracker
		err error
	)
	inNetns(t, l.NSA, func() { tr, err = NewInterfaceTracker(l.IfA, nil) })
	if err != nil {
		t.Fatal(err)
	}
	reports := make(chan bool, 16)
	defer runtest.Start(t, func(ctx context.Context) error {
		return tr.Run(ctx, func(ok bool) { reports <- ok })
	})()
	expect := func(step string, want bool) {
		t.Helper()
		if got := poll.Receive(t, reports, 5*time.Second, fmt.Sprintf("%s: a report (want up=%v)", step, want)); got != want {
			t.Fatalf("%s: reported up=%v, want %v", step, got, want)
		}
	}
	expect("at start", true)
	run(t, "ip", "-n", l.NSB, "link", "set", l.IfB, "down") // A loses carrier
	expect("peer down", false)
	run(t, "ip", "-n", l.NSB, "link", "set", l.IfB, "up")
	expect("peer up", true)
	run(t, "ip", "-n", l.NSA, "link", "set", l.IfA, "down")
	expect("admin down", false)
	run(t, "ip", "-n", l.NSA, "link", "set", l.IfA, "up")
	expect("admin up", true)
	run(t, "ip", "-n", l.NSA, "link", "del", l.IfA)
	expect("deleted", false)
	select {
	case got := <-reports:
		t.Errorf("extra report up=%v", got)
	default:
	}
}

func TestInterfaceTrackerReportsAMissingInterfaceDown(t *testing.T) {
	l := newTestLink(t)
	var (
		tr  *InterfaceTracker
		err error
	)
	inNetns(t, l.NSA, func() { tr, err = NewInterfaceTracker("nosuchif0", nil) })
	if err != nil {
		t.Fatal(err)
	}
	reports := make(chan bool, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = tr.Run(ctx, func(ok bool) { reports <- ok }) }()
	if poll.Receive(t, reports, 5*time.Second, "a report") {
		t.Error("a missing interface was reported up")
	}
	// An interface of that name appears (a veth pair with both ends up): up.
	run(t, "ip", "-n", l.NSA, "link", "add", "nosuchif0", "type", "veth", "peer", "name", "nosuchif0p")
	run(t, "ip", "-n", l.NSA, "link", "set", "nosuchif0p", "up")
	run(t, "ip", "-n", l.NSA, "link", "set", "nosuchif0", "up")
	if !poll.Receive(t, reports, 5*time.Second, "a report after the interface came up") {
		t.Error("the interface came up but was reported down")
	}
}
