// Command vrrplb holds a virtual IP with VRRP and proxies it to healthy
// Kubernetes apiservers: the keepalived + nginx/haproxy pair in one binary.
//
// It parses the command line and runs the subcommands: check, convert and
// status print; run builds the daemon from the config — the proxy's
// frontends and health checkers, the VRRP engine child process (package
// engine, which runs a vrrp.Set) and the admin HTTP server — runs them
// under one errgroup with the signal handler, and reloads on SIGHUP all or
// nothing: every component prepares the new config before any applies it.
// What a reload changes in each component is decided in the component's
// package (vrrp.Set, proxy.NeedsNewFrontend), not here.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/vrrplb/vrrplb/cmd/vrrplb/internal/engine"
	"github.com/vrrplb/vrrplb/config"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = ""
)

const usage = `vrrplb: a VRRP virtual IP and a TCP proxy for Kubernetes apiservers, in one binary.

Usage:
  vrrplb run     [--config FILE]            run the daemon (default FILE %[1]s)
  vrrplb check   [--config FILE]            validate FILE and print the effective config
  vrrplb status  [--admin ADDR] [--json]    ask a running daemon for its state
  vrrplb maintenance on|off [--instance NAME] [--socket PATH]
                                            hand this host's VIPs over (on) or take them back (off)
  vrrplb backend drain|enable ADDR [--frontend NAME] [--force] [--socket PATH]
                                            stop (drain) or resume (enable) new connections to ADDR
  vrrplb convert --keepalived FILE [--nginx FILE | --haproxy FILE]
                                            print an equivalent vrrplb.toml
  vrrplb version                            print version, commit and Go version
  vrrplb help [COMMAND]                     this text, or a command's flags

Signals to "run": SIGHUP reloads the config (a bad file is rejected and the old
one keeps running); SIGTERM or SIGINT hand the VIP over, drain connections and
exit 0; a second SIGTERM or SIGINT exits at once. maintenance and backend go to
the admin socket (default %[2]s, root or vrrplb's user only); what they
set survives SIGHUP and is lost when vrrplb restarts.
`

// errUsage marks a command-line mistake: exit 2, like flag's own errors.
var errUsage = errors.New("usage")

// exitError carries an exit code chosen by a command, with its message already printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// commands maps each subcommand to its implementation.
var commands = map[string]func(args []string, stdout, stderr io.Writer) error{
	"run":         cmdRun,
	"check":       cmdCheck,
	"status":      cmdStatus,
	"version":     cmdVersion,
	"convert":     cmdConvert,
	"maintenance": cmdMaintenance,
	"backend":     cmdBackend,
	// Not in the usage: `vrrplb run` starts it (package engine).
	engine.Command: cmdVRRPEngine,
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, defaultConfigPath, config.DefaultAdminSocket)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && commands[rest[0]] != nil {
			return exitCode(commands[rest[0]]([]string{"-h"}, stdout, stderr), stderr)
		}
		fmt.Fprintf(stdout, usage, defaultConfigPath, config.DefaultAdminSocket)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "vrrplb: unknown command %q\n\n", name)
		fmt.Fprintf(stderr, usage, defaultConfigPath, config.DefaultAdminSocket)
		return 2
	}
	return exitCode(cmd(rest, stdout, stderr), stderr)
}

func exitCode(err error, stderr io.Writer) int {
	var ee exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ee):
		return ee.code
	}
	fmt.Fprintf(stderr, "vrrplb: %v\n", err)
	return 1
}

// newFlags makes a subcommand's flag set that reports errors to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vrrplb "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, mapping flag's errors to errUsage; no positional
// arguments are accepted.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// cmdVRRPEngine is the VRRP engine process (engine.Main).
func cmdVRRPEngine(args []string, _, stderr io.Writer) error {
	if len(args) != 0 {
		return errUsage
	}
	return engine.Main(stderr)
}

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "vrrplb %s (commit %s, %s %s/%s)\n", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// buildCommit is the stamped commit, or the one Go recorded from the checkout.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "unknown"
}
