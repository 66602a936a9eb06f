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
// closed only once it is quiet: none of its bytes held in the proxy, none
// unacknowledged in either socket's send queue, and no byte moved either
// way for a while that depends on which way the last bytes went:
//
//   - backend → client (an answer, a watch event): quietCut. A watch
//     between events moves within quietCut and a sweep tick.
//   - client → backend (a request): quietOwed, as the backend may owe an
//     answer it is still working on, with no byte to show for it (an
//     apiserver waiting on a slow or stalled etcd). Small frames a client
//     sends unprompted (HTTP/2 WINDOW_UPDATE after a watch event) look the
//     same, so such a watch moves within quietOwed and a sweep tick.
//
// A connection that keeps moving bytes stays until the backend closes it,
// which a stopping apiserver does, or refuses it. A request that waits
// longer than quietOwed with no byte is cut (kube-apiserver's own request
// timeout is 60 s). While the frontend fails open (no backend is healthy)
// nothing is cut: there is no better backend to move to.

// quietCut is how long a down backend's connection whose last bytes went
// to the client must move no byte before it is closed.
const quietCut = time.Second

// quietOwed is how long a down backend's connection whose last bytes went
// to the backend must move no byte before it is closed: long enough for an
// apiserver to answer through an etcd stall of a few seconds (a leader
// election), short enough that a watch whose client spoke last still
// moves within seconds, and well under kube-apiserver's 60 s request
// timeout.
const quietOwed = 8 * time.Second

// moved notes that bytes were read from d's source.
func (l *loop) moved(c *evConn, d *evDir) {
	c.lastActive = l.now
	c.owed = d == &c.up
}

// quiet reports whether c has moved no byte for quietCut (quietOwed if its
// last bytes went to the backend) and has none in flight: held in the
// proxy or unacknowledged in a socket's send queue.
func (l *loop) quiet(c *evConn) bool {
	wait := quietCut
	if c.owed {
		wait = quietOwed
	}
	if l.now-c.lastActive < int64(wait) || c.up.holding() || c.down.holding() {
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
