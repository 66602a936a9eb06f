package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrrplb/vrrplb/vrrp"
)

// takeoverKey is the lab's takeover_key_file content.
const takeoverKey = "lab-takeover-key-0123456789abcdef"

// writeTakeoverKey writes key into the lab as a file only its owner reads.
func writeTakeoverKey(t *testing.T, lab *Lab, name, key string) string {
	t.Helper()
	p := lab.WriteFile(name, key+"\n")
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Takeover after a crash: the master streams its client connections on the
// VIP to the backup; when the master crashes (its cable pulled, then both
// its processes killed: its kernel can tell the clients nothing, as after a
// power loss), the backup takes the VIP over by Master_Down and prompts
// each of those clients from the VIP; their TCP answers with an ACK, the
// new master's kernel, which has no such connection, answers that with an
// RST, and the watches reconnect at once, here, instead of at their
// read-idle timeout. Short requests never fail. A forged stream (another
// key; the right key from a host that is not a peer) is dropped and
// counted, and moves nothing.
//
// h1 and h2 are the LB hosts, h3 an apiserver streaming a line every
// watchEvery, h4 the client (and the forger).
func TestCrashTakeoverPromptsTheOldMastersClientsToReconnect(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		unicast bool
		vip     netip.Prefix
	}{
		{"IPv4 unicast", true, VIP4},
		{"IPv4 multicast", false, VIP4},
		{"IPv6 unicast", true, VIP6},
	} {
		t.Run("with "+tc.mode+" adverts watches resume through the new master within 1.5s", func(t *testing.T) {
			crashTakeover(t, tc.unicast, tc.vip)
		})
	}
}

func crashTakeover(t *testing.T, unicast bool, vipPrefix netip.Prefix) {
	lab, h1, h2, h4, _, api := watchLab(t)
	vip := vipPrefix.Addr()
	// IPv6 VRRP speaks from link-local addresses (RFC 5798 §5.1.2.1): the
	// peers, and the stream's ends, are those.
	addr := func(h *Host) netip.Addr {
		if vip.Is4() {
			return h.Addr4.Addr()
		}
		ll, err := h.LinkLocal()
		if err != nil {
			t.Fatal(err)
		}
		return ll
	}
	key := writeTakeoverKey(t, lab, "takeover.key", takeoverKey)

	const advert = 100 * time.Millisecond
	lbConfig := func(prio int, peer *Host) string {
		c := VRRPConf{Priority: prio, Interval: advert, VIPs: []netip.Prefix{vipPrefix}, Extra: fmt.Sprintf("takeover_key_file = %q\n", key)}
		if unicast {
			c.UnicastPeers = []netip.Addr{addr(peer)}
		}
		return lbConf{
			VRRPConf: c, Backends: []netip.AddrPort{api}, Frontend: "drain_timeout = \"10s\"\n",
			Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, Rise: 1,
		}.config(t)
	}
	p1 := h1.StartVRRPLB(lbConfig(100, h2))
	lab.WaitMaster(t, h1, vip, 10*time.Second)
	p2 := h2.StartVRRPLB(lbConfig(90, h1))
	for _, h := range []*Host{h1, h2} {
		Eventually(t, 10*time.Second, func() (bool, string) {
			up, _ := h.Metric("vrrplb_backend_up", `backend="`+api.String()+`"`)
			return up == 1 && (h == h1 || h.State() == "backup"), h.Name + "'s backend not up yet, or not backup"
		})
	}

	to := netip.AddrPortFrom(vip, 8443)
	const watches = 3
	ws, requests := startWatchesAndGets(t, h4, to, watches)
	held := func() float64 {
		n, _ := h2.Metric("vrrplb_takeover_tuples_held", `vrrp_instance="vip"`)
		return n
	}
	Eventually(t, 5*time.Second, func() (bool, string) {
		_, metrics, _ := h2.HTTPGet("http://" + AdminAddr + "/metrics")
		var drops []string
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, "vrrplb_takeover_stream_dropped_total{") && !strings.HasSuffix(l, " 0") {
				drops = append(drops, l)
			}
		}
		return held() >= watches, fmt.Sprintf("h2 holds %v of h1's connections, want the %d watches; dropped: %v", held(), watches, drops)
	})
	checkForgedStreams(t, h1, h2, h4, vip, addr, unicast, held)
	checkStreamThreads(t, p2)

	capture, stopCapture := lab.Capture("--immediate-mode", "tcp", "port", "8443")
	start := time.Now()
	lab.Crash(h1, p1)
	// A request that h1 took in the few milliseconds the crash took, too
	// new for the stream, waits like a watch that h2 does not know (see
	// README); requests from the crash on must all succeed.
	cut := time.Now()
	moved := waitHolds(t, h2, vip)
	t.Logf("crash: the VIP moved to h2 %v after h1's cable was pulled", moved.Sub(start).Round(time.Millisecond))
	worst := waitWatchesResumed(t, ws, start, moved)
	for i, w := range ws {
		r := w.resumedAfter(start)
		t.Logf("crash: watch %d resumed %v after the cable was pulled", i, r.Sub(start).Round(time.Millisecond))
	}
	t.Logf("crash: every watch received data again %v after the VIP moved (goal ≤ 1.5s)", worst.Round(time.Millisecond))
	if worst > 1500*time.Millisecond {
		t.Errorf("crash: the watches resumed %v after the VIP moved, want ≤ 1.5s", worst.Round(time.Millisecond))
	}
	stopCapture()
	checkPromptsOnTheWire(t, capture, vip, watches)
	resets, _ := h2.Metric("vrrplb_takeover_resets_total", `vrrp_instance="vip"`)
	if resets < watches || resets >= forgedTuples {
		t.Errorf("h2 prompted %v of h1's clients, want at least the %d watches and none of the %d forged", resets, watches, forgedTuples)
	}
	if socks := vipSockets(t, h2, vip); len(socks) < watches {
		t.Errorf("h2, the new master, holds %d sockets on the VIP, want the %d watches:\n%s", len(socks), watches, strings.Join(socks, "\n"))
	}
	// h1 crashed: its kernel and sockets are gone with it (the lab leaves
	// them in place, cut off), so there is nothing to check there with ss.

	time.Sleep(time.Second) // requests through h2 after the watches resumed
	requests.check(t, "crash", cut)
}

// forgedTuples is how many connections the forged snapshots claim.
const forgedTuples = 500

// checkForgedStreams sends h2, the backup, snapshots that claim 500
// connections: signed with another key from h1 (its peer and master), and
// with the right key from h4 (not a peer). Each is dropped and counted by
// its reason, and h2 keeps holding what h1 really sent.
func checkForgedStreams(t *testing.T, h1, h2, h4 *Host, vip netip.Addr, addr func(*Host) netip.Addr, unicast bool, held func() float64) {
	t.Helper()
	var forged []vrrp.Tuple
	for i := range forgedTuples {
		forged = append(forged, vrrp.Tuple{Local: netip.AddrPortFrom(vip, 8443), Remote: netip.AddrPortFrom(addr(h4), uint16(20000+i))})
	}
	dropped := func(reason string) float64 {
		n, _ := h2.Metric("vrrplb_takeover_stream_dropped_total", `vrrp_instance="vip"`, `reason="`+reason+`"`)
		return n
	}
	notPeer := "not_peer"
	if !unicast {
		notPeer = "not_master" // in multicast any host of the segment may send; only the master's count
	}
	for _, f := range []struct {
		from   *Host
		key    string
		reason string
	}{
		{h1, "another-key-0123456789abcdef", "bad_mac"},
		{h4, takeoverKey, notPeer},
	} {
		before := dropped(f.reason)
		datagrams := vrrp.EncodeTakeoverSnapshot([]byte(f.key), 51, 1<<30, forged)
		if err := sendStream(f.from, addr(f.from), addr(h2), datagrams); err != nil {
			t.Fatalf("forging from %s: %v", f.from.Name, err)
		}
		Eventually(t, 2*time.Second, func() (bool, string) {
			n := dropped(f.reason)
			return n-before >= float64(len(datagrams)), fmt.Sprintf("h2 counted %v of %d forged datagrams from %s as %s", n-before, len(datagrams), f.from.Name, f.reason)
		})
	}
	if n := held(); n >= float64(len(forged)) {
		t.Errorf("h2 holds %v connections after the forgeries, want h1's few", n)
	}
}

// sendStream sends datagrams from h's address src to the takeover port of
// dst with TTL (hop limit) 255, as an LB host of the segment does.
func sendStream(h *Host, src, dst netip.Addr, datagrams [][]byte) error {
	return h.Do(func() error {
		fam, level, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_TTL
		var from, to unix.Sockaddr
		if src.Is4() {
			from, to = &unix.SockaddrInet4{Addr: src.As4()}, &unix.SockaddrInet4{Addr: dst.As4(), Port: 5798}
		} else {
			ifi, err := net.InterfaceByName(HostIfname) // the zone of link-local addresses
			if err != nil {
				return err
			}
			fam, level, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS
			from = &unix.SockaddrInet6{Addr: src.As16(), ZoneId: uint32(ifi.Index)}
			to = &unix.SockaddrInet6{Addr: dst.As16(), Port: 5798, ZoneId: uint32(ifi.Index)}
		}
		fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, level, opt, 255); err != nil {
			return err
		}
		if err := unix.Bind(fd, from); err != nil {
			return err
		}
		for _, b := range datagrams {
			if err := unix.Sendto(fd, b, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkPromptsOnTheWire checks in a capture of port 8443 that at least n
// clients got a prompt (a SYN from the VIP), answered it with an ACK, and
// got an RST from the VIP for it: the new master's kernel, which has no
// socket for the connection, answers so.
func checkPromptsOnTheWire(t *testing.T, file string, vip netip.Addr, n int) {
	t.Helper()
	out, err := exec.Command("tcpdump", "-n", "-r", file).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, out)
	}
	server := vip.String() + ".8443"
	stage := map[string]int{} // client address.port → 1 prompted, 2 answered, 3 reset
	trail := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || (f[1] != "IP" && f[1] != "IP6") {
			continue
		}
		src, dst, flags := f[2], strings.TrimSuffix(f[4], ":"), f[6]
		client := dst
		switch {
		case src == server && flags == "[S],":
			stage[dst] = 1
		case dst == server && flags == "[.]," && stage[src] == 1:
			client, stage[src] = src, 2
		case src == server && flags == "[R]," && stage[dst] == 2:
			stage[dst] = 3
		default:
			continue
		}
		trail[client] = append(trail[client], line)
	}
	done := 0
	for client, s := range stage {
		if s == 3 {
			if done == 0 {
				t.Logf("on the wire, client %s:\n%s", client, strings.Join(trail[client], "\n"))
			}
			done++
		}
	}
	if done < n {
		t.Errorf("%d clients were prompted, answered with an ACK and reset by the new master on the wire, want at least %d; stages %v", done, n, stage)
	}
}

// checkStreamThreads checks that the engine under p runs its adverts at
// real-time priority (SCHED_FIFO, "FF") and the takeover stream's sender
// and receiver on threads out of it ("TS").
func checkStreamThreads(t *testing.T, p *Proc) {
	t.Helper()
	engines := p.Children()
	if len(engines) != 1 {
		t.Fatalf("vrrplb has %d children, want the engine", len(engines))
	}
	out, err := exec.Command("ps", "-L", "-o", "cls=", "-p", strconv.Itoa(engines[0])).CombinedOutput()
	if err != nil {
		t.Fatalf("ps: %v\n%s", err, out)
	}
	classes := map[string]int{}
	for _, c := range strings.Fields(string(out)) {
		classes[c]++
	}
	if classes["FF"] == 0 || classes["TS"] < 2 {
		t.Errorf("the engine's threads by scheduling class: %v; want SCHED_FIFO ones and the stream's two out of it", classes)
	}
}
