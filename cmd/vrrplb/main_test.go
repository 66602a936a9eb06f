package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/freeaddr"
	"github.com/vrrplb/vrrplb/internal/poll"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = runMain(args, &o, &e)
	return code, o.String(), e.String()
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckAcceptsEveryShippedExample(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/examples/*.toml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, errOut := run(t, "check", "--config", f)
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, errOut)
			}
			// What check prints is the effective config: it must parse again.
			if _, err := config.Parse("printed.toml", []byte(out)); err != nil {
				t.Errorf("printed config does not parse: %v\n%s", err, out)
			}
			if !strings.Contains(out, `drain_timeout = "30s"`) {
				t.Errorf("printed config lacks the filled-in defaults:\n%s", out)
			}
		})
	}
}

func TestCheckLocatesErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, text string
		want       string
	}{
		{"a typo'd key is named with its line", "[[instance]]\nname = \"vip\"\ninterface = \"eth0\"\nvirtual_router_id = 51\nvirtual_ips = [\"192.0.2.1\"]\npriorty = 100\n",
			`vrrplb.toml:6: instance "vip": priorty: unknown key`},
		{"a TOML syntax error is named with its line", "[admin]\nlisten = \"127.0.0.1:9100\"\n[[frontend]\nname = \"x\"\n",
			`vrrplb.toml:3: syntax error:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, dir, "vrrplb.toml", tt.text)
			code, out, errOut := run(t, "check", "--config", p)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if out != "" {
				t.Errorf("stdout not empty on error:\n%s", out)
			}
			if want := filepath.Join(dir, tt.want); !strings.HasPrefix(errOut, want) {
				t.Errorf("stderr:\n got %s\nwant %s…", errOut, want)
			}
		})
	}
}

func TestCheckOnAMissingFileSaysSo(t *testing.T) {
	code, _, errOut := run(t, "check", "--config", filepath.Join(t.TempDir(), "nope.toml"))
	if code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("exit %d, stderr %q; want 1 and the missing file", code, errOut)
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string // regexp
		stderr   string // regexp
		noOutput bool
	}{
		{name: "version names the build", args: []string{"version"}, stdout: `^vrrplb \S+ \(commit \S+, go1\.\d+`},
		{name: "help lists every command", args: []string{"help"}, stdout: `(?s)run .*check .*status .*convert .*version`},
		{name: "--help is help", args: []string{"--help"}, stdout: `vrrplb run`},
		{name: "help for a command shows its flags", args: []string{"help", "check"}, stderr: `-config FILE`},
		{name: "no command is a usage error", args: nil, code: 2, stderr: `Usage:`},
		{name: "an unknown command is a usage error", args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{name: "an unknown flag is a usage error", args: []string{"check", "--confg", "x"}, code: 2, stderr: `flag provided but not defined: -confg`},
		{name: "a stray argument is a usage error", args: []string{"check", "extra"}, code: 2, stderr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if tt.stdout != "" && !regexp.MustCompile(tt.stdout).MatchString(out) {
				t.Errorf("stdout %q does not match %q", out, tt.stdout)
			}
			if tt.stderr != "" && !regexp.MustCompile(tt.stderr).MatchString(errOut) {
				t.Errorf("stderr %q does not match %q", errOut, tt.stderr)
			}
		})
	}
}

var sampleStatus = statusDoc{
	Instances: []instanceStatus{{Name: "apiserver-vip", State: "master", Priority: 100, EffectivePriority: 100,
		MasterIP: "192.0.2.11", VirtualIPs: []string{"192.0.2.150/24"}},
		{Name: "other-vip", State: "backup", Priority: 100, EffectivePriority: 1,
			MasterIP: "192.0.2.12", VirtualIPs: []string{"192.0.2.151/24"}, Maintenance: true}},
	Frontends: []frontendStatus{{Name: "apiserver", Listen: ":8443", Backends: []backendStatus{
		{Address: "192.0.2.21:6443", Healthy: true, ActiveConnections: 12},
		{Address: "192.0.2.22:6443", Healthy: false, ActiveConnections: 0},
		{Address: "192.0.2.23:6443", Healthy: true, Draining: true, ActiveConnections: 3},
	}}, {Name: "konnectivity", Listen: ":8132", FailOpen: true, Backends: []backendStatus{
		{Address: "192.0.2.21:8132", Healthy: false, ActiveConnections: 3},
	}}},
}

// An instance in FAULT keeps its configured VIPs but holds none: the table
// says which the host holds, in a column of its own.
func TestStatusTableSaysWhichVIPsTheHostHolds(t *testing.T) {
	var b strings.Builder
	doc := statusDoc{Instances: []instanceStatus{
		{Name: "held", State: "master", Priority: 100, EffectivePriority: 100, MasterIP: "192.0.2.11",
			VirtualIPs: []string{"192.0.2.150/24"}, HeldIPs: []string{"192.0.2.150/24"}},
		{Name: "faulted", State: "fault", Priority: 100, EffectivePriority: 100,
			VirtualIPs: []string{"192.0.2.151/24"}, HeldIPs: []string{}},
	}}
	if err := printStatus(&b, doc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`INSTANCE\s+STATE\s+PRIORITY\s+MASTER\s+VIRTUAL IPS\s+HELD\n`,
		`held\s+MASTER\s+100\s+192\.0\.2\.11\s+192\.0\.2\.150/24\s+192\.0\.2\.150/24\n`,
		`faulted\s+FAULT\s+100\s+-\s+192\.0\.2\.151/24\s+-\n`,
	} {
		if !regexp.MustCompile(want).MatchString(b.String()) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// When the engine did not answer in time, the table says its instances are
// its last answer.
func TestStatusTableSaysWhenTheInstancesAreStale(t *testing.T) {
	var b strings.Builder
	doc := statusDoc{InstancesStale: true, InstancesAsOf: "2026-12-01T21:00:00Z", Instances: []instanceStatus{
		{Name: "vip", State: "master", Priority: 100, EffectivePriority: 100, VirtualIPs: []string{"192.0.2.150/24"}},
	}}
	if err := printStatus(&b, doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "did not answer in time (busy or restarting): instances as of 2026-12-01T21:00:00Z") {
		t.Errorf("table does not say the instances are stale:\n%s", b.String())
	}
}

func TestStatusPrintsATableAndTheRawDocument(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(sampleStatus)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	code, out, errOut := run(t, "status", "--admin", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		`apiserver-vip\s+MASTER\s+100\s+192\.0\.2\.11\s+192\.0\.2\.150/24`,
		`apiserver\s+:8443\s+192\.0\.2\.21:6443\s+up\s+12`,
		`\n\s+192\.0\.2\.22:6443\s+down\s+0`,
		`other-vip\s+BACKUP \(maintenance\)\s+1 \(configured 100\)\s+192\.0\.2\.12`,
		`\n\s+192\.0\.2\.23:6443\s+up, draining\s+3`,
		`konnectivity\s+:8132\s+192\.0\.2\.21:8132\s+down\s+3`,
		`\nfrontend konnectivity: no healthy backend, failing open`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "frontend apiserver: no healthy backend") {
		t.Errorf("table says a frontend with a healthy backend fails open:\n%s", out)
	}

	code, out, _ = run(t, "status", "--admin", addr, "--json")
	if code != 0 {
		t.Fatalf("--json exit %d", code)
	}
	var got statusDoc
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json printed no JSON: %v\n%s", err, out)
	}
	if diff := cmp.Diff(sampleStatus, got); diff != "" {
		t.Errorf("--json document (-want +got):\n%s", diff)
	}
}

func TestStatusExplainsAnUnreachableDaemon(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	code, _, errOut := run(t, "status", "--admin", addr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"cannot reach the vrrplb admin server at " + addr, "connection refused", "--admin"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	return freeaddr.Loopback(t).String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually polls cond until it holds, failing the test after 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

func metricLine(body, name string) string {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
			return l
		}
	}
	return ""
}

func TestDaemonServesAdminAndReloadsOnlyGoodConfigs(t *testing.T) {
	dir := t.TempDir()
	admin := freeAddr(t)
	good := "[admin]\nlisten = \"" + admin + "\"\nsocket = \"\"\n"
	path := writeFile(t, dir, "vrrplb.toml", good)
	var logs syncBuffer
	d, sig := newTestDaemon(t, path, &logs)
	done := runDaemon(d)

	base := "http://" + admin
	eventually(t, "/healthz", func() bool { code, _ := get(t, base+"/healthz"); return code == 200 })

	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		`vrrplb_build_info{goversion="go`,
		"vrrplb_config_last_reload_successful 1",
		"vrrplb_config_last_reload_success_timestamp_seconds ",
		"go_goroutines ",
		"process_open_fds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	_, body = get(t, base+"/status")
	if diff := cmp.Diff(`{"instances":[],"frontends":[]}`, compactJSON(t, body)); diff != "" {
		t.Errorf("/status (-want +got):\n%s", diff)
	}

	// A bad file is rejected: the metric says so and the daemon keeps serving.
	writeFile(t, dir, "vrrplb.toml", good+"[log]\nlevl = \"debug\"\n")
	sig <- syscall.SIGHUP
	waitReloadSuccessful(t, base, "0")
	if !strings.Contains(logs.String(), "levl: unknown key") {
		t.Errorf("the log does not name the rejected key:\n%s", logs.String())
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz after a bad reload: %d", code)
	}

	// A good file is taken.
	writeFile(t, dir, "vrrplb.toml", good+"[log]\nlevel = \"debug\"\n")
	sig <- syscall.SIGHUP
	waitReloadSuccessful(t, base, "1")
	if got := d.config().Log.Level.String(); got != "DEBUG" {
		t.Errorf("log level after reload = %s, want DEBUG", got)
	}

	stopDaemon(t, sig, done)
	if code, _ := get(t, base+"/healthz"); code != 0 {
		t.Errorf("admin server still answers after stop")
	}
}

func TestDaemonRefusesToStartWhenTheAdminPortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	path := writeFile(t, t.TempDir(), "vrrplb.toml", "[admin]\nlisten = \""+ln.Addr().String()+"\"\n")
	code, _, errOut := run(t, "run", "--config", path)
	if code != 1 || !strings.Contains(errOut, "admin server") || !strings.Contains(errOut, "address already in use") {
		t.Errorf("exit %d, stderr %q; want 1 and the taken address", code, errOut)
	}
}

// buildBinary builds this command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vrrplb")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startBinary builds vrrplb and runs it on a config file of cfg, with its
// log in logs; exited gets the process's exit.
func startBinary(t *testing.T, cfg string) (cmd *exec.Cmd, logs *syncBuffer, exited <-chan error) {
	t.Helper()
	bin := buildBinary(t)
	path := writeFile(t, t.TempDir(), "vrrplb.toml", cfg)
	logs = &syncBuffer{}
	cmd = exec.Command(bin, "run", "--config", path)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, logs, done
}

func TestBinaryExitsZeroOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	admin := freeAddr(t)
	cmd, logs, exited := startBinary(t, "[admin]\nlisten = \""+admin+"\"\n[log]\nformat = \"json\"\n")
	eventually(t, "/healthz", func() bool { code, _ := get(t, "http://"+admin+"/healthz"); return code == 200 })

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reload log line", func() bool { return strings.Contains(logs.String(), `"msg":"reloaded"`) })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := poll.Receive(t, exited, 10*time.Second, "the exit after SIGTERM"); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no stop line in the JSON log:\n%s", logs.String())
	}
}

func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return b.String()
}

// The first SIGTERM drains live connections for drain_timeout; a second one
// ends the process at once, as an operator who typed Ctrl-C twice expects.
func TestBinaryDrainsOnTheFirstSignalAndExitsAtOnceOnTheSecond(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	admin, listen := freeAddr(t), freeAddr(t)
	backend := echoBackend(t)
	cfg := strings.Replace(frontendConfig(admin, listen, backend), `drain_timeout = "200ms"`, `drain_timeout = "60s"`, 1)
	cmd, logs, exited := startBinary(t, cfg)

	// A live connection through the proxy, echoing.
	var conn net.Conn
	eventually(t, "a proxied connection", func() bool {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			return false
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			c.Close()
			return false
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "ping\n" {
			c.Close()
			return false
		}
		conn = c
		return true
	})
	defer conn.Close()

	// First signal: the daemon drains, the connection still works.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stop log line", func() bool { return strings.Contains(logs.String(), "a second signal exits at once") })
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("still\n")); err != nil {
		t.Fatalf("write while draining: %v", err)
	}
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "still\n" {
		t.Fatalf("the live connection broke at the first signal: %q %v", line, err)
	}
	select {
	case err := <-exited:
		t.Fatalf("exited at the first signal while a connection was live (%v):\n%s", err, logs.String())
	case <-time.After(300 * time.Millisecond):
	}

	// Second signal: gone at once, not after the 60s drain.
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		t.Logf("exited %v after the second signal", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5s after the second signal:\n%s", logs.String())
	}
}

// /status serves at most maxScrapesInFlight requests at once and answers
// the rest 503 at once, whatever the engine is doing.
func TestAdminCapsStatusRequestsInFlight(t *testing.T) {
	d := newDaemon(&config.Config{}, io.Discard)
	release := make(chan struct{})
	var entered atomic.Int32
	d.status = []func(context.Context, *statusDoc){func(context.Context, *statusDoc) {
		entered.Add(1)
		<-release
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newAdminServer(ln, d)
	go func() { _ = a.Run(ctx) }()
	url := "http://" + ln.Addr().String() + "/status"
	codes := make(chan int, maxScrapesInFlight)
	for range maxScrapesInFlight {
		go func() {
			resp, err := http.Get(url)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	eventually(t, "every slot is taken", func() bool { return entered.Load() == maxScrapesInFlight })
	if code, _ := get(t, url); code != http.StatusServiceUnavailable {
		t.Errorf("a request past the cap: %d, want 503", code)
	}
	close(release)
	for range maxScrapesInFlight {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("a request within the cap: %d, want 200", code)
		}
	}
}
