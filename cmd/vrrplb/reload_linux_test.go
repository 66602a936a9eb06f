package main

import (
	"strings"
	"syscall"
	"testing"

	"github.com/vrrplb/vrrplb/internal/testroot"
)

// The same with the real VRRP engine: a reload that adds a backend and an
// instance on an interface that does not exist is refused by the engine,
// and the proxy keeps its old backend set. (Before reloads were prepared,
// the proxy applied the new backends first and the engine then refused.)
func TestAReloadTheEngineRefusesLeavesTheProxyAsItWas(t *testing.T) {
	testroot.Require(t, "a config with instances needs CAP_NET_RAW and CAP_NET_ADMIN")
	var logs syncBuffer
	be1, be2 := echoBackend(t), echoBackend(t)
	_, sig, dir, base, listen := startProxyDaemon(t, &logs, be1, nil)
	eventually(t, "be1 healthy in /status", func() bool {
		return strings.Contains(backendsInStatus(t, base), `"healthy":true`)
	})
	before := backendsInStatus(t, base)

	next := frontendConfig(strings.TrimPrefix(base, "http://"), listen, be1, be2) + `
[[instance]]
name = "vip"
interface = "vrrplbnone0"
virtual_router_id = 51
virtual_ips = ["192.0.2.100/24"]
  [[instance.track_frontend]]
  name = "api"
`
	writeFile(t, dir, "vrrplb.toml", next)
	sig <- syscall.SIGHUP
	eventually(t, "the reload is rejected", func() bool {
		_, body := get(t, base+"/metrics")
		return metricLine(body, "vrrplb_config_last_reload_successful") == "vrrplb_config_last_reload_successful 0"
	})
	if after := backendsInStatus(t, base); after != before {
		t.Errorf("a reload the engine refused changed the proxy:\nbefore %s\nafter  %s", before, after)
	}
	if !strings.Contains(logs.String(), "vrrplbnone0") {
		t.Errorf("the engine's refusal is not logged:\n%s", logs.String())
	}
}
