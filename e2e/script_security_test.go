package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unsafeScript writes a passing check script into a directory every user
// may write to, so that anyone could replace it.
func unsafeScript(t *testing.T, l *Lab) (dir, path string) {
	t.Helper()
	dir = filepath.Join(l.LogDir, "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "check.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func trackScript(path string) string {
	return fmt.Sprintf("\n  [[instance.track_script]]\n  command = [%q]\n  interval = \"1s\"\n", path)
}

func TestScriptsAnotherUserCanChangeAreRefusedAsRoot(t *testing.T) {
	l := NewLab(t, 1)
	h := l.Host(1)
	dir, path := unsafeScript(t, l)
	want := fmt.Sprintf(`instance "vip": track_script #1: %s is writable by every user (mode 0777): refusing to run it as root (fix the permissions or set [scripts] user)`, dir)

	t.Run("at start the daemon exits naming the script", func(t *testing.T) {
		conf := h.WriteConfig(VRRPConf{VIPs: []netip.Prefix{VIP4}, Extra: trackScript(path)}.TOML())
		p := h.Start("vrrplb", Binary(t), "run", "--config", conf)
		if err := p.WaitExit(10 * time.Second); err == nil {
			t.Fatal("vrrplb started with a script anyone may change")
		}
		if !strings.Contains(p.Output(), want) {
			t.Errorf("the error does not say what is wrong; want\n%s\nin\n%s", want, p.Output())
		}
		if h.HasAddr(VIP4.Addr()) {
			t.Error("the refused daemon left the VIP")
		}
	})

	t.Run("a reload that brings one in is refused and changes nothing", func(t *testing.T) {
		p := l.StartMaster(t, h, VRRPConf{VIPs: []netip.Prefix{VIP4}})
		h.WriteConfig(VRRPConf{VIPs: []netip.Prefix{VIP4}, Extra: trackScript(path)}.TOML())
		p.Signal(syscall.SIGHUP)
		Eventually(t, 5*time.Second, func() (bool, string) {
			return strings.Contains(p.Output(), "refusing to run it as root"), "the refused reload was not logged"
		})
		if ok, err := h.Metric("vrrplb_config_last_reload_successful"); err != nil || ok != 0 {
			t.Errorf("vrrplb_config_last_reload_successful = %v (%v), want 0", ok, err)
		}
		l.StaysMaster(t, h, VIP4.Addr(), 5*advert)
		p.Signal(syscall.SIGTERM)
		if err := p.WaitExit(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("with a scripts user the same script runs as that user", func(t *testing.T) {
		conf := "[scripts]\nuser = \"nobody\"\n\n" + VRRPConf{VIPs: []netip.Prefix{VIP4}, Extra: trackScript(path)}.TOML()
		// nobody must reach the script through the lab's directories.
		for _, d := range []string{l.LogDir, filepath.Dir(l.LogDir)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		h.StartVRRPLB(conf)
		l.WaitMaster(t, h, VIP4.Addr(), 5*time.Second)
		if ins, err := h.Instances(); err != nil || len(ins) != 1 || ins[0].EffectivePriority != ins[0].Priority {
			t.Errorf("the script run as nobody does not pass: %+v %v", ins, err)
		}
	})
}
