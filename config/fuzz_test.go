package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to the parser: it must never panic, must
// either accept or return located Errors, and what it accepts must render to
// text it accepts again.
func FuzzParse(f *testing.F) {
	examples, _ := filepath.Glob("../deploy/examples/*.toml")
	for _, e := range examples {
		if b, err := os.ReadFile(e); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(instanceHead + "virtual_ips = [\"192.0.2.1\"]\n"))
	f.Add([]byte(frontendHead + "[frontend.health]\ntype = \"tcp\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is not Errors: %T %v", err, err)
			}
			return
		}
		var buf bytes.Buffer
		if err := Render(&buf, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := Parse("fuzz.toml", buf.Bytes()); err != nil {
			t.Fatalf("accepted config renders to rejected text: %v\n%s", err, buf.String())
		}
	})
}
