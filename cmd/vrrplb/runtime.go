package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/vrrplb/vrrplb/config"
)

// cmdMaintenance is `vrrplb maintenance on|off [--instance NAME] [--socket PATH]`.
func cmdMaintenance(args []string, stdout, stderr io.Writer) error {
	fs, socket := runtimeFlags("maintenance", stderr, "on|off [--instance NAME] [--socket PATH]",
		"on: this host hands its VIPs to a peer and stays in the election at the lowest priority,\n"+
			"keeping its proxy running; off: it takes its priority back. Lost when vrrplb restarts.\n")
	instance := fs.String("instance", "", "only the instance `NAME` (default: every instance)")
	_, on, err := parseChoice(fs, args, 1, "on", "off")
	if err != nil {
		return err
	}
	return sendCommand(*socket, adminRequest{Maintenance: &maintenanceRequest{On: on, Instance: *instance}}, stdout)
}

// cmdBackend is `vrrplb backend drain|enable ADDR [--frontend NAME] [--force] [--socket PATH]`.
func cmdBackend(args []string, stdout, stderr io.Writer) error {
	fs, socket := runtimeFlags("backend", stderr, "drain|enable ADDR [--frontend NAME] [--force] [--socket PATH]",
		"drain: ADDR gets no new connections, live ones go on, health checks go on;\n"+
			"enable: it takes new connections again. Lost when vrrplb restarts.\n")
	frontend := fs.String("frontend", "", "only in the frontend `NAME` (default: every frontend with ADDR)")
	force := fs.Bool("force", false, "drain even the last backend that takes new connections")
	pos, drain, err := parseChoice(fs, args, 2, "drain", "enable")
	if err != nil {
		return err
	}
	if *force && !drain {
		fmt.Fprintln(stderr, "vrrplb backend: --force goes with drain")
		return errUsage
	}
	return sendCommand(*socket, adminRequest{Backend: &backendRequest{Drain: drain, Address: pos[1], Frontend: *frontend, Force: *force}}, stdout)
}

// runtimeFlags is the flag set of the runtime command name, with its
// --socket flag and a usage text of synopsis and about.
func runtimeFlags(name string, stderr io.Writer, synopsis, about string) (*flag.FlagSet, *string) {
	fs := newFlags(name, stderr)
	socket := fs.String("socket", config.DefaultAdminSocket, "the daemon's admin socket `PATH` ([admin] socket)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: vrrplb %s %s\n\n%s\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs, socket
}

// parseChoice parses args as flags around n positional arguments, the first
// of which must be yes (true) or no (false), and returns them with that
// choice.
func parseChoice(fs *flag.FlagSet, args []string, n int, yes, no string) ([]string, bool, error) {
	pos, err := parseInterspersed(fs, args, n)
	if err != nil {
		return nil, false, err
	}
	switch pos[0] {
	case yes:
		return pos, true, nil
	case no:
		return pos, false, nil
	}
	fmt.Fprintf(fs.Output(), "%s: %q: want %s or %s\n", fs.Name(), pos[0], yes, no)
	fs.Usage()
	return nil, false, errUsage
}

// parseInterspersed parses flags before, between and after exactly n
// positional arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string, n int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != n {
		fmt.Fprintf(fs.Output(), "%s: want %d argument(s), got %d\n", fs.Name(), n, len(pos))
		fs.Usage()
		return nil, errUsage
	}
	return pos, nil
}

// sendCommand gives req to the daemon at socket and prints what it did.
func sendCommand(socket string, req adminRequest, stdout io.Writer) error {
	c, err := net.DialTimeout("unix", socket, adminTimeout)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Errorf("no vrrplb answers on %s: is it running, with [admin] socket set to this path? (--socket PATH)", socket)
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return fmt.Errorf("%s: permission denied: run this as root or as the user vrrplb runs as", socket)
		}
		return fmt.Errorf("admin socket: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(adminTimeout))
	// A daemon that refuses the peer answers without reading: the answer
	// is read even when the command could not be written.
	werr := json.NewEncoder(c).Encode(req)
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		if werr != nil {
			err = werr
		}
		return fmt.Errorf("admin socket %s: no answer: %w", socket, err)
	}
	var reply adminReply
	if err := json.Unmarshal(line, &reply); err != nil {
		return fmt.Errorf("admin socket %s: an answer this vrrplb cannot read: %w", socket, err)
	}
	if reply.Error != "" {
		return errors.New(reply.Error)
	}
	for _, d := range reply.Done {
		fmt.Fprintln(stdout, d)
	}
	if len(reply.Done) == 0 {
		fmt.Fprintln(stdout, "nothing changed")
	}
	return nil
}
