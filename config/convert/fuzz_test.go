package convert

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/config/haproxy"
	"github.com/vrrplb/vrrplb/config/keepalived"
	"github.com/vrrplb/vrrplb/config/nginx"
)

// located matches an error that names one of the fuzzed files and a line.
var located = regexp.MustCompile(`^(k\.conf|p\.conf):[0-9]+: `)

// FuzzConvert maps arbitrary keepalived and proxy files that parse: the
// mapping must fail with a located error or print TOML that vrrplb accepts,
// and never panic. Seeds are the golden inputs.
func FuzzConvert(f *testing.F) {
	for _, name := range []string{"kubeadm-haproxy", "nginx-master", "hardened-nopreempt", "unicast", "ipv6", "mismatch"} {
		ka, _ := os.ReadFile(filepath.Join("testdata", name+".keepalived.conf"))
		if px, err := os.ReadFile(filepath.Join("testdata", name+".nginx.conf")); err == nil {
			f.Add(ka, px, false)
		}
		if px, err := os.ReadFile(filepath.Join("testdata", name+".haproxy.cfg")); err == nil {
			f.Add(ka, px, true)
		}
	}
	// Script files are looked for under an empty directory: the fuzzer's
	// script paths must not read the machine's files.
	emptyRoot := f.TempDir()
	f.Fuzz(func(t *testing.T, ka, px []byte, isHaproxy bool) {
		nodes, err := keepalived.Parse("k.conf", ka)
		if err != nil {
			return
		}
		kr, err := fromKeepalived(nodes, Options{ScriptRoot: emptyRoot})
		if err != nil {
			if !located.MatchString(err.Error()) {
				t.Fatalf("keepalived mapping error is not located: %v", err)
			}
			return
		}
		kind := map[bool]string{true: "haproxy", false: "nginx"}[isHaproxy]
		var pr *proxyResult
		parsed := false
		if isHaproxy {
			pr, parsed, err = parseAndMap(px, haproxy.Parse, fromHaproxy)
		} else {
			pr, parsed, err = parseAndMap(px, nginx.Parse, fromNginx)
		}
		if !parsed {
			return
		}
		if err != nil {
			if !located.MatchString(err.Error()) {
				t.Fatalf("%s mapping error is not located: %v", kind, err)
			}
			return
		}
		out := render(Options{Keepalived: "k.conf", Nginx: "p.conf"}, kr, pr, kind)
		var anything map[string]any
		if _, err := toml.Decode(string(out), &anything); err != nil {
			t.Fatalf("output is not TOML: %v\n%s", err, out)
		}
		if len(kr.instances)+len(pr.frontends) == 0 {
			return // nothing converted: not a config vrrplb would run
		}
		if _, err := config.Parse("out.toml", out); err != nil {
			t.Fatalf("config.Parse rejects the output: %v\n%s", err, out)
		}
	})
}

// parseAndMap parses a fuzzed proxy config as p.conf and maps it; parsed is
// false when it does not parse, which is not the mapping's concern.
func parseAndMap[T any](px []byte, parse func(string, []byte) (T, error), from func(T) (*proxyResult, error)) (pr *proxyResult, parsed bool, err error) {
	tree, err := parse("p.conf", px)
	if err != nil {
		return nil, false, nil
	}
	pr, err = from(tree)
	return pr, true, err
}
