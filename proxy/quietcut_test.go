package proxy

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// slowServer answers "slow" with ten lines 100 ms apart and then "end";
// "think" with one line after 300 ms; "stall" with ten lines and "end"
// after 2.5 s (an apiserver waiting on a stalled etcd); "ack" not at all
// (like an HTTP/2 WINDOW_UPDATE from the client); any other line with
// itself.
func slowServer(c *net.TCPConn, name string) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch line {
		case "slow\n":
			for i := range 10 {
				fmt.Fprintf(c, "%s part %d\n", name, i)
				time.Sleep(100 * time.Millisecond)
			}
			fmt.Fprintf(c, "%s end\n", name)
		case "think\n":
			time.Sleep(300 * time.Millisecond)
			fmt.Fprintf(c, "%s thought\n", name)
		case "stall\n":
			time.Sleep(2500 * time.Millisecond)
			for i := range 10 {
				fmt.Fprintf(c, "%s stalled %d\n", name, i)
			}
			fmt.Fprintf(c, "%s end\n", name)
		case "ack\n":
		default:
			fmt.Fprintf(c, "%s %s", name, line)
		}
	}
}

// startCutting runs a slowServer backend behind a frontend that closes
// the connections of a backend that goes down; h says the backend's health.
func startCutting(t *testing.T) (*testBackend, *fakeHealth, *running) {
	a := startBackend(t, slowServer)
	h := newFakeHealth()
	fe := testFrontend(a.Addr)
	fe.CloseOnBackendDown = true
	return a, h, startFrontend(t, fe, Options{Health: h})
}

// downAfter runs startCutting with a client that says hello and then cmd,
// and takes the backend down at once; it returns the client and when it
// sent cmd.
func downAfter(t *testing.T, cmd string) (*lineClient, time.Time) {
	a, h, r := startCutting(t)
	c := dialLine(t, r.addr)
	if _, err := c.ask("hello"); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c.c, "%s\n", cmd)
	sent := time.Now()
	h.Set(a.Addr, false)
	return c, sent
}

// readToEnd reads c's lines up to the one that ends in " end" and says how
// many it read.
func readToEnd(c *lineClient) (lines int, err error) {
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return lines, err
		}
		lines++
		if strings.HasSuffix(line, " end\n") {
			return lines, nil
		}
	}
}

// A backend that health reports down (as an apiserver does while it shuts
// down: /readyz fails, it still serves) is cut only when its connections
// are quiet: a response under way arrives whole, a request the backend
// is working on gets its answer, and a quiet connection (a watch between
// events) is closed within a few seconds so its client reconnects
// elsewhere. Measured before: every connection was cut at once, mid-response.
func TestBackendGoingDownIsCutOnlyWhenQuiet(t *testing.T) {
	a, h, r := startCutting(t)

	streaming := dialLine(t, r.addr)
	thinking := dialLine(t, r.addr)
	watch := dialLine(t, r.addr)
	for _, c := range []*lineClient{streaming, thinking, watch} {
		if _, err := c.ask("hello"); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintf(streaming.c, "slow\n")
	fmt.Fprintf(thinking.c, "think\n")
	streaming.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := streaming.r.ReadString('\n'); err != nil { // the response is under way
		t.Fatal(err)
	}
	down := time.Now()
	h.Set(a.Addr, false)

	thinking.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := thinking.r.ReadString('\n'); err != nil || !strings.HasSuffix(line, " thought\n") {
		t.Errorf("a request the backend was working on when it went down: %q, %v; want its answer", line, err)
	}
	if _, err := readToEnd(streaming); err != nil {
		t.Fatalf("a response under way when the backend went down was cut after %v: %v", time.Since(down).Round(time.Millisecond), err)
	}
	if !closedByPeer(watch.c, 5*time.Second) {
		t.Fatal("a quiet connection to the down backend stayed open 5s")
	}
	t.Logf("quiet connection closed %v after the backend went down", time.Since(down).Round(time.Millisecond))
	for _, c := range []*lineClient{streaming, thinking} {
		if !closedByPeer(c.c, 5*time.Second) {
			t.Error("a connection to the down backend stayed open 5s after it went quiet")
		}
	}
}

// A backend that comes back before its connections went quiet keeps them.
func TestBackendBackUpBeforeQuietKeepsItsConnections(t *testing.T) {
	a, h, r := startCutting(t)
	c := dialLine(t, r.addr)
	fmt.Fprintf(c.c, "slow\n")
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	h.Set(a.Addr, false)
	h.Set(a.Addr, true)
	if _, err := readToEnd(c); err != nil {
		t.Fatal(err)
	}
	if closedByPeer(c.c, 2*time.Second) {
		t.Fatal("a connection to a backend that came back up was closed")
	}
}

// A request the down backend is still working on gets its whole answer,
// however long it waits with no byte moving (within quietOwed): here
// 2.5 s, as when an apiserver that is shutting down waits on a stalled
// etcd. Once answered, the connection goes within quietCut. Measured
// before: cut 1 s after the request, the client got EOF and no answer
// (the real-Kubernetes suite saw creates fail with "unexpected EOF").
func TestBackendGoingDownAnswersARequestAwaitingIt(t *testing.T) {
	c, down := downAfter(t, "stall")
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if lines, err := readToEnd(c); err != nil {
		t.Fatalf("a request awaiting its answer when the backend went down was cut %v later, after %d of 11 lines: %v", time.Since(down).Round(time.Millisecond), lines, err)
	}
	answered := time.Now()
	t.Logf("answered %v after the backend went down", answered.Sub(down).Round(time.Millisecond))
	if !closedByPeer(c.c, quietCut+2*time.Second) {
		t.Fatalf("an answered connection to the down backend stayed open %v", quietCut+2*time.Second)
	}
	t.Logf("closed %v after its answer", time.Since(answered).Round(time.Millisecond))
}

// A connection whose client spoke last and got no answer, such as an
// HTTP/2 watch whose last frame was the client's WINDOW_UPDATE, is not
// quiet for quietCut but for quietOwed: it still moves, within quietOwed
// and a sweep tick, not later.
func TestBackendGoingDownMovesAConnectionWhoseClientSpokeLast(t *testing.T) {
	c, sent := downAfter(t, "ack")
	if !closedByPeer(c.c, quietOwed+2*time.Second) {
		t.Fatalf("a connection to the down backend whose client spoke last stayed open %v", quietOwed+2*time.Second)
	}
	took := time.Since(sent)
	t.Logf("closed %v after the client's last bytes", took.Round(time.Millisecond))
	if took < quietOwed-50*time.Millisecond {
		t.Errorf("closed %v after the client's last bytes, before quietOwed (%v): an answer could still have been on its way", took.Round(time.Millisecond), quietOwed)
	}
}
