package vrrp

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// geteuid is the daemon's effective user id; tests replace it.
var geteuid = os.Geteuid

// holdsCapabilities reports whether the daemon has any capability in its
// effective, permitted or ambient set; tests replace it.
var holdsCapabilities = processHoldsCapabilities

// CheckScriptSecurity refuses a track_script or notify command that another
// user can change although it runs with the daemon's privileges: the hole
// keepalived's enable_script_security closes. It applies when the command
// runs as root (scriptsUser, [scripts] user, is "" and the daemon runs as
// root, or it names a user with uid 0), and when it runs as the daemon's own
// non-root user while the daemon holds any capability (another user who can
// change the script then runs code as the daemon's user). Otherwise it
// returns nil.
//
// It checks the executable (found through PATH when argv[0] has no slash; a
// path that does not exist yet has the directories above it checked) and
// every absolute path in the other arguments, alone or among the words of
// one (["/bin/sh", "-c", "/srv/check.sh --fast"]), that names an existing
// regular file; each both as written and with symlinks resolved, and every
// directory above them. A file or directory is unsafe when a uid other than
// root's (or, for a non-root daemon, its own) owns it, when it is writable by
// a group other than root's, or when it is world-writable (a directory with
// the sticky bit, such as /tmp, is safe for root's own entries in it). The
// error names the path and why.
func CheckScriptSecurity(argv []string, scriptsUser string) error {
	if len(argv) == 0 {
		return nil
	}
	owner, how, err := scriptTrust(scriptsUser)
	if err != nil || how == "" {
		return err
	}
	exe, err := exec.LookPath(argv[0])
	if err != nil {
		// Nothing to run yet: the tracker counts it failing, the notifier
		// logs it. Whoever may create it later must be trusted, though.
		if !strings.Contains(argv[0], "/") {
			return nil
		}
		exe = argv[0]
	}
	files := []string{exe}
	for _, arg := range argv[1:] {
		for _, word := range strings.Fields(arg) {
			if !filepath.IsAbs(word) || slices.Contains(files, word) {
				continue
			}
			if fi, err := os.Stat(word); err == nil && fi.Mode().IsRegular() {
				files = append(files, word)
			}
		}
	}
	for _, f := range files {
		if err := checkPathSafe(f, owner); err != nil {
			return fmt.Errorf("%w: refusing to run it %s (fix the permissions or set [scripts] user)", err, how)
		}
	}
	return nil
}

// scriptTrust tells whether scripts run with privileges worth protecting,
// and then how (for the error) and which uid besides root may own them.
func scriptTrust(scriptsUser string) (owner uint32, how string, err error) {
	if scriptsUser != "" {
		cred, err := credentialOf(scriptsUser)
		if err != nil {
			return 0, "", err
		}
		if cred.Uid == 0 {
			return 0, "as root", nil
		}
		return 0, "", nil
	}
	euid := geteuid()
	switch {
	case euid == 0:
		return 0, "as root", nil
	case holdsCapabilities():
		return uint32(euid), "as the daemon's user, which holds capabilities", nil
	}
	return 0, "", nil
}

// checkPathSafe checks path, as written and resolved, and every directory
// above it.
func checkPathSafe(path string, owner uint32) error {
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
			err := entrySafe(dir, dir != p, owner)
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
func entrySafe(path string, isDir bool, owner uint32) error {
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
	case st.Uid != 0 && st.Uid != owner:
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
