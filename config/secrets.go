package config

import (
	"fmt"
	"io"
	"os"
	"slices"
)

// MaskedSecret stands for a secret in RenderMasked's output. It is a valid
// value of every secret key, so the output still parses.
const MaskedSecret = "********"

// secret is one secret value of a config and the key that holds it.
type secret struct {
	what string // `instance "vip": auth_pass`
	path string // locator path, for the line
}

// secrets lists the keys of cfg that hold a secret.
func secrets(cfg *Config) []secret {
	var out []secret
	for i, in := range cfg.Instances {
		if in.AuthPass != "" {
			out = append(out, secret{
				what: fmt.Sprintf("%s %q: %s", TableInstance, in.Name, KeyInstanceAuthPass),
				path: fmt.Sprintf("%s[%d].%s", TableInstance, i, KeyInstanceAuthPass),
			})
		}
	}
	for i, p := range cfg.BGP.Peers {
		if p.Password != "" {
			out = append(out, secret{
				what: fmt.Sprintf("%s peer %s: %s", TableBGP, p.Address, KeyPeerPassword),
				path: fmt.Sprintf("%s.%s[%d].%s", TableBGP, TablePeer, i, KeyPeerPassword),
			})
		}
	}
	return out
}

// SecretWarnings says, for a config read from a file that users other than
// its owner may read, which secrets they can read there: auth_pass and BGP
// passwords belong in a file of mode 0600 (or in a systemd credential, see
// the README). Nil when the file is private or holds no secret.
func SecretWarnings(cfg *Config) []string {
	if cfg.Path == "" {
		return nil
	}
	fi, err := os.Stat(cfg.Path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	found := secrets(cfg)
	if len(found) == 0 {
		return nil
	}
	l := locate(string(cfg.Source))
	who := "its group"
	if fi.Mode().Perm()&0o007 != 0 {
		who = "every user"
	}
	var out []string
	for _, s := range found {
		out = append(out, fmt.Sprintf("%s:%d: warning: %s: a secret in a file %s can read (mode %04o): chmod 0600 %s, or load it as a systemd credential (README)",
			cfg.Path, l.line(s.path), s.what, who, fi.Mode().Perm(), cfg.Path))
	}
	return out
}

// RenderMasked is Render with every secret (auth_pass, BGP password) written
// as MaskedSecret: what `vrrplb check` prints, so that its output can be
// shown or logged.
func RenderMasked(w io.Writer, cfg *Config) error {
	c := *cfg
	c.Instances = slices.Clone(cfg.Instances)
	for i := range c.Instances {
		if c.Instances[i].AuthPass != "" {
			c.Instances[i].AuthPass = MaskedSecret
		}
	}
	c.BGP.Peers = slices.Clone(cfg.BGP.Peers)
	for i := range c.BGP.Peers {
		if c.BGP.Peers[i].Password != "" {
			c.BGP.Peers[i].Password = MaskedSecret
		}
	}
	return Render(w, &c)
}
