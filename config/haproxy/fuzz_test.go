package haproxy

import (
	"testing"

	"github.com/vrrplb/vrrplb/config/internal/importtest"
)

// FuzzHaproxy feeds Parse arbitrary bytes: it must return sections or an
// *Error located in the file, never panic. Seeds are in testdata/fuzz.
func FuzzHaproxy(f *testing.F) {
	importtest.Fuzz(f, "fuzz.cfg", Parse, func(t *testing.T, ss []*Section) {
		for _, s := range ss {
			for _, l := range s.Lines {
				if len(l.Words) == 0 {
					t.Fatalf("line %d has no words", l.Line)
				}
			}
		}
	})
}
