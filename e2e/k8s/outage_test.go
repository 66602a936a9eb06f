package k8s

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/e2e"
)

// etcd stopped for 10 s under the two LB hosts: every apiserver's /readyz
// fails, yet the VIP stays held (weight-0 track_frontend keeps a host in
// the election; a handover leaves it unheld for at most a backup's skew
// time) and clients reach the apiservers through it (fail_open) and get
// their answers, not refused connections. After etcd returns the test
// measures when requests succeed again; the VIP moves at most once on the
// way back and then stays.
func TestEtcdOutage(t *testing.T) {
	c := NewCluster(t, Options{}) // fail_open is on by default
	client := c.APIClient(c.Host(clientHost))
	// With etcd gone an apiserver's /readyz waits out its etcd check (2 s)
	// before it answers 500; on this loaded host that came close to the
	// client's 3 s once in four runs. Unanswered should mean no answer.
	client.Timeout = 6 * time.Second
	get := func(path string) (int, error) {
		resp, err := client.Get(fmt.Sprintf("https://%s:%d%s", VIP(), vipPort, path))
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	const list = "/api/v1/namespaces/default/configmaps?limit=1"
	if code, err := get(list); code != http.StatusOK {
		t.Fatalf("before the outage: %d %v", code, err)
	}
	holders := watchHolders(t, c)

	c.StopEtcd()
	stopped := time.Now()
	holders.phase("etcd stopped")
	for n := range 3 {
		e2e.Eventually(t, 30*time.Second, func() (bool, string) {
			code, err := c.Readyz(APIAddr(n))
			return code != 0 && code != 200, fmt.Sprintf("apiserver-%d /readyz with etcd stopped: %d %v", n+1, code, err)
		})
	}
	for _, lb := range []int{lb1, lb2} {
		e2e.Eventually(t, 20*time.Second, func() (bool, string) {
			n, st := c.BackendsUp(lb)
			return n == 0, fmt.Sprintf("h%d still counts %d healthy backends with etcd stopped: %+v", lb, n, st)
		})
	}
	// /status says which host holds the VIP, and only that one.
	if m := c.Lab.Masters(VIP()); len(m) == 1 {
		for _, lb := range []int{lb1, lb2} {
			held := c.HeldIPs(lb)
			if holds := c.Host(lb).Name == m[0]; holds != (len(held) == 1) {
				t.Errorf("with %s holding the VIP, h%d's /status says it holds %v", m[0], lb, held)
			}
		}
	}
	// Through the VIP: the apiservers' own answers (/readyz 500), never a
	// refusal. A list waits on etcd past the client's timeout. A request
	// caught on a host as it hands the VIP over can go unanswered (issue
	// 21): counted and reported, not a failure here.
	var answers, unanswered int
	for time.Since(stopped) < 10*time.Second {
		code, err := get("/readyz")
		switch {
		case err != nil && errors.Is(err, syscall.ECONNREFUSED):
			t.Errorf("with etcd stopped, a request through the VIP was refused: %v", err)
		case err != nil:
			unanswered++
			t.Logf("with etcd stopped, a request through the VIP got no answer: %v", err)
		case code == http.StatusOK:
			t.Errorf("with etcd stopped, /readyz through the VIP said 200")
		default:
			answers++
		}
		time.Sleep(200 * time.Millisecond)
	}
	if answers == 0 || unanswered > 1 {
		t.Errorf("with etcd stopped, %d requests through the VIP got an apiserver's answer and %d none; want every one answered but one at most", answers, unanswered)
	}
	figures = append(figures, fmt.Sprintf("etcd stopped: %d requests through the VIP answered by an apiserver, %d unanswered", answers, unanswered))

	c.StartEtcd()
	back := time.Now()
	holders.phase("etcd back")
	e2e.Eventually(t, 2*time.Minute, func() (bool, string) {
		code, err := get(list)
		return code == http.StatusOK, fmt.Sprintf("after etcd returned: %d %v", code, err)
	})
	served := time.Since(back)
	for n := range 3 {
		c.WaitAPIReady(n, 2*time.Minute)
	}
	allReady := time.Since(back) // an upper bound: when the last was seen ready
	// Whichever host holds the VIP now keeps it: a recovery both hosts
	// share does not end in a preemption (vrrp's settling of recoveries).
	var holder *e2e.Host
	e2e.Eventually(t, 10*time.Second, func() (bool, string) {
		m := c.Lab.Masters(VIP())
		for _, lb := range []int{lb1, lb2} {
			if len(m) == 1 && c.Host(lb).Name == m[0] {
				holder = c.Host(lb)
			}
		}
		return holder != nil, fmt.Sprintf("after the recovery the VIP is held by %v, want one LB host", m)
	})
	c.Lab.StaysMaster(t, holder, VIP(), 5*time.Second)

	onset, recovery := holders.stop()
	line := fmt.Sprintf("etcd outage of %v: requests through the VIP served again %v after etcd's restart (apiservers all ready by %v); VIP holders at the outage %v (unheld %v, shared %v), on recovery %v (unheld %v, shared %v)",
		back.Sub(stopped).Round(time.Millisecond), served.Round(time.Millisecond), allReady.Round(time.Millisecond),
		onset.holders, onset.unheld.Round(time.Millisecond), onset.shared.Round(time.Millisecond),
		recovery.holders, recovery.unheld.Round(time.Millisecond), recovery.shared.Round(time.Millisecond))
	t.Log(line)
	figures = append(figures, line)
	// A handover: the yielding master's priority-0 advert, then the
	// backup's skew time (RFC 5798 §6.4.2), plus this loaded machine's slack.
	const unheldBound = advert + 400*time.Millisecond
	// The leaving master's hold for the new one: handoverGrace after its
	// advert, two intervals at most (vrrp's maxHandoverHold), plus slack.
	const sharedBound = 2*advert + 400*time.Millisecond
	for _, p := range []holderPhase{onset, recovery} {
		if p.unheld > unheldBound {
			t.Errorf("%s: no host held the VIP for %v, want ≤ %v", p.name, p.unheld, unheldBound)
		}
		if p.shared > sharedBound {
			t.Errorf("%s: both hosts held the VIP for %v, want ≤ %v (a handover's hold)", p.name, p.shared, sharedBound)
		}
	}
	if m := recovery.moves(); m > 1 {
		t.Errorf("on recovery the VIP moved %d times (holders %v), want at most once", m, recovery.holders)
	}
}

// holderPhase is who held the VIP, in order, during one phase of a test.
type holderPhase struct {
	name    string
	holders []string // "" while no host holds it, "h1+h2" while both do
	unheld  time.Duration
	shared  time.Duration // while more than one host held it
}

// moves counts the changes of holder. An unheld moment between two hosts,
// or one where both hold it (a handover: the leaving master keeps the VIP
// until the new one has announced itself), is part of the move, not
// counted apart.
func (p holderPhase) moves() int {
	var seq []string
	for _, h := range p.holders {
		if h != "" && !strings.Contains(h, "+") && (len(seq) == 0 || seq[len(seq)-1] != h) {
			seq = append(seq, h)
		}
	}
	if len(seq) == 0 {
		return 0
	}
	return len(seq) - 1
}

// holderWatch samples the VIP's holders every 50 ms into phases.
type holderWatch struct {
	mu     sync.Mutex
	phases []holderPhase
	done   chan struct{}
	ended  chan struct{}
}

func watchHolders(t *testing.T, c *Cluster) *holderWatch {
	w := &holderWatch{phases: []holderPhase{{name: "before"}}, done: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(w.ended)
		last := time.Now()
		for {
			select {
			case <-w.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			h := strings.Join(c.Lab.Masters(VIP()), "+")
			w.mu.Lock()
			now := time.Now()
			p := &w.phases[len(w.phases)-1]
			switch {
			case h == "":
				p.unheld += now.Sub(last)
			case strings.Contains(h, "+"):
				p.shared += now.Sub(last)
			}
			last = now
			if len(p.holders) == 0 || p.holders[len(p.holders)-1] != h {
				p.holders = append(p.holders, h)
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.halt)
	return w
}

// phase starts a new phase.
func (w *holderWatch) phase(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.phases = append(w.phases, holderPhase{name: name})
}

// halt ends the sampling.
func (w *holderWatch) halt() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	<-w.ended
}

// stop ends the sampling and returns the last two phases.
func (w *holderWatch) stop() (holderPhase, holderPhase) {
	w.halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.phases)
	return w.phases[n-2], w.phases[n-1]
}

// --anonymous-auth=false: h1's checks present a client certificate
// (cert_file, key_file) and find the apiservers up, so kubectl works
// through the VIP; h2's have none, find every apiserver answering 401, and
// say so in the log and in /status.
func TestAnonymousAuthOff(t *testing.T) {
	c := NewCluster(t, Options{NoAnonymous: true, HealthCert: [2]bool{true, false}})
	kubectlWorks(t, c)
	if code, err := c.Readyz(APIAddr(0)); code != 200 {
		t.Fatalf("/readyz with the admin certificate: %d %v", code, err)
	}
	e2e.Eventually(t, 20*time.Second, func() (bool, string) {
		out := c.LBs[1].Output()
		return strings.Contains(out, "401"), "h2's log does not name the 401 its checks get"
	})
	_, body, err := c.Host(lb2).HTTPGet("http://" + e2e.AdminAddr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(body, "401"); n < 3 {
		t.Errorf("h2's /status names 401 for %d of 3 backends:\n%s", n, body)
	}
	if n, st := c.BackendsUp(lb2); n != 0 {
		t.Errorf("h2 counts %d backends up without a client certificate: %+v", n, st)
	}
}
