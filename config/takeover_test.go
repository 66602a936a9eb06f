package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTakeoverKeyFileFollowsTheFileRules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.key", "0123456789abcdef0123456789abcdef\n", 0o600)
	open := write("open.key", "0123456789abcdef0123456789abcdef\n", 0o644)
	short := write("short.key", "tooshort\n", 0o600)
	text := func(lines ...string) string {
		return instanceHead + "virtual_ips = [\"192.0.2.10/24\"]\n" + strings.Join(lines, "\n") + "\n"
	}
	tests := []struct {
		name string
		text string
		want string // "" for valid
	}{
		{"a private key file of 32 bytes is taken", text(`takeover_key_file = "good.key"`), ""},
		{"a key file other users can read is refused", text(`takeover_key_file = "` + open + `"`),
			`vrrplb.toml:6: instance "vip": takeover_key_file: "` + open + `": mode 0644: other users can read or change the key; chmod 0600 it`},
		{"a short key is refused", text(`takeover_key_file = "` + short + `"`),
			`vrrplb.toml:6: instance "vip": takeover_key_file: "` + short + `": 8 bytes: a key needs at least 16`},
		{"a missing key file is named", text(`takeover_key_file = "missing.key"`),
			`vrrplb.toml:6: instance "vip": takeover_key_file: "missing.key": not readable: no such file or directory`},
		{"a directory is not a key file", text(`takeover_key_file = "` + dir + `"`),
			`not a regular file (a directory)`},
		{"a port out of range is refused", text(`takeover_port = 70000`), `vrrplb.toml:6: instance "vip": takeover_port: 70000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join(dir, "vrrplb.toml"), []byte(tt.text))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				in := cfg.Instances[0]
				if string(in.TakeoverKey) != "0123456789abcdef0123456789abcdef" || in.TakeoverKeyFile != good || !in.TakeoverOn() {
					t.Errorf("key %q from %q, on %v; want the file's line from %q, on", in.TakeoverKey, in.TakeoverKeyFile, in.TakeoverOn(), good)
				}
				return
			}
			if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), dir+"/vrrplb.toml", "vrrplb.toml"), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestTakeoverIsOffWithoutAKeyAndTwoStreamsNeedTwoPorts(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	if err := os.WriteFile(key, []byte("0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("vrrplb.toml", []byte(instanceHead+"virtual_ips = [\"192.0.2.10/24\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if in := cfg.Instances[0]; !in.TakeoverReset || in.TakeoverOn() || in.TakeoverPort != DefaultTakeoverPort {
		t.Errorf("without a key: takeover_reset %v, on %v, port %d; want true, off, %d", in.TakeoverReset, in.TakeoverOn(), in.TakeoverPort, DefaultTakeoverPort)
	}
	two := instanceHead + "virtual_ips = [\"192.0.2.10/24\"]\ntakeover_key_file = \"" + key + "\"\n" +
		"[[instance]]\nname = \"second\"\ninterface = \"eth0\"\nvirtual_router_id = 52\nvirtual_ips = [\"192.0.2.11/24\"]\ntakeover_key_file = \"" + key + "\"\n"
	_, err = Parse("vrrplb.toml", []byte(two))
	want := `vrrplb.toml:7: instance "second": takeover_port: 5798: instance "vip" streams on it too on eth0 for ipv4`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
	if _, err := Parse("vrrplb.toml", []byte(two+"takeover_port = 5799\n")); err != nil {
		t.Errorf("two ports: %v", err)
	}
}

func TestCheckSaysWhetherTakeoverResetsAreOn(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	if err := os.WriteFile(key, []byte("0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	head := func(name string, vrid int) string {
		return fmt.Sprintf("[[instance]]\nname = %q\ninterface = \"eth0\"\nvirtual_router_id = %d\nvirtual_ips = [\"192.0.2.%d/24\"]\n", name, vrid, vrid)
	}
	text := head("on", 1) + "takeover_key_file = \"" + key + "\"\nunicast_peers = [\"192.0.2.200\"]\n" +
		head("nokey", 2) + head("off", 3) + "takeover_reset = false\ntakeover_key_file = \"" + key + "\"\n"
	cfg, err := Parse("vrrplb.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`instance "on": takeover resets on: the master streams its client connections to unicast_peers (UDP port 5798, key ` + key + `); a host taking over from a crashed master prompts them to reset`,
		`instance "nokey": takeover resets off: no takeover_key_file; after a crash of the master, its clients reconnect only at their next ping or keepalive (client-go: 30 s and more); see README, "Taking over from a crashed master"`,
		`instance "off": takeover resets off (takeover_reset = false): after a crash of the master, its clients reconnect only at their next ping or keepalive`,
	}
	if diff := cmp.Diff(want, TakeoverNotes(cfg)); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
}
