package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goSources calls f with every non-test Go file of the module.
func goSources(t *testing.T, f func(path, text string)) {
	t.Helper()
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f(path, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// STYLE.md: the error key of a log line is err, everywhere.
func TestLogLinesNameTheirErrorErr(t *testing.T) {
	errorKey := regexp.MustCompile(`"error", err\b`)
	goSources(t, func(path, text string) {
		for i, line := range strings.Split(text, "\n") {
			if errorKey.MatchString(line) {
				t.Errorf("%s:%d: log key \"error\"; use \"err\"", path, i+1)
			}
		}
	})
}
