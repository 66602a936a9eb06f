// Package testroot is how a test that needs root says so: without root it
// skips, naming why, unless VRRPLB_E2E=1 says the root tests must run, and
// then it fails. It is for tests: the daemon does not use it.
package testroot

import (
	"os"
	"testing"
)

// Require skips t, or fails it when VRRPLB_E2E=1, unless the test runs as
// root. why says what needs root ("chowns files to another user").
func Require(t testing.TB, why string) {
	t.Helper()
	require(t, os.Geteuid() == 0, os.Getenv("VRRPLB_E2E") == "1", why)
}

func require(t testing.TB, root, mustRun bool, why string) {
	t.Helper()
	switch {
	case root:
	case mustRun:
		t.Fatalf("VRRPLB_E2E=1 but not root, and this test needs it: %s", why)
	default:
		t.Skipf("needs root: %s (set VRRPLB_E2E=1 to make this a failure)", why)
	}
}
