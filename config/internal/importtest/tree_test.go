package importtest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

type node struct {
	name string
	kids []*node
}

func TestWalkVisitsEachNodeBeforeItsChildrenAndStopsWhenAsked(t *testing.T) {
	tree := []*node{{name: "a", kids: []*node{{name: "a1"}, {name: "a2"}}}, {name: "b"}}
	var got []string
	for n := range Walk(tree, func(n *node) []*node { return n.kids }) {
		got = append(got, n.name)
	}
	if diff := cmp.Diff([]string{"a", "a1", "a2", "b"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	got = nil
	for n := range Walk(tree, func(n *node) []*node { return n.kids }) {
		got = append(got, n.name)
		if n.name == "a1" {
			break
		}
	}
	if diff := cmp.Diff([]string{"a", "a1"}, got); diff != "" {
		t.Errorf("after a break (-want +got):\n%s", diff)
	}
}

func TestMapShapesEachNodeWithItsChildren(t *testing.T) {
	type shape struct {
		Name string
		Kids []shape
	}
	tree := []*node{{name: "a", kids: []*node{{name: "a1"}}}, {name: "b"}}
	got := Map(tree, func(n *node) []*node { return n.kids }, func(n *node, kids []shape) shape {
		return shape{Name: n.name, Kids: kids}
	})
	want := []shape{{Name: "a", Kids: []shape{{Name: "a1"}}}, {Name: "b"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("shapes (-want +got):\n%s", diff)
	}
}
