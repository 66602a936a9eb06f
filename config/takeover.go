package config

import (
	"bytes"
	"fmt"
)

// Takeover key limits: HMAC-SHA256 takes a key of any length; shorter than
// minTakeoverKey bytes is guessable, and a key file is a few lines at most.
const (
	minTakeoverKey = 16
	maxTakeoverKey = 4096
)

// instanceTakeover reads takeover_reset, takeover_key_file and
// takeover_port. The key file follows the rules of every file vrrplb reads
// (a regular file, bounded, relative to the config's folder) and, being a
// secret that lets its reader feed the LB hosts, must be readable and
// writable by its owner only.
func (d *decoder) instanceTakeover(t *table, in *Instance) {
	in.TakeoverReset = t.boolean(KeyInstanceTakeoverReset, true)
	in.TakeoverPort = uint16(t.integer(KeyInstanceTakeoverPort, DefaultTakeoverPort, 1, 65535))
	raw := t.str(KeyInstanceTakeoverKeyFile, "")
	if raw == "" {
		return
	}
	in.TakeoverKeyFile = d.resolvePath(raw)
	key, err := readTakeoverKey(in.TakeoverKeyFile)
	if err != nil {
		t.errf(KeyInstanceTakeoverKeyFile, "%q: %v", raw, err)
		return
	}
	in.TakeoverKey = key
}

// readTakeoverKey reads a takeover key file: its bytes without the
// trailing white space an editor or `echo` leaves.
func readTakeoverKey(path string) ([]byte, error) {
	f, fi, err := OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("not readable: %v", unwrapPathError(err))
	}
	f.Close()
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("mode %04o: other users can read or change the key; chmod 0600 it", perm)
	}
	data, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("not readable: %v", unwrapPathError(err))
	}
	key := bytes.TrimRight(data, " \t\r\n")
	switch {
	case len(key) < minTakeoverKey:
		return nil, fmt.Errorf("%d bytes: a key needs at least %d (e.g. `head -c 32 /dev/urandom | base64 > FILE`)", len(key), minTakeoverKey)
	case len(key) > maxTakeoverKey:
		return nil, fmt.Errorf("%d bytes: a key is at most %d", len(key), maxTakeoverKey)
	}
	return key, nil
}

// TakeoverOn reports whether the instance streams its client connections
// and prompts a crashed master's clients: takeover_reset with a key.
func (in *Instance) TakeoverOn() bool {
	return in.TakeoverReset && len(in.TakeoverKey) > 0
}

// uniqueTakeoverPorts refuses two instances that stream on one interface,
// family and port: each binds the port for itself.
func uniqueTakeoverPorts(instances []*table, cfg *Config) {
	type where struct {
		iface  string
		family Family
		port   uint16
	}
	seen := map[where]string{}
	for i, in := range cfg.Instances {
		if !in.TakeoverOn() {
			continue
		}
		w := where{in.Interface, in.Family, in.TakeoverPort}
		if other, ok := seen[w]; ok {
			instances[i].errf(KeyInstanceTakeoverPort, "%d: instance %q streams on it too on %s for %s; give each instance its own takeover_port",
				in.TakeoverPort, other, in.Interface, in.Family)
		}
		seen[w] = in.Name
	}
}

// TakeoverNotes says, for each instance, whether a host that takes over
// from a crashed master will prompt its clients to reset, and if not, why
// and what that means: what `vrrplb check` prints.
func TakeoverNotes(cfg *Config) []string {
	var out []string
	for _, in := range cfg.Instances {
		var note string
		switch {
		case in.TakeoverOn():
			to := "the VRRP group on " + in.Interface
			if len(in.UnicastPeers) > 0 {
				to = "unicast_peers"
			}
			note = fmt.Sprintf("takeover resets on: the master streams its client connections to %s (UDP port %d, key %s); a host taking over from a crashed master prompts them to reset",
				to, in.TakeoverPort, in.TakeoverKeyFile)
		case !in.TakeoverReset:
			note = "takeover resets off (takeover_reset = false): after a crash of the master, its clients reconnect only at their next ping or keepalive"
		default:
			note = "takeover resets off: no takeover_key_file; after a crash of the master, its clients reconnect only at their next ping or keepalive (client-go: 30 s and more); see README, \"Taking over from a crashed master\""
		}
		out = append(out, fmt.Sprintf("instance %q: %s", in.Name, note))
	}
	return out
}
