// Package vrrp is vrrplb's VRRP engine: the RFC 3768 (v2) and RFC 5798 (v3)
// packet codec for IPv4 and IPv6, the state machine, the raw-socket transport
// (multicast and unicast), virtual address management through netlink,
// gratuitous ARP and unsolicited neighbour advertisements, the trackers of
// scripts and interfaces that move an instance to FAULT or change its
// priority (a frontend's verdict comes in as a Tracker from outside: a
// frontend without a healthy backend makes the instance yield, handing the
// VIP over and staying in the election at priority 1, as maintenance does),
// and Set, which runs the instances of a config by key and applies a reload
// by diff (NeedsNewInstance is its one rule of what a reload replaces).
//
// The state machine is pure: it is driven by events and an injected clock and
// emits actions, so every protocol rule is tested without root. The operating
// system sits behind the small interfaces in os.go, with the real versions in
// _linux.go files. The package does not proxy traffic or check backends; it only
// reads a tracker's verdict.
//
// Track scripts and notify commands that would run as root are refused when a
// user other than root can change them: the executable (or the script an
// interpreter runs) or a directory above it owned by another uid, writable by
// a group other than root's, or world-writable without the sticky bit
// (CheckScriptSecurity, keepalived's enable_script_security). [scripts] user
// runs them as that user instead, and then they are not checked.
package vrrp
