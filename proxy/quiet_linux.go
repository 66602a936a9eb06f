package proxy

import (
	"time"

	"golang.org/x/sys/unix"
)

// close_on_backend_down closes the connections of a backend that health
// reports down, so their clients reconnect to a healthy one. An apiserver
// that shuts down gracefully fails /readyz first and goes on serving for
// --shutdown-delay-duration: cutting its connections the moment the check
// fails would cut responses under way and requests it is working on (a
// client retries a GET, not a write). So a down backend's connection is
// closed only once it is quiet: no byte moved either way for quietCut,
// none held in the proxy, and none unacknowledged in either socket's send
// queue. A watch between events is quiet and moves within quietCut and a
// sweep tick; a connection that keeps moving bytes stays until the backend
// closes it, which a stopping apiserver does, or refuses it. While the
// frontend fails open (no backend is healthy) nothing is cut: there is no
// better backend to move to.

// quietCut is how long a down backend's connection must move no byte
// before it is closed.
const quietCut = time.Second

// quiet reports whether c has moved no byte for quietCut and has none in
// flight: held in the proxy or unacknowledged in a socket's send queue.
func (l *loop) quiet(c *evConn) bool {
	if l.now-c.lastActive < int64(quietCut) || c.up.holding() || c.down.holding() {
		return false
	}
	return sendQueued(c.cfd) == 0 && sendQueued(c.bfd) == 0
}

// sendQueued is how many bytes fd's send queue holds that the peer has not
// acknowledged (SIOCOUTQ); an error counts as some.
func sendQueued(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil {
		return 1
	}
	return n
}
