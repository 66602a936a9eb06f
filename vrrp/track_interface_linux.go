package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// InterfaceTracker follows the link state of one interface (track_interface)
// through netlink link updates. The interface is up when its operational
// state is up, or when it is administratively up with carrier (lower up) —
// the case of interfaces whose driver reports no operational state. A missing
// or deleted interface is down.
type InterfaceTracker struct {
	name string
	ns   netns.NsHandle
	log  *slog.Logger
}

// NewInterfaceTracker returns the tracker of interface name in the current
// network namespace; logger may be nil.
func NewInterfaceTracker(name string, logger *slog.Logger) (*InterfaceTracker, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("track_interface %s: current network namespace: %w", name, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := &InterfaceTracker{name: name, ns: ns, log: logger}
	// Trackers have no Close: the namespace handle goes with the tracker.
	runtime.AddCleanup(t, func(ns netns.NsHandle) { _ = ns.Close() }, ns)
	return t, nil
}

// Name is the interface name.
func (t *InterfaceTracker) Name() string { return t.name }

// linkUp tells whether a link counts as up.
func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	if a.OperState == netlink.OperUp {
		return true
	}
	return a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
}

// Run reports the interface's state now and on every change until ctx ends.
func (t *InterfaceTracker) Run(ctx context.Context, report func(ok bool)) error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	opts := netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil { // closing the subscription at the end is no error
				t.log.Warn("track_interface link updates", "interface", t.name, "err", err)
			}
		},
	}
	// Sockets are opened in the tracker's namespace: on this thread when it
	// is there (no CAP_SYS_ADMIN needed), else by entering it.
	runtime.LockOSThread()
	here := threadInNetns(t.ns)
	if !here {
		opts.Namespace = &t.ns
	}
	err := netlink.LinkSubscribeWithOptions(updates, done, opts)
	if err != nil {
		runtime.UnlockOSThread()
		close(done)
		return fmt.Errorf("track_interface %s: subscribe to link updates: %w", t.name, permHint(err))
	}
	defer func() {
		close(done)
		for range updates { // let the subscription goroutine finish
		}
	}()
	// Subscribed first, then read the state: no change can fall in between.
	var h *netlink.Handle
	if here {
		h, err = netlink.NewHandle()
	} else {
		h, err = netlink.NewHandleAt(t.ns)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("track_interface %s: netlink handle: %w", t.name, permHint(err))
	}
	l, err := h.LinkByName(t.name)
	h.Close()
	up := false
	var notFound netlink.LinkNotFoundError
	switch {
	case err == nil:
		up = linkUp(l)
	case errors.As(err, &notFound):
		t.log.Warn("tracked interface does not exist", "interface", t.name)
	default:
		return fmt.Errorf("track_interface %s: %w", t.name, err)
	}
	report(up)
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				return fmt.Errorf("track_interface %s: link updates ended", t.name)
			}
			if u.Attrs() == nil || u.Attrs().Name != t.name {
				continue
			}
			now := u.Header.Type != unix.RTM_DELLINK && linkUp(u.Link)
			if now == up {
				continue
			}
			up = now
			t.log.Info("tracked interface changed state", "interface", t.name, "up", up)
			report(up)
		}
	}
}
