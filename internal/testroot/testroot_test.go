package testroot

import "testing"

func TestRequireGoesOnAsRootAndSkipsOrFailsOtherwise(t *testing.T) {
	for _, tc := range []struct {
		name          string
		root, mustRun bool
		want          string
	}{
		{"as root the test goes on", true, true, ""},
		{"as root without VRRPLB_E2E the test goes on", true, false, ""},
		{"not root with VRRPLB_E2E=1 the test fails", false, true, "fail"},
		{"not root without VRRPLB_E2E the test skips", false, false, "skip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeTB{TB: t}
			func() {
				defer func() { _ = recover() }() // fakeTB ends a Skip or Fatal by panicking
				require(ft, tc.root, tc.mustRun, "a test of Require")
			}()
			if ft.verdict != tc.want {
				t.Errorf("verdict %q, want %q", ft.verdict, tc.want)
			}
		})
	}
}

// fakeTB records whether require skipped or failed the test instead of
// doing it.
type fakeTB struct {
	testing.TB
	verdict string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skipf(string, ...any) { f.verdict = "skip"; panic("skip") }

func (f *fakeTB) Fatalf(string, ...any) { f.verdict = "fail"; panic("fatal") }
