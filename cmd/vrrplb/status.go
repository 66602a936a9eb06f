package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vrrplb/vrrplb/config"
)

// cmdStatus asks a running daemon's admin server for /status and prints it
// as a table, or as the raw JSON document with --json.
func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	addr := fs.String("admin", config.DefaultAdminListen, "the daemon's admin `ADDR` ([admin] listen)")
	asJSON := fs.Bool("json", false, "print the raw /status document")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	body, err := fetchStatus(ctx, *addr)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var doc statusDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("the admin server at %s sent a /status this vrrplb cannot read: %w", *addr, err)
	}
	return printStatus(stdout, doc)
}

func fetchStatus(ctx context.Context, addr string) ([]byte, error) {
	url := "http://" + addr + "/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("cannot reach the vrrplb admin server at %s: %v\n"+
				"  is vrrplb running, and is [admin] listen set to this address? (--admin ADDR)", addr, unwrapAll(err))
		}
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// unwrapAll returns the innermost error: "connection refused" rather than
// the whole chain of Get/dial prefixes.
func unwrapAll(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func printStatus(w io.Writer, doc statusDoc) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(doc.Instances) > 0 {
		fmt.Fprintln(tw, "INSTANCE\tSTATE\tPRIORITY\tMASTER\tVIRTUAL IPS\tHELD")
		for _, in := range doc.Instances {
			prio := fmt.Sprint(in.EffectivePriority)
			if in.EffectivePriority != in.Priority {
				prio = fmt.Sprintf("%d (configured %d)", in.EffectivePriority, in.Priority)
			}
			master := in.MasterIP
			if master == "" {
				master = "-"
			}
			state := strings.ToUpper(in.State)
			if in.Maintenance {
				state += " (maintenance)"
			}
			held := strings.Join(in.HeldIPs, ",")
			if held == "" {
				held = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, state, prio, master, strings.Join(in.VirtualIPs, ","), held)
		}
	}
	if len(doc.Frontends) > 0 {
		if len(doc.Instances) > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintln(tw, "FRONTEND\tLISTEN\tBACKEND\tHEALTH\tCONNECTIONS\tLAST CHECK")
		for _, fe := range doc.Frontends {
			if len(fe.Backends) == 0 {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\n", fe.Name, fe.Listen)
			}
			for i, b := range fe.Backends {
				name, listen := fe.Name, fe.Listen
				if i > 0 {
					name, listen = "", ""
				}
				health := "down"
				if b.Healthy {
					health = "up"
				}
				if b.Draining {
					health += ", draining"
				}
				reason := b.Reason
				if reason == "" {
					reason = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", name, listen, b.Address, health, b.ActiveConnections, reason)
			}
		}
	}
	for _, fe := range doc.Frontends {
		if fe.FailOpen {
			fmt.Fprintf(tw, "\nfrontend %s: no healthy backend, failing open: new connections go to every backend\n", fe.Name)
		}
	}
	if doc.InstancesStale {
		asOf := doc.InstancesAsOf
		if asOf == "" {
			asOf = "never"
		}
		fmt.Fprintf(tw, "\nthe VRRP engine did not answer in time (busy or restarting): instances as of %s\n", asOf)
	}
	if doc.BGP != nil {
		if len(doc.Instances) > 0 || len(doc.Frontends) > 0 {
			fmt.Fprintln(tw)
		}
		printBGPStatus(tw, doc.BGP, time.Now())
	}
	if len(doc.Instances) == 0 && len(doc.Frontends) == 0 && doc.BGP == nil {
		fmt.Fprintln(tw, "vrrplb is running with no instances and no frontends.")
	}
	return tw.Flush()
}
