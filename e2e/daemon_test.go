package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The daemon whole, as on two LB hosts in front of apiservers: the VIP
// follows backend health, reloads apply by difference or are refused, a
// live TLS connection through the VIP survives reloads, SIGTERM hands over.
//
// h1 and h2 are the LB hosts (priorities 100 and 90), h3 holds two fake
// apiservers, A on :6443 and B on :6444, and h4 is a client.
func TestDaemonVIPFollowsBackendHealthAndReloads(t *testing.T) {
	requireRoot(t)
	lab := NewLab(t, 4)
	h1, h2, h3, h4 := lab.Host(1), lab.Host(2), lab.Host(3), lab.Host(4)
	vip := VIP4.Addr()
	readyA := lab.WriteFile("ready-a", "")
	apiA := fakeAPIServer(t, h3, 6443, "A", readyA)
	apiB := fakeAPIServer(t, h3, 6444, "B", lab.WriteFile("ready-b", ""))

	const (
		interval = 200 * time.Millisecond // health check interval
		fall     = 2
		advert   = 100 * time.Millisecond
		slack    = 500 * time.Millisecond // scheduling on a loaded 2-core machine
	)
	lbConfig := func(prio int, backend netip.AddrPort, extra string) string {
		return lbConf{
			VRRPConf: VRRPConf{Priority: prio, Interval: advert, VIPs: []netip.Prefix{VIP4}},
			Backends: []netip.AddrPort{backend},
			Frontend: "connect_timeout = \"1s\"\ndrain_timeout = \"2s\"\n" + extra + "\n",
			Interval: interval, Timeout: 150 * time.Millisecond, Rise: 1, Fall: fall,
		}.config(t)
	}
	// skew of h2 (priority 90), RFC 5798 §6.1
	skew := time.Duration(256-90) * advert / 256

	p1 := h1.StartVRRPLB(lbConfig(100, apiA, ""))
	h2.StartVRRPLB(lbConfig(90, apiB, ""))
	lab.WaitMaster(t, h1, vip, 10*time.Second)
	agree(t, h1, "master", map[string]bool{apiA.String(): true})
	agree(t, h2, "backup", map[string]bool{apiB.String(): true})

	// A watch-like TLS stream through the VIP: h4 → VIP:8443 → h1 → A.
	stream := openStream(t, h4, netip.AddrPortFrom(vip, 8443))
	if server := stream.next(t); !strings.HasPrefix(server, "A ") {
		t.Fatalf("the stream through the VIP came from %q, want apiserver A", server)
	}

	// A harmless reload: applied, the VIP stays, the stream goes on.
	h1.WriteConfig(lbConfig(100, apiA, "max_connections = 10000"))
	p1.Signal(syscall.SIGHUP)
	waitMetric(t, h1, 1, "vrrplb_config_last_reload_successful")
	lab.StaysMaster(t, h1, vip, time.Second)
	stream.next(t)

	// A bad reload: refused, reported in the metric, nothing else changes.
	h1.WriteConfig(lbConfig(100, apiA, "bogus_key = 1"))
	p1.Signal(syscall.SIGHUP)
	waitMetric(t, h1, 0, "vrrplb_config_last_reload_successful")
	lab.StaysMaster(t, h1, vip, time.Second)
	stream.next(t)
	agree(t, h1, "master", map[string]bool{apiA.String(): true})

	// h1's only backend goes unready: h1 hands the VIP over (it stays a
	// backup at the lowest priority) and the VIP moves to h2 within
	// fall × interval (+10% jitter) + skew.
	if err := os.Remove(readyA); err != nil {
		t.Fatal(err)
	}
	moved := lab.WaitMaster(t, h2, vip, 10*time.Second)
	// The unready moment falls anywhere in a check interval: one more interval.
	bound := time.Duration(fall)*interval*11/10 + interval + skew
	t.Logf("backend unready → VIP on h2 after %v (bound: fall×interval with jitter, one interval of phase, skew = %v; %v slack)", moved, bound, slack)
	if moved > bound+slack {
		t.Errorf("the VIP took %v to move, want ≤ %v", moved, bound+slack)
	}
	agree(t, h1, "backup", map[string]bool{apiA.String(): false})
	agree(t, h2, "master", map[string]bool{apiB.String(): true})
	if got, _ := h1.Metric("vrrplb_instance_transitions_total", `to="fault"`); got != 0 {
		t.Errorf("h1 counted %v transitions to fault, want none: a frontend without backends yields", got)
	}
	if got, _ := h1.Metric("vrrplb_instance_priority"); got != 1 {
		t.Errorf("h1's priority is %v while its frontend has no healthy backend, want the lowest, 1", got)
	}

	// SIGHUP onto a healthy backend (the bad file is fixed too): h1 stops
	// yielding and, with preempt, takes the VIP back.
	h1.WriteConfig(lbConfig(100, apiB, ""))
	p1.Signal(syscall.SIGHUP)
	waitMetric(t, h1, 1, "vrrplb_config_last_reload_successful")
	lab.WaitMaster(t, h1, vip, 10*time.Second)
	agree(t, h1, "master", map[string]bool{apiB.String(): true})
	agree(t, h2, "backup", map[string]bool{apiB.String(): true})
	again := openStream(t, h4, netip.AddrPortFrom(vip, 8443))
	if server := again.next(t); !strings.HasPrefix(server, "B ") {
		t.Errorf("after the reload the VIP was served by %q, want apiserver B", server)
	}
	again.close()
	everyMetricExists(t, h1)

	// SIGTERM: h1 hands over within skew time and exits 0.
	start := time.Now()
	p1.Signal(syscall.SIGTERM)
	handover := lab.WaitMaster(t, h2, vip, 5*time.Second)
	t.Logf("SIGTERM → VIP on h2 after %v (skew %v)", handover, skew)
	if handover > skew+slack {
		t.Errorf("handover took %v, want ≤ skew %v + %v", handover, skew, slack)
	}
	if err := p1.WaitExit(10 * time.Second); err != nil {
		t.Errorf("vrrplb on h1 after SIGTERM: %v (%v after the signal)\n%s", err, time.Since(start), p1.Output())
	}
	if h1.HasAddr(vip) {
		t.Error("h1 kept the VIP after it stopped")
	}
}

// agree checks that h's /status and /metrics say the same thing: the
// instance's state, and each backend's health.
func agree(t *testing.T, h *Host, state string, backends map[string]bool) {
	t.Helper()
	Eventually(t, 5*time.Second, func() (bool, string) {
		st, err := h.Status()
		if err != nil {
			return false, err.Error()
		}
		if len(st.Instances) != 1 || st.Instances[0].State != state {
			return false, fmt.Sprintf("%s /status instances %+v, want state %s", h.Name, st.Instances, state)
		}
		for _, s := range []string{"init", "backup", "master", "fault"} {
			want := 0.0
			if s == state {
				want = 1
			}
			if got, err := h.Metric("vrrplb_instance_state", `state="`+s+`"`); err != nil || got != want {
				return false, fmt.Sprintf("%s vrrplb_instance_state{state=%q} = %v (%v), want %v", h.Name, s, got, err, want)
			}
		}
		if len(st.Frontends) != 1 {
			return false, fmt.Sprintf("%s /status frontends %+v", h.Name, st.Frontends)
		}
		got := map[string]bool{}
		for _, b := range st.Frontends[0].Backends {
			got[b.Address] = b.Healthy
			up, err := h.Metric("vrrplb_backend_up", `backend="`+b.Address+`"`)
			if err != nil || (up == 1) != b.Healthy {
				return false, fmt.Sprintf("%s: /status says %s healthy=%v, vrrplb_backend_up = %v", h.Name, b.Address, b.Healthy, up)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(backends) {
			return false, fmt.Sprintf("%s /status backends %v, want %v", h.Name, got, backends)
		}
		return true, ""
	})
}

func waitMetric(t *testing.T, h *Host, want float64, name string, labels ...string) {
	t.Helper()
	Eventually(t, 5*time.Second, func() (bool, string) {
		got, err := h.Metric(name, labels...)
		return err == nil && got == want, fmt.Sprintf("%s %s%v = %v (%v), want %v", h.Name, name, labels, got, err, want)
	})
}

// tlsStream is a GET /stream through the proxy: one line per 100 ms from
// whichever apiserver the connection reached.
type tlsStream struct {
	conn net.Conn
	body *bufio.Reader
}

func openStream(t *testing.T, from *Host, to netip.AddrPort) *tlsStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := from.DialContext(ctx, "tcp", to.String())
	if err != nil {
		t.Fatalf("dial %s from %s: %v", to, from.Name, err)
	}
	// The fake apiserver's certificate is self-signed: the point is that
	// TLS passes through the proxy untouched, not who signed it.
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "kubernetes"})
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /stream HTTP/1.1\r\nHost: kubernetes\r\n\r\n"); err != nil {
		t.Fatalf("stream request: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream response: %v %v", resp, err)
	}
	return &tlsStream{conn: conn, body: bufio.NewReader(resp.Body)}
}

// next reads the stream's next line: the connection is still alive.
func (s *tlsStream) next(t *testing.T) string {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := s.body.ReadString('\n')
	if err != nil {
		t.Fatalf("the stream through the VIP broke: %v", err)
	}
	return strings.TrimSpace(line)
}

func (s *tlsStream) close() { s.conn.Close() }

// designMetrics are the metric names of DESIGN.md: users' dashboards and
// alerts depend on every one of them.
var designMetrics = []string{
	"vrrplb_instance_state", "vrrplb_instance_priority", "vrrplb_instance_transitions_total",
	"vrrplb_adverts_sent_total", "vrrplb_adverts_received_total", "vrrplb_packets_dropped_total",
	"vrrplb_garp_sent_total", "vrrplb_frontend_connections_total", "vrrplb_frontend_active_connections",
	"vrrplb_frontend_rejected_total", "vrrplb_backend_up", "vrrplb_backend_active_connections",
	"vrrplb_backend_connections_total", "vrrplb_backend_connect_errors_total", "vrrplb_backend_bytes_total",
	"vrrplb_health_check_duration_seconds_bucket", "vrrplb_health_checks_total",
	"vrrplb_config_last_reload_successful", "vrrplb_config_last_reload_success_timestamp_seconds",
	"vrrplb_build_info",
}

// everyMetricExists checks that a master that has proxied, checked,
// reloaded and announced exports every designed metric, and that the
// counters of what it did have moved.
func everyMetricExists(t *testing.T, h *Host) {
	t.Helper()
	_, body, err := h.HTTPGet("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range designMetrics {
		if !strings.Contains(body, "\n"+name+"{") && !strings.Contains(body, "\n"+name+" ") {
			t.Errorf("%s: /metrics has no %s", h.Name, name)
		}
	}
	for _, moved := range []struct {
		name   string
		labels []string
	}{
		{"vrrplb_adverts_sent_total", nil},
		{"vrrplb_adverts_received_total", nil},
		{"vrrplb_garp_sent_total", nil},
		{"vrrplb_instance_transitions_total", []string{`to="master"`}},
		{"vrrplb_frontend_connections_total", nil},
		{"vrrplb_backend_connections_total", nil},
		{"vrrplb_backend_bytes_total", []string{`direction="to_client"`}},
		{"vrrplb_health_checks_total", []string{`result="success"`}},
		{"vrrplb_health_check_duration_seconds_count", nil},
	} {
		if v, err := h.Metric(moved.name, moved.labels...); err != nil || v <= 0 {
			t.Errorf("%s: %s%v = %v (%v), want > 0", h.Name, moved.name, moved.labels, v, err)
		}
	}
}
