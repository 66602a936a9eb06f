// Package engine runs vrrplb's VRRP instances in a child process of the
// daemon, the VRRP engine, and is the daemon's way of talking to it.
//
// A saturated proxy keeps every thread of its process busy, and inside one
// Go runtime an advertisement timer then waits behind proxy goroutines long
// enough for a backup to declare the master down. In its own, nearly idle
// process, at real-time priority when allowed, the engine is woken by the
// kernel on time.
//
// The files say which process runs them: daemon_*.go run in `vrrplb run`
// (Client: start, watch and restart the engine, forward frontend verdicts,
// reload it in two steps, and a rate-bounded snapshot of its metrics and
// instances for /metrics and /status); engine_*.go run in `vrrplb
// vrrp-engine` (Main: the engine process); wire.go is the messages both
// speak over the socket pair. The package holds no VRRP rules: those are
// package vrrp's.
package engine
