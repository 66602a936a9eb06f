package keepalived

import (
	"testing"

	"github.com/vrrplb/vrrplb/config/internal/importtest"
)

// FuzzKeepalived feeds Parse arbitrary bytes: it must return a tree or an
// *Error located in the file, never panic. Seeds are in testdata/fuzz.
func FuzzKeepalived(f *testing.F) {
	importtest.Fuzz(f, "fuzz.conf", Parse, func(t *testing.T, nodes []*Node) {
		for n := range importtest.Walk(nodes, children) {
			if len(n.Args) == 0 {
				t.Fatalf("node at line %d has no keyword", n.Line)
			}
		}
	})
}

func children(n *Node) []*Node { return n.Children }
