package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A lab whose run was killed leaves its namespaces and an unlocked lock
// file: the sweep deletes both. A lab whose process still holds its lock
// keeps everything.
func TestSweepRemovesTheNamespacesOfKilledRunsOnly(t *testing.T) {
	requireRoot(t)
	id := func() string { return fmt.Sprintf("%d%04x", os.Getpid()%100000, rand.IntN(0x10000)) }
	killed, live := id(), id()
	for live == killed {
		live = id()
	}
	addNS := func(name string) {
		must(t, "ip", "netns", "add", name)
		t.Cleanup(func() { sh("ip", "netns", "del", name) }) // fails harmlessly once swept
	}
	// The killed run: its namespaces and a lock file nobody holds.
	addNS("e2e" + killed + "br")
	addNS("e2e" + killed + "h1")
	if err := os.MkdirAll(labLockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(labLockDir, killed), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(labLockDir, killed)) })
	// The live run: this process holds its lock.
	lock, err := claimLab(live)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { releaseLab(lock) })
	addNS("e2e" + live + "br")

	deleted, err := sweepStaleLabs()
	if err != nil {
		t.Fatal(err)
	}
	names := netnsNames(must(t, "ip", "netns", "list"))
	for _, name := range []string{"e2e" + killed + "br", "e2e" + killed + "h1"} {
		if !slices.Contains(deleted, name) || slices.Contains(names, name) {
			t.Errorf("%s of the killed run: deleted %v, still listed %v", name, slices.Contains(deleted, name), slices.Contains(names, name))
		}
	}
	if _, err := os.Stat(filepath.Join(labLockDir, killed)); !os.IsNotExist(err) {
		t.Errorf("the killed run's lock file: %v, want it removed", err)
	}
	if name := "e2e" + live + "br"; slices.Contains(deleted, name) || !slices.Contains(names, name) {
		t.Errorf("%s of the live run was deleted", name)
	}
}
