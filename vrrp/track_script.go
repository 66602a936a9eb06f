package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/clock"
)

// ScriptOptions are the optional parts of a ScriptTracker.
type ScriptOptions struct {
	// User runs the script as this user ([scripts] user); "" runs it as the
	// daemon's own user.
	User string
	// Logger receives state changes and scripts that cannot run; nil discards.
	Logger *slog.Logger
	// Clock times the interval between checks; nil is clock.System.
	Clock clock.Clock
}

// ScriptTracker runs a track_script command every interval and reports its
// state with keepalived's fall/rise hysteresis: fall failures in a row make a
// passing script fail, rise successes in a row make a failing one pass.
//
// The command is run directly (argv, no shell) in its own process group. A
// run that outlives timeout has its whole group killed and counts as a
// failure, as does a command that cannot be started.
type ScriptTracker struct {
	name  string
	cfg   config.TrackScript
	cred  *syscall.Credential
	log   *slog.Logger
	clock clock.Clock
}

// NewScriptTracker returns the tracker of one track_script. It fails when the
// command is empty, the user does not exist, or the command would run as root
// while another user can change it (CheckScriptSecurity).
func NewScriptTracker(cfg config.TrackScript, opts ScriptOptions) (*ScriptTracker, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("track_script: empty command")
	}
	name := strings.Join(cfg.Command, " ")
	cred, err := credentialOf(opts.User)
	if err != nil {
		return nil, fmt.Errorf("track_script %q: %w", name, err)
	}
	if err := CheckScriptsUser(opts.User); err != nil {
		return nil, fmt.Errorf("track_script %q: %w", name, err)
	}
	if err := CheckScriptSecurity(cfg.Command, opts.User); err != nil {
		return nil, fmt.Errorf("track_script %q: %w", name, err)
	}
	s := &ScriptTracker{name: name, cfg: cfg, cred: cred, log: opts.Logger, clock: clock.Or(opts.Clock)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.cfg.Fall < 1 {
		s.cfg.Fall = 1
	}
	if s.cfg.Rise < 1 {
		s.cfg.Rise = 1
	}
	if s.cfg.Interval <= 0 {
		s.cfg.Interval = time.Second
	}
	return s, nil
}

// Name is the command line, for logs and status.
func (s *ScriptTracker) Name() string { return s.name }

// Run checks at once, reports the first result, then checks every interval
// and reports each change of state, until ctx ends.
func (s *ScriptTracker) Run(ctx context.Context, report func(ok bool)) error {
	ok := s.check(ctx)
	if ctx.Err() != nil {
		return nil
	}
	report(ok)
	streak := 0 // results in a row that disagree with ok
	for clock.Sleep(ctx, s.clock, s.cfg.Interval) {
		passed := s.check(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if passed == ok {
			streak = 0
			continue
		}
		streak++
		need := s.cfg.Fall
		if passed {
			need = s.cfg.Rise
		}
		if streak < need {
			continue
		}
		ok, streak = passed, 0
		s.log.Info("track script changed state", "script", s.name, "ok", ok)
		report(ok)
	}
	return nil
}

// check runs the command once and tells whether it exited 0 in time.
func (s *ScriptTracker) check(ctx context.Context) bool {
	err := runCommand(ctx, s.cfg.Command, s.cred, s.cfg.Timeout, true)
	if err == nil {
		return true
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		// Could not start, or timed out: worth a line each time.
		s.log.Warn("track script failed", "script", s.name, "err", err)
	}
	return false
}

// errTimeout is returned by runCommand when the command outlives its timeout.
var errTimeout = errors.New("timed out; process group killed")

// runCommand runs argv in a new process group as cred (nil: our own user),
// without the daemon's privileges or environment (startUnprivileged), and
// waits for it. After timeout (0: no limit) or when ctx ends, the whole
// group is killed with SIGKILL; with reap, so are children the command left
// behind when it exits. Output is discarded, so a child left behind cannot
// keep a pipe, and Wait, open.
func runCommand(ctx context.Context, argv []string, cred *syscall.Credential, timeout time.Duration, reap bool) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := startUnprivileged(cmd, cred != nil); err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case err := <-done:
		if reap {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		return err
	case <-expired:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s: %w after %s", argv[0], errTimeout, timeout)
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return ctx.Err()
	}
}

// credentialOf resolves a user name to the credential scripts run with; ""
// gives nil, the daemon's own user.
func credentialOf(name string) (*syscall.Credential, error) {
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("scripts user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("scripts user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("scripts user %s: gid %q: %w", name, u.Gid, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if gids, err := u.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(n))
			}
		}
	}
	return cred, nil
}
