package keepalived

import (
	"errors"
	"strings"
	"testing"
)

// FuzzKeepalived feeds Parse arbitrary bytes: it must return a tree or an
// *Error located in the file, never panic. Seeds are in testdata/fuzz.
func FuzzKeepalived(f *testing.F) {
	f.Add([]byte("vrrp_instance V {\n  interface eth0\n  virtual_ipaddress {\n    10.0.0.1/24\n  }\n}\n"))
	f.Add([]byte("vrrp_instance V\n{\n}\n}\n"))
	f.Add([]byte("vrrp_script s { script \"a \\\"b\" }"))
	f.Fuzz(func(t *testing.T, src []byte) {
		nodes, err := Parse("fuzz.conf", src)
		if err != nil {
			var located *Error
			if !errors.As(err, &located) {
				t.Fatalf("error %v is not an *Error", err)
			}
			lines := strings.Count(string(src), "\n") + 1
			if located.File != "fuzz.conf" || located.Line < 1 || located.Line > lines {
				t.Fatalf("error %q is not located in the input's %d lines", err, lines)
			}
			return
		}
		var walk func([]*Node)
		walk = func(ns []*Node) {
			for _, n := range ns {
				if len(n.Args) == 0 {
					t.Fatalf("node at line %d has no keyword", n.Line)
				}
				walk(n.Children)
			}
		}
		walk(nodes)
	})
}
