// Package importtest is what the tests of the three importers (keepalived,
// nginx, haproxy) share: table runners for parse trees and FILE:LINE errors,
// the fuzz contract of a parser, and files written for Load. It is for tests:
// the daemon does not use it.
package importtest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config"
)

// TreeCase is a source and the tree a parser must read from it, reduced to
// a shape S that a test compares.
type TreeCase[S any] struct {
	Name string
	Src  string
	Want S
}

// Trees parses each case's source as file and compares shape(tree) with
// its Want.
func Trees[T, S any](t *testing.T, file string, parse func(string, []byte) (T, error), shape func(T) S, cases []TreeCase[S]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			tree, err := parse(file, []byte(tc.Src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tc.Want, shape(tree)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
		})
	}
}

// ErrorCase is a source a parser must refuse and the error it must say. It
// is an unnamed struct so that tables list the three without keys.
type ErrorCase = struct{ Name, Src, Want string }

// Errors parses each case's source as file: it must fail with a
// *config.Error that reads Want.
func Errors[T any](t *testing.T, file string, parse func(string, []byte) (T, error), cases []ErrorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			_, err := parse(file, []byte(tc.Src))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.Src)
			}
			var located *config.Error
			if !errors.As(err, &located) {
				t.Errorf("error %v is not an *Error", err)
			}
			if diff := cmp.Diff(tc.Want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// Fuzz feeds parse the fuzzer's inputs as file: it must return a tree,
// which check looks at, or a *config.Error located in the input's lines;
// never panic.
func Fuzz[T any](f *testing.F, file string, parse func(string, []byte) (T, error), check func(*testing.T, T)) {
	f.Fuzz(func(t *testing.T, src []byte) {
		tree, err := parse(file, src)
		if err == nil {
			check(t, tree)
			return
		}
		var located *config.Error
		if !errors.As(err, &located) {
			t.Fatalf("error %v is not an *Error", err)
		}
		lines := strings.Count(string(src), "\n") + 1
		if located.File != file || located.Line < 1 || located.Line > lines {
			t.Fatalf("error %q is not located in the input's %d lines", err, lines)
		}
	})
}
