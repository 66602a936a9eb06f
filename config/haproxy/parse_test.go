package haproxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrplb/vrrplb/config/internal/importtest"
)

type shape struct {
	Line  int
	Kind  string
	Name  string
	Lines [][]string
}

func shapes(ss []*Section) []shape {
	var out []shape
	for _, s := range ss {
		sh := shape{Line: s.Line, Kind: s.Kind, Name: s.Name}
		for _, l := range s.Lines {
			sh.Lines = append(sh.Lines, l.Words)
		}
		out = append(out, sh)
	}
	return out
}

func TestParseReadsHaproxySyntax(t *testing.T) {
	importtest.Trees(t, "h.cfg", Parse, shapes, []importtest.TreeCase[[]shape]{
		{
			Name: "sections with comments and blank lines",
			Src:  "# top\nglobal\n    daemon\n\ndefaults\n    mode tcp # inline\nlisten api\n    bind *:8443\n    server s1 10.0.0.1:6443 check\n",
			Want: []shape{
				{Line: 2, Kind: "global", Lines: [][]string{{"daemon"}}},
				{Line: 5, Kind: "defaults", Lines: [][]string{{"mode", "tcp"}}},
				{Line: 7, Kind: "listen", Name: "api", Lines: [][]string{{"bind", "*:8443"}, {"server", "s1", "10.0.0.1:6443", "check"}}},
			},
		},
		{
			Name: "quotes, escapes and a # inside quotes",
			Src:  "backend b\n    http-check send meth GET uri \"/ready z\" hdr X 'a#b'\n    acl x path_beg \\#y\n",
			Want: []shape{
				{Line: 1, Kind: "backend", Name: "b", Lines: [][]string{
					{"http-check", "send", "meth", "GET", "uri", "/ready z", "hdr", "X", "a#b"},
					{"acl", "x", "path_beg", "#y"},
				}},
			},
		},
		{
			Name: "global and other sections are not checked",
			Src:  "global\n    made-up-keyword 1\nresolvers dns\n    nameserver a 10.0.0.53:53\n",
			Want: []shape{
				{Line: 1, Kind: "global", Lines: [][]string{{"made-up-keyword", "1"}}},
				{Line: 3, Kind: "resolvers", Name: "dns", Lines: [][]string{{"nameserver", "a", "10.0.0.53:53"}}},
			},
		},
	})
}

func TestParseErrorsNameTheFileAndLine(t *testing.T) {
	importtest.Errors(t, "h.cfg", Parse, []importtest.ErrorCase{
		{"a line before any section", "\n    bind *:8443\nlisten a\n", `h.cfg:2: "bind" is outside any section (global, defaults, frontend, backend, listen)`},
		{"an unknown keyword in a listen section", "listen a\n    bind *:8443\n    balanse roundrobin\n", `h.cfg:3: unknown keyword "balanse" in listen section`},
		{"an unknown keyword in defaults", "defaults\n    timeuot connect 5s\n", `h.cfg:2: unknown keyword "timeuot" in defaults section`},
		{"an unknown keyword after no", "backend b\n    no optoin x\n", `h.cfg:2: unknown keyword "optoin" in backend section`},
		{"a proxy without a name", "frontend\n    bind :1\n", `h.cfg:1: frontend needs a name`},
		{"an unterminated quote", "backend b\n    http-check send uri \"/x\n", `h.cfg:2: unterminated quoted string`},
	})
}

func TestLoadDoesNotQuoteAForeignFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(p, []byte("root:$6$c2VjcmV0$secrethash:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "shadow:1:") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Load = %v, want an error at shadow:1 that does not quote it", err)
	}
	if _, err := Load("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Load(/dev/zero) = %v, want the device refused", err)
	}
}
