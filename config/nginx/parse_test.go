package nginx

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config/internal/importtest"
)

type shape struct {
	Line     int
	Name     string
	Args     []string
	Children []shape
}

func shapes(ds []*Directive) []shape {
	return importtest.Map(ds, children, func(d *Directive, kids []shape) shape {
		return shape{Line: d.Line, Name: d.Name, Args: d.Args, Children: kids}
	})
}

func children(d *Directive) []*Directive { return d.Children }

func TestParseReadsNginxSyntax(t *testing.T) {
	importtest.Trees(t, "n.conf", Parse, shapes, []importtest.TreeCase[[]shape]{
		{
			Name: "a stream block with an upstream and a server",
			Src:  "stream {\n  upstream u { least_conn; server 10.0.0.1:6443 max_fails=3; }\n  server {\n    listen 8443; # the VIP port\n    proxy_pass u;\n  }\n}\n",
			Want: []shape{{Line: 1, Name: "stream", Children: []shape{
				{Line: 2, Name: "upstream", Args: []string{"u"}, Children: []shape{
					{Line: 2, Name: "least_conn"},
					{Line: 2, Name: "server", Args: []string{"10.0.0.1:6443", "max_fails=3"}},
				}},
				{Line: 3, Name: "server", Children: []shape{
					{Line: 4, Name: "listen", Args: []string{"8443"}},
					{Line: 5, Name: "proxy_pass", Args: []string{"u"}},
				}},
			}}},
		},
		{
			Name: "quotes keep blanks and semicolons, and escapes are resolved",
			Src:  "stream {\n  log_format p '$remote_addr; \\'x\\'' \"a b\";\n}\n",
			Want: []shape{{Line: 1, Name: "stream", Children: []shape{
				{Line: 2, Name: "log_format", Args: []string{"p", "$remote_addr; 'x'", "a b"}},
			}}},
		},
		{
			Name: "the contents of http are kept but not checked",
			Src:  "http {\n  anything goes here;\n  location / { whatever; }\n}\n",
			Want: []shape{{Line: 1, Name: "http", Children: []shape{
				{Line: 2, Name: "anything", Args: []string{"goes", "here"}},
				{Line: 3, Name: "location", Args: []string{"/"}, Children: []shape{{Line: 3, Name: "whatever"}}},
			}}},
		},
	})
}

func TestParseErrorsNameTheFileAndLine(t *testing.T) {
	importtest.Errors(t, "n.conf", Parse, []importtest.ErrorCase{
		{"an unterminated block points at its opening line", "stream {\n  server {\n    listen 8443;\n", `n.conf:2: unexpected end of file: block "server" is not closed by "}"`},
		{"a directive without its semicolon before a closing brace", "stream {\n  server {\n    listen 8443\n  }\n}\n", `n.conf:4: unexpected "}": directive "listen" is not terminated by ";"`},
		{"a directive without its semicolon at the end of the file", "worker_processes 2", `n.conf:1: unexpected end of file: directive "worker_processes" is not terminated by ";"`},
		{"a stray closing brace", "stream {\n}\n}\n", `n.conf:3: unexpected "}"`},
		{"a lone semicolon", "stream {\n  ;\n}\n", `n.conf:2: unexpected ";"`},
		{"a lone opening brace", "{\n}\n", `n.conf:1: unexpected "{"`},
		{"an unknown directive in a stream server", "stream {\n  server {\n    listen 8443;\n    proxy_pas u;\n  }\n}\n", `n.conf:4: unknown directive "proxy_pas"`},
		{"an unknown directive in an upstream", "stream {\n  upstream u {\n    least_con;\n  }\n}\n", `n.conf:3: unknown directive "least_con"`},
		{"an unknown directive at the top", "strem {\n}\n", `n.conf:1: unknown directive "strem"`},
		{"a block directive used as a plain one", "stream;\n", `n.conf:1: directive "stream" has no opening "{"`},
		{"a plain directive used as a block", "stream {\n  proxy_timeout { 1s; }\n}\n", `n.conf:2: directive "proxy_timeout" is not a block`},
		{"an unterminated quote points at where it starts", "stream {\n  log_format p 'abc;\n}\n", `n.conf:2: unterminated quoted string`},
		{"an include read from memory", "stream {\n  include s.conf;\n}\n", `n.conf:2: include is read only from a file on disk`},
	})
}

func TestLoadFollowsIncludesFromTheMainFilesDirectory(t *testing.T) {
	dir := importtest.WriteFiles(t, 0o644, map[string]string{
		"nginx.conf":            "stream {\n  include stream.d/*.conf;\n}\nhttp {\n  include /nonexistent/mime.types;\n}\n",
		"stream.d/api.conf":     "upstream api {\n  include upstreams/api.servers;\n}\n",
		"upstreams/api.servers": "server 10.0.0.1:6443;\n",
	})
	ds, err := Load(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	up := ds[0].Children[0]
	got := []string{filepath.Base(up.File) + ":" + up.Name, filepath.Base(up.Children[0].File) + ":" + up.Children[0].Name + " " + strings.Join(up.Children[0].Args, " ")}
	want := []string{"api.conf:upstream", "api.servers:server 10.0.0.1:6443"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("included directives (-want +got):\n%s", diff)
	}
}

func TestLoadDoesNotQuoteAForeignIncludedFile(t *testing.T) {
	dir := importtest.WriteFiles(t, 0o600, map[string]string{
		"shadow":     "root:$6$c2VjcmV0$secrethash:19000:0:99999:7:::\n",
		"nginx.conf": "include shadow;\n",
	})
	_, err := Load(filepath.Join(dir, "nginx.conf"))
	if err == nil || !strings.Contains(err.Error(), "shadow:1:") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Load = %v, want an error at shadow:1 that does not quote it", err)
	}
}

func TestLoadRefusesAnIncludedDevice(t *testing.T) {
	dir := importtest.WriteFiles(t, 0o600, map[string]string{"nginx.conf": "include /dev/zero;\n"})
	_, err := Load(filepath.Join(dir, "nginx.conf"))
	if err == nil || !strings.Contains(err.Error(), "not a regular file (a device)") {
		t.Fatalf("Load = %v, want the device refused", err)
	}
}
