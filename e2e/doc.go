// Package e2e runs the built vrrplb binary in network namespaces: a lab of
// hosts on one bridge, the daemon run inside them, VIPs moving between them,
// fake apiservers behind its proxy, and a real keepalived as a peer. Its tests
// need root; without it they skip, or fail when VRRPLB_E2E=1. The lab itself
// is ordinary code driven through TB, so the demo program (e2e/demo) builds
// the same lab; it is not meant for use outside this repository.
//
// The lab only ever sends traffic between namespaces it created itself.
package e2e
