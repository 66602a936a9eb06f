package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vrrplb/vrrplb/e2e"
	"github.com/vrrplb/vrrplb/e2e/internal/trial"
)

const (
	// probePort is the UDP echo service on both LB hosts.
	probePort = 7000
	// probeEvery is how often the client sends a probe to the VIP.
	probeEvery = 5 * time.Millisecond
	// steady is how long replies must flow from one host before the event
	// and after the takeover.
	steady = 100 * time.Millisecond
)

// measure runs one trial: a fresh lab, impl on the master h1 and the backup
// h2, the client h3 probing the VIP, then e to the master. It returns the
// time between the last echo from the master and the first from the backup.
func measure(impl string, s setting, e event, verbose bool) (time.Duration, error) {
	var gap time.Duration
	err := trial.Run(fmt.Sprintf("%s %s %s", impl, s.name, e), func(t *trial.T) {
		l := e2e.NewLab(t, 3)
		master, backup, client := l.Host(1), l.Host(2), l.Host(3)
		vip := e2e.VIP4.Addr()
		echo(t, master, 1)
		echo(t, backup, 2)

		down := 3*s.interval + s.skew()
		pm := start(t, impl, master, s, masterPrio)
		e2e.Eventually(t, 5*time.Second+2*down, func() (bool, string) {
			m := l.Masters(vip)
			return len(m) == 1 && m[0] == master.Name, fmt.Sprintf("want %s alone holding %s, holders %v", master.Name, vip, m)
		})
		pb := start(t, impl, backup, s, backupPrio)
		e2e.Eventually(t, 5*time.Second, func() (bool, string) {
			if impl == "keepalived" {
				return strings.Contains(pb.Output(), "Entering BACKUP STATE"), "keepalived on the backup did not enter BACKUP"
			}
			return backup.State() == "backup", "vrrplb on the backup is not backup"
		})

		p := newProber(t, client, netip.AddrPortFrom(vip, probePort))
		defer p.stop()
		e2e.Eventually(t, 5*time.Second, func() (bool, string) {
			return p.flowingFrom(1, steady), "no steady echoes from the master"
		})
		p.mark()
		at := time.Now()
		switch e {
		case crash:
			l.Crash(master, pm)
		case graceful:
			pm.Signal(syscall.SIGTERM)
		}
		e2e.Eventually(t, s.bound(e)+3*time.Second, func() (bool, string) {
			return p.flowingFrom(2, steady), "no steady echoes from the backup after the event"
		})
		p.stop()
		g, err := p.gap()
		if err != nil {
			t.Fatal(err)
		}
		gap = g
		if verbose {
			fmt.Fprintf(os.Stderr, "event at %s\n%s", at.Format(timeOfDay), p.timeline())
			for _, pr := range []*e2e.Proc{pm, pb} {
				fmt.Fprintf(os.Stderr, "---- %s\n%s", pr.Name, pr.Output())
			}
		}
	})
	return gap, err
}

// start runs impl on h with priority prio.
func start(t *trial.T, impl string, h *e2e.Host, s setting, prio int) *e2e.Proc {
	vips := []netip.Prefix{e2e.VIP4}
	if impl == "keepalived" {
		return h.StartKeepalived(e2e.KeepalivedConf{VRID: 51, Priority: prio, Version: s.version, Interval: s.interval, VIPs: vips})
	}
	return h.StartVRRPLB(e2e.VRRPConf{Priority: prio, Version: s.version, Interval: s.interval, VIPs: vips}.TOML())
}

// echo serves UDP on probePort of every address of h, the VIP included: it
// sends each datagram back with id appended, so the client knows who answered.
func echo(t *trial.T, h *e2e.Host, id byte) {
	var pc net.PacketConn
	err := h.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", probePort))
		return err
	})
	if err != nil {
		t.Fatalf("echo on %s: %v", h.Name, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= len(buf) {
				continue
			}
			buf[n] = id
			_, _ = pc.WriteTo(buf[:n+1], from)
		}
	}()
}

// reply is one echo the client received: when, and from which host.
type reply struct {
	at   time.Time
	from byte
}

// prober sends a sequence-numbered datagram to the VIP every probeEvery and
// records the echoes. It stops by itself after maxProbe.
type prober struct {
	conn     net.PacketConn
	stopOnce sync.Once
	done     chan struct{}
	sent     sync.WaitGroup

	mu      sync.Mutex
	replies []reply
	// from is the first reply of the steady run before the event.
	from int
}

// maxProbe bounds a prober's life whatever happens to the trial.
const maxProbe = 20 * time.Second

func newProber(t *trial.T, h *e2e.Host, to netip.AddrPort) *prober {
	var pc net.PacketConn
	err := h.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", ":0")
		return err
	})
	if err != nil {
		t.Fatalf("probe socket on %s: %v", h.Name, err)
	}
	p := &prober{conn: pc, done: make(chan struct{})}
	t.Cleanup(p.stop)
	dst := net.UDPAddrFromAddrPort(to)
	p.sent.Add(2)
	go func() {
		defer p.sent.Done()
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		deadline := time.After(maxProbe)
		var msg [8]byte
		for seq := uint64(0); ; seq++ {
			binary.BigEndian.PutUint64(msg[:], seq)
			_, _ = pc.WriteTo(msg[:], dst)
			select {
			case <-tick.C:
			case <-deadline:
				return
			case <-p.done:
				return
			}
		}
	}()
	go func() {
		defer p.sent.Done()
		buf := make([]byte, 64)
		for {
			n, _, err := pc.ReadFrom(buf)
			now := time.Now()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil || n != 9 {
				continue
			}
			p.mu.Lock()
			p.replies = append(p.replies, reply{at: now, from: buf[8]})
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *prober) stop() {
	p.stopOnce.Do(func() {
		close(p.done)
		p.conn.Close()
		p.sent.Wait()
	})
}

// flowingFrom reports whether host id answered every probe of the last d.
func (p *prober) flowingFrom(id byte, d time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if len(p.replies) == 0 || now.Sub(p.replies[len(p.replies)-1].at) > 3*probeEvery {
		return false
	}
	var first time.Time
	for i := len(p.replies) - 1; i >= 0; i-- {
		r := p.replies[i]
		if r.from != id {
			return false
		}
		if i < len(p.replies)-1 && p.replies[i+1].at.Sub(r.at) > 3*probeEvery {
			return false
		}
		first = r.at
		if now.Sub(first) >= d {
			return true
		}
	}
	return false
}

const timeOfDay = "15:04:05.000000"

// timeline says when the echoes changed hands.
func (p *prober) timeline() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	rs := p.replies[p.from:]
	for i := 1; i < len(rs); i++ {
		if d := rs[i].at.Sub(rs[i-1].at); d > 3*probeEvery || rs[i].from != rs[i-1].from {
			fmt.Fprintf(&b, "echo from h%d at %s, then from h%d at %s (%s later)\n",
				rs[i-1].from, rs[i-1].at.Format(timeOfDay), rs[i].from, rs[i].at.Format(timeOfDay), d)
		}
	}
	return b.String()
}

// mark notes the event: gap looks at the echoes from steady before it on.
func (p *prober) mark() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.from = len(p.replies)
	for p.from > 0 && time.Since(p.replies[p.from-1].at) <= steady {
		p.from--
	}
}

// gap is the time between the master's last echo and the backup's first
// after mark: the outage the failover caused. Later pauses in the backup's
// echoes are the machine's load, not the failover, and are left out.
func (p *prober) gap() (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := p.replies[p.from:]
	if len(rs) < 2 || rs[0].from != 1 || rs[len(rs)-1].from != 2 {
		return 0, fmt.Errorf("echoes did not move from the master to the backup (%d echoes)", len(rs))
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].from == 2 {
			return rs[i].at.Sub(rs[i-1].at), nil
		}
	}
	return 0, errors.New("no echo from the backup")
}
