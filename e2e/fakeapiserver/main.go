// Command fakeapiserver stands in for a Kubernetes apiserver in vrrplb's
// end-to-end tests, benchmarks and demo: HTTPS with a throwaway self-signed
// certificate, GET /readyz (200 "ok" while ready, 500 otherwise), GET
// /version naming the server, and /stream, which writes a line per interval
// (100 ms, or ?every=DURATION)
// until the client goes away — a stand-in for a watch.
//
// Readiness is a file: the server is ready while --ready-file exists (or
// always, without the flag), so a test flips it with touch and rm from any
// network namespace.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:6443", "address to serve HTTPS on")
	name := flag.String("name", "", "name reported by /version (default: the listen address)")
	readyFile := flag.String("ready-file", "", "ready while this file exists; empty: always ready")
	certOut := flag.String("cert-out", "", "write the self-signed certificate (PEM) here, for checks that verify it")
	flag.Parse()
	if *name == "" {
		*name = *listen
	}
	if err := serve(*listen, *name, *readyFile, *certOut); err != nil {
		log.Printf("fakeapiserver: %v", err)
		os.Exit(1)
	}
}

func serve(listen, name, readyFile, certOut string) error {
	cert, certPEM, err := selfSigned(name)
	if err != nil {
		return err
	}
	if certOut != "" {
		if err := os.WriteFile(certOut, certPEM, 0o644); err != nil {
			return err
		}
	}
	ready := func() bool {
		if readyFile == "" {
			return true
		}
		_, err := os.Stat(readyFile)
		return err == nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "[-]etcd failed: not ready\nreadyz check failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"server": name, "gitVersion": "v1.31.0-fake"})
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		flusher, _ := w.(http.Flusher)
		every := 100 * time.Millisecond
		if d, err := time.ParseDuration(r.URL.Query().Get("every")); err == nil && d > 0 {
			every = d // ?every=2s: a quiet watch
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "%s %d\n", name, i); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
		}
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Printf("fakeapiserver %s serving https on %s", name, ln.Addr())
	if err := srv.ServeTLS(ln, "", ""); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

// selfSigned makes a certificate for name, valid for a day, with the loopback
// and the listen host in its SANs.
func selfSigned(name string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"kubernetes", "kubernetes.default", "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host, _, err := net.SplitHostPort(name); err == nil {
		if ip := net.ParseIP(host); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}
