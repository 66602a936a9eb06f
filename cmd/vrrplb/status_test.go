package main

import (
	"strings"
	"testing"
)

func TestStatusShowsWhatTheLastCheckOfEachBackendFound(t *testing.T) {
	doc := statusDoc{Frontends: []frontendStatus{{
		Name: "apiserver", Listen: ":8443",
		Backends: []backendStatus{
			{Address: "10.0.0.1:6443", Reason: "status 401 (check not allowed)"},
			{Address: "10.0.0.2:6443", Healthy: true, ActiveConnections: 3, Reason: "status 200"},
			{Address: "10.0.0.3:6443"},
		},
	}}}
	var b strings.Builder
	if err := printStatus(&b, doc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"LAST CHECK",
		"10.0.0.1:6443  down    0            status 401 (check not allowed)",
		"10.0.0.2:6443  up      3            status 200",
		"10.0.0.3:6443  down    0            -",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, b.String())
		}
	}
}
