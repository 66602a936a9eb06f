package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// watchIdle is how long a watcher waits for a line before it gives up on
// its connection and reconnects, as client-go does at its HTTP/2 read-idle
// ping (30 s there; shorter here so that today's behaviour fails fast).
const watchIdle = 5 * time.Second

// watchEvery is how often the watched stream sends a line: a quiet watch,
// whose client sends nothing the new master could answer with an RST, so
// only the old master can tell it.
const watchEvery = 2 * time.Second

// watcher holds a watch-like stream (the fake apiserver's /stream) open
// through to, reconnecting at once when it breaks or stays silent for
// watchIdle, and records when each line of each connection arrived.
type watcher struct {
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	conns int         // connections that answered
	first []time.Time // the first line of each connection, by connection
	last  time.Time   // the last line of any
}

func startWatcher(t *testing.T, from *Host, to netip.AddrPort) *watcher {
	w := &watcher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			w.watchOnce(from, to)
		}
	}()
	t.Cleanup(w.close)
	return w
}

// watchOnce runs one connection of the watch until it breaks or stays silent.
func (w *watcher) watchOnce(from *Host, to netip.AddrPort) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	raw, err := from.DialContext(ctx, "tcp", to.String())
	cancel()
	if err != nil {
		time.Sleep(10 * time.Millisecond)
		return
	}
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "kubernetes"})
	defer conn.Close()
	go func() {
		select {
		case <-w.stop:
			conn.Close()
		case <-w.done:
		}
	}()
	_ = conn.SetDeadline(time.Now().Add(watchIdle))
	if _, err := fmt.Fprintf(conn, "GET /stream?every=%s HTTP/1.1\r\nHost: kubernetes\r\n\r\n", watchEvery); err != nil {
		return
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		return
	}
	body := bufio.NewReader(resp.Body)
	for n := 0; ; n++ {
		_ = conn.SetReadDeadline(time.Now().Add(watchIdle))
		if _, err := body.ReadString('\n'); err != nil {
			return
		}
		now := time.Now()
		w.mu.Lock()
		if n == 0 {
			w.conns++
			w.first = append(w.first, now)
		}
		w.last = now
		w.mu.Unlock()
	}
}

func (w *watcher) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// resumedAfter is when a connection opened after from first received data,
// or the zero time if none has.
func (w *watcher) resumedAfter(from time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.first {
		if f.After(from) {
			return f
		}
	}
	return time.Time{}
}

// vipSockets lists h's TCP sockets whose local address is vip, as ss prints
// them: listeners and TIME-WAIT remnants (no connection, no owner) left out.
func vipSockets(t *testing.T, h *Host, vip netip.Addr) []string {
	t.Helper()
	src := vip.String()
	if vip.Is6() {
		src = "[" + src + "]" // ss reads a bare IPv6 address as a prefix with a port
	}
	out, err := h.Exec("ss", "-tanH", "state", "connected", "src", src)
	if err != nil {
		t.Fatalf("ss on %s: %v\n%s", h.Name, err, out)
	}
	var socks []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "TIME-WAIT") {
			socks = append(socks, strings.Join(strings.Fields(l), " "))
		}
	}
	return socks
}

// Hand over, then reset: when the master gives its VIP up on SIGTERM, on
// `vrrplb maintenance on` or to a preempting host of higher priority, it
// keeps the VIP until the new master announces itself, then resets every
// client connection on the VIP, so that watches through it reconnect to the
// new master at once instead of at their read-idle timeout. Short requests
// (a new connection each) never fail, and 1 s after losing the VIP the old
// master holds no socket on it.
//
// h1 and h2 are the LB hosts, h3 an apiserver streaming a line every
// watchEvery, h4 the client.
func TestHandoverResetsClientConnectionsOnTheVIP(t *testing.T) {
	for _, how := range []string{"stop", "maintenance", "preemption"} {
		t.Run("on "+how+" watches resume through the new master within 1s", func(t *testing.T) {
			handoverResets(t, how)
		})
	}
}

// watchLab is the lab of the watch tests: h1 and h2 for LB hosts, h3
// running a fake apiserver at api, h4 for the client.
func watchLab(t *testing.T) (lab *Lab, h1, h2, h4 *Host, vip netip.Addr, api netip.AddrPort) {
	requireRoot(t)
	lab, api, _ = yieldingLab(t, "10s")
	return lab, lab.Host(1), lab.Host(2), lab.Host(4), VIP4.Addr(), api
}

func handoverResets(t *testing.T, how string) {
	lab, h1, h2, h4, vip, api := watchLab(t)
	lbConfig := func(prio int, socket string) string {
		return yieldingLBConfig(t, prio, advert, socket, api, "10s")
	}
	// The old master is h1, the new one h2. For preemption h1 starts alone
	// with the lower priority and h2 comes up with a higher one.
	sock1, sock2 := adminSocket(t), adminSocket(t)
	prio1, prio2 := 100, 90
	if how == "preemption" {
		prio1, prio2 = 90, 100
	}
	p1 := h1.StartVRRPLB(lbConfig(prio1, sock1))
	lab.WaitMaster(t, h1, vip, 10*time.Second)
	Eventually(t, 10*time.Second, func() (bool, string) {
		up, _ := h1.Metric("vrrplb_backend_up", `backend="`+api.String()+`"`)
		return up == 1, "h1's backend not up yet"
	})
	var p2 *Proc
	if how != "preemption" {
		p2 = h2.StartVRRPLB(lbConfig(prio2, sock2))
		Eventually(t, 10*time.Second, func() (bool, string) { return h2.State() == "backup", "h2 not backup" })
		Eventually(t, 10*time.Second, func() (bool, string) {
			up, _ := h2.Metric("vrrplb_backend_up", `backend="`+api.String()+`"`)
			return up == 1, "h2's backend not up yet"
		})
	}

	to := netip.AddrPortFrom(vip, 8443)
	const watches = 3
	ws, requests := startWatchesAndGets(t, h4, to, watches)

	start := time.Now()
	switch how {
	case "stop":
		p1.Signal(syscall.SIGTERM)
	case "maintenance":
		mustVRRPLBCommand(t, "maintenance", "on", "--socket", sock1)
	case "preemption":
		p2 = h2.StartVRRPLB(lbConfig(prio2, sock2))
	}
	// The VIP moves when h2 holds it.
	moved := waitHolds(t, h2, vip)
	var lost time.Time
	Eventually(t, 10*time.Second, func() (bool, string) {
		if !h1.HasAddr(vip) {
			lost = time.Now()
			return true, ""
		}
		return false, "h1 still holds the VIP"
	})
	t.Logf("%s: the VIP moved to h2 %v after the trigger; h1 removed it %v after h2 held it",
		how, moved.Sub(start).Round(time.Millisecond), lost.Sub(moved).Round(time.Millisecond))

	// Every watch resumes through h2.
	worst := waitWatchesResumed(t, ws, start, moved)
	t.Logf("%s: every watch received data again %v after the VIP moved (goal ≤ 1s)", how, worst.Round(time.Millisecond))
	if worst > time.Second {
		t.Errorf("%s: the watches resumed %v after the VIP moved, want ≤ 1s", how, worst.Round(time.Millisecond))
	}
	if socks := vipSockets(t, h2, vip); len(socks) < watches {
		t.Errorf("%s: h2, the new master, holds %d sockets on the VIP, want the %d watches:\n%s",
			how, len(socks), watches, strings.Join(socks, "\n"))
	}

	// 1 s after losing the VIP, h1 holds no socket on it.
	time.Sleep(time.Until(lost.Add(time.Second)))
	if socks := vipSockets(t, h1, vip); len(socks) > 0 {
		t.Errorf("%s: 1s after losing the VIP h1 still holds %d sockets on it:\n%s", how, len(socks), strings.Join(socks, "\n"))
	}

	// Their apiserver sides are closed too: h1's proxy holds nothing for
	// them (every client of this test went through the VIP).
	if how != "stop" {
		Eventually(t, time.Second, func() (bool, string) {
			n, err := h1.Metric("vrrplb_frontend_active_connections", `frontend="apiserver"`)
			return err == nil && n == 0, fmt.Sprintf("h1's proxy still counts %v live connections (%v)", n, err)
		})
	}

	requests.check(t, how, start)
	if how == "stop" {
		if err := p1.WaitExit(15 * time.Second); err != nil {
			t.Errorf("vrrplb on h1: %v", err)
		}
	}
	_ = p2
}

// startWatchesAndGets starts n watchers from client to to, waits until
// each has data, then starts GETs and lets a few go through first.
func startWatchesAndGets(t *testing.T, client *Host, to netip.AddrPort, n int) ([]*watcher, *newConnections) {
	t.Helper()
	ws := make([]*watcher, n)
	for i := range ws {
		ws[i] = startWatcher(t, client, to)
	}
	Eventually(t, 5*time.Second, func() (bool, string) {
		for i, w := range ws {
			if w.resumedAfter(time.Time{}).IsZero() {
				return false, fmt.Sprintf("watch %d has no data through the master yet", i)
			}
		}
		return true, ""
	})
	requests := startGets(t, client, to)
	time.Sleep(300 * time.Millisecond) // some requests through the first master
	return ws, requests
}

// waitHolds waits until h holds vip and returns when it saw it.
func waitHolds(t *testing.T, h *Host, vip netip.Addr) time.Time {
	t.Helper()
	var at time.Time
	Eventually(t, 10*time.Second, func() (bool, string) {
		if h.HasAddr(vip) {
			at = time.Now()
			return true, ""
		}
		return false, h.Name + " does not hold the VIP"
	})
	return at
}

// waitWatchesResumed waits until every watch has a connection opened after
// start with data, and returns the latest of those first data after moved.
func waitWatchesResumed(t *testing.T, ws []*watcher, start, moved time.Time) time.Duration {
	t.Helper()
	var worst time.Duration
	Eventually(t, 3*watchIdle, func() (bool, string) {
		worst = 0
		for i, w := range ws {
			r := w.resumedAfter(start)
			if r.IsZero() {
				return false, fmt.Sprintf("watch %d has not resumed", i)
			}
			worst = max(worst, r.Sub(moved))
		}
		return true, ""
	})
	return worst
}

// check stops the GETs and fails the test for any started since start
// that failed.
func (g *newConnections) check(t *testing.T, how string, start time.Time) {
	t.Helper()
	g.close()
	byServer, failed := g.since(start)
	t.Logf("%s: GETs on new connections since the trigger: %v, %d failed, %d retried after a reset",
		how, byServer, len(failed), g.retried.Load())
	for i, err := range failed {
		if i == 5 {
			break
		}
		t.Errorf("%s: a request failed: %v", how, err)
	}
}
