package engine

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// setRealtime puts every thread of this process under SCHED_FIFO at prio.
// Threads the Go runtime starts later inherit it from the thread that
// starts them, which is one of these; the list is read until a pass finds
// no thread left to change, so one started meanwhile is not missed. It
// needs CAP_SYS_NICE (or an RLIMIT_RTPRIO of at least prio).
func setRealtime(prio int) error {
	done := map[int]bool{}
	for pass := 0; pass < 10; pass++ {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("list threads: %w", err)
		}
		changed := false
		for _, ent := range ents {
			tid, err := strconv.Atoi(ent.Name())
			if err != nil || done[tid] {
				continue
			}
			attr := &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
			if err := unix.SchedSetAttr(tid, attr, 0); err != nil {
				if err == unix.ESRCH {
					continue // the thread ended
				}
				return fmt.Errorf("SCHED_FIFO priority %d: %w", prio, err)
			}
			done[tid], changed = true, true
		}
		if !changed {
			return nil
		}
	}
	return nil
}
