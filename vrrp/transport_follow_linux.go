package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vrrplb/vrrplb/config"
)

// watcher holds the netlink subscriptions of a transport.
type watcher struct {
	links     chan netlink.LinkUpdate
	linksDone chan struct{}
	addrs     chan netlink.AddrUpdate
	addrsDone chan struct{}
}

// stop ends both subscriptions and waits for their goroutines.
func (w *watcher) stop() {
	close(w.linksDone)
	close(w.addrsDone)
	for range w.links {
	}
	for range w.addrs {
	}
}

// watch follows the interface until Close.
func (t *RawTransport) watch(ns netns.NsHandle, w *watcher) {
	defer close(t.done)
	defer ns.Close()
	defer w.stop()
	// This goroutine may create sockets: keep it on a thread in the
	// transport's namespace. The thread is not unlocked, so it ends with the
	// goroutine instead of going back to the pool in another namespace.
	runtime.LockOSThread()
	if !threadInNetns(ns) {
		if err := netns.Set(ns); err != nil {
			t.log.Error("vrrp transport cannot follow its interface", "err", err)
		}
	}
	links, addrs := w.links, w.addrs
	for {
		select {
		case <-t.stop:
			return
		case u, ok := <-links:
			if !ok {
				t.log.Error("vrrp transport lost its link subscription")
				links = nil
				continue
			}
			if u.Attrs() == nil || u.Attrs().Name != t.ifname || u.Header.Type == unix.RTM_DELLINK {
				continue
			}
		case u, ok := <-addrs:
			if !ok {
				t.log.Error("vrrp transport lost its address subscription")
				addrs = nil
				continue
			}
			if u.LinkIndex != t.cur.Load().ifindex {
				continue
			}
		}
		if err := t.refresh(); err != nil && !errors.Is(err, ErrTransportClosed) {
			t.log.Warn("vrrp transport could not follow its interface", "err", err)
		}
	}
}

// Reopen opens the sockets again on the interface as it is now, if its index
// changed since they were opened. The transport calls it itself on link
// updates; callers may call it after a Send error.
func (t *RawTransport) Reopen() error {
	return t.refresh()
}

func (t *RawTransport) refresh() error {
	t.reopenMu.Lock()
	defer t.reopenMu.Unlock()
	if t.closed.Load() {
		return ErrTransportClosed
	}
	ifi, err := net.InterfaceByName(t.ifname)
	if err != nil {
		return fmt.Errorf("vrrp transport: interface %s: %w", t.ifname, err)
	}
	if old := t.cur.Load(); old.ifindex != ifi.Index {
		c, err := t.open(ifi)
		if err != nil {
			return err
		}
		t.cur.Store(c)
		_ = old.close()
		t.log.Info("vrrp transport reopened on a new interface index", "ifindex", ifi.Index)
	}
	if !t.follow {
		return nil
	}
	src, err := t.primaryAddr(ifi)
	if err != nil {
		// No address for now (a link coming up): keep the one we have.
		return nil
	}
	if old := *t.src.Load(); src != old {
		t.src.Store(&src)
		t.log.Info("vrrp transport source address changed", "from", old.String(), "to", src.String())
	}
	return nil
}

// primaryAddr is the interface's first address of the transport's family that
// is not a virtual IP: for IPv4 its first non-link-local address, for IPv6
// its link-local address.
func (t *RawTransport) primaryAddr(ifi *net.Interface) (netip.Addr, error) {
	family := t.family
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if slices.Contains(t.vips, ip) {
			continue
		}
		switch {
		case family == config.IPv4 && ip.Is4() && !ip.IsLinkLocalUnicast():
			return ip, nil
		case family == config.IPv6 && ip.Is6() && ip.IsLinkLocalUnicast():
			return ip, nil
		}
	}
	if family == config.IPv4 {
		return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address to send VRRP adverts from (set source_ip)", ifi.Name)
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv6 link-local address to send VRRP adverts from (RFC 5798 §5.1.2.1)", ifi.Name)
}
