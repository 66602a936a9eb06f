package vrrp

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// neededCaps are the capabilities(7) the VRRP engine needs, and what for.
var neededCaps = []struct {
	bit  uint
	name string
	why  string
}{
	{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN", "to add and remove virtual IPs"},
	{unix.CAP_NET_RAW, "CAP_NET_RAW", "to send and receive VRRP adverts on a raw socket"},
}

// CheckCapabilities returns an error, one line naming each capability the
// VRRP engine needs and the process lacks in its effective set, or nil. Run it
// before starting instances: without it, a missing CAP_NET_ADMIN shows only
// when an instance becomes master and cannot add its VIP.
func CheckCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading the process's capabilities: %w", err)
	}
	return missingCaps(uint64(data[0].Effective) | uint64(data[1].Effective)<<32)
}

// missingCaps checks an effective capability set.
func missingCaps(effective uint64) error {
	var missing []string
	for _, c := range neededCaps {
		if effective&(1<<c.bit) == 0 {
			missing = append(missing, c.name+" ("+c.why+")")
		}
	}
	if len(missing) == 0 {
		return nil
	}
	s := "capability "
	if len(missing) > 1 {
		s = "capabilities "
	}
	return fmt.Errorf("vrrp: missing %s%s: run vrrplb as root or grant it CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=)",
		s, strings.Join(missing, " and "))
}

// processHoldsCapabilities reports whether this process has any capability in
// its effective, permitted or ambient set (root's included). If the sets
// cannot be read it says yes: the callers then check more, not less.
func processHoldsCapabilities() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true
	}
	for _, d := range data {
		if d.Effective != 0 || d.Permitted != 0 {
			return true
		}
	}
	// An ambient capability is also permitted: the check above covers it.
	return false
}

// effectiveCaps is this process's effective capability set; tests replace it.
var effectiveCaps = func() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("reading the process's capabilities: %w", err)
	}
	return uint64(data[0].Effective) | uint64(data[1].Effective)<<32, nil
}

// CheckScriptsUser returns an error when track scripts or notify commands
// are to run as user ([scripts] user) but this process cannot switch to it:
// it lacks CAP_SETUID or CAP_SETGID (a daemon run as a non-root user, such as
// the systemd unit's). Every run would fail with EPERM and leave the
// instance in FAULT. A user that does not exist is an error too; "" needs
// nothing.
func CheckScriptsUser(user string) error {
	if user == "" {
		return nil
	}
	if _, err := credentialOf(user); err != nil {
		return err
	}
	eff, err := effectiveCaps()
	if err != nil {
		return err
	}
	var missing []string
	for _, c := range []struct {
		bit  uint
		name string
	}{{unix.CAP_SETUID, "CAP_SETUID"}, {unix.CAP_SETGID, "CAP_SETGID"}} {
		if eff&(1<<c.bit) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("[scripts] user %q: vrrplb lacks %s, needed to run scripts and notify commands as another user: grant it (systemd: AmbientCapabilities= and CapabilityBoundingSet=) or leave [scripts] user empty",
		user, strings.Join(missing, " and "))
}
