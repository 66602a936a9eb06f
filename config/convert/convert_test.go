package convert

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"

	"github.com/vrrplb/vrrplb/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenCases finds the cases in testdata: NAME.keepalived.conf,
// NAME.nginx.conf and NAME.haproxy.cfg, each optional, and NAME.golden.
func goldenCases(t *testing.T) map[string]Options {
	t.Helper()
	cases := map[string]Options{}
	for _, pattern := range []string{"*.keepalived.conf", "*.nginx.conf", "*.haproxy.cfg"} {
		files, err := filepath.Glob(filepath.Join("testdata", pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			base := filepath.Base(f)
			name := base[:strings.IndexByte(base, '.')]
			o := cases[name]
			o.ScriptRoot = filepath.Join("testdata", "root")
			switch {
			case strings.HasSuffix(base, ".keepalived.conf"):
				o.Keepalived = f
			case strings.HasSuffix(base, ".nginx.conf"):
				o.Nginx = f
			default:
				o.HAProxy = f
			}
			cases[name] = o
		}
	}
	return cases
}

func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) < 8 {
		t.Fatalf("found %d golden cases in testdata, want at least 8", len(names))
	}
	for _, name := range names {
		opts := cases[name]
		t.Run(name, func(t *testing.T) {
			got, err := Convert(opts)
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("output differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// TestGoldenOutputsAreValidConfigs shows that every converted file is TOML
// and passes vrrplb's own validation (what `vrrplb check` runs).
func TestGoldenOutputsAreValidConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var anything map[string]any
			if _, err := toml.Decode(string(data), &anything); err != nil {
				t.Fatalf("not TOML: %v", err)
			}
			cfg, err := config.Parse(f, data)
			if err != nil {
				t.Fatalf("config.Parse rejects the converted file:\n%v", err)
			}
			if len(cfg.Instances)+len(cfg.Frontends) == 0 {
				t.Fatal("converted config has neither instances nor frontends")
			}
		})
	}
}

func TestConvertNeedsAnInput(t *testing.T) {
	_, err := Convert(Options{})
	if !errors.Is(err, ErrNoInput) {
		t.Fatalf("Convert with no file: got %v, want ErrNoInput", err)
	}
	_, err = Convert(Options{Nginx: "a", HAProxy: "b"})
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("Convert with nginx and haproxy: got %v, want an error saying not both", err)
	}
}
