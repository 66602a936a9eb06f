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
// fails, yet the VIP stays held the whole time (weight-0 track_frontend
// keeps a host in the election) and clients reach the apiservers through it
// (fail_open) and get their errors, not refused connections. After etcd
// returns the test measures when requests succeed again, and the VIP moves
// at most once on the way back.
func TestEtcdOutage(t *testing.T) {
	pending(t, "fail_open and weight-0 track_frontend that yields instead of FAULT (helpers failsafe and proxy, issue 15)")
	c := NewCluster(t, Options{}) // fail_open is on by default
	client := c.APIClient(c.Host(clientHost))
	get := func() (int, error) {
		resp, err := client.Get(fmt.Sprintf("https://%s:%d/api/v1/namespaces/default/configmaps?limit=1", VIP(), vipPort))
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(); code != http.StatusOK {
		t.Fatalf("before the outage: %d %v", code, err)
	}

	// Who holds the VIP, every 50 ms, until the test ends.
	var (
		mu      sync.Mutex
		holders []string
		gaps    time.Duration
	)
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		last := time.Now()
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(50 * time.Millisecond):
			}
			m := c.Lab.Masters(VIP())
			mu.Lock()
			now := time.Now()
			if len(m) == 0 {
				gaps += now.Sub(last)
			}
			last = now
			h := strings.Join(m, "+")
			if len(holders) == 0 || holders[len(holders)-1] != h {
				holders = append(holders, h)
			}
			mu.Unlock()
		}
	}()
	defer func() { close(stopWatch); <-watchDone }()

	c.StopEtcd()
	stopped := time.Now()
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
	// Through the VIP: the apiservers' own errors, never a refusal.
	var answers, refusals int
	for time.Since(stopped) < 10*time.Second {
		code, err := get()
		switch {
		case err != nil && errors.Is(err, syscall.ECONNREFUSED):
			refusals++
			t.Errorf("with etcd stopped, a request through the VIP was refused: %v", err)
		case err != nil:
			t.Logf("with etcd stopped, a request through the VIP: %v", err)
		default:
			answers++
			if code == http.StatusOK {
				t.Logf("with etcd stopped, a list was served from the watch cache")
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if answers == 0 {
		t.Error("with etcd stopped, no request through the VIP got an answer from an apiserver")
	}

	c.StartEtcd()
	back := time.Now()
	e2e.Eventually(t, 2*time.Minute, func() (bool, string) {
		code, err := get()
		return code == http.StatusOK, fmt.Sprintf("after etcd returned: %d %v", code, err)
	})
	served := time.Since(back)
	for n := range 3 {
		c.WaitAPIReady(n, 2*time.Minute)
	}
	readyAt := time.Since(back) // an upper bound: when the last was seen ready
	c.Lab.WaitMaster(t, c.Host(lb1), VIP(), 30*time.Second)
	c.Lab.StaysMaster(t, c.Host(lb1), VIP(), 3*time.Second)

	mu.Lock()
	defer mu.Unlock()
	line := fmt.Sprintf("etcd outage of %v: requests through the VIP served again %v after etcd's restart (apiservers all ready by %v); VIP holders %v; time without a holder %v",
		back.Sub(stopped).Round(time.Millisecond), served.Round(time.Millisecond), readyAt.Round(time.Millisecond), holders, gaps.Round(time.Millisecond))
	t.Log(line)
	figures = append(figures, line)
	if gaps > 0 {
		t.Errorf("no host held the VIP for %v of the outage", gaps)
	}
	moves := 0
	for i := 1; i < len(holders); i++ {
		if holders[i] != holders[i-1] {
			moves++
		}
	}
	if moves > 1 {
		t.Errorf("the VIP moved %d times (holders %v), want at most once", moves, holders)
	}
}

// --anonymous-auth=false: h1's checks present a client certificate
// (cert_file, key_file) and find the apiservers up, so kubectl works
// through the VIP; h2's have none, find every apiserver answering 401, and
// say so in the log and in /status.
func TestAnonymousAuthOff(t *testing.T) {
	pending(t, "cert_file/key_file in [frontend.health] and the check's reason in /status (helper failsafe, issue 15)")
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
