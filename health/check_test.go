package health

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vrrplb/vrrplb/config"
)

const testTimeout = 300 * time.Millisecond

func httpsCheck(mod func(*config.Health)) config.Health {
	cfg := config.Health{
		Type:         config.CheckHTTPS,
		Path:         "/readyz",
		ExpectStatus: []int{200},
		Interval:     time.Second,
		Timeout:      testTimeout,
		Rise:         2,
		Fall:         2,
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func TestCheckTypes(t *testing.T) {
	tlsSrv := newFakeAPIServer(t, true)
	plainSrv := newFakeAPIServer(t, false)
	ca := tlsSrv.caFile(t)
	otherCA := otherCAFile(t)
	silent := silentListener(t)
	refused := refusedAddr(t)

	tests := []struct {
		name       string
		cfg        config.Health
		target     string
		mode       int
		wantKind   string
		wantDetail string // the detail starts with this
	}{
		{
			name:   "tcp passes when the port accepts",
			cfg:    httpsCheck(func(h *config.Health) { h.Type = config.CheckTCP }),
			target: tlsSrv.addr(), wantKind: ResultSuccess, wantDetail: "connected",
		},
		{
			name:   "tcp fails as refused when nothing listens",
			cfg:    httpsCheck(func(h *config.Health) { h.Type = config.CheckTCP }),
			target: refused, wantKind: ResultRefused, wantDetail: "connection refused",
		},
		{
			name:   "tls passes a self-signed certificate without ca_file",
			cfg:    httpsCheck(func(h *config.Health) { h.Type = config.CheckTLS }),
			target: tlsSrv.addr(), wantKind: ResultSuccess, wantDetail: "TLS 1.3 handshake ok",
		},
		{
			name: "tls passes with the right ca_file and server_name",
			cfg: httpsCheck(func(h *config.Health) {
				h.Type, h.CAFile, h.ServerName = config.CheckTLS, ca, "example.com"
			}),
			target: tlsSrv.addr(), wantKind: ResultSuccess, wantDetail: "TLS 1.3 handshake ok",
		},
		{
			name:   "tls fails as tls with a ca_file that did not sign the certificate",
			cfg:    httpsCheck(func(h *config.Health) { h.Type, h.CAFile = config.CheckTLS, otherCA }),
			target: tlsSrv.addr(), wantKind: ResultTLS, wantDetail: "tls: failed to verify certificate: x509: certificate signed by unknown authority",
		},
		{
			name:   "tls fails as tls against a plain HTTP server",
			cfg:    httpsCheck(func(h *config.Health) { h.Type = config.CheckTLS }),
			target: plainSrv.addr(), wantKind: ResultTLS, wantDetail: "tls: first record does not look like a TLS handshake",
		},
		{
			name:   "tls times out against a listener that never answers",
			cfg:    httpsCheck(func(h *config.Health) { h.Type = config.CheckTLS }),
			target: silent, wantKind: ResultTimeout, wantDetail: "timeout after 300ms",
		},
		{
			name:   "http passes on a ready server",
			cfg:    httpsCheck(func(h *config.Health) { h.Type = config.CheckHTTP }),
			target: plainSrv.addr(), mode: modeReady, wantKind: ResultSuccess, wantDetail: "status 200",
		},
		{
			name:   "http fails as status on an unready server",
			cfg:    httpsCheck(func(h *config.Health) { h.Type = config.CheckHTTP }),
			target: plainSrv.addr(), mode: modeUnready, wantKind: ResultStatus, wantDetail: "status 500",
		},
		{
			name:   "https passes on a ready apiserver without ca_file",
			cfg:    httpsCheck(nil),
			target: tlsSrv.addr(), mode: modeReady, wantKind: ResultSuccess, wantDetail: "status 200",
		},
		{
			name:   "https fails as status on an unready apiserver",
			cfg:    httpsCheck(nil),
			target: tlsSrv.addr(), mode: modeUnready, wantKind: ResultStatus, wantDetail: "status 500",
		},
		{
			name:   "https passes a listed status other than 200",
			cfg:    httpsCheck(func(h *config.Health) { h.ExpectStatus = []int{200, 500} }),
			target: tlsSrv.addr(), mode: modeUnready, wantKind: ResultSuccess, wantDetail: "status 500",
		},
		{
			name:   "https fails at the timeout on a hanging apiserver",
			cfg:    httpsCheck(nil),
			target: tlsSrv.addr(), mode: modeHang, wantKind: ResultTimeout, wantDetail: "timeout after 300ms",
		},
		{
			name:   "https fails as error when the apiserver closes the connection",
			cfg:    httpsCheck(nil),
			target: tlsSrv.addr(), mode: modeClose, wantKind: ResultError, wantDetail: "connection closed by backend",
		},
		{
			name:   "https does not follow a redirect",
			cfg:    httpsCheck(nil),
			target: tlsSrv.addr(), mode: modeRedirect, wantKind: ResultStatus, wantDetail: "status 302",
		},
		{
			name:   "https passes quickly on an endless body",
			cfg:    httpsCheck(nil),
			target: tlsSrv.addr(), mode: modeEndless, wantKind: ResultSuccess, wantDetail: "status 200",
		},
		{
			name:   "https passes with the right ca_file and server_name",
			cfg:    httpsCheck(func(h *config.Health) { h.CAFile, h.ServerName = ca, "example.com" }),
			target: tlsSrv.addr(), wantKind: ResultSuccess, wantDetail: "status 200",
		},
		{
			name:   "https with ca_file and no server_name verifies the backend IP",
			cfg:    httpsCheck(func(h *config.Health) { h.CAFile = ca }),
			target: tlsSrv.addr(), wantKind: ResultSuccess, wantDetail: "status 200",
		},
		{
			name:   "https fails as tls with a wrong ca_file",
			cfg:    httpsCheck(func(h *config.Health) { h.CAFile, h.ServerName = otherCA, "example.com" }),
			target: tlsSrv.addr(), wantKind: ResultTLS, wantDetail: "tls: failed to verify certificate: x509: certificate signed by unknown authority",
		},
		{
			name:   "https fails as tls with a server_name the certificate lacks",
			cfg:    httpsCheck(func(h *config.Health) { h.CAFile, h.ServerName = ca, "apiserver.example.org" }),
			target: tlsSrv.addr(), wantKind: ResultTLS, wantDetail: "tls: failed to verify certificate: x509: certificate is valid for",
		},
		{
			name:   "https fails as refused when nothing listens",
			cfg:    httpsCheck(nil),
			target: refused, wantKind: ResultRefused, wantDetail: "connection refused",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tlsSrv.set(tt.mode)
			plainSrv.set(tt.mode)
			p, err := newProber(tt.cfg, (&net.Dialer{}).DialContext)
			if err != nil {
				t.Fatal(err)
			}
			r, took := p.check(context.Background(), tt.target)
			if r.kind != tt.wantKind || !strings.HasPrefix(r.detail, tt.wantDetail) {
				t.Errorf("check = %s %q, want %s %q…", r.kind, r.detail, tt.wantKind, tt.wantDetail)
			}
			if r.ok != (tt.wantKind == ResultSuccess) {
				t.Errorf("ok = %v for result %s", r.ok, r.kind)
			}
			if tt.wantKind != ResultTimeout && took >= testTimeout {
				t.Errorf("check took %v, not below the timeout %v", took, testTimeout)
			}
			if tt.wantKind == ResultTimeout && took < testTimeout {
				t.Errorf("check took %v, gave up before the timeout %v", took, testTimeout)
			}
		})
	}
}

func TestHTTPSCheckRequest(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	tests := []struct {
		name     string
		cfg      config.Health
		wantPath string
		wantHost string
	}{
		{
			name:     "the path and the backend address are sent",
			cfg:      httpsCheck(nil),
			wantPath: "/readyz", wantHost: srv.addr(),
		},
		{
			name:     "server_name is sent as the Host header",
			cfg:      httpsCheck(func(h *config.Health) { h.ServerName = "example.com" }),
			wantPath: "/readyz", wantHost: "example.com",
		},
		{
			name:     "a path without a leading slash gets one",
			cfg:      httpsCheck(func(h *config.Health) { h.Path = "livez" }),
			wantPath: "/livez", wantHost: srv.addr(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newProber(tt.cfg, (&net.Dialer{}).DialContext)
			if err != nil {
				t.Fatal(err)
			}
			if r, _ := p.check(context.Background(), srv.addr()); !r.ok {
				t.Fatalf("check failed: %s", r.detail)
			}
			srv.mu.Lock()
			got := []string{srv.paths[len(srv.paths)-1], srv.hosts[len(srv.hosts)-1], srv.userAgent}
			srv.mu.Unlock()
			if diff := cmp.Diff([]string{tt.wantPath, tt.wantHost, userAgent}, got); diff != "" {
				t.Errorf("path, host, user agent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewProberRejects(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  config.Health
		want string
	}{
		{
			name: "a missing ca_file",
			cfg:  httpsCheck(func(h *config.Health) { h.CAFile = filepath.Join(t.TempDir(), "absent.pem") }),
			want: "health ca_file: open ",
		},
		{
			name: "a ca_file without a certificate",
			cfg:  httpsCheck(func(h *config.Health) { h.CAFile = notPEM }),
			want: "health ca_file " + notPEM + ": no PEM certificate found",
		},
		{
			name: "an unknown type",
			cfg:  httpsCheck(func(h *config.Health) { h.Type = "icmp" }),
			want: `health type "icmp": must be tcp, tls, http, https or none`,
		},
		{
			name: "a zero timeout",
			cfg:  httpsCheck(func(h *config.Health) { h.Timeout = 0 }),
			want: "health timeout 0s: must be positive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newProber(tt.cfg, (&net.Dialer{}).DialContext)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("newProber error = %v, want %q…", err, tt.want)
			}
		})
	}
}

func TestHTTPSChecksHoldNoConnection(t *testing.T) {
	srv := newFakeAPIServer(t, true)
	p, err := newProber(httpsCheck(nil), (&net.Dialer{}).DialContext)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if r, _ := p.check(context.Background(), srv.addr()); !r.ok {
			t.Fatalf("check failed: %s", r.detail)
		}
	}
	if got := srv.requests.Load(); got != 20 {
		t.Errorf("server saw %d requests, want 20", got)
	}
	waitFor(t, "the server to see every check connection closed", func() bool { return srv.open.Load() == 0 })
}

func TestHTTPSCheckOverIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	srv := newFakeAPIServer(t, true) // for its certificate, valid for ::1 too
	v6 := httptest.NewUnstartedServer(srv.srv.Config.Handler)
	v6.Listener = ln
	v6.Config.ErrorLog = srv.srv.Config.ErrorLog
	v6.TLS = srv.srv.TLS
	v6.StartTLS()
	t.Cleanup(v6.Close)

	p, err := newProber(httpsCheck(func(h *config.Health) { h.CAFile = srv.caFile(t) }), (&net.Dialer{}).DialContext)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := p.check(context.Background(), ln.Addr().String())
	if r.kind != ResultSuccess {
		t.Errorf("https check of %s verified against its IP = %s %q, want success", ln.Addr(), r.kind, r.detail)
	}
}
