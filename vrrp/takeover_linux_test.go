package vrrp

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrrplb/vrrplb/config"
)

// A host with no socket for a client's connection on its VIP (the master
// that held it crashed) ends it with one prompt: the client's TCP answers
// the SYN from the VIP with an ACK, this host's kernel answers that with an
// RST, and the client's next read fails at once. IPv4 and IPv6: a wrong
// checksum would be dropped and nothing would happen. SockDiagResetter.List
// names the connection first, as the master's stream does.
func TestAPromptFromTheVIPResetsAClientThisHostHasNoSocketFor(t *testing.T) {
	l := newTestLink(t)
	run(t, "ip", "netns", "exec", l.NSB, "sysctl", "-qw", "net.ipv6.conf."+l.IfB+".keep_addr_on_down=1")
	for _, tc := range []struct {
		name  string
		vip   netip.Prefix
		flags []string
	}{
		{"IPv4", netip.MustParsePrefix("10.231.0.100/24"), nil},
		{"IPv6", netip.MustParsePrefix("fd00:231::100/64"), []string{"nodad"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addVIP(t, l, tc.vip, tc.flags...)
			port := echoServer(t, l.NSA)
			client := dialIn(t, l.NSB, netip.AddrPortFrom(tc.vip.Addr(), port))
			var tuples []Tuple
			var err error
			deadline := time.Now().Add(2 * time.Second)
			for len(tuples) < 1 && time.Now().Before(deadline) { // the accepted connection
				inNetns(t, l.NSA, func() { tuples, err = SockDiagResetter{}.List(tc.vip.Addr()) })
				if err != nil {
					t.Fatal(err)
				}
			}
			local := client.LocalAddr().(*net.TCPAddr).AddrPort()
			want := Tuple{Local: netip.AddrPortFrom(tc.vip.Addr(), port), Remote: netip.AddrPortFrom(local.Addr().Unmap(), local.Port())}
			if len(tuples) != 1 || tuples[0] != want {
				t.Fatalf("List(%v) = %v, want [%v]", tc.vip.Addr(), tuples, want)
			}

			// This host forgets the connection without telling the client,
			// as a crashed master's successor knows nothing of it.
			run(t, "ip", "-n", l.NSB, "link", "set", l.IfB, "down")
			var n int
			inNetns(t, l.NSA, func() { n, err = SockDiagResetter{}.Reset(tc.vip.Addr()) })
			if err != nil || n != 1 {
				t.Fatalf("Reset = %d, %v", n, err)
			}
			run(t, "ip", "-n", l.NSB, "link", "set", l.IfB, "up")
			_ = client.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := client.Read(make([]byte, 1)); !errors.Is(err, syscall.EAGAIN) && !isTimeout(err) {
				t.Fatalf("the client learned of it before the prompt: %v", err)
			}

			var p Prompter
			inNetns(t, l.NSA, func() {
				p, _ = NewRawPrompter()
				err = p.Prompt(want)
				p.Close()
			})
			if err != nil {
				t.Fatalf("Prompt: %v", err)
			}
			_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := client.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("after the prompt the client read %v, want ECONNRESET at once", err)
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// The stream sockets carry datagrams between the two ends with hop limit
// 255 and the sender's advert source address, to a unicast peer and to the
// VRRP group of either family.
func TestStreamConnsReachEachOtherWithHopLimit255(t *testing.T) {
	l := newTestLink(t)
	for _, tc := range []struct {
		name      string
		family    config.Family
		a, b      netip.Addr
		multicast bool
	}{
		{"IPv4 unicast", config.IPv4, l.A4.Addr(), l.B4.Addr(), false},
		{"IPv4 multicast", config.IPv4, l.A4.Addr(), GroupIPv4, true},
		{"IPv6 unicast", config.IPv6, l.A6.Addr(), l.B6.Addr(), false},
		{"IPv6 multicast", config.IPv6, l.A6.Addr(), GroupIPv6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sa, sb *UDPStream
			var err error
			inNetns(t, l.NSA, func() {
				sa, err = NewStreamConn(l.IfA, tc.family, 5798, tc.multicast, func() netip.Addr { return tc.a })
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sa.Close()
			inNetns(t, l.NSB, func() {
				sb, err = NewStreamConn(l.IfB, tc.family, 5798, tc.multicast, func() netip.Addr { return netip.Addr{} })
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sb.Close()
			got := make(chan string, 1)
			go func() {
				buf := make([]byte, 100)
				n, from, hop, err := sb.Receive(buf)
				if err != nil {
					got <- err.Error()
					return
				}
				got <- string(buf[:n]) + " from " + from.String() + " hop " + strconv.Itoa(hop)
			}()
			if err := sa.Send([]byte("snapshot"), tc.b); err != nil {
				t.Fatal(err)
			}
			want := "snapshot from " + tc.a.String() + " hop 255"
			select {
			case g := <-got:
				if g != want {
					t.Errorf("received %q, want %q", g, want)
				}
			case <-time.After(2 * time.Second):
				t.Errorf("nothing received")
			}
		})
	}
}

// The stream's goroutines leave the engine's real-time policy on a thread
// of their own.
func TestTheStreamRunsOutOfTheRealTimePolicy(t *testing.T) {
	requireRoot(t, "sets SCHED_FIFO")
	tk := newTakeover(slog.New(slog.DiscardHandler), nil, TakeoverOptions{NormalPriority: NormalPriority}, nil)
	policy := make(chan string, 1)
	go func() {
		runtime.LockOSThread() // as the engine's threads: SCHED_FIFO
		if err := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 1}, 0); err != nil {
			policy <- err.Error()
			return
		}
		tk.ownThread("test")
		a, err := unix.SchedGetAttr(0, 0)
		if err != nil {
			policy <- err.Error()
			return
		}
		policy <- strconv.Itoa(int(a.Policy))
	}()
	if got := <-policy; got != strconv.Itoa(unix.SCHED_NORMAL) {
		t.Errorf("the stream's thread has policy %s, want SCHED_NORMAL (%d)", got, unix.SCHED_NORMAL)
	}
}
