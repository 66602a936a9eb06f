package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a config file, located at a line.
type Error struct {
	File string
	// Line is 1-based; 0 when the problem has no single place (a missing section).
	Line int
	// Msg names the context and the key: `instance "vip": priority: must be 1..255`.
	Msg string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Errors is every problem found in one file, in line order. Parse reports all
// of them at once so an operator fixes a file in one pass.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
	return es
}
