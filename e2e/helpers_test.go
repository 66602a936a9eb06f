package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// fakeAPIServer runs the fake apiserver called name (every answer says it)
// on h at port and returns its address. With ready set, its /readyz passes
// only while that file exists; without, always.
func fakeAPIServer(t *testing.T, h *Host, port uint16, name, ready string) netip.AddrPort {
	t.Helper()
	addr := netip.AddrPortFrom(h.Addr4.Addr(), port)
	args := []string{Build(t, "github.com/vrrplb/vrrplb/e2e/fakeapiserver"), "-listen", addr.String(), "-name", name}
	if ready != "" {
		args = append(args, "-ready-file", ready)
	}
	h.Start("apiserver-"+name, args...)
	return addr
}

// lbConf is the config of an LB host in front of the lab's apiservers: one
// VRRP instance that yields while frontend "apiserver" has no healthy
// backend (track_frontend, weight 0), and that frontend with an https
// check of /readyz.
type lbConf struct {
	VRRPConf // the instance; its Extra comes before the track_frontend
	Backends []netip.AddrPort
	// Listen is the frontend's listen address; "" means ":8443".
	Listen string
	// Frontend is added to the [[frontend]] table verbatim.
	Frontend string
	// The check's interval, timeout, rise and fall; a zero value leaves the
	// key out (vrrplb's default).
	Interval, Timeout time.Duration
	Rise, Fall        int
	// Socket is the admin socket's path; "" leaves it off.
	Socket string
}

// config renders c as a whole vrrplb.toml.
func (c lbConf) config(t *testing.T) string {
	t.Helper()
	c.Extra += "\n  [[instance.track_frontend]]\n  name = \"apiserver\"\n  weight = 0\n"
	config := Config(c.VRRPConf)
	if c.Socket != "" {
		config = withAdminSocket(t, config, c.Socket)
	}
	if c.Listen == "" {
		c.Listen = ":8443"
	}
	backends := make([]string, len(c.Backends))
	for i, b := range c.Backends {
		backends[i] = fmt.Sprintf("%q", b.String())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n[[frontend]]\nname = \"apiserver\"\nlisten = %q\nbackends = [%s]\n%s", c.Listen, strings.Join(backends, ", "), c.Frontend)
	b.WriteString("\n  [frontend.health]\n  type = \"https\"\n  path = \"/readyz\"\n")
	if c.Interval != 0 {
		fmt.Fprintf(&b, "  interval = %q\n", c.Interval.String())
	}
	if c.Timeout != 0 {
		fmt.Fprintf(&b, "  timeout = %q\n", c.Timeout.String())
	}
	if c.Rise != 0 {
		fmt.Fprintf(&b, "  rise = %d\n", c.Rise)
	}
	if c.Fall != 0 {
		fmt.Fprintf(&b, "  fall = %d\n", c.Fall)
	}
	return config + b.String()
}
