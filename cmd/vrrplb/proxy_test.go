package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config"
)

// echoBackend serves an echo on 127.0.0.1 until the test ends.
func echoBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func frontendConfig(admin, listen string, backends ...string) string {
	return fmt.Sprintf(`[admin]
listen = %q
socket = ""

[[frontend]]
name = "api"
listen = %q
backends = [%s]
drain_timeout = "200ms"
  [frontend.health]
  type = "tcp"
  interval = "100ms"
  timeout = "100ms"
  rise = 1
  fall = 1
`, admin, listen, `"`+strings.Join(backends, `", "`)+`"`)
}

func TestDaemonProxiesToHealthyBackendsAndReloadsThem(t *testing.T) {
	dir := t.TempDir()
	admin, listen := freeAddr(t), freeAddr(t)
	be1, be2 := echoBackend(t), echoBackend(t)
	path := writeFile(t, dir, "vrrplb.toml", frontendConfig(admin, listen, be1))
	var logs syncBuffer
	d, sig := newTestDaemon(t, path, &logs)
	done := runDaemon(d)
	base := "http://" + admin

	healthyStatus := func(backends ...string) string {
		var bs []string
		for _, b := range backends {
			bs = append(bs, fmt.Sprintf(`{"address":%q,"healthy":true,"draining":false,"active_connections":0,"reason":"connected"}`, b))
		}
		return fmt.Sprintf(`{"instances":[],"frontends":[{"name":"api","listen":%q,"fail_open":false,"backends":[%s]}]}`, listen, strings.Join(bs, ","))
	}
	eventually(t, "the backend is healthy in /status", func() bool {
		code, body := get(t, base+"/status")
		return code == 200 && compactJSON(t, body) == healthyStatus(be1)
	})

	echo := func() error {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintln(c, "ping")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "ping\n" {
			return fmt.Errorf("echo: %q, %v", line, err)
		}
		return nil
	}
	if err := echo(); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		`vrrplb_frontend_connections_total{frontend="api"} 1`,
		fmt.Sprintf(`vrrplb_backend_up{backend=%q,frontend="api"} 1`, be1),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Reload to the other backend: new connections go there at once.
	writeFile(t, dir, "vrrplb.toml", frontendConfig(admin, listen, be2))
	sig <- syscall.SIGHUP
	eventually(t, "the new backend set in /status", func() bool {
		code, body := get(t, base+"/status")
		return code == 200 && compactJSON(t, body) == healthyStatus(be2)
	})
	if err := echo(); err != nil {
		t.Fatalf("after reload: %v", err)
	}

	// A new listen address: the frontend moves, its checker stays.
	listen2 := freeAddr(t)
	writeFile(t, dir, "vrrplb.toml", frontendConfig(admin, listen2, be2))
	sig <- syscall.SIGHUP
	oldListen := listen
	listen = listen2
	eventually(t, "the frontend on its new address in /status", func() bool {
		code, body := get(t, base+"/status")
		return code == 200 && compactJSON(t, body) == healthyStatus(be2)
	})
	eventually(t, "the new address proxies", func() bool { return echo() == nil })
	eventually(t, "the old address closes", func() bool {
		c, err := net.Dial("tcp", oldListen)
		if err == nil {
			c.Close()
		}
		return err != nil
	})

	stopDaemon(t, sig, done)
	if c, err := net.Dial("tcp", listen); err == nil {
		c.Close()
		t.Error("the frontend still accepts after stop")
	}
}

// The admin socket's backend commands reach the frontends: drain, the last
// backend refused without --force, a reload that moves the listener keeps
// the drain, enable undoes it.
func TestDaemonDrainsAndEnablesBackendsOverTheAdminSocket(t *testing.T) {
	dir := t.TempDir()
	admin, listen := freeAddr(t), freeAddr(t)
	be1, be2 := echoBackend(t), echoBackend(t)
	sock := filepath.Join(dir, "admin.sock")
	withSocket := func(cfg string) string {
		return strings.Replace(cfg, "socket = \"\"\n", fmt.Sprintf("socket = %q\n", sock), 1)
	}
	path := writeFile(t, dir, "vrrplb.toml", withSocket(frontendConfig(admin, listen, be1, be2)))
	var logs syncBuffer
	d, sig := newTestDaemon(t, path, &logs)
	done := runDaemon(d)
	t.Cleanup(func() {
		sig <- syscall.SIGTERM
		<-done
	})
	draining := func() map[string]bool {
		_, body := get(t, "http://"+admin+"/status")
		var doc statusDoc
		if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Frontends) != 1 {
			t.Fatalf("/status: %v\n%s", err, body)
		}
		got := map[string]bool{}
		for _, b := range doc.Frontends[0].Backends {
			got[b.Address] = b.Draining
		}
		return got
	}
	command := func(args ...string) (string, error) {
		var out bytes.Buffer
		code := runMain(append(args, "--socket", sock), &out, &out)
		if code != 0 {
			return out.String(), fmt.Errorf("exit %d", code)
		}
		return out.String(), nil
	}
	eventually(t, "the admin socket answers", func() bool {
		_, err := command("backend", "enable", be1)
		return err == nil
	})

	out, err := command("backend", "drain", be2)
	if err != nil || !strings.Contains(out, "frontend api: backend "+be2+" draining: no new connections") {
		t.Errorf("drain: %v\n%s", err, out)
	}
	if diff := cmp.Diff(map[string]bool{be1: false, be2: true}, draining()); diff != "" {
		t.Errorf("after drain (-want +got):\n%s", diff)
	}
	if out, err := command("backend", "drain", be1); err == nil || !strings.Contains(out, "last backend") {
		t.Errorf("draining the last enabled backend: %v\n%s", err, out)
	}
	if out, err := command("backend", "drain", be1, "--frontend", "nope"); err == nil || !strings.Contains(out, `no frontend "nope"`) {
		t.Errorf("drain in an unknown frontend: %v\n%s", err, out)
	}
	if out, err := command("backend", "drain", "192.0.2.1:1"); err == nil || !strings.Contains(out, "no frontend has the backend 192.0.2.1:1") {
		t.Errorf("drain of an unknown backend: %v\n%s", err, out)
	}

	// A reload that moves the listener keeps the drain.
	writeFile(t, dir, "vrrplb.toml", withSocket(frontendConfig(admin, freeAddr(t), be1, be2)))
	sig <- syscall.SIGHUP
	eventually(t, "the reload applied", func() bool { return strings.Contains(logs.String(), "msg=reloaded") })
	if diff := cmp.Diff(map[string]bool{be1: false, be2: true}, draining()); diff != "" {
		t.Errorf("after SIGHUP (-want +got):\n%s", diff)
	}

	if out, err := command("backend", "drain", be1, "--force"); err != nil {
		t.Errorf("drain of the last enabled backend with --force: %v\n%s", err, out)
	}
	if diff := cmp.Diff(map[string]bool{be1: true, be2: true}, draining()); diff != "" {
		t.Errorf("after drain --force (-want +got):\n%s", diff)
	}

	for _, be := range []string{be1, be2} {
		if out, err := command("backend", "enable", be, "--frontend", "api"); err != nil || !strings.Contains(out, "enabled: takes new connections again") {
			t.Errorf("enable: %v\n%s", err, out)
		}
	}
	if diff := cmp.Diff(map[string]bool{be1: false, be2: false}, draining()); diff != "" {
		t.Errorf("after enable (-want +got):\n%s", diff)
	}
}

// An error of a frontend's health checker names the frontend once:
// `frontend "api": health ca_file: …`, not `frontend "api": health: frontend "api": …`.
func TestHealthErrorsNameTheFrontendOnce(t *testing.T) {
	fe := config.Frontend{Name: "api", Listen: "127.0.0.1:0", Balance: config.RoundRobin, Backends: []string{"127.0.0.1:1"},
		Health: config.Health{Type: config.CheckHTTPS, Path: "/readyz", Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1,
			CAFile: filepath.Join(t.TempDir(), "missing.crt")}}
	d := newDaemon(&config.Config{Frontends: []config.Frontend{fe}}, io.Discard)
	err := wireProxy(d, d.config())
	if err == nil {
		t.Fatal("a frontend with a missing ca_file was wired")
	}
	if n := strings.Count(err.Error(), `frontend "api"`); n != 1 || !strings.HasPrefix(err.Error(), `frontend "api": health`) {
		t.Errorf("error %q names the frontend %d times, want once, first", err, n)
	}
}
