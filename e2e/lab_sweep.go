package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// A lab's cleanup deletes its namespaces, but a run that is killed (the
// test binary's -timeout, SIGKILL, a demo stopped hard) runs no cleanup.
// So each lab holds a lock file for as long as its process lives, and the
// next lab made on the host deletes the namespaces of every lab whose lock
// nobody holds any more: the kernel drops a flock with its last holder,
// however that process ended.

// labLockDir holds one lock file a lab, named by the lab's ID.
var labLockDir = "/run/vrrplb-e2e"

// labNamespace matches the namespaces NewLab names: "e2e", the ID, then
// "br" or "h" and a host number.
var labNamespace = regexp.MustCompile(`^e2e([0-9]{1,5}[0-9a-f]{4})(?:br|h[0-9]+)$`)

var sweepOnce sync.Once

// claimLab creates the lab's lock file and locks it; closing it (or the
// process ending) releases the lab.
func claimLab(id string) (*os.File, error) {
	if err := os.MkdirAll(labLockDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(labLockDir, id), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// releaseLab unlocks and removes the lab's lock file.
func releaseLab(f *os.File) {
	os.Remove(f.Name())
	f.Close()
}

// sweepStaleLabs deletes the namespaces of labs whose lock file nobody
// holds, and those lock files. A lab still being made or torn down holds
// its lock, so it is left alone. It returns what it deleted.
func sweepStaleLabs() ([]string, error) {
	out, err := sh("ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	byLab := map[string][]string{}
	for _, name := range netnsNames(out) {
		if m := labNamespace.FindStringSubmatch(name); m != nil {
			byLab[m[1]] = append(byLab[m[1]], name)
		}
	}
	var deleted []string
	var errs []error
	for id, names := range byLab {
		f, err := os.OpenFile(filepath.Join(labLockDir, id), os.O_RDWR, 0)
		if err != nil {
			continue // no lock file: not a lab this code made, or one being made
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close()
			continue // its process runs
		}
		for _, name := range names {
			if out, err := sh("ip", "netns", "del", name); err != nil {
				errs = append(errs, fmt.Errorf("remove stale namespace %s: %v %s", name, err, out))
				continue
			}
			deleted = append(deleted, name)
		}
		releaseLab(f)
	}
	return deleted, errors.Join(errs...)
}

// sweepStaleLabsOnce runs sweepStaleLabs once a process and logs what it
// deleted.
func sweepStaleLabsOnce(t TB) {
	sweepOnce.Do(func() {
		deleted, err := sweepStaleLabs()
		if len(deleted) > 0 {
			t.Logf("removed the namespaces of labs whose run was killed: %s", strings.Join(deleted, " "))
		}
		if err != nil {
			t.Errorf("%v", err)
		}
	})
}

// netnsNames is the names in `ip netns list` output ("name (id: 3)").
func netnsNames(list string) []string {
	var names []string
	for _, line := range strings.Split(list, "\n") {
		if name, _, _ := strings.Cut(strings.TrimSpace(line), " "); name != "" {
			names = append(names, name)
		}
	}
	return names
}
