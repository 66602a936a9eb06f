package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vrrplb/vrrplb/config"
)

// Check results: the result label of vrrplb_health_checks_total. The set is
// small on purpose (it multiplies with every backend) and answers the first
// question an operator asks: is it down, slow, misconfigured, or unready?
const (
	// ResultSuccess: the check passed.
	ResultSuccess = "success"
	// ResultTimeout: the check did not finish within timeout (a hung or
	// overloaded backend, or packets dropped on the way).
	ResultTimeout = "timeout"
	// ResultRefused: the connection was refused (nothing listens on the port).
	ResultRefused = "refused"
	// ResultStatus: HTTP answered with a status not in expect_status (for an
	// apiserver: /readyz says it is not ready).
	ResultStatus = "status"
	// ResultAuth: HTTP answered 401 or 403, not in expect_status: the
	// check was not allowed (an apiserver with --anonymous-auth=false, or
	// RBAC), which says nothing of the backend's readiness.
	ResultAuth = "auth"
	// ResultLocalError: the check could not run for a reason of this host
	// (no descriptor, no buffer, no source port, no memory). It changes no
	// verdict.
	ResultLocalError = "local_error"
	// ResultTLS: the TLS handshake failed (certificate not signed by ca_file,
	// wrong server_name, protocol mismatch).
	ResultTLS = "tls"
	// ResultError: anything else (reset, closed connection, unreachable
	// network, malformed response).
	ResultError = "error"
)

// results lists every result label, so their series exist from the start.
var results = []string{ResultSuccess, ResultTimeout, ResultRefused, ResultStatus, ResultAuth, ResultTLS, ResultError, ResultLocalError}

// maxBody bounds how much of a response body a check reads before closing.
const maxBody = 4 << 10

// userAgent names vrrplb in the backend's access log.
const userAgent = "vrrplb-health-check"

// result is the outcome of one check.
type result struct {
	ok bool
	// kind is one of the Result* labels.
	kind string
	// detail says what happened, for the log line an operator reads:
	// "status 200", "timeout after 1s", "x509: certificate signed by unknown authority".
	detail string
}

// Hints logged with a ResultAuth, by status: what it means and what to do.
const (
	hintUnauthorized = "the apiserver does not take the check's credentials: it refuses anonymous requests " +
		"(--anonymous-auth=false) or does not accept the client certificate; set [frontend.health] cert_file and " +
		"key_file to a client certificate that its --client-ca-file signed (kubeadm: " +
		"/etc/kubernetes/pki/apiserver-kubelet-client.crt and .key), or allow anonymous health paths only " +
		"(Kubernetes 1.32+, KEP-4633: an AuthenticationConfiguration with anonymous.conditions for /readyz, /livez, /healthz)"
	hintForbidden = "the apiserver knows the check's user but RBAC does not let it GET /readyz: bind that user " +
		"(system:anonymous without cert_file, as the default system:public-info-viewer binding does) to a role " +
		"allowing get on the nonResourceURL /readyz, or set cert_file and key_file to a client certificate whose user may"
)

// hint is the advice logged with r, if any.
func (r result) hint() string {
	switch {
	case r.kind != ResultAuth:
		return ""
	case strings.HasPrefix(r.detail, "status 403"):
		return hintForbidden
	}
	return hintUnauthorized
}

type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// prober runs one configured kind of check against any backend address.
// It is immutable once built; a reload builds a new one.
type prober struct {
	kind    config.HealthType
	path    string
	expect  []int
	timeout time.Duration
	dial    dialFunc
	// tls is the base TLS configuration; ServerName is filled per backend.
	tls        *tls.Config
	serverName string
	client     *http.Client
}

// newProber builds the prober for cfg, reading cfg.CAFile if set.
// It returns nil for type "none".
func newProber(cfg config.Health, dial dialFunc) (*prober, error) {
	switch cfg.Type {
	case config.CheckNone:
		return nil, nil
	case config.CheckTCP, config.CheckTLS, config.CheckHTTP, config.CheckHTTPS:
	default:
		return nil, fmt.Errorf("health type %q: must be tcp, tls, http, https or none", cfg.Type)
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("health timeout %v: must be positive", cfg.Timeout)
	}
	p := &prober{
		kind:       cfg.Type,
		path:       cfg.Path,
		expect:     slices.Clone(cfg.ExpectStatus),
		timeout:    cfg.Timeout,
		dial:       dial,
		serverName: cfg.ServerName,
	}
	if !strings.HasPrefix(p.path, "/") {
		p.path = "/" + p.path
	}
	if len(p.expect) == 0 {
		p.expect = []int{http.StatusOK}
	}
	// Without ca_file the certificate is not verified: the check sends no
	// secret, and an apiserver's self-signed serving certificate must not
	// make it fail.
	p.tls = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		cert, err := loadKeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		p.tls.Certificates = []tls.Certificate{cert}
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("health ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("health ca_file %s: no PEM certificate found", cfg.CAFile)
		}
		p.tls.InsecureSkipVerify = false
		p.tls.RootCAs = pool
	}
	if p.kind == config.CheckHTTP || p.kind == config.CheckHTTPS {
		p.client = &http.Client{
			Transport: &http.Transport{
				Proxy:       nil, // never through HTTP_PROXY: the backend is checked, not a proxy
				DialContext: p.dial,
				DialTLSContext: func(ctx context.Context, _, address string) (net.Conn, error) {
					return p.handshake(ctx, address)
				},
				// A fresh connection per check: a kept-alive one would hide a
				// listener that stopped accepting, and would hold an fd.
				DisableKeepAlives:      true,
				DisableCompression:     true,
				MaxResponseHeaderBytes: 64 << 10,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect is judged by expect_status
			},
		}
	}
	return p, nil
}

// loadKeyPair reads the client certificate of tls and https checks.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := config.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("health cert_file: %w", err)
	}
	keyPEM, err := config.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("health key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("health cert_file %s and key_file %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// tlsError marks a failed TLS handshake, so it is counted as "tls" whatever
// the underlying error.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// check runs one check of address (host:port) bounded by the configured
// timeout, and returns its result and how long it took.
func (p *prober) check(ctx context.Context, address string) (result, time.Duration) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var r result
	var err error
	switch p.kind {
	case config.CheckTCP:
		r, err = p.checkTCP(ctx, address)
	case config.CheckTLS:
		r, err = p.checkTLS(ctx, address)
	default:
		r, err = p.checkHTTP(ctx, address)
	}
	if err != nil {
		r = p.classify(ctx, err)
	}
	return r, time.Since(start)
}

func (p *prober) checkTCP(ctx context.Context, address string) (result, error) {
	conn, err := p.dial(ctx, "tcp", address)
	if err != nil {
		return result{}, err
	}
	_ = conn.Close()
	return result{ok: true, kind: ResultSuccess, detail: "connected"}, nil
}

func (p *prober) checkTLS(ctx context.Context, address string) (result, error) {
	conn, err := p.handshake(ctx, address)
	if err != nil {
		return result{}, err
	}
	version := tls.VersionName(conn.ConnectionState().Version)
	_ = conn.Close()
	return result{ok: true, kind: ResultSuccess, detail: version + " handshake ok"}, nil
}

func (p *prober) checkHTTP(ctx context.Context, address string) (result, error) {
	scheme := "http"
	if p.kind == config.CheckHTTPS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+address+p.path, nil)
	if err != nil {
		return result{}, err
	}
	req.Header.Set("User-Agent", userAgent)
	if p.serverName != "" {
		req.Host = p.serverName
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return result{}, err
	}
	// The status decides; the body is drained only a little, then the
	// connection is closed (no keep-alive), so a large or endless body costs
	// nothing.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	detail := fmt.Sprintf("status %d", resp.StatusCode)
	if !slices.Contains(p.expect, resp.StatusCode) {
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return result{kind: ResultAuth, detail: detail + " (check not allowed)"}, nil
		}
		return result{kind: ResultStatus, detail: detail}, nil
	}
	return result{ok: true, kind: ResultSuccess, detail: detail}, nil
}

// handshake dials address and completes a TLS handshake. With ca_file the
// certificate must chain to it and match server_name, or, when server_name is
// empty, the backend's host (an IP address matches the certificate's IP SANs).
func (p *prober) handshake(ctx context.Context, address string) (*tls.Conn, error) {
	conn, err := p.dial(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	conf := p.tls.Clone()
	conf.ServerName = p.serverName
	if conf.ServerName == "" {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		conf.ServerName = host
	}
	tc := tls.Client(conn, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, &tlsError{err}
	}
	return tc, nil
}

// localErrnos are the errors of a check that could not run for a reason of
// this host: out of descriptors (process or system), of socket buffers, of
// source ports, of memory.
var localErrnos = []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.EADDRNOTAVAIL, syscall.ENOMEM}

func isLocal(err error) bool {
	for _, e := range localErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// classify turns a failed check's error into a result. A timeout wins over
// everything else: a handshake or read cut short by the deadline is slow, not
// broken.
func (p *prober) classify(ctx context.Context, err error) result {
	var netErr net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout()):
		return result{kind: ResultTimeout, detail: fmt.Sprintf("timeout after %v", p.timeout)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return result{kind: ResultRefused, detail: "connection refused"}
	case isLocal(err):
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return result{kind: ResultLocalError, detail: err.Error()}
	}
	var te *tlsError
	if errors.As(err, &te) {
		return result{kind: ResultTLS, detail: te.Error()}
	}
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return result{kind: ResultError, detail: "connection closed by backend"}
	case errors.Is(err, syscall.ECONNRESET):
		return result{kind: ResultError, detail: "connection reset by backend"}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is the backend's own address: noise in a log line
	}
	return result{kind: ResultError, detail: err.Error()}
}
