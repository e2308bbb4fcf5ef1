package eos

import (
	"context"
	"errors"
	"log"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/tester"
)

// gokaProcessor builds a goka processor on goka's tester (in-memory topics) whose
// input callback is wrapped by the runtime. The runtime's commit cycle runs on its
// fake producer and the session set by startSession.
func gokaProcessor(t *testing.T, r *Runtime, cb goka.ProcessCallback, opts ...goka.ProcessorOption) (*goka.Processor, *tester.Tester) {
	t.Helper()
	tt := tester.New(t)
	g := goka.DefineGroup("g", goka.Input("in", new(codec.String), r.Wrap(cb)))
	base := []goka.ProcessorOption{goka.WithTester(tt), goka.WithLogger(log.New(testWriter{t}, "goka: ", 0))}
	proc, err := goka.NewProcessor(nil, g, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return proc, tt
}

type runResult struct{ err error }

func startRun(t *testing.T, r *Runtime, proc *goka.Processor) (stop context.CancelFunc, done <-chan runResult) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, finished := make(chan runResult, 1), make(chan struct{})
	go func() {
		ch <- runResult{r.Run(ctx, proc)}
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	return cancel, ch
}

// waitFor polls cond until it holds (at most 5 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRunCommitsAndStopsCleanly: messages processed by goka are committed at the
// commit interval; a stop abandons the empty open transaction, closes the producer
// and the clients built for goka, and a static member leaves the group.
func TestRunCommitsAndStopsCleanly(t *testing.T) {
	mb := newGroupBroker(t, nil, nil)
	r, ap, _ := testRuntime(t, Config{Brokers: []string{mb.Addr()}, CommitInterval: 10 * time.Millisecond,
		GroupInstanceID: "node-1", Sarama: mockSarama}, Hooks{})
	client := &countingConsumer{}
	r.clients.consumer(client)
	startSession(r, newFakeSession(1, map[string][]int32{"in": {0}}))
	offsets := make(chan int64, 10)
	proc, tt := gokaProcessor(t, r, func(ctx goka.Context, msg any) {
		if msg != "hello" {
			t.Errorf("callback got %v", msg)
		}
		offsets <- ctx.Offset()
	})
	stop, done := startRun(t, r, proc)
	tt.Consume("in", "k", "hello")
	off := within(t, offsets, 30*time.Second, "the callback")
	want := offsetsString(map[string][]*sarama.PartitionOffsetMetadata{"in": {{Partition: 0, Offset: off + 1, Metadata: new(string), LeaderEpoch: -1}}})
	waitFor(t, "the commit", func() bool {
		adds := ap.Adds()
		return len(adds) > 0 && offsetsString(adds[len(adds)-1].offsets) == want
	})
	if r.Commits() < 1 {
		t.Errorf("Commits() = %d", r.Commits())
	}
	stop()
	if res := within(t, done, 10*time.Second, "Run"); res.err != nil {
		t.Fatalf("Run() = %v after a stop", res.err)
	}
	log := ap.Log()
	if log[len(log)-1] != "abort" || !ap.isClosed() || r.txnOpen {
		t.Errorf("after Run: log tail %v, producer closed %v", log[max(0, len(log)-3):], ap.isClosed())
	}
	if !r.stopping.Load() {
		t.Errorf("callbacks not stopped")
	}
	if client.closes.Load() != 1 {
		t.Errorf("a client built for goka was closed %d times, want 1", client.closes.Load())
	}
	left := false
	for _, rr := range mb.History() {
		if _, ok := rr.Request.(*sarama.LeaveGroupRequest); ok {
			left = true
		}
	}
	if !left {
		t.Errorf("the static member did not leave the group on a clean stop")
	}
}

// TestRunRequestCommit: a requested commit runs at once, a second one only after
// half the commit interval since the last. Only bounds that a loaded
// machine cannot break are asserted: the minimum gap is a lower bound between the
// two commits' own timestamps, and "at once" / "not the interval" are upper bounds
// with the whole interval as slack.
func TestRunRequestCommit(t *testing.T) {
	const interval = 8 * time.Second // minimum gap 4s
	r, ap, _ := testRuntime(t, Config{CommitInterval: interval}, Hooks{})
	startSession(r, newFakeSession(1, nil))
	proc, _ := gokaProcessor(t, r, func(goka.Context, any) {})
	startRun(t, r, proc)

	process(r, "in", 0, 0, nil)
	start := time.Now()
	r.RequestCommit()
	waitFor(t, "the requested commit", func() bool { return len(ap.Adds()) == 1 })
	first := ap.Adds()[0].at
	if took := first.Sub(start); took >= interval {
		t.Errorf("requested commit took %s: it waited for the interval (%s)", took, interval)
	}
	process(r, "in", 0, 1, nil)
	r.RequestCommit()
	waitFor(t, "the deferred requested commit", func() bool { return len(ap.Adds()) == 2 })
	gap := ap.Adds()[1].at.Sub(first)
	if gap < interval/2 {
		t.Errorf("a second requested commit ran %s after the first, within the minimum gap (%s)", gap, interval/2)
	}
	if gap >= interval {
		t.Errorf("second commit %s after the first: it waited for the interval, not the gap", gap)
	}
}

// TestRunReturnsCommitFailure: a failed commit ends Run with its error; the
// processor is stopped and the producer closed; no group leave (the stage rejoins).
func TestRunReturnsCommitFailure(t *testing.T) {
	mb := newGroupBroker(t, nil, nil)
	r, ap, _ := testRuntime(t, Config{Brokers: []string{mb.Addr()}, CommitInterval: 5 * time.Millisecond,
		GroupInstanceID: "node-1", Sarama: mockSarama}, Hooks{})
	startSession(r, newFakeSession(1, nil))
	boom := errors.New("boom")
	ap.setErrs(nil, nil, boom, nil)
	proc, _ := gokaProcessor(t, r, func(goka.Context, any) {})
	_, done := startRun(t, r, proc)
	process(r, "in", 0, 0, nil)
	res := within(t, done, 10*time.Second, "Run")
	if !errors.Is(res.err, boom) || !strings.Contains(res.err.Error(), "commit transaction") {
		t.Fatalf("Run() = %v, want the commit failure", res.err)
	}
	if !ap.isClosed() || r.Aborts() != 1 || !r.stopping.Load() {
		t.Errorf("producer closed %v aborts %d stopping %v", ap.isClosed(), r.Aborts(), r.stopping.Load())
	}
	if n := strings.Count(strings.Join(ap.Log(), " "), "abort"); n != 1 {
		t.Errorf("%d aborts in %v, want 1", n, ap.Log())
	}
	for _, rr := range mb.History() {
		if _, ok := rr.Request.(*sarama.LeaveGroupRequest); ok {
			t.Errorf("left the group after a failure")
		}
	}
}

// TestRunReturnsProcessorFailure: goka failing by itself ends Run with its error.
func TestRunReturnsProcessorFailure(t *testing.T) {
	r, ap, _ := testRuntime(t, Config{}, Hooks{})
	boom := errors.New("consumer group unavailable")
	proc, _ := gokaProcessor(t, r, func(goka.Context, any) {},
		goka.WithConsumerGroupBuilder(func([]string, string, string) (sarama.ConsumerGroup, error) { return nil, boom }))
	_, done := startRun(t, r, proc)
	res := within(t, done, 10*time.Second, "Run")
	if res.err == nil || !strings.Contains(res.err.Error(), boom.Error()) {
		t.Fatalf("Run() = %v, want goka's failure", res.err)
	}
	if !ap.isClosed() || !slices.Contains(ap.Log(), "abort") {
		t.Errorf("producer closed %v, log %v; want the open transaction aborted", ap.isClosed(), ap.Log())
	}
}

func TestRunReportsProducerCloseError(t *testing.T) {
	r, ap, _ := testRuntime(t, Config{Mode: AtLeastOnce}, Hooks{})
	ap.mu.Lock()
	ap.closeErr = errors.New("flush on close failed")
	ap.mu.Unlock()
	proc, _ := gokaProcessor(t, r, func(goka.Context, any) {})
	stop, done := startRun(t, r, proc)
	time.Sleep(20 * time.Millisecond)
	stop()
	res := within(t, done, 10*time.Second, "Run")
	if res.err == nil || !strings.Contains(res.err.Error(), "close producer: flush on close failed") {
		t.Errorf("Run() = %v", res.err)
	}
	if slices.Contains(ap.Log(), "abort") {
		t.Errorf("at-least-once aborted a transaction")
	}
}

func TestDiscard(t *testing.T) {
	r, ap, _ := testRuntime(t, Config{}, Hooks{})
	c := &countingConsumer{}
	r.clients.consumer(c)
	if err := r.Discard(); err != nil {
		t.Fatal(err)
	}
	if got := ap.Log(); !slices.Equal(got, []string{"begin", "abort"}) || !ap.isClosed() || r.txnOpen {
		t.Errorf("Discard: log %v closed %v", got, ap.isClosed())
	}
	if c.closes.Load() != 1 {
		t.Errorf("client closed %d times", c.closes.Load())
	}

	r2, ap2, _ := testRuntime(t, Config{Mode: AtLeastOnce}, Hooks{})
	boom := errors.New("boom")
	r2.clients.consumer(&countingConsumer{err: boom})
	if err := r2.Discard(); !errors.Is(err, boom) {
		t.Errorf("Discard() = %v, want the client's close error", err)
	}
	if len(ap2.Log()) != 0 || !ap2.isClosed() {
		t.Errorf("at-least-once Discard: log %v closed %v", ap2.Log(), ap2.isClosed())
	}
}

// TestNewWithSarama builds the runtime's real sarama producer against a mock
// broker: New initialises the transactional id (which fences an earlier producer
// with it) and begins a transaction; Discard aborts it and closes the producer.
func TestNewWithSarama(t *testing.T) {
	mb := newGroupBroker(t, nil, nil, "g-node-1")
	r, err := New(Config{Brokers: []string{mb.Addr()}, Group: "g", TransactionalID: "g-node-1", Sarama: mockSarama}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mb.initialised(); !slices.Equal(got, []string{"g-node-1"}) {
		t.Errorf("producers initialised for %v, want g-node-1", got)
	}
	if !r.prod.ap.IsTransactional() || r.prod.ap.TxnStatus()&sarama.ProducerTxnFlagInTransaction == 0 {
		t.Errorf("producer transactional %v, status %v; want a transaction begun", r.prod.ap.IsTransactional(), r.prod.ap.TxnStatus())
	}
	if err := r.Discard(); err != nil {
		t.Fatal(err)
	}

	// Without a reachable broker New fails.
	c := mockSarama()
	c.Metadata.Retry.Max = 0
	if _, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Group: "g", TransactionalID: "g-node-1",
		Sarama: func() *sarama.Config { return c }}, Hooks{}); err == nil || !strings.Contains(err.Error(), "create producer for group g") {
		t.Errorf("New() = %v", err)
	}
}
