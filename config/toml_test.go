package config

import (
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestTOMLStringParsesBackToTheSameText(t *testing.T) {
	for _, s := range []string{"", "plain", `say "hi"`, `C:\path`, "tab\tand\nnewline", "bell\a", "ünïcode ✓"} {
		var got struct{ V string }
		if _, err := toml.Decode("V = "+TOMLString(s), &got); err != nil {
			t.Fatalf("TOMLString(%q) = %s does not parse: %v", s, TOMLString(s), err)
		}
		if got.V != s {
			t.Errorf("TOMLString(%q) parses back as %q", s, got.V)
		}
	}
	// Invalid UTF-8, as an imported file may hold, still gives valid TOML.
	var got struct{ V string }
	if _, err := toml.Decode("V = "+TOMLString("a\xffb"), &got); err != nil || got.V != "a\uFFFDb" {
		t.Errorf("invalid UTF-8: %q, %v; want a\\uFFFDb", got.V, err)
	}
}

func TestFormatDurationIsShortAndParsesBack(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 100 * time.Millisecond: "100ms", time.Second: "1s", 1500 * time.Millisecond: "1.5s",
		10 * time.Minute: "10m", 2 * time.Hour: "2h", 90 * time.Minute: "90m", 1234567 * time.Microsecond: "1.234567s",
	} {
		got := FormatDuration(d)
		if got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("FormatDuration(%v) = %q parses back as %v, %v", d, got, back, err)
		}
	}
}
