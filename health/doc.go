// Package health runs vrrplb's active backend checks: one Checker per
// frontend probes every backend on its own jittered schedule (tcp connect, TLS
// handshake, or an HTTP/HTTPS GET such as the apiserver's anonymous /readyz),
// turns results into up/down states through rise/fall hysteresis, reacts to
// passive faults reported by the proxy with an immediate check, and tells its
// subscribers (the proxy, VRRP's track_frontend) of every change. It exports
// the vrrplb_backend_up and vrrplb_health_check* metrics and logs every state
// change with its reason. A backend starts Unknown, which counts as not
// healthy, and its first check result decides its state at once; from then on
// rise consecutive successes bring it up and fall consecutive failures take it
// down. The package does not proxy traffic, pick backends or parse the
// configuration: it reads a validated config.Health.
package health
