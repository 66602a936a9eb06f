package proxy

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A hot loop between the messages of a steady trickle waits in epoll_wait
// on its own epoll set, on a thread of its own, so that the kernel wakes
// that thread straight into the loop. Waiting in the Go runtime's poller
// instead, a loop that became ready while another loop ran waited until a
// thread looked: the runtime keeps a single thread in its poller, and that
// thread was running the loop it had woken. On two cores the host then
// idled at saturation and the keep-alive row stayed at 0.94× haproxy's
// (issue 19).
func TestAHotLoopWaitsInEpollWaitOnItsOwnThread(t *testing.T) {
	b := startBackend(t, lineServer)
	r := startFrontend(t, testFrontend(b.Addr), Options{})
	loops := loopsOf(r)
	for _, l := range loops {
		// Hot, and not measured again during the test: the trickle
		// below keeps a loop busy for far less than hotOn.
		l.exec(func() { l.hot, l.windowAt = true, l.now+int64(time.Hour) })
	}
	// Connections until every loop holds some (the accepting loop hands
	// clients on past acceptSlack).
	var clients []*lineClient
	for range len(loops) * (acceptSlack + 2) {
		clients = append(clients, dialLine(t, r.addr))
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20000; i++ { // bounded: 20 s at most
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			for _, lc := range clients {
				if _, err := lc.ask(fmt.Sprint("ping ", i)); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()
	seen := map[int]bool{}
	waitFor(t, "every hot loop's thread seen waiting in epoll_wait on the loop's epoll set between messages", func() bool {
		for fd := range epollWaiters(t) {
			seen[fd] = true
		}
		for _, l := range loops {
			if !seen[l.epfd] {
				return false
			}
		}
		return true
	})
}

// A loop busy for more than hotOn of a window becomes hot, stays hot down
// to hotOff, and cools below it; an idle loop is not hot.
func TestALoopIsHotWhileBusy(t *testing.T) {
	l := &loop{now: 1 << 40, windowAt: 1 << 40} // unix nanoseconds; a from of 0 is no wait
	const w = int64(loadWindow)
	for _, step := range []struct {
		idle float64 // share of the window spent waiting
		want bool
	}{
		{1, false}, {0.5, true}, {0.75, true}, {0.85, false}, {0.75, false}, {0.95, false}, {0.6, true},
	} {
		from := l.now + w - int64(step.idle*float64(w))
		l.now += w
		l.measureLoad(from)
		if l.hot != step.want {
			t.Fatalf("busy for %.0f%% of a window: hot %v, want %v", 100*(1-step.idle), l.hot, step.want)
		}
	}
}

// epollWaiters is the set of epoll descriptors this process's threads are
// waiting on in epoll_pwait (from /proc/self/task/*/syscall).
func epollWaiters(t *testing.T) map[int]bool {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/syscall")
	if err != nil {
		t.Fatal(err)
	}
	waiting := map[int]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread is gone
		}
		// "281 0x7 0x..." : the call's number, then its arguments.
		fields := strings.Fields(string(b))
		if len(fields) < 2 || fields[0] != strconv.Itoa(unix.SYS_EPOLL_PWAIT) {
			continue
		}
		if fd, err := strconv.ParseInt(strings.TrimPrefix(fields[1], "0x"), 16, 32); err == nil {
			waiting[int(fd)] = true
		}
	}
	return waiting
}
