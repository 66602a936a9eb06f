package vrrp

import (
	"fmt"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// ScriptPATH is the whole environment of track scripts and notify commands:
// they never see the daemon's own (which may hold secrets).
const ScriptPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// scriptEnv is the environment scripts run with.
func scriptEnv() []string { return []string{"PATH=" + ScriptPATH} }

// startUnprivileged starts cmd the way every track script and notify command
// starts: at SCHED_OTHER whatever the engine's real-time policy,
// with no capability in any set (effective, permitted, inheritable,
// ambient, bounding), so that neither it nor anything it execs gets one
// back, with no signal ignored, and with the minimal environment. setID keeps CAP_SETUID and
// CAP_SETGID for the child to switch to cmd's credential ([scripts] user);
// the switch to a non-root user clears them.
//
// Scheduling policy and capabilities belong to a thread and a child
// inherits those of the thread that forks it, so cmd is started from a
// thread of its own, changed for good: its goroutine never unlocks it, and
// the runtime ends the thread with the goroutine. (The runtime creates new
// threads from a clean template thread, never from a locked one, so the
// engine's other threads stay real-time.)
func startUnprivileged(cmd *exec.Cmd, setID bool) error {
	cmd.Env = scriptEnv()
	if err := resetIgnoredSignals(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := dropThreadPrivileges(setID); err != nil {
			errc <- err
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// dropThreadPrivileges makes the calling thread a normal one without
// capabilities (but CAP_SETUID and CAP_SETGID with setID).
func dropThreadPrivileges(setID bool) error {
	// SCHED_NORMAL is SCHED_OTHER. The thread's nice value stays: raising
	// it back could need CAP_SYS_NICE.
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return fmt.Errorf("scripts: read the scheduling policy: %w", err)
	}
	if attr.Policy != unix.SCHED_NORMAL {
		other := &unix.SchedAttr{Policy: unix.SCHED_NORMAL, Nice: attr.Nice}
		if err := unix.SchedSetAttr(0, other, 0); err != nil {
			return fmt.Errorf("scripts: leave the real-time policy: %w", err)
		}
	}
	var keep uint64
	if setID {
		keep = 1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID
	}
	// Ambient capabilities survive exec for a non-root user: clear them.
	// EINVAL: a kernel before 4.3 has none.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("scripts: clear ambient capabilities: %w", err)
	}
	// Root gets its bounding set back at exec: empty it. Without
	// CAP_SETPCAP (EPERM) the daemon is not root, and exec grants a
	// non-root user nothing from it; EINVAL is past the kernel's last one.
	for c := 0; c < 64; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL && err != unix.EPERM {
			return fmt.Errorf("scripts: drop capability %d from the bounding set: %w", c, err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("scripts: read capabilities: %w", err)
	}
	for i := range data {
		k := uint32(keep >> (32 * i))
		data[i].Effective &= k
		data[i].Permitted &= k
		data[i].Inheritable = 0
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("scripts: drop capabilities: %w", err)
	}
	return nil
}
