package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The environment variable a daemon holds that no script may see.
const secretVar = "VRRPLB_TEST_SECRET"

// dumpScript writes a script into dir that records, in out, what it runs
// with: its /proc/self/status, /proc/self/stat (the scheduling policy) and
// environment, in files named after its first argument.
func dumpScript(t *testing.T, dir, out string) string {
	t.Helper()
	path := filepath.Join(dir, "dump.sh")
	body := fmt.Sprintf(`#!/bin/sh
f=%s/$1
cat /proc/self/status > "$f.status.tmp"
cat /proc/self/stat > "$f.stat.tmp"
env > "$f.env.tmp"
for x in status stat env; do mv "$f.$x.tmp" "$f.$x"; done
`, out)
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// procFields parses a /proc/PID/status dump.
func procFields(b []byte) map[string]string {
	fields := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// TestScriptsRunWithoutTheEnginesPriorityCapabilitiesSignalsOrEnvironment
// runs vrrplb with a secret in its environment, as root and as nobody with
// the systemd unit's four ambient capabilities, with a track script and a
// notify command that record what they run with: SCHED_OTHER, no
// capability in any set, no ignored or blocked signal, PATH alone.
func TestScriptsRunWithoutTheEnginesPriorityCapabilitiesSignalsOrEnvironment(t *testing.T) {
	setpriv := requireCommand(t, "setpriv", "util-linux")
	const caps = "+net_admin,+net_raw,+net_bind_service,+sys_nice"
	for _, tt := range []struct {
		name   string
		prefix []string
	}{
		{"as root", nil},
		{"as nobody with the unit's ambient capabilities", []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=-all," + caps, "--ambient-caps=-all," + caps, "--bounding-set=-all," + caps}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLab(t, 1)
			h := l.Host(1)
			dir := openDir(t, "vrrplb-scripts-")
			out := filepath.Join(dir, "out")
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			// The scripts write here: as root without CAP_DAC_OVERRIDE too.
			if err := os.Chmod(out, 0o777); err != nil {
				t.Fatal(err)
			}
			script := dumpScript(t, dir, out)
			bin := copyOfBinary(t, dir)
			conf := VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}, Notify: []string{script}}.TOML() + fmt.Sprintf(`
  [[instance.track_script]]
  command = [%q, "track"]
  interval = "200ms"
`, script)
			cfg := writeIn(t, dir, "vrrplb.toml", conf, 0o644)
			args := append([]string{"/usr/bin/env", secretVar + "=hunter2"}, tt.prefix...)
			p := h.Start("vrrplb", append(args, bin, "run", "--config", cfg)...)
			// notify gets (instance, state) appended: its dump is out/vip.
			for _, name := range []string{"track", "vip"} {
				Eventually(t, 10*time.Second, func() (bool, string) {
					if p.Exited() {
						t.Fatalf("vrrplb exited: %v\n%s", p.WaitExit(0), p.Output())
					}
					_, err := os.Stat(filepath.Join(out, name+".env"))
					return err == nil, fmt.Sprintf("the %s command has not run yet: %v", name, err)
				})
			}
			if got, err := h.Metric("vrrplb_vrrp_engine_realtime"); err != nil || got != 1 {
				t.Fatalf("vrrplb_vrrp_engine_realtime = %v (%v): the engine must run SCHED_FIFO for this test", got, err)
			}
			for _, name := range []string{"track", "vip"} {
				status, _ := os.ReadFile(filepath.Join(out, name+".status"))
				stat, _ := os.ReadFile(filepath.Join(out, name+".stat"))
				env, _ := os.ReadFile(filepath.Join(out, name+".env"))
				f := procFields(status)
				for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
					if n, err := strconv.ParseUint(f[set], 16, 64); err != nil || n != 0 {
						t.Errorf("%s: %s = %s, want none", name, set, f[set])
					}
				}
				for _, set := range []string{"SigIgn", "SigBlk"} {
					if n, err := strconv.ParseUint(f[set], 16, 64); err != nil || n != 0 {
						t.Errorf("%s: %s = %s, want no signal", name, set, f[set])
					}
				}
				// /proc/PID/stat: the 41st field is the policy, counted
				// after the command name in parentheses (field 2).
				s := string(stat)
				rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
				if len(rest) < 39 || rest[38] != "0" {
					t.Errorf("%s: scheduling policy %v, want 0 (SCHED_OTHER)\n%s", name, rest[min(38, len(rest)-1)], s)
				}
				var vars []string
				for _, line := range strings.Split(strings.TrimSpace(string(env)), "\n") {
					k, _, _ := strings.Cut(line, "=")
					if k != "PWD" && k != "SHLVL" && k != "_" { // set by the shell itself
						vars = append(vars, k)
					}
				}
				if strings.Join(vars, " ") != "PATH" {
					t.Errorf("%s: environment has %v, want PATH alone", name, vars)
				}
				if strings.Contains(string(env), "hunter2") {
					t.Errorf("%s: the daemon's secret reached the script", name)
				}
			}
		})
	}
}

// TestScriptsUserTheDaemonCannotSwitchToIsRefusedAtCheckAndAtStart runs
// vrrplb as nobody with the systemd unit's capabilities, which hold neither
// CAP_SETUID nor CAP_SETGID, and [scripts] user set: every script would fail
// with EPERM and keep the instance in FAULT, so check and run refuse it.
func TestScriptsUserTheDaemonCannotSwitchToIsRefusedAtCheckAndAtStart(t *testing.T) {
	setpriv := requireCommand(t, "setpriv", "util-linux")
	const caps = "+net_admin,+net_raw,+net_bind_service,+sys_nice"
	asNobody := []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all," + caps, "--ambient-caps=-all," + caps, "--bounding-set=-all," + caps}
	l := NewLab(t, 1)
	h := l.Host(1)
	dir := openDir(t, "vrrplb-scripts-user-")
	bin := copyOfBinary(t, dir)
	conf := "[scripts]\nuser = \"daemon\"\n\n" + VRRPConf{VIPs: []netip.Prefix{VIP4}}.TOML() + `
  [[instance.track_script]]
  command = ["/bin/true"]
`
	cfg := writeIn(t, dir, "vrrplb.toml", conf, 0o644)
	const want = "vrrplb lacks CAP_SETUID and CAP_SETGID"

	out, err := h.Exec(append(asNobody, bin, "check", "--config", cfg)...)
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("vrrplb check as nobody: %v, want exit 1 naming the capabilities (%q):\n%s", err, want, out)
	}

	p := h.Start("vrrplb", append(asNobody, bin, "run", "--config", cfg)...)
	Eventually(t, 10*time.Second, func() (bool, string) {
		return p.Exited(), "vrrplb run as nobody with [scripts] user still runs"
	})
	if err := p.WaitExit(0); err == nil || !strings.Contains(p.Output(), want) {
		t.Errorf("vrrplb run as nobody: %v, want a failure naming the capabilities (%q):\n%s", err, want, p.Output())
	}
}

// zombieChildren counts the children of pid that have exited and that
// nobody has waited for.
func zombieChildren(pid int) (zombies, children int) {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(b)) {
			children++
			stat, err := os.ReadFile("/proc/" + c + "/stat")
			if err != nil {
				continue
			}
			s := string(stat)
			if rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(rest) > 0 && rest[0] == "Z" {
				zombies++
			}
		}
	}
	return zombies, children
}

// TestAsPID1VrrplbReapsTheOrphansOfItsScripts runs vrrplb as PID 1 of a new
// PID namespace, as a container's entry point is, with a track script and a
// notify command that leave a background child behind: the orphans come to
// PID 1, which must wait for them.
func TestAsPID1VrrplbReapsTheOrphansOfItsScripts(t *testing.T) {
	unshare := requireCommand(t, "unshare", "util-linux")
	l := NewLab(t, 1)
	h := l.Host(1)
	dir := openDir(t, "vrrplb-pid1-")
	script := writeIn(t, dir, "fork.sh", "#!/bin/sh\nsleep 0.05 &\nexit 0\n", 0o755)
	const interval, runFor = 500 * time.Millisecond, 5 * time.Second
	conf := VRRPConf{Priority: 200, VIPs: []netip.Prefix{VIP4}, Notify: []string{script}}.TOML() + fmt.Sprintf(`
  [[instance.track_script]]
  command = [%q]
  interval = %q
`, script, interval.String())
	cfg := writeIn(t, dir, "vrrplb.toml", conf, 0o644)
	p := h.Start("vrrplb", unshare, "--pid", "--fork", "--mount-proc", Binary(t), "run", "--config", cfg)
	var daemon int
	Eventually(t, 10*time.Second, func() (bool, string) {
		if p.Exited() {
			t.Fatalf("unshare exited: %v\n%s", p.WaitExit(0), p.Output())
		}
		if c := p.Children(); len(c) == 1 {
			daemon = c[0]
		}
		code, _, err := h.HTTPGet("http://" + adminAddr + "/healthz")
		return daemon != 0 && err == nil && code == 200, fmt.Sprintf("vrrplb as PID 1 not serving: %v", err)
	})
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", daemon)); !strings.Contains(string(b), "\nNSpid:\t"+fmt.Sprint(daemon)+"\t1\n") {
		t.Fatalf("vrrplb (pid %d) is not PID 1 of its namespace:\n%s", daemon, b)
	}
	time.Sleep(runFor) // the scripts run and leave orphans meanwhile
	zombies, children := zombieChildren(daemon)
	t.Logf("after %s with a track script every %s: vrrplb as PID 1 has %d children, %d of them zombies", runFor, interval, children, zombies)
	if zombies > 1 {
		t.Errorf("vrrplb as PID 1 left %d zombies, want at most 1 (one may be on its way)", zombies)
	}
	if got := h.State(); got != "master" {
		t.Errorf("state %s, want master: the track script passes", got)
	}
}

// openDir makes a directory that every user may read, outside the lab's
// own (only root may enter those), and removes it at cleanup: for the
// programs, configs and scripts of a process that does not run as root.
func openDir(t *testing.T, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeIn writes a file into dir and returns its path.
func writeIn(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyOfBinary copies vrrplb into dir and returns the copy's path.
func copyOfBinary(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	return writeIn(t, dir, "vrrplb", string(b), 0o755)
}
