package eos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// Hand-made fakes for the unit tests: no Kafka broker (the tests that need a
// broker's answers use sarama.MockBroker, an in-process fake).

// fakeAP is a sarama.AsyncProducer that records, in one ordered log, the messages
// it receives and the transaction calls. A message is logged when the producer's
// input receives it, before it is acknowledged: everything sent before a commit's
// waitAcked returned is therefore logged before that commit's CommitTxn.
type fakeAP struct {
	input     chan *sarama.ProducerMessage
	successes chan *sarama.ProducerMessage
	errs      chan *sarama.ProducerError
	done      chan struct{}
	closeOnce sync.Once

	mu sync.Mutex
	// result decides a message's outcome (nil: success); it may block.
	result    func(*sarama.ProducerMessage) error
	log       []string // "begin", "add", "commit", "abort", "send:<topic>/<key>"
	txns      int      // BeginTxn calls so far
	inTxn     bool
	msgs      []sentMsg
	adds      []addOffsetsCall
	beginErr  error
	addErr    error
	commitErr error
	abortErr  error
	closeErr  error
	closed    bool
}

type sentMsg struct {
	msg   *sarama.ProducerMessage
	txn   int  // the BeginTxn count when it arrived
	inTxn bool // whether a transaction was open when it arrived
}

type addOffsetsCall struct {
	at      time.Time // when the runtime called AddOffsetsToTxn
	offsets map[string][]*sarama.PartitionOffsetMetadata
	group   *sarama.ConsumerGroupMetadata
}

func newFakeAP() *fakeAP {
	f := &fakeAP{
		input:     make(chan *sarama.ProducerMessage),
		successes: make(chan *sarama.ProducerMessage, 16),
		errs:      make(chan *sarama.ProducerError, 16),
		done:      make(chan struct{}),
	}
	go func() {
		defer close(f.done)
		defer close(f.errs)
		defer close(f.successes)
		for msg := range f.input {
			f.mu.Lock()
			f.msgs = append(f.msgs, sentMsg{msg: msg, txn: f.txns, inTxn: f.inTxn})
			f.log = append(f.log, "send:"+msgName(msg))
			result := f.result
			f.mu.Unlock()
			var err error
			if result != nil {
				err = result(msg)
			}
			if err != nil {
				f.errs <- &sarama.ProducerError{Msg: msg, Err: err}
			} else {
				f.successes <- msg
			}
		}
	}()
	return f
}

func msgName(msg *sarama.ProducerMessage) string {
	key := ""
	if msg.Key != nil {
		b, _ := msg.Key.Encode()
		key = string(b)
	}
	return msg.Topic + "/" + key
}

func (f *fakeAP) setResult(fn func(*sarama.ProducerMessage) error) {
	f.mu.Lock()
	f.result = fn
	f.mu.Unlock()
}

func (f *fakeAP) setErrs(begin, add, commit, abort error) {
	f.mu.Lock()
	f.beginErr, f.addErr, f.commitErr, f.abortErr = begin, add, commit, abort
	f.mu.Unlock()
}

func (f *fakeAP) Log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

func (f *fakeAP) Msgs() []sentMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.msgs)
}

func (f *fakeAP) Adds() []addOffsetsCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.adds)
}

func (f *fakeAP) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *fakeAP) AsyncClose() {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.closed = true
		f.mu.Unlock()
		close(f.input)
	})
}

func (f *fakeAP) Close() error {
	f.AsyncClose()
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closeErr
}

func (f *fakeAP) Input() chan<- *sarama.ProducerMessage     { return f.input }
func (f *fakeAP) Successes() <-chan *sarama.ProducerMessage { return f.successes }
func (f *fakeAP) Errors() <-chan *sarama.ProducerError      { return f.errs }
func (f *fakeAP) IsTransactional() bool                     { return true }
func (f *fakeAP) TxnStatus() sarama.ProducerTxnStatusFlag   { return sarama.ProducerTxnFlagReady }
func (f *fakeAP) AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata, string) error {
	return errors.New("fakeAP: AddOffsetsToTxn not expected (KIP-447 metadata required)")
}

func (f *fakeAP) AddMessageToTxn(*sarama.ConsumerMessage, string, *string) error {
	return errors.New("fakeAP: AddMessageToTxn not expected")
}

func (f *fakeAP) AddMessageToTxnWithGroupMetadata(*sarama.ConsumerMessage, *sarama.ConsumerGroupMetadata, *string) error {
	return errors.New("fakeAP: AddMessageToTxnWithGroupMetadata not expected")
}

func (f *fakeAP) BeginTxn() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "begin")
	if f.beginErr != nil {
		return f.beginErr
	}
	f.txns++
	f.inTxn = true
	return nil
}

func (f *fakeAP) CommitTxn() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "commit")
	if f.commitErr != nil {
		return f.commitErr
	}
	f.inTxn = false
	return nil
}

func (f *fakeAP) AbortTxn() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "abort")
	if f.abortErr != nil {
		return f.abortErr
	}
	f.inTxn = false
	return nil
}

func (f *fakeAP) AddOffsetsToTxnWithGroupMetadata(offsets map[string][]*sarama.PartitionOffsetMetadata, gm *sarama.ConsumerGroupMetadata) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "add")
	f.adds = append(f.adds, addOffsetsCall{at: time.Now(), offsets: offsets, group: gm})
	return f.addErr
}

// fakeSession is a sarama.ConsumerGroupSession that records offset marks and commits.
type fakeSession struct {
	claims map[string][]int32
	member string
	gen    int32
	ctx    context.Context

	mu      sync.Mutex
	marks   []string // "topic/partition@offset:metadata"
	commits int
	resets  int
	msgs    int
}

func newFakeSession(gen int32, claims map[string][]int32) *fakeSession {
	return &fakeSession{claims: claims, member: fmt.Sprintf("member-%d", gen), gen: gen, ctx: context.Background()}
}

func (s *fakeSession) Claims() map[string][]int32 { return s.claims }
func (s *fakeSession) MemberID() string           { return s.member }
func (s *fakeSession) GenerationID() int32        { return s.gen }
func (s *fakeSession) Context() context.Context   { return s.ctx }

func (s *fakeSession) MarkOffset(topic string, partition int32, offset int64, metadata string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marks = append(s.marks, fmt.Sprintf("%s/%d@%d:%s", topic, partition, offset, metadata))
}

func (s *fakeSession) Commit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits++
}

func (s *fakeSession) ResetOffset(string, int32, int64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resets++
}

func (s *fakeSession) MarkMessage(*sarama.ConsumerMessage, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs++
}

func (s *fakeSession) state() (marks []string, commits, resets, msgs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.marks), s.commits, s.resets, s.msgs
}

// fakeCtx is the goka.Context of one message; methods the runtime does not use
// panic (nil embedded interface).
type fakeCtx struct {
	gokaContext
	topic     string
	partition int32
	offset    int64

	mu        sync.Mutex
	deferDone []error // the errors goka's own DeferCommit functions were called with
}

func msgCtx(topic string, partition int32, offset int64) *fakeCtx {
	return &fakeCtx{topic: topic, partition: partition, offset: offset}
}

func (c *fakeCtx) Topic() goka.Stream { return goka.Stream(c.topic) }
func (c *fakeCtx) Partition() int32   { return c.partition }
func (c *fakeCtx) Offset() int64      { return c.offset }
func (c *fakeCtx) DeferCommit() func(error) {
	return func(err error) {
		c.mu.Lock()
		c.deferDone = append(c.deferDone, err)
		c.mu.Unlock()
	}
}

func (c *fakeCtx) deferCalls() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.deferDone)
}

// testRuntime builds a runtime on a fakeAP (Config defaults for the rest) and
// returns the producer config New built.
func testRuntime(t *testing.T, cfg Config, hooks Hooks) (*Runtime, *fakeAP, *sarama.Config) {
	t.Helper()
	if cfg.Brokers == nil {
		cfg.Brokers = []string{"fake:9092"}
	}
	if cfg.Group == "" {
		cfg.Group = "g"
	}
	if cfg.Mode == "" {
		cfg.Mode = ExactlyOnce
	}
	if cfg.Mode == ExactlyOnce && cfg.TransactionalID == "" {
		cfg.TransactionalID = "txid"
	}
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ap := newFakeAP()
	var pcfg *sarama.Config
	r, err := newRuntime(cfg, hooks, func(brokers []string, c *sarama.Config) (sarama.AsyncProducer, error) {
		pcfg = c
		return ap, nil
	})
	if err != nil {
		t.Fatalf("newRuntime: %v", err)
	}
	t.Cleanup(func() { _ = ap.Close() })
	return r, ap, pcfg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// startSession makes s the runtime's current generation, as sessionStarted does
// once the committed metadata is read.
func startSession(r *Runtime, s sarama.ConsumerGroupSession) *session {
	ws := &session{ConsumerGroupSession: s, rt: r}
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	r.barrier.Lock()
	defer r.barrier.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sess = ws
	r.started = map[topicPartition]int64{}
	r.committed = map[topicPartition]int64{}
	return ws
}

// process runs a wrapped callback for the message at topic/partition@offset.
func process(r *Runtime, topic string, partition int32, offset int64, cb goka.ProcessCallback) *fakeCtx {
	ctx := msgCtx(topic, partition, offset)
	if cb == nil {
		cb = func(goka.Context, any) {}
	}
	r.Wrap(cb)(ctx, nil)
	return ctx
}

// within fails the test when ch is not closed (or does not deliver) in d.
func within[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
		var zero T
		return zero
	}
}

// never fails the test when ch delivers within d.
func never[T any](t *testing.T, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s happened, but must not (yet)", what)
	case <-time.After(d):
	}
}

// mockSarama is a client config for sarama.MockBroker: no ApiVersions round trip,
// short timeouts so that a missing mock answer fails fast.
func mockSarama() *sarama.Config {
	c := DefaultSaramaConfig()
	c.ApiVersionsRequest = false
	c.Net.DialTimeout = 2 * time.Second
	c.Net.ReadTimeout = 2 * time.Second
	c.Net.WriteTimeout = 2 * time.Second
	c.Metadata.Retry.Max = 1
	c.Metadata.Retry.Backoff = 10 * time.Millisecond
	c.Admin.Retry.Max = 1
	c.Admin.Retry.Backoff = 10 * time.Millisecond
	c.Admin.Timeout = 2 * time.Second
	return c
}
