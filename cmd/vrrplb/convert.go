package main

import (
	"fmt"
	"io"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/config/convert"
)

// cmdConvert prints the vrrplb.toml equivalent to a keepalived.conf and an
// nginx or haproxy configuration. A problem in an input is printed as
// FILE:LINE: message and exits 1.
func cmdConvert(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("convert", stderr)
	var opts convert.Options
	fs.StringVar(&opts.Keepalived, "keepalived", "", "keepalived.conf `FILE` (gives the [[instance]] tables)")
	fs.StringVar(&opts.Nginx, "nginx", "", "nginx configuration `FILE` with a stream { } block (gives the [[frontend]] tables)")
	fs.StringVar(&opts.HAProxy, "haproxy", "", "haproxy.cfg `FILE` (gives the [[frontend]] tables)")
	fs.StringVar(&opts.ConfigID, "config-id", "", "read a conditional keepalived.conf as keepalived -i `ID` does: @ID lines kept, @^ID lines dropped")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case opts.Keepalived == "" && opts.Nginx == "" && opts.HAProxy == "":
		fmt.Fprintln(stderr, "vrrplb convert: give --keepalived FILE, and --nginx FILE or --haproxy FILE, or either alone")
		fs.Usage()
		return errUsage
	case opts.Nginx != "" && opts.HAProxy != "":
		fmt.Fprintln(stderr, "vrrplb convert: give --nginx or --haproxy, not both")
		fs.Usage()
		return errUsage
	}
	out, err := convert.Convert(opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError{code: 1}
	}
	if _, err := stdout.Write(out); err != nil {
		return fmt.Errorf("write converted config: %w", err)
	}
	// What convert prints must pass `vrrplb check`; say so if it does not.
	cfg, err := config.Parse("converted.toml", out)
	if err != nil {
		fmt.Fprintln(stderr, "vrrplb convert: the converted config does not pass vrrplb check; fix these lines before use:")
		for _, p := range configProblems(err) {
			fmt.Fprintln(stderr, p)
		}
		return exitError{code: 1}
	}
	fmt.Fprintf(stderr, "vrrplb convert: %d instances, %d frontends; read every comment before use\n", len(cfg.Instances), len(cfg.Frontends))
	return nil
}
