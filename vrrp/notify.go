package vrrp

import (
	"context"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// CommandNotifier defaults.
const (
	DefaultNotifyTimeout = 10 * time.Second
	DefaultNotifyQueue   = 64
)

// NotifyOptions are the optional parts of a CommandNotifier.
type NotifyOptions struct {
	// User runs the command as this user ([scripts] user); "": our own.
	User string
	// Timeout kills a command's process group after this long; 0 means
	// DefaultNotifyTimeout.
	Timeout time.Duration
	// Queue is how many transitions may wait; 0 means DefaultNotifyQueue.
	// When it is full the oldest waiting one is dropped (and logged), so the
	// latest state is always told.
	Queue int
	// Logger receives failures and drops; nil discards.
	Logger *slog.Logger
}

type notification struct{ instance, state string }

// CommandNotifier runs an instance's notify command on every transition:
// argv with the instance name and the new state appended, one at a time, in
// the order the transitions happened, each in its own process group killed
// at the timeout. Notify never blocks; Run does the work.
type CommandNotifier struct {
	argv    []string
	cred    *syscall.Credential
	timeout time.Duration
	max     int
	log     *slog.Logger

	mu    sync.Mutex
	queue []notification
	wake  chan struct{}
}

// NewCommandNotifier returns the notifier of command argv. It fails when the
// user does not exist, or when the command would run as root while another
// user can change it (CheckScriptSecurity). An empty argv gives a notifier
// that does nothing.
func NewCommandNotifier(argv []string, opts NotifyOptions) (*CommandNotifier, error) {
	cred, err := credentialOf(opts.User)
	if err != nil {
		return nil, err
	}
	if len(argv) > 0 {
		if err := CheckScriptsUser(opts.User); err != nil {
			return nil, err
		}
	}
	if err := CheckScriptSecurity(argv, opts.User); err != nil {
		return nil, err
	}
	n := &CommandNotifier{
		argv:    append([]string(nil), argv...),
		cred:    cred,
		timeout: opts.Timeout,
		max:     opts.Queue,
		log:     opts.Logger,
		wake:    make(chan struct{}, 1),
	}
	if n.timeout <= 0 {
		n.timeout = DefaultNotifyTimeout
	}
	if n.max <= 0 {
		n.max = DefaultNotifyQueue
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	return n, nil
}

// Notify queues a run for (instance, state) and returns at once.
func (n *CommandNotifier) Notify(instance, state string) {
	if len(n.argv) == 0 {
		return
	}
	var (
		dropped notification
		full    bool
	)
	n.mu.Lock()
	if len(n.queue) >= n.max {
		dropped, full = n.queue[0], true
		n.queue = n.queue[1:]
	}
	n.queue = append(n.queue, notification{instance, state})
	n.mu.Unlock()
	if full {
		n.log.Warn("notify queue full, dropping the oldest transition",
			"instance", dropped.instance, "state", dropped.state)
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run runs queued notifications in order until ctx ends. A command running
// then finishes (within its timeout), and what is still queued is run too,
// all within one more timeout, so the last transition of a stopping daemon
// is told.
func (n *CommandNotifier) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.timeout)
			n.drain(final, final)
			cancel()
			return nil
		case <-n.wake:
			n.drain(ctx, context.WithoutCancel(ctx))
		}
	}
}

// drain runs everything queued, oldest first, until the queue is empty or
// until ctx ends; each command runs under cmdCtx and its own timeout.
func (n *CommandNotifier) drain(ctx, cmdCtx context.Context) {
	for ctx.Err() == nil {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.mu.Unlock()
			return
		}
		next := n.queue[0]
		n.queue = n.queue[1:]
		n.mu.Unlock()

		argv := append(append([]string(nil), n.argv...), next.instance, next.state)
		if err := runCommand(cmdCtx, argv, n.cred, n.timeout, false); err != nil {
			n.log.Warn("notify command failed", "instance", next.instance, "state", next.state, "command", n.argv[0], "err", err)
		}
	}
}
