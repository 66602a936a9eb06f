package convert

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/vrrplb/vrrplb/config"
)

// apiserverPort is where kube-apiserver listens; backends on it get an https
// /readyz check unless the input asks for another check.
const apiserverPort = "6443"

// frontend is one proxy (nginx stream server, haproxy listen or frontend) on
// its way to a [[frontend]] table.
type frontend struct {
	at       string
	notes    []string
	keyNotes map[string][]string
	name     string
	listen   string
	balance  string
	backends []string

	connectTimeout *time.Duration
	retries        *int
	idleTimeout    *time.Duration
	maxConnections int
	health         health
}

func (f *frontend) note(key, text string) {
	if f.keyNotes == nil {
		f.keyNotes = map[string][]string{}
	}
	f.keyNotes[key] = append(f.keyNotes[key], text)
}

// health is the [frontend.health] table.
type health struct {
	notes        []string
	typ          string
	path         string
	expectStatus []int
	interval     time.Duration // 0: vrrplb's default
	timeout      time.Duration
	rise         int
	fall         int
	caFile       string
	serverName   string
}

// servesAPIServers tells an apiserver frontend: its backends are on :6443, or
// its check is of /readyz or /healthz.
func (f *frontend) servesAPIServers() bool {
	return allOnPort(f.backends, apiserverPort) || f.health.path == "/readyz" || f.health.path == "/healthz" || f.health.path == "/livez"
}

// allOnPort reports whether every backend is on port.
func allOnPort(backends []string, port string) bool {
	if len(backends) == 0 {
		return false
	}
	for _, b := range backends {
		_, p, err := net.SplitHostPort(b)
		if err != nil || p != port {
			return false
		}
	}
	return true
}

// apiserverDefault sets the https /readyz check vrrplb uses for apiservers.
func (h *health) apiserverDefault() {
	h.typ = "https"
	h.path = "/readyz"
	h.expectStatus = []int{200}
}

// uniqueName returns name, or name-2, name-3, ... if taken.
func uniqueName(name string, taken map[string]bool) string {
	n := name
	for i := 2; taken[n]; i++ {
		n = name + "-" + strconv.Itoa(i)
	}
	taken[n] = true
	return n
}

// listenHost returns the host of a listen address ("" for a wildcard).
func listenHost(listen string) string {
	h, _, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	switch h {
	case "", "*", "0.0.0.0", "::":
		return ""
	}
	return h
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func joinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

// joinPort joins host and port and checks the result the way config.Parse
// will: a port 1..65535 written plainly and a host that can be dialled.
func joinPort(host, port string) (string, error) {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", fmt.Errorf("port %q: must be 1..65535", port)
	}
	addr := net.JoinHostPort(host, port)
	if err := config.CheckHostPort(addr); err != nil {
		return "", err
	}
	return addr, nil
}

// extraListen is the note for a second listen address of one proxy
// (another bind or listen line), which vrrplb, one address per frontend,
// does not take: advice that `vrrplb check` accepts.
func extraListen(at, what, extra, kept string) string {
	_, keptPort, _ := net.SplitHostPort(kept)
	extraHost, extraPort, err := net.SplitHostPort(extra)
	switch {
	case err != nil:
		return notCarried(at, what, "one listen address per frontend")
	case listenHost(extra) == "" && listenHost(kept) != "":
		return notCarried(at, what, fmt.Sprintf("one listen address per frontend: listen = %q answers on %s only; write listen = \":%s\" to answer on every address, as this line did", kept, listenHost(kept), extraPort))
	case config.ListenOverlap(extra, kept):
		return notCarried(at, what, fmt.Sprintf("listen = %q already answers there", kept))
	case extraPort == keptPort:
		return notCarried(at, what, fmt.Sprintf("one listen address per frontend: write listen = \":%s\" to answer on %s and every other address", extraPort, extraHost))
	}
	return notCarried(at, what, fmt.Sprintf("one listen address per frontend: add a [[frontend]] with listen = %q, another name and the same backends", extra))
}
