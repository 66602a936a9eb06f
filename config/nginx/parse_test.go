package nginx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type shape struct {
	Line     int
	Name     string
	Args     []string
	Children []shape
}

func shapes(ds []*Directive) []shape {
	var out []shape
	for _, d := range ds {
		out = append(out, shape{Line: d.Line, Name: d.Name, Args: d.Args, Children: shapes(d.Children)})
	}
	return out
}

func TestParseReadsNginxSyntax(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []shape
	}{
		{
			name: "a stream block with an upstream and a server",
			src:  "stream {\n  upstream u { least_conn; server 10.0.0.1:6443 max_fails=3; }\n  server {\n    listen 8443; # the VIP port\n    proxy_pass u;\n  }\n}\n",
			want: []shape{{Line: 1, Name: "stream", Children: []shape{
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
			name: "quotes keep blanks and semicolons, and escapes are resolved",
			src:  "stream {\n  log_format p '$remote_addr; \\'x\\'' \"a b\";\n}\n",
			want: []shape{{Line: 1, Name: "stream", Children: []shape{
				{Line: 2, Name: "log_format", Args: []string{"p", "$remote_addr; 'x'", "a b"}},
			}}},
		},
		{
			name: "the contents of http are kept but not checked",
			src:  "http {\n  anything goes here;\n  location / { whatever; }\n}\n",
			want: []shape{{Line: 1, Name: "http", Children: []shape{
				{Line: 2, Name: "anything", Args: []string{"goes", "here"}},
				{Line: 3, Name: "location", Args: []string{"/"}, Children: []shape{{Line: 3, Name: "whatever"}}},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := Parse("n.conf", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, shapes(ds)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrorsNameTheFileAndLine(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("n.conf", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.src)
			}
			var located *Error
			if !errors.As(err, &located) {
				t.Errorf("error %v is not an *Error", err)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadFollowsIncludesFromTheMainFilesDirectory(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"nginx.conf":            "stream {\n  include stream.d/*.conf;\n}\nhttp {\n  include /nonexistent/mime.types;\n}\n",
		"stream.d/api.conf":     "upstream api {\n  include upstreams/api.servers;\n}\n",
		"upstreams/api.servers": "server 10.0.0.1:6443;\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
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
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shadow"), []byte("root:$6$c2VjcmV0$secrethash:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("include shadow;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(filepath.Join(dir, "nginx.conf"))
	if err == nil || !strings.Contains(err.Error(), "shadow:1:") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Load = %v, want an error at shadow:1 that does not quote it", err)
	}
}

func TestLoadRefusesAnIncludedDevice(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("include /dev/zero;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(filepath.Join(dir, "nginx.conf"))
	if err == nil || !strings.Contains(err.Error(), "not a regular file (a device)") {
		t.Fatalf("Load = %v, want the device refused", err)
	}
}
