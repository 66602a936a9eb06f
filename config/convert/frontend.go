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
