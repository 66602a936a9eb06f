// Package proxy is vrrplb's TCP data path: a Frontend listens on one address,
// picks a healthy backend with its balancing policy, dials it within
// connect_timeout, retries other healthy backends when a connect fails (and
// reports the failure to health as a passive fault), then copies bytes both
// ways between the two sockets, with half-close passed through: small messages
// with one read and one write, bulk transfers by splice(2) so the bytes stay in
// the kernel. Each frontend runs one event loop per core (loop_linux.go, with
// accept, connect, pump and timer files beside it) that serves every connection
// it accepted, from accept to close, without a goroutine per connection. It
// applies the [[frontend]] limits (idle and drain timeouts, TCP keepalive,
// max_connections, by default derived from the open-file limit), closes the
// connections of a backend that health reports down as each goes quiet, sends
// new connections to every backend while none is healthy (fail_open), drains a
// backend at runtime, and takes a new backend set on reload without touching
// live connections to backends that stay. It never looks inside the bytes: no
// TLS, no HTTP, no buffering beyond one read. It does not check backends
// itself; it reads the Health interface that package health implements.
package proxy
