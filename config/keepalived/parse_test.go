package keepalived

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config/internal/importtest"
)

// shape is a node reduced to what a test compares.
type shape struct {
	Line     int
	Args     []string
	Raw      string
	Children []shape
}

func shapes(nodes []*Node) []shape {
	return importtest.Map(nodes, children, func(n *Node, kids []shape) shape {
		return shape{Line: n.Line, Args: n.Args, Raw: n.Raw, Children: kids}
	})
}

func TestParseReadsKeepalivedSyntax(t *testing.T) {
	importtest.Trees(t, "k.conf", Parse, shapes, []importtest.TreeCase[[]shape]{
		{
			Name: "braces on the same line and comments with ! and # are dropped",
			Src:  "! a comment\nvrrp_instance VI_1 { # trailing\n  interface eth0 ! also trailing\n}\n",
			Want: []shape{{Line: 2, Args: []string{"vrrp_instance", "VI_1"}, Raw: "VI_1", Children: []shape{
				{Line: 3, Args: []string{"interface", "eth0"}, Raw: "eth0"},
			}}},
		},
		{
			Name: "a brace on the next line opens the block of the line before",
			Src:  "vrrp_instance VI_1\n{\n  virtual_ipaddress\n  {\n    10.0.0.1/24 dev eth0\n  }\n}\n",
			Want: []shape{{Line: 1, Args: []string{"vrrp_instance", "VI_1"}, Raw: "VI_1", Children: []shape{
				{Line: 3, Args: []string{"virtual_ipaddress"}, Children: []shape{
					{Line: 5, Args: []string{"10.0.0.1/24", "dev", "eth0"}, Raw: "dev eth0"},
				}},
			}}},
		},
		{
			Name: "a whole block on one line",
			Src:  "vrrp_instance V { virtual_ipaddress { 10.0.0.1 10.0.0.2 } }\n",
			Want: []shape{{Line: 1, Args: []string{"vrrp_instance", "V"}, Raw: "V", Children: []shape{
				{Line: 1, Args: []string{"virtual_ipaddress"}, Children: []shape{
					{Line: 1, Args: []string{"10.0.0.1", "10.0.0.2"}, Raw: "10.0.0.2"},
				}},
			}}},
		},
		{
			Name: "double quotes keep blanks in one word and Raw keeps the quotes",
			Src:  "vrrp_script s {\n  script \"/bin/check.sh --port 8443\"\n}\n",
			Want: []shape{{Line: 1, Args: []string{"vrrp_script", "s"}, Raw: "s", Children: []shape{
				{Line: 2, Args: []string{"script", "/bin/check.sh --port 8443"}, Raw: `"/bin/check.sh --port 8443"`},
			}}},
		},
		{
			Name: "a # inside quotes is not a comment",
			Src:  "vrrp_script s {\n  script \"echo #1\"\n}\n",
			Want: []shape{{Line: 1, Args: []string{"vrrp_script", "s"}, Raw: "s", Children: []shape{
				{Line: 2, Args: []string{"script", "echo #1"}, Raw: `"echo #1"`},
			}}},
		},
	})
}

func TestParseErrorsNameTheFileAndLine(t *testing.T) {
	importtest.Errors(t, "k.conf", Parse, []importtest.ErrorCase{
		{"an unterminated block points at its opening line", "global_defs {\n}\nvrrp_instance VI_1 {\n  interface eth0\n", `k.conf:3: block "vrrp_instance VI_1" is not closed`},
		{"a stray closing brace", "vrrp_instance V {\n}\n}\n", `k.conf:3: unexpected "}"`},
		{"a block where a line is expected", "vrrp_instance V {\n  priority { 100 }\n}\n", `k.conf:2: priority takes no { } block`},
		{"a line where a block is expected", "vrrp_instance V {\n  virtual_ipaddress 10.0.0.1\n}\n", `k.conf:2: virtual_ipaddress needs a { } block`},
		{"an instance without a block", "vrrp_instance V\n", `k.conf:1: vrrp_instance needs a { } block`},
		{"an unterminated quote", "vrrp_script s {\n  script \"/x\n}\n", `k.conf:2: unterminated quoted string`},
		{"a brace with nothing before it", "{\n}\n", `k.conf:1: "{" without a keyword before it`},
		{"an include read from memory", "include other.conf\n", `k.conf:1: include is read only from a file on disk`},
	})
}

// keepalived logs a keyword it does not know and skips the line: the parser
// marks it for the importer to report, and never fails on it (issue 18).
func TestUnknownKeywordsAreMarkedNotFatal(t *testing.T) {
	for name, src := range map[string]string{
		"in an instance":     "vrrp_instance V {\n  interface eth0\n  virtual_routr_id 5\n}\n",
		"at the top":         "vrrp_instanse V {\n}\n",
		"in a script":        "vrrp_script s {\n  scirpt /x\n}\n",
		"in authentication":  "vrrp_instance V {\n authentication {\n  auth_typ PASS\n }\n}\n",
		"a block at the top": "static_route {\n  10.0.0.0/8 via 10.0.0.1\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			nodes, err := Parse("k.conf", []byte(src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var unknown []string
			for n := range importtest.Walk(nodes, children) {
				if n.Unknown {
					unknown = append(unknown, n.Keyword())
				}
			}
			if len(unknown) != 1 {
				t.Errorf("unknown keywords marked: %q, want the one", unknown)
			}
		})
	}
}

func TestConditionalLinesAreSelectedByConfigID(t *testing.T) {
	src := "vrrp_instance V {\n  @main priority 99\n  @^main priority 98\n  @other state MASTER\n}\n@backup vrrp_script s {\n  script /x\n}\n"
	nodes, err := Parse("k.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ids, first := Conditions(nodes)
	if diff := cmp.Diff([]string{"backup", "main", "other"}, ids); diff != "" || first == nil || first.Line != 2 {
		t.Errorf("Conditions = %q (-want +got %s), first %v", ids, diff, first)
	}
	got := shapes(Select(nodes, "main"))
	want := []shape{{Line: 1, Args: []string{"vrrp_instance", "V"}, Raw: "V", Children: []shape{
		{Line: 2, Args: []string{"priority", "99"}, Raw: "99"},
	}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Select main (-want +got):\n%s", diff)
	}
}

func TestLoadFollowsIncludesRelativeToTheIncludingFile(t *testing.T) {
	dir := importtest.WriteFiles(t, 0o644, map[string]string{
		"keepalived.conf":        "global_defs {\n}\ninclude conf.d/*.conf\n",
		"conf.d/a.conf":          "vrrp_instance A {\n  include ../vips/a.inc\n}\n",
		"conf.d/b.conf":          "vrrp_instance B {\n}\n",
		"vips/a.inc":             "virtual_ipaddress {\n  10.0.0.1\n}\n",
		"conf.d/ignored.conf.no": "this is not read",
	})
	nodes, err := Load(filepath.Join(dir, "keepalived.conf"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var got []string
	for _, n := range nodes {
		got = append(got, filepath.Base(n.File)+":"+strings.Join(n.Args, " "))
		for _, c := range n.Children {
			got = append(got, "  "+filepath.Base(c.File)+":"+strings.Join(c.Args, " "))
		}
	}
	want := []string{"keepalived.conf:global_defs", "a.conf:vrrp_instance A", "  a.inc:virtual_ipaddress", "b.conf:vrrp_instance B"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string // suffix after the temp dir
	}{
		{"an error in an included file names that file", map[string]string{
			"keepalived.conf": "include bad.conf\n",
			"bad.conf":        "\nvrrp_instance V {\n",
		}, `bad.conf:2: block "vrrp_instance V" is not closed`},
		{"a missing include file is named at the include line", map[string]string{
			"keepalived.conf": "\ninclude missing.conf\n",
		}, `keepalived.conf:2: include "missing.conf": no such file`},
		{"a file that includes itself stops at the depth limit", map[string]string{
			"keepalived.conf": "include keepalived.conf\n",
		}, `keepalived.conf:1: include "keepalived.conf": includes nested deeper than 8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := importtest.WriteFiles(t, 0o644, tt.files)
			_, err := Load(filepath.Join(dir, "keepalived.conf"))
			if err == nil {
				t.Fatal("Load accepted it")
			}
			if !strings.HasSuffix(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), dir) {
				t.Errorf("error %q, want %s/...%s", err, dir, tt.want)
			}
		})
	}
}

func TestLoadOfAMissingFileSaysSo(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.conf"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want an error wrapping os.ErrNotExist", err)
	}
}

// A secret-holding file of the shape of /etc/shadow.
const shadowLike = "root:$6$c2VjcmV0$secrethash:19000:0:99999:7:::\n"

func TestLoadBoundsWhatIncludesRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Six files each including the next four times: 4^5 = 1024 reads
	// without a bound on the files read in all.
	for i := 1; i <= 6; i++ {
		text := "vrrp_script s { script /bin/true }\n"
		if i < 6 {
			text += strings.Repeat("include f"+string(rune('0'+i+1))+".conf\n", 4)
		}
		write("f"+string(rune('0'+i))+".conf", text)
	}
	write("zero.conf", "include /dev/zero\n")
	write("shadow", shadowLike)
	write("shadow.conf", "include shadow\n")
	for _, tc := range []struct{ name, file, want string }{
		{"a fan of includes stops at the limit of files read", "f1.conf", "files read in all"},
		{"an included device is refused, not read", "zero.conf", `zero.conf:1: include "/dev/zero": not a regular file (a device)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(filepath.Join(dir, tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error quotes the included file: %v", err)
			}
		})
	}
}

func TestAConditionalIncludeMakesItsLinesConditional(t *testing.T) {
	dir := importtest.WriteFiles(t, 0o644, map[string]string{
		"keepalived.conf": "@main include main.conf\n",
		"main.conf":       "vrrp_script s {\n  script /x\n}\n",
	})
	nodes, err := Load(filepath.Join(dir, "keepalived.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(Select(nodes, "backup")); n != 0 {
		t.Errorf("config id backup keeps %d lines of main.conf, want none", n)
	}
	if n := len(Select(nodes, "main")); n != 1 {
		t.Errorf("config id main keeps %d lines of main.conf, want 1", n)
	}
}
