package haproxy

import (
	"errors"
	"strings"
	"testing"
)

// FuzzHaproxy feeds Parse arbitrary bytes: it must return sections or an
// *Error located in the file, never panic. Seeds are in testdata/fuzz.
func FuzzHaproxy(f *testing.F) {
	f.Add([]byte("defaults\n  mode tcp\nlisten a\n  bind *:8443\n  server s 10.0.0.1:6443 check inter 2s\n"))
	f.Add([]byte("backend b\n  option httpchk GET /readyz\n  http-check expect status 200\n"))
	f.Add([]byte("frontend f\n  bind \"a b\\\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		ss, err := Parse("fuzz.cfg", src)
		if err != nil {
			var located *Error
			if !errors.As(err, &located) {
				t.Fatalf("error %v is not an *Error", err)
			}
			lines := strings.Count(string(src), "\n") + 1
			if located.File != "fuzz.cfg" || located.Line < 1 || located.Line > lines {
				t.Fatalf("error %q is not located in the input's %d lines", err, lines)
			}
			return
		}
		for _, s := range ss {
			for _, l := range s.Lines {
				if len(l.Words) == 0 {
					t.Fatalf("line %d has no words", l.Line)
				}
			}
		}
	})
}
