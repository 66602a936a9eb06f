package k8s

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/e2e"
)

// kubectl through the VIP: the apiservers answer, objects are made, read,
// listed and deleted, and `vrrplb status` on the master shows the three
// apiservers up.
func TestKubectlThroughTheVIP(t *testing.T) {
	c := NewCluster(t, Options{})
	kubectlWorks(t, c)
	if held := c.HeldIPs(lb1); len(held) != 1 || held[0] != e2e.VIP4.String() {
		t.Errorf("h1, the master, says it holds %v, want [%s]", held, e2e.VIP4)
	}
	if held := c.HeldIPs(lb2); len(held) != 0 {
		t.Errorf("h2, a backup, says it holds %v, want none", held)
	}
}

// A reload that changes only the tracker's weight applies in place: the
// master keeps the VIP without a transition, and kubectl's connections
// through it go on.
func TestReloadOfTrackerWeightKeepsTheVIP(t *testing.T) {
	c := NewCluster(t, Options{})
	h1 := c.Host(lb1)
	// A restarted instance goes through backup again.
	transitions := func() float64 {
		t.Helper()
		n, err := h1.Metric("vrrplb_instance_transitions_total", `to="backup"`)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := transitions()
	inf := c.Client("informer", "informer")
	inf.Wait(t, 60*time.Second, "synced", func(e Event) bool { return e.Event == "synced" })
	cfg := c.LBConfig(lb1)
	reweighted := strings.Replace(cfg, "weight = 0", "weight = -20", 1)
	if reweighted == cfg {
		t.Fatal("the LB config has no tracker weight to change")
	}
	h1.WriteConfig(reweighted)
	c.LBs[0].Signal(syscall.SIGHUP)
	e2e.Eventually(t, 10*time.Second, func() (bool, string) {
		ts, _ := h1.Metric("vrrplb_config_last_reload_success_timestamp_seconds")
		return ts > 0 && time.Since(time.Unix(int64(ts), 0)) < time.Minute, "h1 did not reload"
	})
	c.Lab.StaysMaster(t, h1, VIP(), 2*time.Second)
	if after := transitions(); after != before {
		t.Errorf("h1 went to backup %v times across the reweighting reload, want none", after-before)
	}
	// The informer's watch through the VIP was not disturbed: an object
	// made now reaches it at once.
	if out, err := c.Kubectl("create", "configmap", "after-reload"); err != nil {
		t.Fatalf("kubectl create after the reload: %v %s", err, out)
	}
	inf.Wait(t, 5*time.Second, "the object made after the reload", func(e Event) bool {
		return e.Event == "add" && e.Name == "after-reload"
	})
}

func kubectlWorks(t *testing.T, c *Cluster) {
	t.Helper()
	must := func(args ...string) string {
		t.Helper()
		out, err := c.Kubectl(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	if out := must("get", "--raw", "/readyz"); strings.TrimSpace(out) != "ok" {
		t.Errorf("kubectl get --raw /readyz through the VIP = %q, want ok", out)
	}
	must("create", "configmap", "kubectl-check", "--from-literal=a=b")
	if out := must("get", "configmap", "kubectl-check", "-o", "jsonpath={.data.a}"); out != "b" {
		t.Errorf("kubectl get configmap: data.a = %q, want b", out)
	}
	if out := must("get", "configmaps", "-o", "name"); !strings.Contains(out, "configmap/kubectl-check") {
		t.Errorf("kubectl get configmaps does not list kubectl-check:\n%s", out)
	}
	must("delete", "configmap", "kubectl-check")
	if out, err := c.Kubectl("get", "configmap", "kubectl-check"); err == nil || !strings.Contains(out, "NotFound") {
		t.Errorf("kubectl-check still there after delete: %v %s", err, out)
	}
	out, err := c.Host(lb1).Exec(e2e.Binary(t), "status", "--admin", e2e.AdminAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vrrplb status on h1:\n%s", out)
	for n := range 3 {
		if !statusLineSays(out, APIAddr(n).String(), "up") {
			t.Errorf("vrrplb status does not show %s up:\n%s", APIAddr(n), out)
		}
	}
	if !statusLineSays(out, "vip", "MASTER") {
		t.Errorf("vrrplb status on h1 does not show the instance MASTER:\n%s", out)
	}
}

// statusLineSays reports whether a line of `vrrplb status` holds both key
// and word as fields.
func statusLineSays(out, key, word string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if containsField(f, key) && containsField(f, word) {
			return true
		}
	}
	return false
}

func containsField(f []string, s string) bool {
	for _, x := range f {
		if x == s {
			return true
		}
	}
	return false
}

func findAdd(evs []Event, name string) string {
	for _, e := range evs {
		if e.Event == "add" && e.Name == name {
			return e.RV
		}
	}
	return ""
}

// figures are the measurements of the run, printed at its end for the
// issue's note.
var figures []string
