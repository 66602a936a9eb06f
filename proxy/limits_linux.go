package proxy

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// max_connections = 0 means a limit derived from the process's open-file
// limit (RLIMIT_NOFILE), so the proxy runs out of connections it may take
// before the process runs out of descriptors: a health check, the admin
// server or the VRRP engine's socket that cannot open a descriptor would
// make a local shortage look like dead backends. The limit is shared by
// every frontend of the process whose max_connections is 0 and counts
// every proxied client connection of the process, since all of them spend
// the same descriptors: two each (client and backend).

// procConns counts the client connections open in every frontend.
var procConns atomic.Int64

// Descriptors kept back from proxied connections: a base for the
// runtime, the listeners, the loops' epoll sets, the admin server and the
// engine's socket, and a share of the limit for health checks (one
// connection per backend at a time), scrapes and host-name lookups.
const (
	reserveBase  = 64
	reserveShare = 16 // 1/16 of the limit
)

// openFileLimit is the process's soft RLIMIT_NOFILE (Go raises it to the
// hard limit at start), or 0 when it cannot be read.
func openFileLimit() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}

// pipeCap is the pipe cap for an open-file limit: a 32nd of the
// descriptors at most (each pipe is two), and never more than 64 pipes
// (each holds up to pipeSize of kernel memory while its reader is slow).
func pipeCap(nofile uint64) int {
	return int(max(1, min(64, nofile/32)))
}

// derivedMaxConnections is the connection limit for an open-file limit and
// the descriptors it keeps back for everything else: the reserve and the
// pipe cap's descriptors. At least half of the limit is reserved when the
// limit is small, and the result is at least 1. An unknown (0) or
// unlimited limit gives 0: no limit.
func derivedMaxConnections(nofile uint64) (conns int64, reserve uint64) {
	if nofile == 0 || nofile == unix.RLIM_INFINITY || nofile > 1<<40 {
		return 0, 0
	}
	reserve = min(reserveBase+nofile/reserveShare, nofile/2) + 2*uint64(pipeCap(nofile))
	if reserve >= nofile {
		return 1, reserve
	}
	return max(1, int64((nofile-reserve)/2)), reserve
}

// deriveMaxConnections sets the limit that max_connections = 0 means from
// the open-file limit now, and logs it when it applies.
func (f *Frontend) deriveMaxConnections(configured int) {
	nofile := openFileLimit()
	n, reserve := derivedMaxConnections(nofile)
	f.autoMax.Store(n)
	if configured != 0 {
		return
	}
	if n == 0 {
		f.log.Info("max_connections: no limit (the open-file limit is unlimited or unknown)")
		return
	}
	f.log.Info("max_connections derived from the open-file limit, shared by every frontend with max_connections = 0",
		"max_connections", n, "open_file_limit", nofile, "reserved_descriptors", reserve)
}
