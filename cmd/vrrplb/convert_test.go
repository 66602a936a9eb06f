package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const convertTestdata = "../../config/convert/testdata"

func TestConvertPrintsAConfigThatCheckAccepts(t *testing.T) {
	ka := filepath.Join(convertTestdata, "nginx-master.keepalived.conf")
	ngx := filepath.Join(convertTestdata, "nginx-master.nginx.conf")
	hap := filepath.Join(convertTestdata, "kubeadm-haproxy.haproxy.cfg")
	tests := []struct {
		name         string
		args         []string
		want, absent []string
	}{
		{"keepalived alone gives instances only", []string{"--keepalived", ka},
			[]string{"[[instance]]", `name = "VI_1"`, "[[instance.track_script]]"}, []string{"[[frontend]]"}},
		{"nginx alone gives frontends only", []string{"--nginx", ngx},
			[]string{"[[frontend]]", `balance = "leastconn"`}, []string{"[[instance]]"}},
		{"haproxy alone gives frontends only", []string{"--haproxy", hap},
			[]string{"[[frontend]]", `path = "/healthz"`}, []string{"[[instance]]"}},
		{"keepalived with nginx tracks the frontend instead of the process check", []string{"--keepalived", ka, "--nginx", ngx},
			[]string{"[[instance]]", "[[frontend]]", "[[instance.track_frontend]]", `name = "k8s-apiserver"`}, []string{"[[instance.track_script]]"}},
		{"keepalived with haproxy", []string{"--keepalived", ka, "--haproxy", hap},
			[]string{"[[instance]]", "[[frontend]]", "[[instance.track_frontend]]"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"convert"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(out, a) {
					t.Errorf("output has %q:\n%s", a, out)
				}
			}
			// The printed file is what the user saves and checks.
			p := writeFile(t, t.TempDir(), "vrrplb.toml", out)
			if code, _, errOut := run(t, "check", "--config", p); code != 0 {
				t.Errorf("vrrplb check on the converted file: exit %d\n%s", code, errOut)
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	dir := t.TempDir()
	unclosed := writeFile(t, dir, "keepalived.conf", "vrrp_instance VI_1 {\n    interface eth0\n")
	typo := writeFile(t, dir, "haproxy.cfg", "listen api\n    bind :8443\n    sever a 10.0.0.1:6443\n")
	badPort := writeFile(t, dir, "nginx.conf", "stream {\n  server {\n    listen 8443;\n    proxy_pass 10.0.0.1:99999;\n  }\n}\n")
	tests := []struct {
		name string
		args []string
		code int
		want string // a regexp the first line of stderr must match
	}{
		{"an unterminated keepalived block is located", []string{"--keepalived", unclosed}, 1,
			`^` + regexp.QuoteMeta(unclosed) + `:1: block "vrrp_instance VI_1" is not closed$`},
		{"an unknown haproxy keyword is located", []string{"--haproxy", typo}, 1,
			`^` + regexp.QuoteMeta(typo) + `:3: unknown keyword "sever" in listen section$`},
		{"a bad value in nginx is located", []string{"--nginx", badPort}, 1,
			`^` + regexp.QuoteMeta(badPort) + `:4: proxy_pass "10.0.0.1:99999": port "99999": must be 1..65535$`},
		{"a missing file is named", []string{"--keepalived", filepath.Join(dir, "nope.conf")}, 1,
			`nope.conf: no such file or directory$`},
		{"no input is a usage error", nil, 2, `^vrrplb convert: give --keepalived FILE`},
		{"nginx and haproxy together is a usage error", []string{"--nginx", badPort, "--haproxy", typo}, 2, `not both$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"convert"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			if out != "" {
				t.Errorf("stdout not empty on error:\n%s", out)
			}
			first, _, _ := strings.Cut(errOut, "\n")
			if !regexp.MustCompile(tt.want).MatchString(first) {
				t.Errorf("stderr first line %q does not match %q", first, tt.want)
			}
		})
	}
}
