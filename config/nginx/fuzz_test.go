package nginx

import (
	"testing"

	"github.com/vrrplb/vrrplb/config/internal/importtest"
)

// FuzzNginx feeds Parse arbitrary bytes: it must return a tree or an *Error
// located in the file, never panic. Seeds are in testdata/fuzz.
func FuzzNginx(f *testing.F) {
	importtest.Fuzz(f, "fuzz.conf", Parse, func(t *testing.T, ds []*Directive) {
		for d := range importtest.Walk(ds, children) {
			if d.Line < 1 {
				t.Fatalf("directive %q has no line", d.Name)
			}
		}
	})
}
