// Package bgp announces VIPs as host routes over BGP, so that every healthy
// LB host serves them at once and routers spread flows by ECMP: the BGP twin
// of package vrrp, fed by the same frontend verdicts.
//
// Decide is the pure part: from an announcement's health, maintenance and
// the daemon's stop phase it says how the prefixes go out (announced,
// depreferred by AS-path prepending or the GRACEFUL_SHUTDOWN community, or
// withdrawn). Announcer is the one place that acts on it: it keeps the
// prefixes on the loopback interface, runs the speaker and hands it the
// routes Decide asks for. The speaker is GoBGP run as a library
// (gobgp.go): no gRPC API, no listening port; sessions are only the
// configured peers, opened from this host.
//
// The package does not check health itself and does not proxy: it reads
// verdicts (Tracker) and leaves the listeners to package proxy.
package bgp
