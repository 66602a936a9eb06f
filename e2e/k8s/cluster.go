package k8s

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/e2e"
)

// The lab's hosts, on the e2e lab's bridge: the two LB hosts first (h1
// priority 100, h2 90), then the three apiservers, etcd and the client.
const (
	lb1 = iota + 1
	lb2
	api1
	api2
	api3
	etcdHost
	clientHost
	labHosts = clientHost
)

const (
	apiPort   = 6443
	vipPort   = 8443
	etcdPort  = 2379
	advert    = 100 * time.Millisecond
	lbPrio1   = 100
	lbPrio2   = 90
	namespace = "default"
)

// Options change how a Cluster is made.
type Options struct {
	// NoAnonymous starts the apiservers with --anonymous-auth=false.
	NoAnonymous bool
	// HealthCert gives LB host h1's ([0]) or h2's ([1]) checks a client
	// certificate (cert_file and key_file).
	HealthCert [2]bool
	// LBExtra is added to the [[frontend]] table of both LB hosts.
	LBExtra string
	// InstanceExtra is added to the [[instance]] table of both LB hosts.
	InstanceExtra string
	// Takeover gives both LB hosts one takeover_key_file: the master
	// streams its clients to the backup, which prompts them into a reset
	// when it takes the VIP over from a silent master. Off elsewhere: on
	// this loaded machine a backup now and then misses the master's
	// adverts for a down interval, takes over for a few milliseconds and
	// prompts every client of the live master into a reset (36 reset, 3
	// creates failed, in one run of TestRollingRestartUnderLoad).
	Takeover bool
	// HealthFall is the checks' fall on both LB hosts; 0 is 2.
	HealthFall int
}

// Cluster is one etcd, three kube-apiservers, two vrrplb LB hosts holding
// the VIP in front of them, and a client host, each in its own namespace
// of an e2e lab. Everything stops and goes at the test's cleanup.
type Cluster struct {
	t    *testing.T
	Lab  *e2e.Lab
	opts Options
	bins string
	pki  *pki
	// Kubeconfig reaches the cluster through the VIP as a member of
	// system:masters.
	Kubeconfig string
	admin      keyPair
	health     keyPair
	saPrivate  string
	saPublic   string
	serving    []keyPair
	etcdData   string
	etcd       *e2e.Proc
	APIs       [3]*e2e.Proc
	LBs        [2]*e2e.Proc
	// sockets are the LB hosts' admin sockets (maintenance).
	sockets [2]string
	// takeoverKey is the LB hosts' takeover_key_file (Options.Takeover).
	takeoverKey string
}

// VIP is the address clients reach the apiservers at.
func VIP() netip.Addr { return e2e.VIP4.Addr() }

// Host is lab host i (lb1, api1, clientHost…).
func (c *Cluster) Host(i int) *e2e.Host { return c.Lab.Host(i) }

// APIAddr is apiserver n's (0..2) address.
func APIAddr(n int) netip.AddrPort { return netip.AddrPortFrom(e2e.LabAddr4(api1+n), apiPort) }

// NewCluster builds the lab and starts etcd, the three apiservers and both
// LB hosts, and waits until the VIP answers /readyz through h1.
func NewCluster(t *testing.T, opts Options) *Cluster {
	t.Helper()
	requireSuite(t)
	c := &Cluster{t: t, opts: opts, bins: binaries(t)}
	// A unix socket's path has at most 107 bytes: a short directory,
	// removed after the lab and its processes are gone.
	sockDir, err := os.MkdirTemp("", "vrrplb-k8s-sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	for i := range c.sockets {
		c.sockets[i] = filepath.Join(sockDir, fmt.Sprintf("h%d.sock", i+1))
	}
	c.Lab = e2e.NewLab(t, labHosts)
	if c.pki, err = newPKI(c.Lab.LogDir); err != nil {
		t.Fatal(err)
	}
	if c.admin, err = c.pki.issue("admin", "vrrplb-e2e-admin", []string{"system:masters"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// Any authenticated user may read /readyz (system:public-info-viewer).
	if c.health, err = c.pki.issue("health", "vrrplb-health-check", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if c.saPrivate, c.saPublic, err = c.pki.serviceAccountKeys(); err != nil {
		t.Fatal(err)
	}
	for n := range 3 {
		kp, err := c.pki.issue(fmt.Sprintf("apiserver-%d", n+1), "kube-apiserver", nil,
			[]net.IP{net.IP(APIAddr(n).Addr().AsSlice()), net.IP(VIP().AsSlice()), net.ParseIP("10.96.0.1"), net.ParseIP("127.0.0.1")},
			[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		c.serving = append(c.serving, kp)
	}
	c.Kubeconfig = c.WriteKubeconfig("kubeconfig", netip.AddrPortFrom(VIP(), vipPort))
	if opts.Takeover {
		c.takeoverKey = c.Lab.WriteFile("takeover.key", base64.StdEncoding.EncodeToString(randomBytes(t, 32))+"\n")
		if err := os.Chmod(c.takeoverKey, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	c.etcdData = filepath.Join(c.Lab.LogDir, "etcd-data")
	c.StartEtcd()
	for n := range 3 {
		c.StartAPIServer(n)
	}
	for n := range 3 {
		c.WaitAPIReady(n, 3*time.Minute)
	}
	c.StartLB(lb1)
	c.StartLB(lb2)
	c.Lab.WaitMaster(t, c.Host(lb1), VIP(), 30*time.Second)
	for i, lb := range []int{lb1, lb2} {
		if !opts.NoAnonymous || opts.HealthCert[i] {
			c.WaitBackendsUp(lb, 3, 30*time.Second)
		}
	}
	return c
}

// randomBytes is n bytes from crypto/rand.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// requireSuite skips unless the real-Kubernetes suite was asked for:
// `make test-k8s` sets VRRPLB_K8S=1 (and `make test` does not run it).
func requireSuite(t *testing.T) {
	t.Helper()
	if os.Getenv("VRRPLB_K8S") != "1" {
		t.Skip("the real-Kubernetes suite runs with `make test-k8s` (VRRPLB_K8S=1)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("VRRPLB_K8S=1 but not root: the suite creates network namespaces")
	}
}

// binaries is the directory of etcd, kube-apiserver and kubectl, built (or
// found in the cache) by build.sh.
func binaries(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("VRRPLB_K8S_BIN"); dir != "" {
		return dir
	}
	out, err := exec.Command("./build.sh").Output()
	if err != nil {
		t.Fatalf("build.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// WriteKubeconfig writes a kubeconfig that reaches the cluster at server
// as a member of system:masters, and returns its path.
func (c *Cluster) WriteKubeconfig(name string, server netip.AddrPort) string {
	ca, err := os.ReadFile(c.pki.CAFile)
	if err != nil {
		c.t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: https://%s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: lab
  context:
    cluster: lab
    user: admin
current-context: lab
`, server, b64(ca), b64(c.admin.CertPEM), b64(c.admin.KeyPEM))
	return c.Lab.WriteFile(name, cfg)
}

// StartEtcd starts etcd on its host, keeping its data across restarts.
// It does not fsync: on this machine, shared with other builds, an fsync
// took up to 2 s, and every apiserver's /readyz and every write waited
// for it (the lab's kernel outlives etcd, so its data does too).
func (c *Cluster) StartEtcd() {
	c.t.Helper()
	addr := e2e.LabAddr4(etcdHost)
	url := fmt.Sprintf("http://%s:%d", addr, etcdPort)
	c.etcd = c.Host(etcdHost).Start("etcd", filepath.Join(c.bins, "etcd"),
		"--name", "e1", "--data-dir", c.etcdData,
		"--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "e1=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level", "warn")
}

// StopEtcd stops etcd (SIGTERM) and waits for it to exit.
func (c *Cluster) StopEtcd() {
	c.t.Helper()
	c.etcd.Signal(syscall.SIGTERM)
	if err := c.etcd.WaitExit(30 * time.Second); err != nil {
		c.t.Logf("etcd exit: %v", err)
	}
}

// StartAPIServer starts apiserver n (0..2) on its host.
func (c *Cluster) StartAPIServer(n int) {
	c.t.Helper()
	addr := APIAddr(n).Addr()
	certDir := filepath.Join(c.Lab.LogDir, fmt.Sprintf("apiserver-%d-certs", n+1))
	args := []string{
		"--etcd-servers", fmt.Sprintf("http://%s:%d", e2e.LabAddr4(etcdHost), etcdPort),
		"--bind-address", addr.String(), "--advertise-address", addr.String(),
		"--secure-port", fmt.Sprint(apiPort), "--cert-dir", certDir,
		"--tls-cert-file", c.serving[n].CertFile, "--tls-private-key-file", c.serving[n].KeyFile,
		"--client-ca-file", c.pki.CAFile,
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", c.saPublic,
		"--service-account-signing-key-file", c.saPrivate,
		// A stopping apiserver fails /readyz at once and serves on for
		// this long, so the LB hosts can take it out first.
		"--shutdown-delay-duration", "5s",
		fmt.Sprintf("--anonymous-auth=%v", !c.opts.NoAnonymous),
		"--profiling=false", "--v", "1",
	}
	c.APIs[n] = c.Host(api1+n).Start(fmt.Sprintf("apiserver-%d", n+1), append([]string{filepath.Join(c.bins, "kube-apiserver")}, args...)...)
}

// StopAPIServer stops apiserver n gracefully (SIGTERM): /readyz fails for
// the shutdown delay, then it stops serving and exits.
func (c *Cluster) StopAPIServer(n int) {
	c.APIs[n].Signal(syscall.SIGTERM)
}

// WaitAPIExit waits for apiserver n to exit and returns its exit error.
func (c *Cluster) WaitAPIExit(n int) error {
	return c.APIs[n].WaitExit(90 * time.Second)
}

// APIClient is an HTTPS client with the admin certificate from host h.
func (c *Cluster) APIClient(h *e2e.Host) *http.Client {
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(c.pki.CAFile)
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.X509KeyPair(c.admin.CertPEM, c.admin.KeyPEM)
	if err != nil {
		c.t.Fatal(err)
	}
	return &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{
			DialContext:       h.DialContext,
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
		},
	}
}

// Readyz is the status of GET /readyz on addr, asked from the client host
// with the admin certificate (0 and the error if no answer).
func (c *Cluster) Readyz(addr netip.AddrPort) (int, error) {
	resp, err := c.APIClient(c.Host(clientHost)).Get("https://" + addr.String() + "/readyz")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// WaitAPIReady waits until apiserver n answers /readyz with 200.
func (c *Cluster) WaitAPIReady(n int, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	e2e.Eventually(c.t, timeout, func() (bool, string) {
		if c.APIs[n].Exited() {
			c.t.Fatalf("apiserver-%d exited: %v", n+1, c.APIs[n].WaitExit(time.Second))
		}
		code, err := c.Readyz(APIAddr(n))
		return code == 200, fmt.Sprintf("apiserver-%d /readyz: %d %v", n+1, code, err)
	})
	return time.Since(start)
}

// StartLB starts vrrplb on LB host lb (lb1 or lb2) with its LBConfig.
func (c *Cluster) StartLB(lb int) {
	c.t.Helper()
	c.LBs[lb-lb1] = c.Host(lb).StartVRRPLB(c.LBConfig(lb))
}

// AdminSocket is LB host lb's admin socket, for `vrrplb maintenance`.
func (c *Cluster) AdminSocket(lb int) string { return c.sockets[lb-lb1] }

// LBConfig is LB host lb's vrrplb.toml: the VIP (priority lbPrio1 on h1,
// lbPrio2 on h2), with Options.Takeover the lab's takeover key, tracking the frontend with
// weight 0, the three apiservers behind :8443 by leastconn, and its admin
// socket.
func (c *Cluster) LBConfig(lb int) string {
	prio, healthCert := lbPrio1, c.opts.HealthCert[0]
	if lb == lb2 {
		prio, healthCert = lbPrio2, c.opts.HealthCert[1]
	}
	var backends []string
	for n := range 3 {
		backends = append(backends, fmt.Sprintf("%q", APIAddr(n).String()))
	}
	fall := c.opts.HealthFall
	if fall == 0 {
		fall = 2
	}
	cert := ""
	if healthCert {
		cert = fmt.Sprintf("  cert_file = %q\n  key_file = %q\n", c.health.CertFile, c.health.KeyFile)
	}
	takeover := ""
	if c.takeoverKey != "" {
		takeover = fmt.Sprintf("takeover_key_file = %q\n", c.takeoverKey)
	}
	vrrp := e2e.Config(e2e.VRRPConf{
		Priority: prio, Interval: advert, VIPs: []netip.Prefix{e2e.VIP4},
		Extra: takeover +
			"\n  [[instance.track_frontend]]\n  name = \"apiserver\"\n  weight = 0\n" + c.opts.InstanceExtra,
	})
	const noSocket = "\nsocket = \"\"\n"
	if !strings.Contains(vrrp, noSocket) {
		c.t.Fatalf("the lab's config has no %q line to replace:\n%s", noSocket, vrrp)
	}
	vrrp = strings.Replace(vrrp, noSocket, fmt.Sprintf("\nsocket = %q\n", c.AdminSocket(lb)), 1)
	return vrrp + fmt.Sprintf(`
[[frontend]]
name = "apiserver"
listen = ":%d"
balance = "leastconn"
backends = [%s]
connect_timeout = "1s"
drain_timeout = "5s"
%s
  [frontend.health]
  type = "https"
  path = "/readyz"
  interval = "500ms"
  timeout = "1s"
  rise = 2
  fall = %d
  ca_file = %q
%s`, vipPort, strings.Join(backends, ", "), c.opts.LBExtra, fall, c.pki.CAFile, cert)
}

// WaitBackendsUp waits until LB host lb counts want healthy backends.
func (c *Cluster) WaitBackendsUp(lb, want int, timeout time.Duration) {
	c.t.Helper()
	e2e.Eventually(c.t, timeout, func() (bool, string) {
		n, st := c.BackendsUp(lb)
		return n == want, fmt.Sprintf("h%d has %d healthy backends, want %d: %+v", lb, n, want, st)
	})
}

// BackendsUp counts the healthy backends LB host lb reports.
func (c *Cluster) BackendsUp(lb int) (int, []e2e.BackendStatus) {
	st, err := c.Host(lb).Status()
	if err != nil || len(st.Frontends) == 0 {
		return 0, nil
	}
	n := 0
	for _, b := range st.Frontends[0].Backends {
		if b.Healthy {
			n++
		}
	}
	return n, st.Frontends[0].Backends
}

// HeldIPs is what LB host lb's /status says it holds of its VIPs.
func (c *Cluster) HeldIPs(lb int) []string {
	c.t.Helper()
	_, body, err := c.Host(lb).HTTPGet("http://" + e2e.AdminAddr + "/status")
	if err != nil {
		c.t.Fatalf("/status of h%d: %v", lb, err)
	}
	var doc struct {
		Instances []struct {
			HeldIPs []string `json:"held_ips"`
		} `json:"instances"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Instances) != 1 {
		c.t.Fatalf("/status of h%d: %v\n%s", lb, err, body)
	}
	return doc.Instances[0].HeldIPs
}

// Connections is LB host lb's active connections per apiserver address.
func (c *Cluster) Connections(lb int) map[string]int {
	st, err := c.Host(lb).Status()
	m := map[string]int{}
	if err != nil || len(st.Frontends) == 0 {
		return m
	}
	for _, b := range st.Frontends[0].Backends {
		m[b.Address] = b.ActiveConnections
	}
	return m
}

// Kubectl runs kubectl on the client host with the VIP's kubeconfig.
func (c *Cluster) Kubectl(args ...string) (string, error) {
	return c.Host(clientHost).Exec(append([]string{filepath.Join(c.bins, "kubectl"), "--kubeconfig", c.Kubeconfig,
		"--cache-dir", filepath.Join(c.Lab.LogDir, "kubectl-cache"), "--request-timeout", "10s"}, args...)...)
}

// Client starts kclient on the client host with the VIP's kubeconfig.
func (c *Cluster) Client(name string, args ...string) *Events {
	c.t.Helper()
	return c.ClientVia(c.Kubeconfig, name, args...)
}

// ClientVia starts kclient on the client host with the given kubeconfig.
func (c *Cluster) ClientVia(kubeconfig, name string, args ...string) *Events {
	c.t.Helper()
	all := append([]string{args[0], "--kubeconfig", kubeconfig}, args[1:]...)
	return &Events{p: c.Host(clientHost).Start(name, append([]string{kclient(c.t)}, all...)...)}
}

// Events reads the JSON lines a kclient writes.
type Events struct {
	p   *e2e.Proc
	mu  sync.Mutex
	off int64   // of the first line not read yet
	evs []Event // the events of the lines read
}

// Event is one line of kclient's output.
type Event struct {
	T     int64  `json:"t"`
	Event string `json:"event"`
	Name  string `json:"name"`
	RV    string `json:"rv"`
	ID    int    `json:"id"`
	Op    string `json:"op"`
	Err   string `json:"err"`
	OK    int    `json:"ok"`
	Fail  int    `json:"failed"`
}

// Time is when the client wrote the event.
func (e Event) Time() time.Time { return time.Unix(0, e.T) }

// All is every event so far (lines that are not events are skipped). It
// reads only the lines written since the last call.
func (e *Events) All() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	f, err := os.Open(e.p.LogPath)
	if err != nil {
		return e.evs
	}
	defer f.Close()
	if _, err := f.Seek(e.off, io.SeekStart); err != nil {
		return e.evs
	}
	b, _ := io.ReadAll(f)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break // a line still being written
		}
		var ev Event
		if json.Unmarshal(b[:i], &ev) == nil && ev.Event != "" {
			e.evs = append(e.evs, ev)
		}
		e.off += int64(i + 1)
		b = b[i+1:]
	}
	return e.evs[:len(e.evs):len(e.evs)]
}

// Wait waits until an event satisfies match and returns it.
func (e *Events) Wait(t *testing.T, timeout time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	var found Event
	e2e.Eventually(t, timeout, func() (bool, string) {
		exited := e.p.Exited()
		for _, ev := range e.All() {
			if match(ev) {
				found = ev
				return true, ""
			}
		}
		if exited {
			t.Fatalf("%s exited (%v) with no %s\n%s", e.p.Name, e.p.WaitExit(time.Second), what, e.p.Output())
		}
		return false, fmt.Sprintf("%s: no %s", e.p.Name, what)
	})
	return found
}

// Stop ends the client with SIGTERM and waits for it.
func (e *Events) Stop(t *testing.T) {
	t.Helper()
	e.p.Signal(syscall.SIGTERM)
	if err := e.p.WaitExit(30 * time.Second); err != nil {
		t.Errorf("%s: %v\n%s", e.p.Name, err, e.p.Output())
	}
}

// kclientPath is the client program, built once per test binary.
var kclientPath string

func kclient(t *testing.T) string {
	t.Helper()
	if kclientPath == "" {
		t.Fatal("kclient was not built (TestMain)")
	}
	return kclientPath
}

// buildKclient builds kclient from its own module (kube/) into dir.
func buildKclient(ctx context.Context, dir string) (string, error) {
	path := filepath.Join(dir, "kclient")
	// The flags build.sh uses, so the packages kclient shares with
	// kube-apiserver come from the build cache.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", path, "./kclient")
	cmd.Dir = "kube"
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build kclient: %w\n%s", err, out)
	}
	return path, nil
}
