package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of /proc/stat and /proc/PID/stat times: clock ticks
// of 1/100 s on every Linux architecture the project builds for (the kernel
// reports USER_HZ, not its internal HZ).
const userHZ = 100

// cpuTimes is the host's CPU time since boot, in clock ticks, summed over
// every CPU: busy is time spent running anything (user, nice, system, irq,
// softirq, steal), total adds idle and iowait.
type cpuTimes struct {
	busy, total uint64
}

// parseProcStat reads the aggregate "cpu " line of /proc/stat. Guest time
// is already counted in user and nice, so it is not added again.
func parseProcStat(r io.Reader) (cpuTimes, error) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		// cpu user nice system idle iowait irq softirq steal [guest guest_nice]
		if len(f) < 9 {
			return cpuTimes{}, fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 9", len(f))
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
			}
			v[i] = n
		}
		user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		busy := user + nice + system + irq + softirq + steal
		return cpuTimes{busy: busy, total: busy + idle + iowait}, nil
	}
	if err := s.Err(); err != nil {
		return cpuTimes{}, err
	}
	return cpuTimes{}, fmt.Errorf("/proc/stat: no aggregate cpu line")
}

func readHostCPU() (cpuTimes, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	defer f.Close()
	return parseProcStat(f)
}

// busySeconds is the busy CPU time between two readings, in seconds of one
// CPU (two fully busy cores for one second are 2 s).
func busySeconds(before, after cpuTimes) float64 {
	if after.busy < before.busy {
		return 0
	}
	return float64(after.busy-before.busy) / userHZ
}

// busyShare is the busy fraction of all CPUs between two readings (0..1).
func busyShare(before, after cpuTimes) float64 {
	if after.total <= before.total || after.busy < before.busy {
		return 0
	}
	return float64(after.busy-before.busy) / float64(after.total-before.total)
}

// perRequestMicros divides busy CPU seconds by the requests served, in
// microseconds of CPU per request.
func perRequestMicros(busy float64, requests int64) float64 {
	if requests <= 0 {
		return 0
	}
	return busy / float64(requests) * 1e6
}

// treeCPU is the CPU time (nanoseconds) used so far by pid's threads and
// its direct children's (nginx's workers), from each thread's
// /proc/PID/task/TID/schedstat: clock ticks of /proc/PID/stat (10 ms) would
// be a tenth of the whole at a thousand requests a second for 2 s.
func treeCPU(pid int) (uint64, error) {
	total, err := threadsCPU(pid)
	if err != nil {
		return 0, err
	}
	for _, child := range children(pid) {
		if t, err := threadsCPU(child); err == nil {
			total += t
		}
	}
	return total, nil
}

// threadsCPU sums the time on CPU of pid's threads (the first field of
// each one's schedstat, in nanoseconds).
func threadsCPU(pid int) (uint64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread ended meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		if ns, err := strconv.ParseUint(f[0], 10, 64); err == nil {
			total += ns
		}
	}
	return total, nil
}

// procTimes is the user and system CPU time of a process, in clock ticks
// (fields 14 and 15 of /proc/PID/stat).
type procTimes struct {
	user, sys uint64
}

// parsePIDStat reads a process's parent and CPU times from its
// /proc/PID/stat line. The command name (field 2) is in parentheses and may
// hold spaces and parentheses itself, so the fields are counted from the
// last ")".
func parsePIDStat(line string) (ppid int, t procTimes, err error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, t, fmt.Errorf("/proc/PID/stat: no command name in %q", line)
	}
	// state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime stime ...
	f := strings.Fields(line[i+1:])
	if len(f) < 13 {
		return 0, t, fmt.Errorf("/proc/PID/stat: %d fields after the command name, want at least 13", len(f))
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, t, fmt.Errorf("/proc/PID/stat: parent: %w", err)
	}
	if t.user, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return 0, t, fmt.Errorf("/proc/PID/stat: utime: %w", err)
	}
	if t.sys, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return 0, t, fmt.Errorf("/proc/PID/stat: stime: %w", err)
	}
	return ppid, t, nil
}

// treeTimes is the user and system time of pid and its direct children
// (nginx's workers), in clock ticks: coarse (10 ms), for the share of the
// proxy's CPU spent in the kernel.
func treeTimes(pid int) procTimes {
	var total procTimes
	for _, p := range append(children(pid), pid) {
		if _, t, err := readPIDStat(p); err == nil {
			total.user += t.user
			total.sys += t.sys
		}
	}
	return total
}

// readPIDStat reads pid's parent and CPU times from /proc/PID/stat.
func readPIDStat(pid int) (ppid int, t procTimes, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, t, err
	}
	return parsePIDStat(string(b))
}

// children is the processes whose parent is pid (nginx's workers).
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if parent, _, err := readPIDStat(p); err == nil && parent == pid {
			out = append(out, p)
		}
	}
	return out
}

// kernelShare is the share of the CPU time between two readings spent in
// the kernel (0..1), and false when too little time passed to tell (fewer
// than 10 ticks).
func kernelShare(before, after procTimes) (float64, bool) {
	user, sys := after.user-before.user, after.sys-before.sys
	if after.user < before.user || after.sys < before.sys || user+sys < 10 {
		return 0, false
	}
	return float64(sys) / float64(user+sys), true
}
