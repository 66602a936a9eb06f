package main

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/vrrplb/vrrplb/config"
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
