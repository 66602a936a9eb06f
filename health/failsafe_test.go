package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/testcert"
)

// authAPIServer is an apiserver with --anonymous-auth=false: /readyz answers
// 200 to a client that presents a certificate, and status (401 or 403) to
// one that does not.
func authAPIServer(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, `{"kind":"Status","status":"Failure","message":"Unauthorized"}`, status)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// clientKeyPair writes a client certificate and key as PEM files.
func clientKeyPair(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	testcert.WriteSelfSigned(t, &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "vrrplb-health-check", Organization: []string{"system:monitoring"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, certFile, keyFile)
	return certFile, keyFile
}

func TestAnApiserverWithoutAnonymousAuthIsUpWithACertFileAndExplainedWithout(t *testing.T) {
	cert, key := clientKeyPair(t)
	for _, tt := range []struct {
		status int
		hint   []string
	}{
		{http.StatusUnauthorized, []string{"cert_file", "--anonymous-auth=false", "KEP-4633"}},
		{http.StatusForbidden, []string{"RBAC", "/readyz", "cert_file"}},
	} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			b := authAPIServer(t, tt.status)

			t.Run("without cert_file the backend is down and the log says why", func(t *testing.T) {
				h := newHarness(t, httpsCheck(nil), []string{b})
				h.run()
				h.clock.waitPending(t, 1)
				if h.c.Healthy(b) {
					t.Fatal("healthy without a client certificate")
				}
				if got := h.checks(b, ResultAuth); got != 1 {
					t.Errorf("checks with result %q = %v, want 1", ResultAuth, got)
				}
				var hint string
				for _, r := range h.logs.all() {
					if r.attrs["hint"] != "" {
						hint = r.attrs["hint"]
					}
				}
				for _, w := range tt.hint {
					if !strings.Contains(hint, w) {
						t.Errorf("the log's hint does not mention %q:\n%s", w, hint)
					}
				}
				if st := h.c.Status(); !strings.HasPrefix(st[0].Reason, fmt.Sprintf("status %d", tt.status)) {
					t.Errorf("status reason %q, want it to start with status %d", st[0].Reason, tt.status)
				}
			})

			t.Run("with cert_file and key_file the backend is up", func(t *testing.T) {
				h := newHarness(t, httpsCheck(func(c *config.Health) { c.CertFile, c.KeyFile = cert, key }), []string{b})
				h.run()
				h.clock.waitPending(t, 1)
				if !h.c.Healthy(b) {
					t.Fatalf("not healthy with a client certificate: %+v", h.c.Status())
				}
			})
		})
	}
}

func TestAClientCertificateThatCannotBeLoadedIsRefused(t *testing.T) {
	cert, _ := clientKeyPair(t)
	_, err := New(testFrontend, httpsCheck(func(c *config.Health) { c.CertFile, c.KeyFile = cert, cert }), []string{"127.0.0.1:1"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "cert_file") {
		t.Fatalf("New = %v, want an error naming cert_file", err)
	}
}

// localFailures is a dialer that fails with err, as socket() does when the
// process is out of descriptors, while fail is set.
type localFailures struct {
	fail atomic.Bool
	err  error
}

func (l *localFailures) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if l.fail.Load() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("socket", l.err)}
	}
	return (&net.Dialer{}).DialContext(ctx, network, address)
}

func TestACheckThatCannotRunForALocalReasonChangesNoVerdict(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.EADDRNOTAVAIL, syscall.ENOMEM} {
		t.Run(errno.Error(), func(t *testing.T) {
			srv := newFakeAPIServer(t, true)
			b := srv.addr()
			lf := &localFailures{err: errno}
			h := &harness{t: t, clock: newFakeClock(), logs: &logCapture{}}
			h.reg = prometheus.NewRegistry()
			m, err := NewMetrics(h.reg)
			if err != nil {
				t.Fatal(err)
			}
			h.m = m
			h.c, err = New(testFrontend, httpsCheck(nil), []string{b}, Options{
				Logger: slog.New(h.logs), Metrics: m, Clock: h.clock, DialContext: lf.dial,
				Jitter: func(d time.Duration) time.Duration { return d },
			})
			if err != nil {
				t.Fatal(err)
			}
			h.run()
			h.clock.waitPending(t, 1)
			if !h.c.Healthy(b) {
				t.Fatal("not healthy after the first check")
			}

			lf.fail.Store(true)
			for range 5 {
				h.clock.Advance(time.Second)
				h.clock.waitPending(t, 1)
			}
			if !h.c.Healthy(b) {
				t.Errorf("a local %v marked the backend down", errno)
			}
			if got := h.checks(b, ResultLocalError); got != 5 {
				t.Errorf("checks with result %q = %v, want 5", ResultLocalError, got)
			}
			logged := func() int {
				n := 0
				for _, r := range h.logs.all() {
					if r.msg == msgLocalError {
						n++
					}
				}
				return n
			}
			if n := logged(); n != 1 {
				t.Errorf("%d log lines for the local error within a minute, want 1", n)
			}
			for range 60 {
				h.clock.Advance(time.Second)
				h.clock.waitPending(t, 1)
			}
			if n := logged(); n != 2 {
				t.Errorf("%d log lines for the local error after a minute, want 2", n)
			}

			// The shortage ends: checks decide again.
			lf.fail.Store(false)
			srv.set(modeUnready)
			for range 2 {
				h.clock.Advance(time.Second)
				h.clock.waitPending(t, 1)
			}
			if h.c.Healthy(b) {
				t.Error("an unready backend stayed up after the shortage ended")
			}
		})
	}
}

func TestAReloadThatAddsACertFileBringsTheBackendUp(t *testing.T) {
	cert, key := clientKeyPair(t)
	b := authAPIServer(t, http.StatusUnauthorized)
	h := newHarness(t, httpsCheck(nil), []string{b})
	h.run()
	h.clock.waitPending(t, 1)
	if h.c.Healthy(b) {
		t.Fatal("healthy without a client certificate")
	}
	if err := h.c.Update(httpsCheck(func(c *config.Health) { c.CertFile, c.KeyFile = cert, key }), []string{b}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // rise 2
		h.clock.Advance(time.Second)
		h.clock.waitPending(t, 1)
	}
	if !h.c.Healthy(b) {
		t.Fatalf("not healthy after a reload added cert_file: %+v", h.c.Status())
	}
}
