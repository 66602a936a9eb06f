package proxy

import "sync/atomic"

// maxIdleWorkers bounds the goroutines a frontend keeps waiting for work.
const maxIdleWorkers = 8

// workers runs a frontend's connection tasks (serving an accepted client,
// copying a direction) on goroutines that stay for the next task instead of
// ending. A fresh goroutine starts on a small stack and grows it in the
// backend dial, copying its frames each time; a kept one has grown already.
// Workers left idle over a whole park interval end (trim), so an idle proxy
// keeps none.
type workers struct {
	tasks chan func() // unbuffered: a send succeeds only when a worker waits; nil ends the worker
	done  chan struct{}
	idle  atomic.Int32
	used  atomic.Bool // a waiting worker took a task since the last trim
}

func newWorkers() *workers {
	return &workers{tasks: make(chan func()), done: make(chan struct{})}
}

// run runs fn on a waiting worker, or on a new one when none waits.
func (w *workers) run(fn func()) {
	select {
	case w.tasks <- fn:
		w.used.Store(true)
	default:
		go w.work(fn)
	}
}

func (w *workers) work(fn func()) {
	for {
		fn()
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		select {
		case fn = <-w.tasks:
		case <-w.done:
			fn = nil
		}
		w.idle.Add(-1)
		if fn == nil {
			return
		}
	}
}

// trim ends the waiting workers when none of them was needed since the
// previous trim.
func (w *workers) trim() {
	if w.used.Swap(false) {
		return
	}
	for {
		select {
		case w.tasks <- nil:
		default:
			return
		}
	}
}

// stop ends every waiting worker and those that finish their task later.
func (w *workers) stop() { close(w.done) }
