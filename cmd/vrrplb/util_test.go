package main

import (
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/config"
	"github.com/vrrplb/vrrplb/internal/poll"
	"github.com/vrrplb/vrrplb/internal/syncbuf"
)

// syncBuffer is a log sink that tests read while the code under test writes.
type syncBuffer = syncbuf.Buffer

// newTestDaemon loads the config at path and builds a daemon that logs to
// logs and takes its signals from sig.
func newTestDaemon(t *testing.T, path string, logs io.Writer) (d *daemon, sig chan os.Signal) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d = newDaemon(cfg, logs)
	sig = make(chan os.Signal, 1)
	d.signals = sig
	return d, sig
}

// runDaemon runs d until it stops; done receives what run returned.
func runDaemon(d *daemon) (done chan error) {
	done = make(chan error, 1)
	go func() { done <- d.run(context.Background()) }()
	return done
}

// stopDaemon sends SIGTERM to a daemon runDaemon runs and waits up to 10s
// for run to return nil.
func stopDaemon(t *testing.T, sig chan<- os.Signal, done <-chan error) {
	t.Helper()
	sig <- syscall.SIGTERM
	if err := poll.Receive(t, done, 10*time.Second, "run to return after SIGTERM"); err != nil {
		t.Errorf("run returned %v after SIGTERM, want nil", err)
	}
}

// waitReloadSuccessful waits until the admin server at base shows the
// last-reload-successful metric at v ("0" or "1").
func waitReloadSuccessful(t *testing.T, base, v string) {
	t.Helper()
	eventually(t, "the last reload's metric at "+v, func() bool {
		_, body := get(t, base+"/metrics")
		return metricLine(body, metricReloadSuccessful) == metricReloadSuccessful+" "+v
	})
}
