// Package config reads vrrplb.toml into a validated, typed Config.
//
// The file is decoded into private raw structs, then checked rule by rule; every
// error names the file, the line and the key, the way `nginx -t` does, so an
// operator can fix a typo without guessing. Defaults are filled in here, once,
// so the rest of the daemon never sees an omitted key. The package does not
// touch the network or the system: it only reads files (the config itself and
// any ca_file it names). Importers of keepalived.conf, nginx stream blocks and
// haproxy.cfg live in subpackages.
package config
