package eos

import (
	"fmt"
	"sync"
	"time"

	"github.com/lovoo/goka"
)

// goka's ctx.DeferCommit lets a callback finish its message later (e.g. after an
// asynchronous call to another system): goka then marks the message done only when
// the returned function is called. The runtime commits the offsets of the callbacks
// that ran, so without care it would commit a deferred message before its work was
// done, and a crash in between would lose that work.
//
// So every callback sees a context whose DeferCommit is counted, and a commit, with
// the callbacks paused, first waits until every deferred message of the stage is
// done: its offset is then committed with what its callback emitted, in the same
// transaction. Work a deferred message does outside Kafka is at-least-once (it
// may be repeated after a crash before the commit), as in Kafka Streams. A deferred
// message that is not done within deferTimeout fails the commit: the transaction is
// aborted and the stage resumes from the last commit, reprocessing the message.

// gokaContext names goka.Context for embedding (a field named Context would hide
// the interface's Context method).
type gokaContext = goka.Context

// deferredContext counts the callback's deferred commits.
type deferredContext struct {
	gokaContext
	d *deferTracker
}

func (c deferredContext) DeferCommit() func(error) {
	commit := c.gokaContext.DeferCommit()
	c.d.add()
	var once sync.Once
	return func(err error) {
		once.Do(func() {
			commit(err)
			c.d.done()
		})
	}
}

// deferTracker counts the deferred messages not done yet.
type deferTracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

func (d *deferTracker) add() {
	d.mu.Lock()
	if d.n == 0 {
		d.idle = make(chan struct{})
	}
	d.n++
	d.mu.Unlock()
}

func (d *deferTracker) done() {
	d.mu.Lock()
	d.n--
	if d.n == 0 {
		close(d.idle)
	}
	d.mu.Unlock()
}

// wait waits until no deferred message is pending, at most timeout.
func (d *deferTracker) wait(timeout time.Duration) error {
	d.mu.Lock()
	n, idle := d.n, d.idle
	d.mu.Unlock()
	if n == 0 {
		return nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
		return nil
	case <-t.C:
		d.mu.Lock()
		n = d.n
		d.mu.Unlock()
		return fmt.Errorf("%d deferred commits (goka DeferCommit) not done within %s", n, timeout)
	}
}
