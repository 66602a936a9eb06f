package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/proxy"
	"golang.org/x/sync/errgroup"
)

// The bench binary re-executes itself for the processes it measures, so
// each one is its own process with its own RSS: the HTTP backend, the
// stand-in apiserver (HTTPS, CPU-hungry) of the co-located row, vrrplb's
// proxy (proxy.Frontend, as `vrrplb run` drives it) and a naive io.Copy
// proxy that shows what the data path work bought.

// runRole runs the child role and returns its error. certDir holds the
// apiserver role's certificate.
func runRole(role string, listens, backends []string, certDir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch role {
	case "backend":
		return serveHTTP(ctx, listens[0])
	case "apiserver":
		return serveAPIServer(ctx, listens[0], certDir)
	case "vrrplb":
		if addr := os.Getenv("VRRPLB_BENCH_PPROF"); addr != "" {
			go http.ListenAndServe(addr, nil) // profiling the proxy under load
		}
		go dumpMemOnUSR1()
		if n, err := strconv.Atoi(os.Getenv("VRRPLB_BENCH_PROCS")); err == nil {
			runtime.GOMAXPROCS(n)
		}
		return runVrrplb(ctx, listens, backends)
	case "naive":
		return runNaive(ctx, listens, backends)
	}
	return fmt.Errorf("unknown role %q", role)
}

// serveHTTP answers every HTTP/1.1 request with a 2-byte body; a request
// carrying "Connection: close" gets its answer and then the close.
func serveHTTP(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, syscall.EMFILE) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go httpConn(c)
	}
}

var (
	endOfHead   = []byte("\r\n\r\n")
	closeHeader = []byte("Connection: close")
	respKeep    = []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	respClose   = []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
)

func httpConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	have := 0
	for {
		n, err := c.Read(buf[have:])
		if err != nil {
			return
		}
		have += n
		for {
			i := bytes.Index(buf[:have], endOfHead)
			if i < 0 {
				break
			}
			head := buf[:i]
			closing := bytes.Contains(head, closeHeader)
			resp := respKeep
			if closing {
				resp = respClose
			}
			if _, err := c.Write(resp); err != nil || closing {
				return
			}
			have = copy(buf, buf[i+4:have])
		}
		if have == len(buf) {
			return
		}
	}
}

func runVrrplb(ctx context.Context, listens, backends []string) error {
	g, ctx := errgroup.WithContext(ctx)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for i, l := range listens {
		fe := config.Frontend{
			Name:           fmt.Sprint("bench", i),
			Listen:         l,
			Balance:        config.LeastConn,
			Backends:       []string{backends[i]},
			ConnectTimeout: time.Second,
			Retries:        2,
			TCPKeepAlive:   30 * time.Second,
			DrainTimeout:   time.Second,
			Health:         config.Health{Type: config.CheckNone},
		}
		f, err := proxy.New(fe, proxy.Options{Logger: log})
		if err != nil {
			return err
		}
		g.Go(func() error { return f.Run(ctx) })
	}
	return g.Wait()
}

// runNaive is the proxy before any tuning: io.Copy both ways.
func runNaive(ctx context.Context, listens, backends []string) error {
	g, ctx := errgroup.WithContext(ctx)
	for i, l := range listens {
		ln, err := net.Listen("tcp", l)
		if err != nil {
			return err
		}
		go func() { <-ctx.Done(); ln.Close() }()
		be := backends[i]
		g.Go(func() error {
			for {
				c, err := ln.Accept()
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				go naiveConn(c, be)
			}
		})
	}
	return g.Wait()
}

func naiveConn(c net.Conn, backend string) {
	defer c.Close()
	s, err := net.DialTimeout("tcp", backend, time.Second)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(c, s)
		c.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(s, c)
	s.(*net.TCPConn).CloseWrite()
	<-done
}

// dumpMemOnUSR1 prints the Go runtime's memory figures on SIGUSR1, to see
// where a proxy's resident memory goes.
func dumpMemOnUSR1() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	for range ch {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(os.Stderr, "goroutines %d stack_inuse %d heap_inuse %d heap_idle %d heap_released %d sys %d mspan %d other %d gc %d\n",
			runtime.NumGoroutine(), m.StackInuse, m.HeapInuse, m.HeapIdle, m.HeapReleased, m.Sys, m.MSpanInuse, m.OtherSys, m.NumGC)
	}
}
