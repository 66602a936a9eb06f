package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestLoadReadsOnlyRegularFilesOfBoundedSize(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.toml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file one byte over the limit: its size is what counts.
	if err := f.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct{ name, path, want string }{
		{"a device is refused before a byte is read", "/dev/zero", "not a regular file (a device)"},
		{"a FIFO is refused without waiting for a writer", fifo, "not a regular file (a FIFO)"},
		{"a directory is refused", dir, "not a regular file (a directory)"},
		{"a file over the size limit is refused", big, "a configuration file is at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load(%s) = %v, want an error containing %q", tc.path, err, tc.want)
			}
		})
	}
}

func TestCAFileThatIsAFIFOIsRefusedWithoutWaiting(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "ca.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Parse(filepath.Join(dir, "vrrplb.toml"), []byte(frontendHead+"[frontend.health]\nca_file = \"ca.pem\"\n"))
	if err == nil || !strings.Contains(err.Error(), "not a regular file (a FIFO)") {
		t.Fatalf("err = %v, want the FIFO refused", err)
	}
}

func TestWordQuotesKeywordsOnly(t *testing.T) {
	for in, want := range map[string]string{
		"vrrp_instance V": `"vrrp_instance V"`,
		"static_route":    `"static_route"`,
		"root:$6$c2VjcmV0$hash:19000:0:99999:7:::": notShown,
		"":                      notShown,
		strings.Repeat("a", 49): notShown,
	} {
		if got := Word(in); got != want {
			t.Errorf("Word(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSecretWarningsAndMaskingCoverBGPPasswords(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vrrplb.toml")
	src := "[bgp]\nlocal_asn = 64601\n[[bgp.peer]]\naddress = \"10.90.0.1\"\nasn = 64512\npassword = \"md5key\"\n"
	if err := os.WriteFile(p, []byte(src), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	ws := SecretWarnings(cfg)
	want := p + `:6: warning: bgp peer 10.90.0.1: password: a secret in a file its group can read (mode 0640)`
	if len(ws) != 1 || !strings.HasPrefix(ws[0], want) {
		t.Errorf("warnings = %q, want one starting %q", ws, want)
	}
	var b strings.Builder
	if err := RenderMasked(&b, cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "md5key") || !strings.Contains(b.String(), `password = "********"`) {
		t.Errorf("RenderMasked does not mask the BGP password:\n%s", b.String())
	}
	if cfg.BGP.Peers[0].Password != "md5key" {
		t.Errorf("RenderMasked changed the config itself")
	}
}

func TestSyntaxErrorsDoNotQuoteAForeignFile(t *testing.T) {
	_, err := Parse("aws-credentials", []byte("aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "aws-credentials:1: syntax error:") || strings.Contains(err.Error(), "wJalr") {
		t.Fatalf("err = %v, want a syntax error at line 1 without the file's text", err)
	}
}
