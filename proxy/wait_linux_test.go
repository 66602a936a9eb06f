package proxy

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
	loops := hotLoopsWithATrickle(t)
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

// The runtime does not see a hot loop's wait as a system call, so it never
// hands the loop's P to another thread meanwhile. It did: when every P's
// goroutine was in a system call and no P was idle, the runtime's monitor
// took one of those Ps after 20 µs, started a thread to look for work, and
// from then on looked every 20 µs; the loop came back from epoll_wait
// without a P and went on on whichever thread had one. At saturation the
// loops' CPU was spread over four to six threads instead of two in some
// rounds, and the keep-alive row moved between 88,000 and 116,000 requests
// a second from round to round (issue 19).
func TestAHotLoopWaitIsNoSystemCallToTheRuntime(t *testing.T) {
	loops := hotLoopsWithATrickle(t)
	seen, inSyscall := runtimeSeesLoops(t)
	if seen < len(loops) {
		t.Fatalf("the loops' goroutines were seen %d times in the stack dumps", seen)
	}
	if inSyscall > 0 {
		t.Errorf("the runtime saw a hot loop in a system call in %d of %d looks", inSyscall, seen)
	}
}

// While more loops are hot than there are Ps, a hot loop's wait is a
// system call again, so that the runtime can give its P to another hot
// loop.
func TestMoreHotLoopsThanPsWaitAsSystemCalls(t *testing.T) {
	hotLoopsWithATrickle(t)
	more := int32(runtime.GOMAXPROCS(0)) // as many hot loops again, elsewhere
	hotLoops.Add(more)
	defer hotLoops.Add(-more)
	seen, inSyscall := runtimeSeesLoops(t)
	if inSyscall == 0 {
		t.Errorf("the runtime never saw a hot loop in a system call in %d looks", seen)
	}
}

// runtimeSeesLoops dumps every goroutine's stack until it has seen the
// loops' goroutines 200 times (or after 2,000 dumps), and returns how
// often it saw one, and how often in a system call.
func runtimeSeesLoops(t *testing.T) (seen, inSyscall int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for i := 0; i < 2000 && seen < 200; i++ { // bounded: a few seconds
		time.Sleep(time.Millisecond)
		n := runtime.Stack(buf, true)
		for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
			if !strings.Contains(g, "proxy.(*loop).run(") {
				continue
			}
			seen++
			// "goroutine 7 [syscall]:" while the runtime thinks it is
			// in a system call.
			if head, _, _ := strings.Cut(g, "\n"); strings.Contains(head, "[syscall") {
				inSyscall++
			}
		}
	}
	return seen, inSyscall
}

// hotLoopsWithATrickle starts a frontend whose loops are all hot and keeps
// each busy with a message to every client every millisecond, for the
// rest of the test; it returns the loops.
func hotLoopsWithATrickle(t *testing.T) []*loop {
	t.Helper()
	if procs := runtime.GOMAXPROCS(0); procs < 2 {
		// A hot loop keeps its P only where there are two.
		runtime.GOMAXPROCS(2)
		t.Cleanup(func() { runtime.GOMAXPROCS(procs) })
	}
	b := startBackend(t, lineServer)
	r := startFrontend(t, testFrontend(b.Addr), Options{})
	loops := loopsOf(r)
	for _, l := range loops {
		// Hot, and not measured again during the test: the trickle
		// below keeps a loop busy for far less than hotOn.
		l.exec(func() { l.setHot(true); l.windowAt = l.now + int64(time.Hour) })
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
	t.Cleanup(func() { close(stop); <-done })
	return loops
}

// A loop busy for more than hotOn of a window becomes hot, stays hot down
// to hotOff, and cools below it; an idle loop is not hot.
func TestALoopIsHotWhileBusy(t *testing.T) {
	l := &loop{now: 1 << 40, windowAt: 1 << 40} // unix nanoseconds; a from of 0 is no wait
	defer l.setHot(false)                       // not counted among the process's hot loops
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

// A hot loop keeps its P while it waits only where there are two Ps at
// least and no more hot loops than Ps.
func TestAHotLoopKeepsItsPWhileNoOtherNeedsIt(t *testing.T) {
	for _, c := range []struct {
		hot         bool
		procs, hots int32 // hots: the process's hot loops, this one included when hot
		want        bool
	}{
		{true, 2, 2, true},
		{true, 4, 1, true},
		{true, 2, 3, false},
		{true, 1, 1, false},
		{false, 2, 1, false},
	} {
		l := &loop{hot: c.hot, procs: c.procs}
		hotLoops.Add(c.hots)
		got := l.holdsP()
		hotLoops.Add(-c.hots)
		if got != c.want {
			t.Errorf("hot %v, %d Ps, %d hot loops: keeps its P %v, want %v", c.hot, c.procs, c.hots, got, c.want)
		}
	}
}
