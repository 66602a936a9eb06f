package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/vrrp"
)

const defaultConfigPath = config.DefaultPath

// cmdCheck validates a config file like `nginx -t`: the effective config on
// stdout and exit 0, or every located error on stderr and exit 1.
func cmdCheck(args []string, stdout, stderr io.Writer) error {
	cfg, path, err := loadConfigFlag("check", "config `FILE` to validate", args, stderr)
	if err != nil {
		return err
	}
	// Scripts that would run as root but that another user can change are
	// refused at start: say so now.
	if err := vrrp.CheckScripts(cfg); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return exitError{code: 1}
	}
	for _, w := range config.SecretWarnings(cfg) {
		fmt.Fprintln(stderr, w)
	}
	for _, n := range config.TakeoverNotes(cfg) {
		fmt.Fprintf(stderr, "%s: %s\n", *path, n)
	}
	if err := config.RenderMasked(stdout, cfg); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	counts := fmt.Sprintf("%d instances, %d frontends", len(cfg.Instances), len(cfg.Frontends))
	if len(cfg.Announces) > 0 {
		counts += fmt.Sprintf(", %d BGP announcements to %d peers", len(cfg.Announces), len(cfg.BGP.Peers))
	}
	fmt.Fprintf(stderr, "%s: configuration is valid (%s); secrets are printed as %q\n",
		*path, counts, config.MaskedSecret)
	return nil
}

// loadConfigFlag parses a command's --config flag (and no other) and loads
// the file, printing its errors one a line; a bad file is exit status 1.
func loadConfigFlag(command, usage string, args []string, stderr io.Writer) (cfg *config.Config, path *string, err error) {
	fs := newFlags(command, stderr)
	path = fs.String("config", defaultConfigPath, usage)
	if err := parseFlags(fs, args); err != nil {
		return nil, nil, err
	}
	cfg, err = config.Load(*path)
	if err != nil {
		printConfigError(stderr, err)
		return nil, nil, exitError{code: 1}
	}
	return cfg, path, nil
}

// configProblems splits a config error into its problems, each with its
// FILE:LINE when it has one: the one way cmd shows a config error, whether
// printed (check, run, convert) or logged (reload).
func configProblems(err error) []string {
	var es config.Errors
	if !errors.As(err, &es) {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Error())
	}
	return out
}

// printConfigError writes a config error one problem a line; an error
// without a location says it comes from vrrplb.
func printConfigError(w io.Writer, err error) {
	var es config.Errors
	if !errors.As(err, &es) {
		fmt.Fprintf(w, "vrrplb: %v\n", err)
		return
	}
	for _, p := range configProblems(err) {
		fmt.Fprintln(w, p)
	}
}

// logConfigError logs a config error one problem a line.
func logConfigError(log *slog.Logger, msg string, err error) {
	for _, p := range configProblems(err) {
		log.Error(msg, "err", p)
	}
}
