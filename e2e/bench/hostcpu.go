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

// parseProcPIDCPU reads utime+stime (clock ticks) from a /proc/PID/stat
// line; the command name in parentheses may hold spaces.
func parseProcPIDCPU(line string) (uint64, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 || i+2 > len(line) {
		return 0, fmt.Errorf("/proc/PID/stat: no command name")
	}
	// After ") ": state(3) ppid(4) ... utime(14) stime(15); f[0] is field 3.
	f := strings.Fields(line[i+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat: %d fields after the name, want at least 13", len(f))
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/PID/stat utime: %w", err)
	}
	s, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/PID/stat stime: %w", err)
	}
	return u + s, nil
}

// treeCPU is the CPU time (clock ticks) used so far by pid and its direct
// children (nginx's workers), read from /proc.
func treeCPU(pid int) (uint64, error) {
	own := func(p int) (uint64, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			return 0, err
		}
		return parseProcPIDCPU(string(b))
	}
	total, err := own(pid)
	if err != nil {
		return 0, err
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid || ppid(child) != pid {
			continue
		}
		if t, err := own(child); err == nil {
			total += t
		}
	}
	return total, nil
}
