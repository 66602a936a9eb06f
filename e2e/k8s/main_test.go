package k8s

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vrrplb/vrrplb/e2e"
)

// TestMain builds vrrplb and kclient once for the whole run, when the suite
// is asked for.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("VRRPLB_K8S") != "1" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "vrrplb-k8s-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8s:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	vrrplb := filepath.Join(dir, "vrrplb")
	if out, err := exec.Command("go", "build", "-o", vrrplb, "github.com/vrrplb/vrrplb/cmd/vrrplb").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "k8s: go build vrrplb: %v\n%s", err, out)
		return 1
	}
	e2e.UseProgram("github.com/vrrplb/vrrplb/cmd/vrrplb", vrrplb)
	if kclientPath, err = buildKclient(context.Background(), dir); err != nil {
		fmt.Fprintln(os.Stderr, "k8s:", err)
		return 1
	}
	code := m.Run()
	if len(figures) > 0 {
		fmt.Println("figures of this run:")
		for _, f := range figures {
			fmt.Println("  " + f)
		}
	}
	return code
}
