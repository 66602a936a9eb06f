package main

import (
	"os"
	"testing"

	"github.com/vrrplb/vrrplb/cmd/vrrplb/internal/engine"
)

// TestMain lets the test binary be the VRRP engine too: the daemon under
// test starts /proc/self/exe vrrp-engine, which is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == engine.Command {
		os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
