package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/config"
)

// startProxyDaemon runs a daemon with one frontend on be1 and returns it,
// its signal channel, the config's directory and its admin base URL.
func startProxyDaemon(t *testing.T, logs *syncBuffer, be1 string, wire func(*daemon)) (d *daemon, sig chan os.Signal, dir, admin, listen string) {
	t.Helper()
	dir = t.TempDir()
	admin, listen = freeAddr(t), freeAddr(t)
	path := writeFile(t, dir, "vrrplb.toml", frontendConfig(admin, listen, be1))
	d, sig = newTestDaemon(t, path, logs)
	if wire != nil {
		wire(d)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- d.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the daemon did not stop")
		}
	})
	return d, sig, dir, "http://" + admin, listen
}

// backendsInStatus is the backend addresses /status shows for frontend api.
func backendsInStatus(t *testing.T, base string) string {
	code, body := get(t, base+"/status")
	if code != 200 {
		return ""
	}
	return compactJSON(t, body)
}

// A reload that one component refuses changes nothing in any: every
// component prepares before any applies. Here the proxy could apply its
// part (a new backend), and a second component (as the VRRP engine does
// with an interface that does not exist) refuses.
func TestAReloadOneComponentRefusesChangesNothing(t *testing.T) {
	var logs syncBuffer
	be1, be2 := echoBackend(t), echoBackend(t)
	var refused atomic.Int32
	_, sig, dir, base, listen := startProxyDaemon(t, &logs, be1, func(d *daemon) {
		d.reloaders = append(d.reloaders, func(next *config.Config) (reloadPlan, error) {
			if len(next.Frontends) > 0 && len(next.Frontends[0].Backends) > 1 {
				refused.Add(1)
				return nil, errors.New(`instance "vip": no interface "missing0"`)
			}
			return nopPlan{}, nil
		})
	})
	eventually(t, "be1 healthy in /status", func() bool {
		return strings.Contains(backendsInStatus(t, base), `"healthy":true`)
	})
	before := backendsInStatus(t, base)

	writeFile(t, dir, "vrrplb.toml", frontendConfig(strings.TrimPrefix(base, "http://"), listen, be1, be2))
	sig <- syscall.SIGHUP
	eventually(t, "the reload is rejected", func() bool {
		_, body := get(t, base+"/metrics")
		return metricLine(body, "vrrplb_config_last_reload_successful") == "vrrplb_config_last_reload_successful 0"
	})
	if n := refused.Load(); n != 1 {
		t.Fatalf("the refusing component was asked %d times", n)
	}
	if after := backendsInStatus(t, base); after != before {
		t.Errorf("a rejected reload changed the proxy:\nbefore %s\nafter  %s", before, after)
	}
	if !strings.Contains(logs.String(), "missing0") {
		t.Errorf("the refusal is not logged:\n%s", logs.String())
	}
}

type nopPlan struct{}

func (nopPlan) Commit() error { return nil }
func (nopPlan) Discard()      {}
