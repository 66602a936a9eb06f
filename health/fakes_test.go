package health

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/internal/clock/clocktest"
	"github.com/vrrplb/vrrplb/internal/poll"
	"github.com/vrrplb/vrrplb/internal/testcert"
)

// Modes of a fake apiserver's /readyz.
const (
	modeReady    = iota // 200 "ok"
	modeUnready         // 500, as an apiserver whose etcd is gone
	modeHang            // never answers
	modeClose           // closes the connection without answering
	modeRedirect        // 302 to another path
	modeEndless         // 200 and a body that never ends
)

// fakeAPIServer is an apiserver stand-in on 127.0.0.1 serving /readyz in a
// switchable mode. Its TLS certificate (httptest's) is self-signed and valid
// for 127.0.0.1, ::1 and example.com.
type fakeAPIServer struct {
	srv      *httptest.Server
	mode     atomic.Int32
	requests atomic.Int32
	inflight atomic.Int32
	maxIn    atomic.Int32
	open     atomic.Int32 // connections open on the server side
	release  chan struct{}

	mu        sync.Mutex
	paths     []string
	hosts     []string
	userAgent string
}

func newFakeAPIServer(t *testing.T, useTLS bool) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{release: make(chan struct{})}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are what some tests want
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			f.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			f.open.Add(-1)
		}
	}
	if useTLS {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	if !strings.HasPrefix(f.addr(), "127.0.0.1:") {
		f.srv.Close()
		t.Fatalf("fake apiserver listens on %s, want 127.0.0.1", f.addr())
	}
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.release) }) // runs first: hung handlers return
	return f
}

func (f *fakeAPIServer) addr() string { return f.srv.Listener.Addr().String() }

func (f *fakeAPIServer) set(mode int) { f.mode.Store(int32(mode)) }

func (f *fakeAPIServer) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.maxIn.Load()
		if n <= m || f.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	f.paths = append(f.paths, r.URL.Path)
	f.hosts = append(f.hosts, r.Host)
	f.userAgent = r.UserAgent()
	f.mu.Unlock()

	switch f.mode.Load() {
	case modeReady:
		_, _ = w.Write([]byte("ok"))
	case modeUnready:
		http.Error(w, "[-]etcd failed: reason withheld\nreadyz check failed", http.StatusInternalServerError)
	case modeHang:
		// Take the connection from the server so nothing, not even an
		// implicit 200 when the handler returns, is ever written on it.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		gone := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, conn) // until the client gives up and closes
			close(gone)
		}()
		select {
		case <-gone:
		case <-f.release:
		}
		_ = conn.Close()
		<-gone
	case modeClose:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	case modeRedirect:
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	case modeEndless:
		chunk := make([]byte, 1024)
		for range 100000 { // bounded: 100 MB at most
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
}

// caFile writes the fake apiserver's certificate as a PEM CA bundle.
func (f *fakeAPIServer) caFile(t *testing.T) string {
	t.Helper()
	return writePEM(t, "apiserver-ca.pem", f.srv.Certificate().Raw)
}

// otherCAFile writes a freshly made CA that signed nothing the servers use.
func otherCAFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	testcert.WriteSelfSigned(t, &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "some other CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}, path, "")
	return path
}

func writePEM(t *testing.T, name string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// silentListener accepts TCP connections on 127.0.0.1 and never answers: a
// backend whose process is wedged.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// refusedAddr returns a 127.0.0.1 port nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// fakeClock is the tests' clock, with what they ask of it.
type fakeClock struct{ *clocktest.Clock }

func newFakeClock() *fakeClock {
	return &fakeClock{clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
}

// lastDuration is the d of the last timer the checker armed.
func (c *fakeClock) lastDuration() time.Duration {
	d := c.Durations()
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}

// waitFor polls cond until it holds, failing the test after 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 5*time.Second, what, cond)
}

// waitPending waits until n check timers are armed: every backend loop has
// recorded its last check and is waiting for the next.
func (c *fakeClock) waitPending(t *testing.T, n int) {
	t.Helper()
	waitFor(t, "armed check timers", func() bool { return c.Pending() == n })
}

// logRecord is one captured log line.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// logCapture is a slog.Handler that keeps every record.
type logCapture struct {
	mu      sync.Mutex
	records []logRecord
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: make(map[string]string)}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, rec)
	return nil
}

func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCapture) WithGroup(string) slog.Handler      { return h }

func (h *logCapture) all() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), h.records...)
}
