package vrrp

import "github.com/vishvananda/netns"

// threadInNetns reports whether the calling thread is in network namespace ns; the
// caller holds its OS thread locked. Entering a namespace with setns(2) needs
// CAP_SYS_ADMIN, even the one the thread is in already, and the daemon runs
// without it: whoever would enter ns skips that when it is there already, as
// every thread of a daemon that never changes namespace is.
func threadInNetns(ns netns.NsHandle) bool {
	cur, err := netns.Get()
	if err != nil {
		return false
	}
	defer cur.Close()
	return cur.Equal(ns)
}
