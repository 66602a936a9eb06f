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
// "think" with one line after 300 ms; any other line with itself.
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
		default:
			fmt.Fprintf(c, "%s %s", name, line)
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
	a := startBackend(t, slowServer)
	h := newFakeHealth()
	fe := testFrontend(a.Addr)
	fe.CloseOnBackendDown = true
	r := startFrontend(t, fe, Options{Health: h})

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
	for {
		line, err := streaming.r.ReadString('\n')
		if err != nil {
			t.Fatalf("a response under way when the backend went down was cut after %v: %v", time.Since(down).Round(time.Millisecond), err)
		}
		if strings.HasSuffix(line, " end\n") {
			break
		}
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
	a := startBackend(t, slowServer)
	h := newFakeHealth()
	fe := testFrontend(a.Addr)
	fe.CloseOnBackendDown = true
	r := startFrontend(t, fe, Options{Health: h})
	c := dialLine(t, r.addr)
	fmt.Fprintf(c.c, "slow\n")
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	h.Set(a.Addr, false)
	h.Set(a.Addr, true)
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(line, " end\n") {
			break
		}
	}
	if closedByPeer(c.c, 2*time.Second) {
		t.Fatal("a connection to a backend that came back up was closed")
	}
}
