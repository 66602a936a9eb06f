package vrrp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelSigaction is the kernel's struct sigaction for rt_sigaction(2) on
// the 64-bit Linux ports vrrplb builds for (amd64, arm64).
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// The handler values of signal(7) that are not functions.
const (
	sigDfl uintptr = 0
	sigIgn uintptr = 1
)

// rtSigaction reads (old) and, with act, sets signal sig's disposition for
// the whole process.
func rtSigaction(sig int, act, old *kernelSigaction) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// resetIgnoredSignals sets every signal that this process ignores back to
// its default, so that a child starts with none ignored: an ignored signal
// stays ignored across exec. vrrplb ignores none itself (it catches what it
// handles), but it may inherit some from whoever started it (GNU make starts
// its recipes with signals 32 and 33 ignored, and the Go runtime installs
// no handler for those). Signals with a handler are left alone.
func resetIgnoredSignals() error {
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		var old kernelSigaction
		if err := rtSigaction(sig, nil, &old); err != nil {
			continue // not a signal this kernel knows
		}
		if old.handler != sigIgn {
			continue
		}
		if err := rtSigaction(sig, &kernelSigaction{handler: sigDfl}, nil); err != nil {
			return fmt.Errorf("scripts: reset ignored signal %d to its default: %w", sig, err)
		}
	}
	return nil
}
