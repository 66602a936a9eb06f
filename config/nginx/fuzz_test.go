package nginx

import (
	"errors"
	"strings"
	"testing"
)

// FuzzNginx feeds Parse arbitrary bytes: it must return a tree or an *Error
// located in the file, never panic. Seeds are in testdata/fuzz.
func FuzzNginx(f *testing.F) {
	f.Add([]byte("stream {\n  upstream u { server 10.0.0.1:6443; }\n  server { listen 8443; proxy_pass u; }\n}\n"))
	f.Add([]byte("stream { server { listen 8443 }"))
	f.Add([]byte("stream { log_format x '\\'' \"\\\"\"; }"))
	f.Fuzz(func(t *testing.T, src []byte) {
		ds, err := Parse("fuzz.conf", src)
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
		var walk func([]*Directive)
		walk = func(ds []*Directive) {
			for _, d := range ds {
				if d.Line < 1 {
					t.Fatalf("directive %q has no line", d.Name)
				}
				walk(d.Children)
			}
		}
		walk(ds)
	})
}
