package eos

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// offsetsString renders AddOffsetsToTxn's argument deterministically:
// "topic/partition@offset:metadata" per partition, in the order given.
func offsetsString(offs map[string][]*sarama.PartitionOffsetMetadata) string {
	var topics []string
	for topic := range offs {
		topics = append(topics, topic)
	}
	slices.Sort(topics)
	var parts []string
	for _, topic := range topics {
		for _, o := range offs[topic] {
			md := "<nil>"
			if o.Metadata != nil {
				md = *o.Metadata
			}
			parts = append(parts, fmt.Sprintf("%s/%d@%d:%s(epoch %d)", topic, o.Partition, o.Offset, md, o.LeaderEpoch))
		}
	}
	return strings.Join(parts, " ")
}

func TestCommitSkipsWhenNothingHappened(t *testing.T) {
	flushes := 0
	r, ap, _ := testRuntime(t, Config{}, Hooks{
		Flush: func(func(*sarama.ProducerMessage)) (map[TopicPartition]string, error) {
			flushes++
			return nil, nil
		},
		Committed: func(CommitStats) { t.Error("Committed hook called without a commit") },
	})
	// Between generations (no session) nothing is committed, not even flushed.
	if err := r.commit(); err != nil {
		t.Fatal(err)
	}
	if flushes != 0 {
		t.Errorf("Flush called between generations")
	}
	startSession(r, newFakeSession(1, nil))
	for range 3 {
		if err := r.commit(); err != nil {
			t.Fatal(err)
		}
	}
	if got := ap.Log(); !slices.Equal(got, []string{"begin"}) {
		t.Errorf("transaction calls %v; want only New's BeginTxn", got)
	}
	if flushes != 3 {
		t.Errorf("Flush called %d times, want once per commit cycle", flushes)
	}
	if r.Commits() != 0 || r.Aborts() != 0 {
		t.Errorf("commits %d aborts %d, want 0 0", r.Commits(), r.Aborts())
	}
}

func TestCommitExactlyOnce(t *testing.T) {
	var stats []CommitStats
	var flushMeta map[TopicPartition]string
	var flushMsgs []*sarama.ProducerMessage
	r, ap, _ := testRuntime(t, Config{Group: "grp"}, Hooks{
		Flush: func(send func(*sarama.ProducerMessage)) (map[TopicPartition]string, error) {
			for _, m := range flushMsgs {
				send(m)
			}
			flushMsgs = nil
			return flushMeta, nil
		},
		Committed: func(s CommitStats) { stats = append(stats, s) },
	})
	startSession(r, newFakeSession(7, map[string][]int32{"in": {0, 1}, "other": {0}}))

	emit := func(ctx goka.Context, _ any) { r.prod.Emit("out", "k-"+fmt.Sprint(ctx.Offset()), []byte("v")) }
	process(r, "in", 0, 40, emit)
	process(r, "in", 0, 41, emit)
	process(r, "in", 1, 9, nil)
	process(r, "other", 0, 3, nil)
	flushMsgs = []*sarama.ProducerMessage{{Topic: "buffer", Key: sarama.StringEncoder("b")}}
	flushMeta = map[TopicPartition]string{{"in", 0}: "snap-0", {"unclaimed", 5}: "ignored"}

	if err := r.commit(); err != nil {
		t.Fatal(err)
	}
	// The emits and the flush are in the first transaction, before its commit.
	wantLog := []string{"begin", "send:out/k-40", "send:out/k-41", "send:buffer/b", "add", "commit", "begin"}
	if got := ap.Log(); !slices.Equal(got, wantLog) {
		t.Fatalf("log %v\nwant %v", got, wantLog)
	}
	for _, m := range ap.Msgs() {
		if !m.inTxn || m.txn != 1 {
			t.Errorf("%s arrived in transaction %d (open %v), want 1", msgName(m.msg), m.txn, m.inTxn)
		}
	}
	adds := ap.Adds()
	if len(adds) != 1 {
		t.Fatalf("%d AddOffsetsToTxn calls, want 1", len(adds))
	}
	// The next offset after the last started message; the flush's metadata per partition.
	want := "in/0@42:snap-0(epoch -1) in/1@10:(epoch -1) other/0@4:(epoch -1)"
	if got := offsetsString(adds[0].offsets); got != want {
		t.Errorf("offsets %s\nwant    %s", got, want)
	}
	if gm := adds[0].group; gm.GroupID != "grp" || gm.GenerationID != 7 || gm.MemberID != "member-7" {
		t.Errorf("group metadata %+v; want grp, generation 7, member-7 (KIP-447 fencing)", *gm)
	}
	if r.Commits() != 1 || r.Aborts() != 0 || !r.txnOpen {
		t.Errorf("commits %d aborts %d txnOpen %v; want 1 0 true", r.Commits(), r.Aborts(), r.txnOpen)
	}
	if len(stats) != 1 || stats[0].Offsets != 3 || stats[0].Duration < stats[0].Paused {
		t.Errorf("Committed stats %+v", stats)
	}
	paused, longest, total := r.CommitTime()
	if longest > paused || paused > total || total <= 0 {
		t.Errorf("CommitTime paused %s longest %s total %s", paused, longest, total)
	}

	// Nothing since: no transaction.
	if err := r.commit(); err != nil {
		t.Fatal(err)
	}
	if n := len(ap.Log()); n != len(wantLog) || r.Commits() != 1 {
		t.Errorf("an idle commit cycle committed: log %v", ap.Log())
	}

	// One partition moved: only its offset is committed.
	process(r, "in", 1, 10, nil)
	flushMeta = nil
	if err := r.commit(); err != nil {
		t.Fatal(err)
	}
	adds = ap.Adds()
	if len(adds) != 2 || offsetsString(adds[1].offsets) != "in/1@11:(epoch -1)" {
		t.Errorf("second commit's offsets: %v", offsetsString(adds[len(adds)-1].offsets))
	}

	// Only sends (a flush without input): committed without offsets.
	flushMsgs = []*sarama.ProducerMessage{{Topic: "buffer", Key: sarama.StringEncoder("late")}}
	if err := r.commit(); err != nil {
		t.Fatal(err)
	}
	wantTail := []string{"send:buffer/late", "commit", "begin"}
	if got := ap.Log(); !slices.Equal(got[len(got)-3:], wantTail) {
		t.Errorf("sends-only commit: log tail %v, want %v", got[len(got)-3:], wantTail)
	}
	if len(ap.Adds()) != 2 {
		t.Errorf("sends-only commit added offsets")
	}
	if r.Commits() != 3 || len(stats) != 3 || stats[2].Offsets != 0 {
		t.Errorf("commits %d, stats %+v", r.Commits(), stats)
	}
}

func TestCommitAtLeastOnce(t *testing.T) {
	flushMeta := map[TopicPartition]string{{"in", 0}: "m0"}
	r, ap, _ := testRuntime(t, Config{Mode: AtLeastOnce}, Hooks{
		Flush: func(send func(*sarama.ProducerMessage)) (map[TopicPartition]string, error) {
			send(&sarama.ProducerMessage{Topic: "buffer"})
			return flushMeta, nil
		},
	})
	fs := newFakeSession(3, map[string][]int32{"in": {0, 1}})
	startSession(r, fs)
	process(r, "in", 1, 7, nil)
	process(r, "in", 0, 5, nil)
	if err := r.commit(); err != nil {
		t.Fatal(err)
	}
	marks, commits, _, _ := fs.state()
	if want := []string{"in/0@6:m0", "in/1@8:"}; !slices.Equal(marks, want) || commits != 1 {
		t.Errorf("session marks %v commits %d; want %v and one Commit", marks, commits, want)
	}
	for _, op := range ap.Log() {
		if !strings.HasPrefix(op, "send:") {
			t.Errorf("at-least-once made a transaction call: %s", op)
		}
	}
	if r.Commits() != 1 {
		t.Errorf("Commits() = %d", r.Commits())
	}
	// The flush sends every cycle, so every cycle commits; only moved offsets are marked.
	process(r, "in", 1, 8, nil)
	if err := r.commit(); err != nil {
		t.Fatal(err)
	}
	marks, commits, _, _ = fs.state()
	if want := []string{"in/0@6:m0", "in/1@8:", "in/1@9:"}; !slices.Equal(marks, want) || commits != 2 {
		t.Errorf("session marks %v commits %d; want %v", marks, commits, want)
	}
}

func TestCommitFailureAbortsTransaction(t *testing.T) {
	boom := errors.New("boom")
	for name, tc := range map[string]struct {
		setup     func(ap *fakeAP)
		flushErr  error
		wantErr   string
		wantTail  []string // the transaction calls after the sends
		wantAbort bool
	}{
		"ack": {
			setup:     func(ap *fakeAP) { ap.setResult(func(*sarama.ProducerMessage) error { return boom }) },
			wantErr:   "write to out/0: boom",
			wantTail:  []string{"abort"},
			wantAbort: true,
		},
		"add offsets": {
			setup:     func(ap *fakeAP) { ap.setErrs(nil, boom, nil, nil) },
			wantErr:   "add offsets to transaction: boom",
			wantTail:  []string{"add", "abort"},
			wantAbort: true,
		},
		"commit": {
			setup:     func(ap *fakeAP) { ap.setErrs(nil, nil, boom, nil) },
			wantErr:   "commit transaction: boom",
			wantTail:  []string{"add", "commit", "abort"},
			wantAbort: true,
		},
		"flush": {
			flushErr:  boom,
			wantErr:   "flush: boom",
			wantTail:  []string{"abort"},
			wantAbort: true,
		},
		// The transaction committed; the next one could not begin: nothing to abort.
		"begin": {
			setup:    func(ap *fakeAP) { ap.setErrs(boom, nil, nil, nil) },
			wantErr:  "begin transaction: boom",
			wantTail: []string{"add", "commit", "begin"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			committed := false
			r, ap, _ := testRuntime(t, Config{Group: "grp"}, Hooks{
				Flush:     func(func(*sarama.ProducerMessage)) (map[TopicPartition]string, error) { return nil, tc.flushErr },
				Committed: func(CommitStats) { committed = true },
			})
			startSession(r, newFakeSession(1, nil))
			if tc.setup != nil {
				tc.setup(ap)
			}
			process(r, "in", 0, 0, func(goka.Context, any) { r.prod.Emit("out", "", nil) })
			err := r.commit()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "group grp") {
				t.Fatalf("commit() = %v, want an error containing %q", err, tc.wantErr)
			}
			if !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap the cause", err)
			}
			var ops []string
			for _, op := range ap.Log()[1:] { // after New's BeginTxn
				if !strings.HasPrefix(op, "send:") {
					ops = append(ops, op)
				}
			}
			if !slices.Equal(ops, tc.wantTail) {
				t.Errorf("transaction calls %v, want %v", ops, tc.wantTail)
			}
			wantAborts := int64(0)
			if tc.wantAbort {
				wantAborts = 1
			}
			if r.Aborts() != wantAborts || r.Commits() != 0 || committed {
				t.Errorf("aborts %d commits %d committed hook %v; want %d 0 false", r.Aborts(), r.Commits(), committed, wantAborts)
			}
			if r.txnOpen {
				t.Errorf("txnOpen after the failure")
			}
			if len(r.committed) != 0 {
				t.Errorf("offsets recorded as committed after a failure: %v", r.committed)
			}
		})
	}
}

func TestCommitFailureWhenAbortFails(t *testing.T) {
	boom, abortErr := errors.New("boom"), errors.New("abort failed")
	r, ap, _ := testRuntime(t, Config{}, Hooks{})
	startSession(r, newFakeSession(1, nil))
	process(r, "in", 0, 0, nil)
	ap.setErrs(nil, nil, boom, abortErr)
	if err := r.commit(); !errors.Is(err, boom) {
		t.Fatalf("commit() = %v, want the commit error (not the abort's)", err)
	}
	if r.Aborts() != 1 || !r.txnOpen {
		t.Errorf("aborts %d txnOpen %v; want the abort counted and the transaction still marked open", r.Aborts(), r.txnOpen)
	}
}

// blockingAcks makes the fake producer hold each acknowledgement until the test
// answers on the returned channel (nil: success).
func blockingAcks(ap *fakeAP) (arrived <-chan string, answer chan<- error) {
	arr, ans := make(chan string, 16), make(chan error)
	ap.setResult(func(m *sarama.ProducerMessage) error {
		arr <- msgName(m)
		return <-ans
	})
	return arr, ans
}

// TestHeldSendsGoToNextTransaction: while a commit waits for acknowledgements and
// the transaction's round trips, callbacks run (the barrier is released) and what
// they send is held, then sent into the next transaction.
func TestHeldSendsGoToNextTransaction(t *testing.T) {
	r, ap, _ := testRuntime(t, Config{}, Hooks{})
	startSession(r, newFakeSession(1, nil))
	arrived, answer := blockingAcks(ap)
	process(r, "in", 0, 0, func(goka.Context, any) { r.prod.Emit("out", "first", nil) })
	within(t, arrived, 5*time.Second, "first send")

	commitDone := make(chan error, 1)
	go func() { commitDone <- r.commit() }()
	// prepareCommit is done once the producer holds sends; the commit cannot get
	// further than waitAcked, which waits for our answer.
	for !holding(r) {
		time.Sleep(time.Millisecond)
	}
	// A callback runs meanwhile and emits.
	var promiseErr error
	promiseDone := make(chan struct{})
	cbDone := make(chan struct{})
	go func() {
		process(r, "in", 0, 1, func(goka.Context, any) {
			r.prod.Emit("out", "second", nil).Then(func(err error) { promiseErr = err; close(promiseDone) })
		})
		close(cbDone)
	}()
	within(t, cbDone, 5*time.Second, "a callback during the commit's round trips")
	never(t, arrived, 20*time.Millisecond, "a held message reaching the producer")
	answer <- nil // ack "first"
	if err := within(t, commitDone, 5*time.Second, "commit"); err != nil {
		t.Fatal(err)
	}
	// The held message was released after the next BeginTxn.
	if got := within(t, arrived, 5*time.Second, "the held send"); got != "out/second" {
		t.Fatalf("released %s", got)
	}
	answer <- nil
	within(t, promiseDone, 5*time.Second, "the held message's promise")
	if promiseErr != nil {
		t.Errorf("held message failed: %v", promiseErr)
	}
	want := []string{"begin", "send:out/first", "add", "commit", "begin", "send:out/second"}
	if got := ap.Log(); !slices.Equal(got, want) {
		t.Fatalf("log %v\nwant %v", got, want)
	}
	if m := ap.Msgs()[1]; m.txn != 2 || !m.inTxn {
		t.Errorf("held message in transaction %d, want 2", m.txn)
	}
	// Its offset (1 -> 2) goes with it in the next commit.
	ap.setResult(nil)
	if err := r.commit(); err != nil {
		t.Fatal(err)
	}
	if adds := ap.Adds(); len(adds) != 2 || offsetsString(adds[1].offsets) != "in/0@2:(epoch -1)" {
		t.Errorf("next commit's offsets %v", offsetsString(adds[len(adds)-1].offsets))
	}
}

func holding(r *Runtime) bool {
	r.prod.sendMu.Lock()
	defer r.prod.sendMu.Unlock()
	return r.prod.holding
}

// TestHeldSendsDroppedOnFailure: when the commit fails, held messages never reach
// Kafka and their promises fail with the commit's error.
func TestHeldSendsDroppedOnFailure(t *testing.T) {
	for _, mode := range []Mode{ExactlyOnce, AtLeastOnce} {
		t.Run(string(mode), func(t *testing.T) {
			r, ap, _ := testRuntime(t, Config{Mode: mode}, Hooks{})
			startSession(r, newFakeSession(1, map[string][]int32{"in": {0}}))
			arrived, answer := blockingAcks(ap)
			process(r, "in", 0, 0, func(goka.Context, any) { r.prod.Emit("out", "first", nil) })
			within(t, arrived, 5*time.Second, "first send")
			commitDone := make(chan error, 1)
			go func() { commitDone <- r.commit() }()
			for !holding(r) {
				time.Sleep(time.Millisecond)
			}
			var promiseErr error
			promiseDone := make(chan struct{})
			process(r, "in", 0, 1, func(goka.Context, any) {
				r.prod.Emit("out", "held", nil).Then(func(err error) { promiseErr = err; close(promiseDone) })
			})
			answer <- errors.New("not enough replicas")
			err := within(t, commitDone, 5*time.Second, "commit")
			if err == nil || !strings.Contains(err.Error(), "not enough replicas") {
				t.Fatalf("commit() = %v", err)
			}
			within(t, promiseDone, 5*time.Second, "the held message's promise")
			if promiseErr == nil || !strings.Contains(promiseErr.Error(), "not enough replicas") {
				t.Errorf("held message's promise: %v, want the commit error", promiseErr)
			}
			never(t, arrived, 20*time.Millisecond, "the dropped message reaching the producer")
			if holding(r) {
				t.Errorf("producer still holding after the failure")
			}
			if mode == AtLeastOnce {
				// No offsets committed at all.
				if marks, commits, _, _ := r.sess.ConsumerGroupSession.(*fakeSession).state(); len(marks) != 0 || commits != 0 {
					t.Errorf("at-least-once failure committed offsets: %v %d", marks, commits)
				}
				if r.Aborts() != 0 {
					t.Errorf("at-least-once counted an abort")
				}
			} else if r.Aborts() != 1 {
				t.Errorf("aborts %d, want 1", r.Aborts())
			}
		})
	}
}

// TestBarrierPausesCallbacksDuringPrepare: a callback that arrives while the commit
// flushes waits, and its offset is not in that commit.
func TestBarrierPausesCallbacksDuringPrepare(t *testing.T) {
	inFlush, releaseFlush := make(chan struct{}), make(chan struct{})
	var flushes atomic.Int32
	r, ap, _ := testRuntime(t, Config{}, Hooks{
		Flush: func(func(*sarama.ProducerMessage)) (map[TopicPartition]string, error) {
			// Only the first flush (the commit under test) is held; it waits for
			// the test to see it, however late the test goroutine gets there.
			if flushes.Add(1) == 1 {
				inFlush <- struct{}{}
				<-releaseFlush
			}
			return nil, nil
		},
	})
	startSession(r, newFakeSession(1, nil))
	process(r, "in", 0, 10, nil)
	commitDone := make(chan error, 1)
	go func() { commitDone <- r.commit() }()
	within(t, inFlush, 5*time.Second, "flush")

	ran := make(chan struct{})
	go process(r, "in", 0, 11, func(goka.Context, any) { close(ran) })
	never(t, ran, 50*time.Millisecond, "a callback during the flush")
	close(releaseFlush)
	if err := within(t, commitDone, 5*time.Second, "commit"); err != nil {
		t.Fatal(err)
	}
	within(t, ran, 5*time.Second, "the paused callback")
	if adds := ap.Adds(); len(adds) != 1 || offsetsString(adds[0].offsets) != "in/0@11:(epoch -1)" {
		t.Errorf("offsets %v; want only the message processed before the commit", offsetsString(adds[0].offsets))
	}
}

// TestCommitWaitsForRunningCallback: a commit's flush runs only after the running
// callbacks have returned.
func TestCommitWaitsForRunningCallback(t *testing.T) {
	flushed := make(chan struct{}, 1)
	r, ap, _ := testRuntime(t, Config{}, Hooks{
		Flush: func(func(*sarama.ProducerMessage)) (map[TopicPartition]string, error) {
			flushed <- struct{}{}
			return nil, nil
		},
	})
	startSession(r, newFakeSession(1, nil))
	inCb, releaseCb := make(chan struct{}), make(chan struct{})
	cbDone := make(chan struct{})
	go func() {
		process(r, "in", 0, 4, func(goka.Context, any) {
			close(inCb)
			<-releaseCb
			r.prod.Emit("out", "late-in-callback", nil)
		})
		close(cbDone)
	}()
	within(t, inCb, 5*time.Second, "callback start")
	commitDone := make(chan error, 1)
	go func() { commitDone <- r.commit() }()
	never(t, flushed, 50*time.Millisecond, "a flush while a callback runs")
	close(releaseCb)
	within(t, cbDone, 5*time.Second, "callback end")
	if err := within(t, commitDone, 5*time.Second, "commit"); err != nil {
		t.Fatal(err)
	}
	// The callback's emit is in the committed transaction, with its offset.
	want := []string{"begin", "send:out/late-in-callback", "add", "commit", "begin"}
	if got := ap.Log(); !slices.Equal(got, want) {
		t.Errorf("log %v, want %v", got, want)
	}
	if adds := ap.Adds(); len(adds) != 1 || offsetsString(adds[0].offsets) != "in/0@5:(epoch -1)" {
		t.Errorf("offsets %v", ap.Adds())
	}
}

func TestWrapRecordsStartedOffsets(t *testing.T) {
	r, _, _ := testRuntime(t, Config{}, Hooks{})
	var seen goka.Context
	var got []any
	cb := r.Wrap(func(ctx goka.Context, msg any) { seen = ctx; got = append(got, msg) })
	ctx := msgCtx("in", 3, 99)
	cb(ctx, "payload")
	if len(got) != 1 || got[0] != "payload" {
		t.Fatalf("callback got %v", got)
	}
	if seen.Topic() != "in" || seen.Partition() != 3 || seen.Offset() != 99 {
		t.Errorf("the callback's context does not delegate to goka's: %s/%d@%d", seen.Topic(), seen.Partition(), seen.Offset())
	}
	if _, ok := seen.(deferredContext); !ok {
		t.Errorf("callback context %T, want deferredContext (counted DeferCommit)", seen)
	}
	if off := r.started[topicPartition{"in", 3}]; off != 100 {
		t.Errorf("started offset %d, want 100 (the next offset)", off)
	}
}

// TestStopCallbacks: stopCallbacks waits for running callbacks; later ones are
// no-ops and their messages are not committed.
func TestStopCallbacks(t *testing.T) {
	r, ap, _ := testRuntime(t, Config{}, Hooks{})
	startSession(r, newFakeSession(1, nil))
	inCb, releaseCb := make(chan struct{}), make(chan struct{})
	go process(r, "in", 0, 0, func(goka.Context, any) { close(inCb); <-releaseCb })
	within(t, inCb, 5*time.Second, "callback start")
	stopped := make(chan struct{})
	go func() { r.stopCallbacks(); close(stopped) }()
	never(t, stopped, 50*time.Millisecond, "stopCallbacks returning while a callback runs")
	close(releaseCb)
	within(t, stopped, 5*time.Second, "stopCallbacks")

	called := false
	process(r, "in", 0, 1, func(goka.Context, any) { called = true })
	if called {
		t.Fatal("a callback ran after stopCallbacks")
	}
	if err := r.commit(); err != nil {
		t.Fatal(err)
	}
	// Only the message whose callback ran (offset 0) is committed.
	if adds := ap.Adds(); len(adds) != 1 || offsetsString(adds[0].offsets) != "in/0@1:(epoch -1)" {
		t.Errorf("offsets %v", offsetsString(adds[0].offsets))
	}
}

func TestRequestCommitCoalesces(t *testing.T) {
	r, _, _ := testRuntime(t, Config{}, Hooks{})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(r.RequestCommit) // never blocks
	}
	wg.Wait()
	if n := len(r.commitNow); n != 1 {
		t.Errorf("%d pending commit requests, want 1", n)
	}
}

func TestClaims(t *testing.T) {
	r, _, _ := testRuntime(t, Config{}, Hooks{})
	if r.Claims() != nil {
		t.Errorf("Claims between generations: %v", r.Claims())
	}
	claims := map[string][]int32{"in": {0, 2}}
	startSession(r, newFakeSession(1, claims))
	got := r.Claims()
	if !slices.Equal(got["in"], []int32{0, 2}) || len(got) != 1 {
		t.Fatalf("Claims() = %v", got)
	}
	got["in"][0] = 42
	if claims["in"][0] != 0 {
		t.Errorf("Claims() returned the session's slice, not a copy")
	}
}

// After a failed commit the runtime commits nothing more: the generation's last
// commit (sessionEnding, from goka's Cleanup) must not mark offsets whose flushed
// partial sums were lost with the failed cycle (at-least-once had no transaction to
// refuse it).
func TestNoCommitAfterAFailure(t *testing.T) {
	for _, mode := range []Mode{AtLeastOnce, ExactlyOnce} {
		t.Run(string(mode), func(t *testing.T) {
			flushes := 0
			r, _, _ := testRuntime(t, Config{Mode: mode}, Hooks{
				Flush: func(send func(*sarama.ProducerMessage)) (map[TopicPartition]string, error) {
					flushes++
					if flushes == 1 {
						return nil, errors.New("encode failed")
					}
					return nil, nil
				},
			})
			fs := newFakeSession(1, map[string][]int32{"in": {0}})
			startSession(r, fs)
			process(r, "in", 0, 41, nil)
			if err := r.commit(); err == nil {
				t.Fatal("the failing flush did not fail the commit")
			}
			if err := r.sessionEnding(fs); err == nil || !strings.Contains(err.Error(), "encode failed") {
				t.Errorf("sessionEnding after the failure: %v, want the first failure", err)
			}
			if marks, commits, _, _ := fs.state(); len(marks) != 0 || commits != 0 {
				t.Errorf("offsets committed after the failure: marks %v, commits %d", marks, commits)
			}
			if flushes != 1 {
				t.Errorf("flushed %d times; nothing may be flushed after the failure", flushes)
			}
		})
	}
}
