package eos

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

func TestDeferTrackerWait(t *testing.T) {
	var d deferTracker
	if err := d.wait(time.Nanosecond); err != nil {
		t.Fatalf("wait with nothing deferred: %v", err)
	}
	d.add()
	d.add()
	waited := make(chan error, 1)
	go func() { waited <- d.wait(5 * time.Second) }()
	d.done()
	never(t, waited, 20*time.Millisecond, "wait returning with one deferred message pending")
	d.done()
	if err := within(t, waited, 5*time.Second, "wait"); err != nil {
		t.Fatal(err)
	}
	// A new round after the count dropped to 0 waits again.
	d.add()
	err := d.wait(10 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "1 deferred commits") || !strings.Contains(err.Error(), "10ms") {
		t.Fatalf("wait with a pending message = %v, want a timeout error naming the count", err)
	}
	d.done()
	if err := d.wait(time.Nanosecond); err != nil {
		t.Fatal(err)
	}
}

// TestCommitWaitsForDeferred: a message whose callback deferred its commit is
// committed, with what it emitted later, only once it is done.
func TestCommitWaitsForDeferred(t *testing.T) {
	flushed := make(chan struct{}, 1)
	r, ap, _ := testRuntime(t, Config{}, Hooks{
		Flush: func(func(*sarama.ProducerMessage)) (map[TopicPartition]string, error) {
			flushed <- struct{}{}
			return nil, nil
		},
	})
	startSession(r, newFakeSession(1, nil))
	var finish func(error)
	ctx := process(r, "in", 0, 6, func(ctx goka.Context, _ any) { finish = ctx.DeferCommit() })
	commitDone := make(chan error, 1)
	go func() { commitDone <- r.commit() }()
	never(t, flushed, 50*time.Millisecond, "the commit going on while a deferred message is pending")
	// The asynchronous work emits, then finishes the message (twice: counted once).
	r.prod.Emit("out", "async-result", nil)
	boom := errors.New("async failure reported to goka")
	finish(boom)
	finish(nil)
	within(t, flushed, 5*time.Second, "flush after the deferred message was done")
	if err := within(t, commitDone, 5*time.Second, "commit"); err != nil {
		t.Fatal(err)
	}
	if got := ctx.deferCalls(); len(got) != 1 || got[0] != boom {
		t.Errorf("goka's DeferCommit function called with %v, want once with the first error", got)
	}
	want := []string{"begin", "send:out/async-result", "add", "commit", "begin"}
	if got := ap.Log(); !slices.Equal(got, want) {
		t.Errorf("log %v, want %v", got, want)
	}
	if adds := ap.Adds(); len(adds) != 1 || offsetsString(adds[0].offsets) != "in/0@7:(epoch -1)" {
		t.Errorf("offsets %v", ap.Adds())
	}
}

// TestCommitDeferredTimeout: a deferred message not done within half the
// transaction timeout fails the commit, which aborts.
func TestCommitDeferredTimeout(t *testing.T) {
	r, ap, _ := testRuntime(t, Config{TransactionTimeout: 60 * time.Millisecond}, Hooks{})
	if r.deferTimeout() != 30*time.Millisecond {
		t.Fatalf("deferTimeout %s, want half the transaction timeout", r.deferTimeout())
	}
	startSession(r, newFakeSession(1, nil))
	var finish func(error)
	process(r, "in", 0, 0, func(ctx goka.Context, _ any) { finish = ctx.DeferCommit() })
	start := time.Now()
	err := r.commit()
	if err == nil || !strings.Contains(err.Error(), "1 deferred commits (goka DeferCommit) not done within 30ms") {
		t.Fatalf("commit() = %v", err)
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Errorf("gave up after %s", waited)
	}
	if r.Aborts() != 1 || !slices.Contains(ap.Log(), "abort") || slices.Contains(ap.Log(), "commit") {
		t.Errorf("aborts %d log %v; want the transaction aborted, not committed", r.Aborts(), ap.Log())
	}
	finish(nil) // late: harmless
}
