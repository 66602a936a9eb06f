package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// runRole runs a child process of the soak inside a lab host.
func runRole(role, addr string, d time.Duration, bulk, storm int) error {
	switch role {
	case "backend":
		return backend(addr)
	case "load":
		if d <= 0 {
			return errors.New("-duration must be positive")
		}
		return load(addr, d, bulk, storm)
	}
	return fmt.Errorf("unknown role %q", role)
}

// backend accepts connections on addr and reads each to its end. It runs
// until the soak kills it.
func backend(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening on", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

// load sends bulk streams to addr and opens and closes connections to it as
// fast as it can, for d; then it prints what it moved.
func load(addr string, d time.Duration, bulk, storm int) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		wg                  sync.WaitGroup
		bytes, conns, fails atomic.Int64
		firstFail           atomic.Pointer[string] // the first failed dial's error
	)
	failed := func(err error) {
		fails.Add(1)
		msg := err.Error()
		firstFail.CompareAndSwap(nil, &msg)
	}
	for range bulk {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			// A stream the proxy cut is dialled again until the end.
			for ctx.Err() == nil {
				var dl net.Dialer
				c, err := dl.DialContext(ctx, "tcp", addr)
				if err != nil {
					// A dial that the end of the run cut short is no failure:
					// the socket deadline below and ctx end together.
					if ctx.Err() == nil {
						failed(err)
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				deadline, _ := ctx.Deadline()
				_ = c.SetDeadline(deadline)
				for ctx.Err() == nil {
					n, err := c.Write(buf)
					bytes.Add(int64(n))
					if err != nil {
						break
					}
				}
				c.Close()
			}
		}()
	}
	for range storm {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var dl net.Dialer
				c, err := dl.DialContext(ctx, "tcp", addr)
				if err != nil {
					if ctx.Err() == nil {
						failed(err)
						time.Sleep(time.Millisecond)
					}
					continue
				}
				_, _ = c.Write([]byte{'x'})
				c.Close()
				conns.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := d.Seconds()
	first := ""
	if msg := firstFail.Load(); msg != nil {
		first = " (the first: " + *msg + ")"
	}
	// One line: the soak reports the last line of this output.
	fmt.Printf("load: bulk %.0f MB/s, %.0f connections/s, %d failed dials%s\n",
		float64(bytes.Load())/secs/1e6, float64(conns.Load())/secs, fails.Load(), first)
	return nil
}
