package config

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/internal/testcert"
)

// writeKeyPair writes a self-signed client certificate and its key as PEM
// files in dir and returns their paths.
func writeKeyPair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	testcert.WriteSelfSigned(t, &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "vrrplb-health-check"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, certFile, keyFile)
	return certFile, keyFile
}

func TestHealthClientCertificateErrorsNameTheFileAndLine(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeKeyPair(t, dir, "a")
	otherCert, _ := writeKeyPair(t, dir, "b")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.crt")
	health := func(lines ...string) string {
		return frontendHead + "[frontend.health]\ntype = \"https\"\n" + strings.Join(lines, "\n") + "\n"
	}
	kv := func(k, v string) string { return k + " = \"" + v + "\"" }
	tests := []struct {
		name string
		text string
		want string
	}{
		{"a missing cert_file is named", health(kv("cert_file", missing), kv("key_file", key)),
			`vrrplb.toml:6: frontend "apiserver": health: cert_file: "` + missing + `": not readable: no such file or directory`},
		{"a missing key_file is named", health(kv("cert_file", cert), kv("key_file", missing)),
			`vrrplb.toml:7: frontend "apiserver": health: key_file: "` + missing + `": not readable: no such file or directory`},
		{"a cert_file without key_file is refused", health(kv("cert_file", cert)),
			`vrrplb.toml:6: frontend "apiserver": health: cert_file: needs key_file too`},
		{"a key_file without cert_file is refused", health(kv("key_file", key)),
			`vrrplb.toml:6: frontend "apiserver": health: key_file: needs cert_file too`},
		{"a cert_file that does not parse is named", health(kv("cert_file", garbage), kv("key_file", key)),
			`vrrplb.toml:6: frontend "apiserver": health: cert_file: "` + garbage + `": no PEM certificate in it`},
		{"a key_file that does not parse is named", health(kv("cert_file", cert), kv("key_file", garbage)),
			`vrrplb.toml:7: frontend "apiserver": health: key_file: "` + garbage + `": no PEM private key in it`},
		{"a key that is not the certificate's is refused", health(kv("cert_file", otherCert), kv("key_file", key)),
			`vrrplb.toml:7: frontend "apiserver": health: key_file: "` + key + `": does not match cert_file`},
		{"a client certificate on a plain http check is refused", frontendHead + "[frontend.health]\ntype = \"http\"\n" + kv("cert_file", cert) + "\n" + kv("key_file", key) + "\n",
			`vrrplb.toml:6: frontend "apiserver": health: cert_file: only tls and https checks present a client certificate`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("vrrplb.toml", []byte(tt.text))
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("Parse: %v, want Errors", err)
			}
			if got := es[0].Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("first error:\n got %s\nwant %s…", got, tt.want)
			}
		})
	}

	t.Run("a matching pair is taken, paths beside the config", func(t *testing.T) {
		cfg, err := Parse(filepath.Join(dir, "vrrplb.toml"), []byte(health(kv("cert_file", "a.crt"), kv("key_file", "a.key"))))
		if err != nil {
			t.Fatal(err)
		}
		h := cfg.Frontends[0].Health
		if h.CertFile != cert || h.KeyFile != key {
			t.Errorf("cert_file, key_file = %q, %q; want %q, %q", h.CertFile, h.KeyFile, cert, key)
		}
	})
}
