package vrrp

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// geteuid is the daemon's effective user id; tests replace it.
var geteuid = os.Geteuid

// CheckScriptSecurity refuses a track_script or notify command that would run
// as root although a user other than root can change it, the hole keepalived's
// enable_script_security closes. It applies when the command runs as root:
// scriptsUser ([scripts] user) is "" and the daemon runs as root, or it names
// a user with uid 0. Otherwise it returns nil.
//
// It checks the executable (found through PATH when argv[0] has no slash; a
// path that does not exist yet has the directories above it checked)
// and, for the "interpreter script" form, argv[1] when it is an absolute path
// to an existing file; each both as written and with symlinks resolved, and
// every directory above them. A file or directory is unsafe when a non-root
// uid owns it, when it is writable by a group other than root's, or when it
// is world-writable (a directory with the sticky bit, such as /tmp, is safe
// for root's own entries in it). The error names the path and why.
func CheckScriptSecurity(argv []string, scriptsUser string) error {
	if len(argv) == 0 {
		return nil
	}
	root, err := runsAsRoot(scriptsUser)
	if err != nil || !root {
		return err
	}
	exe, err := exec.LookPath(argv[0])
	if err != nil {
		// Nothing to run yet: the tracker counts it failing, the notifier
		// logs it. Whoever may create it later must be root, though.
		if !strings.Contains(argv[0], "/") {
			return nil
		}
		exe = argv[0]
	}
	files := []string{exe}
	if len(argv) > 1 && filepath.IsAbs(argv[1]) {
		if fi, err := os.Stat(argv[1]); err == nil && fi.Mode().IsRegular() {
			files = append(files, argv[1])
		}
	}
	for _, f := range files {
		if err := checkPathSafe(f); err != nil {
			return fmt.Errorf("%w: refusing to run it as root (fix the permissions or set [scripts] user)", err)
		}
	}
	return nil
}

// runsAsRoot reports whether scripts run with uid 0.
func runsAsRoot(scriptsUser string) (bool, error) {
	if scriptsUser == "" {
		return geteuid() == 0, nil
	}
	cred, err := credentialOf(scriptsUser)
	if err != nil {
		return false, err
	}
	return cred.Uid == 0, nil
}

// checkPathSafe checks path, as written and resolved, and every directory
// above it.
func checkPathSafe(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	paths := []string{abs}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil && resolved != abs {
		paths = append(paths, resolved)
	}
	for _, p := range paths {
		for dir := p; ; dir = filepath.Dir(dir) {
			err := entrySafe(dir, dir != p)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	return nil
}

// entrySafe checks one file or directory, itself and not what a symlink
// points to (a symlink's own mode is always 0777; only who owns it counts).
func entrySafe(path string, isDir bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner information", path)
	}
	mode := fi.Mode()
	switch {
	case st.Uid != 0:
		return fmt.Errorf("%s is writable by uid %d", path, st.Uid)
	case mode&fs.ModeSymlink != 0:
		return nil
	case mode.Perm()&0o002 != 0 && !(isDir && mode&fs.ModeSticky != 0):
		return fmt.Errorf("%s is writable by every user (mode %s)", path, permString(mode))
	case mode.Perm()&0o020 != 0 && st.Gid != 0 && !(isDir && mode&fs.ModeSticky != 0):
		return fmt.Errorf("%s is writable by group %d (mode %s)", path, st.Gid, permString(mode))
	}
	return nil
}

// permString is a mode as chmod takes it: 0775, 1777.
func permString(m fs.FileMode) string {
	p := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	return fmt.Sprintf("%04o", p)
}
