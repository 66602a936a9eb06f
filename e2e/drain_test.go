package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// newConnections is a client that opens a new connection for every request
// (GET /version, which names the apiserver) until stopped, and records each.
type newConnections struct {
	stop chan struct{}
	done chan struct{}
	// retried counts the GETs retried because their connection was reset.
	retried atomic.Int64

	mu   sync.Mutex
	reqs []versionRequest
}

type versionRequest struct {
	start  time.Time
	server string
	err    error
}

func startNewConnections(t *testing.T, from *Host, to netip.AddrPort) *newConnections {
	return startVersionGets(t, from, to, false)
}

// startGets is startNewConnections retrying a GET once when its connection
// was reset, as client-go does for a GET.
func startGets(t *testing.T, from *Host, to netip.AddrPort) *newConnections {
	return startVersionGets(t, from, to, true)
}

func startVersionGets(t *testing.T, from *Host, to netip.AddrPort, retryReset bool) *newConnections {
	c := &newConnections{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return from.DialContext(ctx, network, addr)
			},
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: "kubernetes"},
			DisableKeepAlives: true,
		},
	}
	get := func() (string, error) {
		resp, err := client.Get("https://" + to.String() + "/version")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var v struct{ Server string }
		err = json.NewDecoder(resp.Body).Decode(&v)
		return v.Server, err
	}
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			r := versionRequest{start: time.Now()}
			r.server, r.err = get()
			if retryReset && errors.Is(r.err, syscall.ECONNRESET) {
				c.retried.Add(1)
				r.server, r.err = get()
			}
			c.mu.Lock()
			c.reqs = append(c.reqs, r)
			c.mu.Unlock()
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *newConnections) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// since counts the requests started at or after from, by server, and the failed ones.
func (c *newConnections) since(from time.Time) (byServer map[string]int, failed []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byServer = map[string]int{}
	for _, r := range c.reqs {
		if r.start.Before(from) {
			continue
		}
		if r.err != nil {
			failed = append(failed, r.err)
			continue
		}
		byServer[r.server]++
	}
	return byServer, failed
}

// backendStatus is the backend addr of h's only frontend in /status.
func backendStatus(t *testing.T, h *Host, addr string) BackendStatus {
	t.Helper()
	st, err := h.Status()
	if err != nil || len(st.Frontends) != 1 {
		t.Fatalf("%s /status frontends %+v: %v", h.Name, st.Frontends, err)
	}
	for _, b := range st.Frontends[0].Backends {
		if b.Address == addr {
			return b
		}
	}
	t.Fatalf("%s /status has no backend %s: %+v", h.Name, addr, st.Frontends[0].Backends)
	return BackendStatus{}
}

// Drain under a stream of new connections: after `vrrplb backend drain`
// returns, no new connection reaches the backend and none fails, while a
// live one to it goes on; health checks go on; the last enabled backend is
// not drained without --force; a reload keeps the drain; enable undoes it.
//
// h1 is the LB host (a proxy, no VRRP), h2 holds apiservers A and B, h3 is
// the client.
func TestBackendDrainStopsNewConnectionsAndKeepsLiveOnes(t *testing.T) {
	requireRoot(t)
	lab := NewLab(t, 3)
	h1, h2, h3 := lab.Host(1), lab.Host(2), lab.Host(3)
	apiA := fakeAPIServer(t, h2, 6443, "A", "")
	apiB := fakeAPIServer(t, h2, 6444, "B", "")

	sock := adminSocket(t)
	config := withAdminSocket(t, Config(), sock) + fmt.Sprintf(`
[[frontend]]
name = "apiserver"
listen = ":8443"
balance = "roundrobin"
backends = [%q, %q]
drain_timeout = "2s"

  [frontend.health]
  type = "https"
  interval = "200ms"
  timeout = "150ms"
  rise = 1
`, apiA.String(), apiB.String())
	p := h1.StartVRRPLB(config)
	Eventually(t, 5*time.Second, func() (bool, string) {
		a, b := backendStatus(t, h1, apiA.String()), backendStatus(t, h1, apiB.String())
		return a.Healthy && b.Healthy, fmt.Sprintf("backends not both healthy: %+v %+v", a, b)
	})
	front := netip.AddrPortFrom(h1.Addr4.Addr(), 8443)

	// A live stream to B.
	var live *tlsStream
	for i := 0; i < 10 && live == nil; i++ {
		s := openStream(t, h3, front)
		if strings.HasPrefix(s.next(t), "B ") {
			live = s
		} else {
			s.close()
		}
	}
	if live == nil {
		t.Fatal("ten streams through the proxy and none reached B")
	}

	clients := startNewConnections(t, h3, front)
	start := time.Now()
	Eventually(t, 5*time.Second, func() (bool, string) {
		got, _ := clients.since(start)
		return got["A"] > 5 && got["B"] > 5, fmt.Sprintf("before the drain, new connections by server: %v", got)
	})

	checksBefore, _ := h1.Metric("vrrplb_health_checks_total", `backend="`+apiB.String()+`"`, `result="success"`)
	out := mustVRRPLBCommand(t, "backend", "drain", apiB.String(), "--socket", sock)
	drained := time.Now()
	t.Logf("vrrplb backend drain: %s", strings.TrimSpace(out))
	time.Sleep(time.Second) // a second of new connections after the drain
	got, _ := clients.since(drained)
	t.Logf("new connections in the second after the drain, by server: %v", got)
	if got["B"] != 0 || got["A"] < 10 {
		t.Errorf("new connections after the drain by server: %v, want none to B and some to A", got)
	}
	for range 3 {
		live.next(t) // the live stream to B goes on
	}
	b := backendStatus(t, h1, apiB.String())
	if !b.Draining || !b.Healthy || b.ActiveConnections != 1 {
		t.Errorf("B in /status %+v, want draining, healthy, its one live connection", b)
	}
	waitMetric(t, h1, 1, "vrrplb_backend_draining", `backend="`+apiB.String()+`"`)
	waitMetric(t, h1, 0, "vrrplb_backend_draining", `backend="`+apiA.String()+`"`)
	Eventually(t, 5*time.Second, func() (bool, string) {
		n, err := h1.Metric("vrrplb_health_checks_total", `backend="`+apiB.String()+`"`, `result="success"`)
		return err == nil && n > checksBefore+2, fmt.Sprintf("B's health checks stopped at %v (before the drain %v)", n, checksBefore)
	})

	// A is the last backend taking new connections: not without --force.
	if out, err := vrrplbCommand(t, "backend", "drain", apiA.String(), "--socket", sock); err == nil || !strings.Contains(out, "last") {
		t.Errorf("draining the last enabled backend: %v\n%s", err, out)
	}
	if a := backendStatus(t, h1, apiA.String()); a.Draining {
		t.Errorf("A was drained without --force: %+v", a)
	}

	// A reload keeps the drain.
	p.Signal(syscall.SIGHUP)
	waitMetric(t, h1, 1, "vrrplb_config_last_reload_successful")
	reloaded := time.Now()
	time.Sleep(500 * time.Millisecond)
	if got, _ := clients.since(reloaded); got["B"] != 0 {
		t.Errorf("after SIGHUP new connections by server: %v, want none to B", got)
	}

	// The live connection ends: B's count falls to 0.
	live.next(t)
	live.close()
	Eventually(t, 5*time.Second, func() (bool, string) {
		b := backendStatus(t, h1, apiB.String())
		return b.ActiveConnections == 0, fmt.Sprintf("B in /status %+v after its live connection closed", b)
	})

	// enable: B takes new connections again.
	mustVRRPLBCommand(t, "backend", "enable", apiB.String(), "--socket", sock)
	enabled := time.Now()
	Eventually(t, 5*time.Second, func() (bool, string) {
		got, _ := clients.since(enabled)
		return got["B"] > 5, fmt.Sprintf("after enable, new connections by server: %v", got)
	})
	if b := backendStatus(t, h1, apiB.String()); b.Draining {
		t.Errorf("B still draining after enable: %+v", b)
	}

	clients.close()
	all, failed := clients.since(time.Time{})
	t.Logf("new connections over the whole test, by server: %v; failed: %d", all, len(failed))
	if len(failed) > 0 {
		t.Errorf("%d client connections failed, want 0; the first: %v", len(failed), failed[0])
	}
}
