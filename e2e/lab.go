package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// Lab addressing: only ever inside the lab's namespaces.
var (
	// LabSubnet4 holds host i at .i (1-based) and VIPs from .100 up.
	LabSubnet4 = netip.MustParsePrefix("10.77.0.0/24")
	// LabSubnet6 holds host i at ::i and VIPs from ::100 up.
	LabSubnet6 = netip.MustParsePrefix("fd77::/64")
)

// HostIfname is the name of every host's interface on the lab bridge.
const HostIfname = "eth0"

// TB is the part of testing.TB the lab uses, so that a program (the demo)
// can drive a lab as well as a test: *testing.T satisfies it. Fatal and
// Fatalf must not return: a test stops its goroutine, a program unwinds to
// where it tears the lab down.
type TB interface {
	Helper()
	Error(args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Log(args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
	Name() string
}

// skipper is the part of testing.TB that skips; a TB without it fails where
// a test would skip.
type skipper interface {
	Skipf(format string, args ...any)
}

// skipOrFail skips t, or fails it when VRRPLB_E2E=1 or t cannot skip.
func skipOrFail(t TB, format string, args ...any) {
	t.Helper()
	if s, ok := t.(skipper); ok && os.Getenv("VRRPLB_E2E") != "1" {
		s.Skipf(format, args...)
	}
	t.Fatalf(format, args...)
}

// requireRoot skips the test without root, or fails it when VRRPLB_E2E=1.
func requireRoot(t TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("VRRPLB_E2E") == "1" {
		t.Fatal("VRRPLB_E2E=1 but the e2e tests are not running as root: they create network namespaces")
	}
	skipOrFail(t, "needs root: creates network namespaces (set VRRPLB_E2E=1 to make this a failure)")
}

// requireCommand skips the test when a program is not installed, or fails it
// when VRRPLB_E2E=1 (CI installs every program the suite uses).
func requireCommand(t TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	skipOrFail(t, "%s not found: install the Debian package %s", name, debianPackage)
	return ""
}

// Lab is a bridge namespace and hosts, each in its own namespace with one
// veth (eth0) to the bridge. Everything is removed at test cleanup.
type Lab struct {
	t  TB
	ID string
	// BridgeNS is the namespace holding bridge br0 and the host ports.
	BridgeNS string
	Hosts    []*Host
	// LogDir holds one log file per process the lab started.
	LogDir string
}

// Host is one namespace of the lab.
type Host struct {
	lab *Lab
	// Name is h1, h2, …
	Name string
	// NS is the network namespace.
	NS string
	// Addr4 and Addr6 are the host's addresses on eth0.
	Addr4, Addr6 netip.Prefix
	// Port is the host's veth end in the bridge namespace.
	Port string
	// crashed is set by Lab.Crash.
	crashed bool
}

// sh runs a command and returns its combined output.
func sh(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// must runs a command and fails the test if it fails.
func must(t TB, args ...string) string {
	t.Helper()
	out, err := sh(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// NewLab creates a lab of n hosts. Names carry the pid and a random suffix.
// It first deletes what labs of killed runs left behind (lab_sweep.go).
func NewLab(t TB, n int) *Lab {
	t.Helper()
	requireRoot(t)
	if n < 1 || n > 50 {
		t.Fatalf("NewLab: %d hosts, want 1..50", n)
	}
	l := &Lab{
		t:      t,
		ID:     fmt.Sprintf("%d%04x", os.Getpid()%100000, rand.IntN(0x10000)),
		LogDir: t.TempDir(),
	}
	sweepStaleLabsOnce(t)
	lock, err := claimLab(l.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { releaseLab(lock) }) // after the namespaces are gone
	l.BridgeNS = "e2e" + l.ID + "br"
	l.addNetns(l.BridgeNS)
	must(t, "ip", "-n", l.BridgeNS, "link", "add", "br0", "type", "bridge")
	// No STP and no multicast snooping: frames flow at once.
	must(t, "ip", "-n", l.BridgeNS, "link", "set", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0")
	must(t, "ip", "-n", l.BridgeNS, "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		h := &Host{
			lab:   l,
			Name:  fmt.Sprintf("h%d", i),
			NS:    fmt.Sprintf("e2e%sh%d", l.ID, i),
			Addr4: netip.PrefixFrom(LabAddr4(i), LabSubnet4.Bits()),
			Addr6: netip.PrefixFrom(LabAddr6(i), LabSubnet6.Bits()),
			Port:  fmt.Sprintf("p%d", i),
		}
		l.addNetns(h.NS)
		h.addLink()
		l.Hosts = append(l.Hosts, h)
	}
	// Wait for the link-local addresses VRRPv3 over IPv6 sends from.
	for _, h := range l.Hosts {
		Eventually(t, 5*time.Second, func() (bool, string) {
			ll, err := h.LinkLocal()
			return err == nil && ll.IsValid(), fmt.Sprintf("%s has no usable link-local address (%v)", h.Name, err)
		})
	}
	return l
}

// addLink creates the host's eth0 and its bridge port, with its addresses.
func (h *Host) addLink() {
	t, l := h.lab.t, h.lab
	must(t, "ip", "link", "add", HostIfname, "netns", h.NS, "type", "veth", "peer", "name", h.Port, "netns", l.BridgeNS)
	must(t, "ip", "-n", l.BridgeNS, "link", "set", h.Port, "master", "br0")
	must(t, "ip", "-n", l.BridgeNS, "link", "set", h.Port, "up")
	// No sysctl(8): iproute2 and a shell are all the lab (and the demo) need.
	must(t, "ip", "netns", "exec", h.NS, "sh", "-c",
		"echo 0 >/proc/sys/net/ipv6/conf/"+HostIfname+"/accept_dad && echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad")
	must(t, "ip", "-n", h.NS, "addr", "add", h.Addr4.String(), "dev", HostIfname)
	must(t, "ip", "-n", h.NS, "addr", "add", h.Addr6.String(), "dev", HostIfname, "nodad")
	must(t, "ip", "-n", h.NS, "link", "set", "lo", "up")
	must(t, "ip", "-n", h.NS, "link", "set", HostIfname, "up")
}

// RecreateLink deletes the host's eth0 (and its bridge port) and creates it
// again with the same name and addresses but a new index and MAC, as a
// driver reload or a hot-plugged NIC does.
func (h *Host) RecreateLink() {
	h.lab.t.Helper()
	must(h.lab.t, "ip", "-n", h.NS, "link", "del", HostIfname)
	h.addLink()
}

// LabAddr4 is host i's IPv4 address (i from 1; VIPs use 100 and up).
func LabAddr4(i int) netip.Addr {
	a := LabSubnet4.Addr().As4()
	a[3] = byte(i)
	return netip.AddrFrom4(a)
}

// LabAddr6 is host i's IPv6 address.
func LabAddr6(i int) netip.Addr {
	a := LabSubnet6.Addr().As16()
	a[14], a[15] = byte(i>>8), byte(i)
	return netip.AddrFrom16(a)
}

// addNetns creates a namespace and deletes it at cleanup.
func (l *Lab) addNetns(name string) {
	l.t.Helper()
	must(l.t, "ip", "netns", "add", name)
	l.t.Cleanup(func() {
		if out, err := sh("ip", "netns", "del", name); err != nil {
			l.t.Errorf("remove namespace %s: %v %s", name, err, out)
		}
	})
}

// Host returns host i (1-based).
func (l *Lab) Host(i int) *Host { return l.Hosts[i-1] }

// Capture runs tcpdump on the bridge and returns the pcap file it writes,
// complete once stop is called.
func (l *Lab) Capture(filter ...string) (file string, stop func()) {
	l.t.Helper()
	requireCommand(l.t, "tcpdump", "tcpdump")
	file = filepath.Join(l.LogDir, fmt.Sprintf("capture-%d.pcap", rand.IntN(1e6)))
	args := append([]string{"tcpdump", "-i", "br0", "-U", "-n", "-w", file}, filter...)
	p := l.start(l.BridgeNS, "tcpdump", args...)
	// tcpdump says "listening on" once it captures.
	Eventually(l.t, 5*time.Second, func() (bool, string) {
		return strings.Contains(p.Output(), "listening on"), "tcpdump did not start: " + p.Output()
	})
	return file, func() { p.Signal(syscall.SIGINT); p.WaitExit(5 * time.Second) }
}

// Exec runs a command in the host's namespace and returns its combined output.
func (h *Host) Exec(args ...string) (string, error) {
	return sh(append([]string{"ip", "netns", "exec", h.NS}, args...)...)
}

// MustExec is Exec that fails the test on error.
func (h *Host) MustExec(args ...string) string {
	h.lab.t.Helper()
	out, err := h.Exec(args...)
	if err != nil {
		h.lab.t.Fatal(err)
	}
	return out
}

// Addrs lists the addresses on the host's eth0.
func (h *Host) Addrs() ([]netip.Prefix, error) {
	out, err := sh("ip", "-n", h.NS, "-j", "addr", "show", "dev", HostIfname)
	if err != nil {
		return nil, err
	}
	var links []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
			Tentative bool   `json:"tentative"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("ip -j addr on %s: %w", h.Name, err)
	}
	var ps []netip.Prefix
	for _, l := range links {
		for _, a := range l.AddrInfo {
			ip, err := netip.ParseAddr(a.Local)
			if err != nil || a.Tentative {
				continue
			}
			ps = append(ps, netip.PrefixFrom(ip, a.Prefixlen))
		}
	}
	return ps, nil
}

// HasAddr reports whether eth0 holds ip.
func (h *Host) HasAddr(ip netip.Addr) bool {
	ps, err := h.Addrs()
	if err != nil {
		h.lab.t.Logf("addresses of %s: %v", h.Name, err)
		return false
	}
	for _, p := range ps {
		if p.Addr() == ip {
			return true
		}
	}
	return false
}

// LinkLocal is the host's IPv6 link-local address on eth0.
func (h *Host) LinkLocal() (netip.Addr, error) {
	ps, err := h.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, p := range ps {
		if p.Addr().IsLinkLocalUnicast() && p.Addr().Is6() {
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s: no link-local address", h.Name)
}

// SetLink sets the host's link up or down at its bridge port, as a cable
// pulled on the switch side: the host's eth0 loses carrier and nothing
// passes either way.
func (h *Host) SetLink(up bool) {
	h.lab.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	must(h.lab.t, "ip", "-n", h.lab.BridgeNS, "link", "set", h.Port, state)
}

// Start runs a command inside the host's namespace in the background. Its
// output goes to a log file that is printed if the test fails; the process
// is killed at cleanup.
func (h *Host) Start(name string, args ...string) *Proc {
	h.lab.t.Helper()
	return h.lab.start(h.NS, h.Name+"-"+name, args...)
}

// Path is the path of the file name in the lab's directory.
func (l *Lab) Path(name string) string { return filepath.Join(l.LogDir, name) }

// WriteFile writes a file into the lab's directory and returns its path.
func (l *Lab) WriteFile(name, content string) string {
	l.t.Helper()
	path := l.Path(name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return path
}

// Proc is a process the lab started.
type Proc struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	log     *os.File
	done    chan struct{}
	err     error
}

func (l *Lab) start(ns, name string, args ...string) *Proc {
	l.t.Helper()
	logPath := filepath.Join(l.LogDir, name+".log")
	for i := 2; ; i++ { // a name started twice gets a second log
		if _, err := os.Stat(logPath); os.IsNotExist(err) {
			break
		}
		logPath = filepath.Join(l.LogDir, fmt.Sprintf("%s.%d.log", name, i))
	}
	f, err := os.Create(logPath)
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group: cleanup kills whatever the command started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		l.t.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, log: f, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			l.t.Errorf("%s (pid %d) did not die within 10s of SIGKILL", name, cmd.Process.Pid)
		}
		f.Close()
		b, _ := os.ReadFile(logPath)
		if bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			l.t.Errorf("%s reported a data race", name)
		}
		if l.t.Failed() {
			l.t.Logf("---- %s output ----\n%s---- end of %s ----", name, b, name)
		}
	})
	return p
}

// Pid is the process id (the command itself: ip netns exec execs it).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// SignalGroup sends sig to the process group: the daemon and its VRRP
// engine process.
func (p *Proc) SignalGroup(sig syscall.Signal) { _ = syscall.Kill(-p.cmd.Process.Pid, sig) }

// Children are the process ids of p's child processes (vrrplb's VRRP
// engine).
func (p *Proc) Children() []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.Pid()))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", p.Pid(), task.Name()))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// Kill sends SIGKILL to the process group.
func (p *Proc) Kill() { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitExit waits at most d for the process to end and returns its exit error
// (nil for exit status 0); it returns an error if it is still running.
func (p *Proc) WaitExit(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s still running after %s", p.Name, d)
	}
}

// Output is what the process wrote so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Eventually polls cond every 20ms until it holds or timeout passes, then
// fails the test with cond's message.
func Eventually(t TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Do runs fn on an OS thread switched into the host's namespace: sockets fn
// creates live there and can be used from any goroutine afterwards.
func (h *Host) Do(fn func() error) error {
	target, err := netns.GetFromName(h.NS)
	if err != nil {
		return fmt.Errorf("netns %s: %w", h.NS, err)
	}
	defer target.Close()
	res := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			res <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			res <- fmt.Errorf("enter %s: %w", h.NS, err)
			return
		}
		res <- fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		// Otherwise the thread stays locked and ends with the goroutine.
	}()
	return <-res
}

// DialContext dials from inside the host's namespace.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var (
			d   net.Dialer
			err error
		)
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens inside the host's namespace; the listener is closed at cleanup.
func (h *Host) Listen(network, addr string) net.Listener {
	h.lab.t.Helper()
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		h.lab.t.Fatalf("listen on %s in %s: %v", addr, h.Name, err)
	}
	h.lab.t.Cleanup(func() { ln.Close() })
	return ln
}

// Reach reports whether h can open a TCP connection to a listener of to's at
// addr (an address of to, or a VIP to holds) within timeout.
func (h *Host) Reach(to *Host, addr netip.Addr, timeout time.Duration) error {
	ln := to.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := h.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return fmt.Errorf("%s cannot reach %s on %s: %w", h.Name, to.Name, ln.Addr(), err)
	}
	return c.Close()
}

var clients sync.Map // host namespace -> *http.Client

// HTTPGet fetches url from inside the host's namespace (the admin server
// listens there) and returns the status code and body.
func (h *Host) HTTPGet(url string) (int, string, error) {
	c, _ := clients.LoadOrStore(h.NS, &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true},
	})
	resp, err := c.(*http.Client).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), err
}

// MAC is the hardware address of the host's eth0.
func (h *Host) MAC() string {
	h.lab.t.Helper()
	out := must(h.lab.t, "ip", "-n", h.NS, "-j", "link", "show", "dev", HostIfname)
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		h.lab.t.Fatalf("ip -j link on %s: %v %s", h.Name, err, out)
	}
	return links[0].Address
}

// Neighbour is the link-layer address h's neighbour cache holds for ip on
// eth0, or "" without an entry.
func (h *Host) Neighbour(ip netip.Addr) string {
	h.lab.t.Helper()
	out := must(h.lab.t, "ip", "-n", h.NS, "-j", "neigh", "show", ip.String(), "dev", HostIfname)
	var entries []struct {
		LLAddr string `json:"lladdr"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		h.lab.t.Fatalf("ip -j neigh on %s: %v %s", h.Name, err, out)
	}
	if len(entries) == 0 {
		return ""
	}
	return entries[0].LLAddr
}
