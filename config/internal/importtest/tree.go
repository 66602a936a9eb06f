package importtest

import "iter"

// Walk yields every node of a tree, depth first, each before its children.
func Walk[N any](roots []N, children func(N) []N) iter.Seq[N] {
	return func(yield func(N) bool) {
		var walk func([]N) bool
		walk = func(ns []N) bool {
			for _, n := range ns {
				if !yield(n) || !walk(children(n)) {
					return false
				}
			}
			return true
		}
		walk(roots)
	}
}

// Map maps a tree to the shapes a test compares: one makes a node's shape
// from the node and the shapes of its children.
func Map[N, S any](roots []N, children func(N) []N, one func(n N, kids []S) S) []S {
	var out []S
	for _, n := range roots {
		out = append(out, one(n, Map(children(n), children, one)))
	}
	return out
}
