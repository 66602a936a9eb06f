package importtest

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFiles writes files (a path below the directory: its contents), with
// mode perm, into a new temporary directory and returns the directory.
func WriteFiles(t *testing.T, perm os.FileMode, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), perm); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
