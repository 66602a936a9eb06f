package main

import (
	"os"
	"strings"
	"testing"
)

const secretConfig = `[[instance]]
name = "vip"
interface = "eth0"
virtual_router_id = 51
version = 2
virtual_ips = ["192.0.2.1"]
auth_pass = "s3cr3t"
`

func TestCheckMasksSecretsAndWarnsWhenOthersCanReadThem(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "vrrplb.toml", secretConfig)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "check", "--config", p)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if strings.Contains(out, "s3cr3t") || strings.Contains(errOut, "s3cr3t") {
		t.Errorf("check printed the password:\n%s\n%s", out, errOut)
	}
	if !strings.Contains(out, `auth_pass = "********"`) {
		t.Errorf("the password is not shown masked:\n%s", out)
	}
	want := p + `:7: warning: instance "vip": auth_pass: a secret in a file every user can read (mode 0644)`
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks the warning\n got %s\nwant %s…", errOut, want)
	}

	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, errOut := run(t, "check", "--config", p); strings.Contains(errOut, "warning") {
		t.Errorf("a private file is warned about:\n%s", errOut)
	}
}
