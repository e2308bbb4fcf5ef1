// Package eos runs a goka processor with Kafka Streams-style commits: every
// CommitInterval, with all callbacks paused and their outputs acknowledged, the
// processor's buffered output is flushed and the input offsets are committed.
//
// In ExactlyOnce mode (the default) everything an instance writes between two
// commits (goka's emits and table changelog writes, the flushed buffers) and the
// input offsets (with KIP-447 consumer-group metadata, so zombies are fenced) go into
// one Kafka transaction. A read_committed consumer sees each input's effects once.
// In AtLeastOnce mode the same commit cycle runs without a transaction: a crash
// between flush and offset commit repeats work.
//
// It works through goka's public options only (WithProducerBuilder,
// WithConsumerGroupBuilder, WithConsumerSaramaBuilder, WithTopicManagerBuilder):
// goka itself is at-least-once.
package eos

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// Mode is the processing guarantee.
type Mode string

const (
	// ExactlyOnce commits outputs, state changelog and input offsets in one Kafka
	// transaction (Kafka Streams' processing.guarantee=exactly_once_v2).
	ExactlyOnce Mode = "exactly_once"
	// AtLeastOnce commits offsets after outputs are acknowledged, without
	// transactions (Kafka Streams' processing.guarantee=at_least_once).
	AtLeastOnce Mode = "at_least_once"
)

// ParseMode accepts exactly_once / exactly-once / eos and at_least_once / at-least-once / alos.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "exactly_once", "exactly_once_v2", "exactly-once", "eos":
		return ExactlyOnce, nil
	case "at_least_once", "at-least-once", "alos":
		return AtLeastOnce, nil
	}
	return "", fmt.Errorf("guarantee %q: want exactly_once or at_least_once", s)
}

// Config configures a Runtime.
type Config struct {
	// Brokers are the bootstrap servers.
	Brokers []string
	// Group is the goka group (consumer group id).
	Group string
	// Mode is the processing guarantee. Default ExactlyOnce.
	Mode Mode
	// CommitInterval is how often offsets are committed (Kafka Streams'
	// commit.interval.ms; 100 ms is its default under exactly-once). Default 100ms.
	CommitInterval time.Duration
	// TransactionalID identifies this instance's producer (ExactlyOnce only). Keep it
	// stable across restarts of the same instance: the restarted producer then fences
	// its predecessor and aborts its open transaction at once, instead of readers
	// waiting TransactionTimeout. Required in ExactlyOnce mode.
	TransactionalID string
	// TransactionTimeout bounds how long a crashed instance's open transaction can
	// hold back read_committed readers (transaction.timeout.ms). Default 10s.
	TransactionTimeout time.Duration
	// GroupInstanceID turns on static group membership (KIP-345) with this id: a
	// member that restarts within SessionTimeout gets its partitions back without a
	// rebalance. Keep it stable per instance, like TransactionalID. On a clean stop
	// the member is removed from the group at once, so that the others take over
	// without waiting for the session timeout. Empty: dynamic membership.
	GroupInstanceID string
	// SessionTimeout is how long the group waits for a silent member before its
	// partitions move (Kafka's session.timeout.ms; the broker allows 6s..30m by
	// default). Default 10s.
	SessionTimeout time.Duration
	// Sarama returns a base client config (version, TLS/SASL, client id); the runtime
	// sets the producer and consumer fields it depends on. Default: a config for
	// Kafka 4.1.
	Sarama func() *sarama.Config
	// Logger for commit failures and session changes. Default: discard.
	Logger *slog.Logger
	// DropHeaders are record headers that no callback reads: the runtime's consumers
	// remove them before goka sees a record, because goka copies every header of a
	// record into a new map when a callback reads any one (Context.Headers). Records the
	// callbacks re-emit are built with their own headers, so outputs do not change.
	DropHeaders []string
	// ReadAhead is how many records the consumer buffers per input partition
	// (Sarama's ChannelBufferSize). Sarama sends a partition's next fetch only once
	// the records of the last one are handed over, so a buffer that holds about a
	// fetch lets the next fetch overlap the processing. Default 256 (Sarama's).
	ReadAhead int
}

func (c *Config) validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("eos: no brokers configured")
	}
	if c.Group == "" {
		return errors.New("eos: group is required")
	}
	if c.Mode == "" {
		c.Mode = ExactlyOnce
	}
	if c.Mode != ExactlyOnce && c.Mode != AtLeastOnce {
		return fmt.Errorf("eos: unknown mode %q", c.Mode)
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.Mode == ExactlyOnce && c.TransactionalID == "" {
		return errors.New("eos: exactly-once needs a TransactionalID (stable per instance)")
	}
	if c.TransactionTimeout <= 0 {
		c.TransactionTimeout = 10 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.Sarama == nil {
		c.Sarama = DefaultSaramaConfig
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// DefaultSaramaConfig is a client config for Kafka 4.1 brokers.
func DefaultSaramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_1_0_0
	cfg.ClientID = "taxi-stream"
	return cfg
}

// Hooks let the processor's own state take part in the commit cycle. All hooks
// run with every callback of the runtime paused.
type Hooks struct {
	// Assigned is called when a consumer-group generation starts, before any
	// callback of it, with the claimed input partitions and the metadata committed
	// with each one's offset ("" when none).
	Assigned func(ctx context.Context, claims map[string][]int32, metadata map[TopicPartition]string) error
	// Flush writes what the processor has buffered since the last commit (send is
	// asynchronous; the commit waits for the acknowledgements) and returns metadata
	// to commit with each input partition's offset (partitions not in the map commit
	// with "").
	Flush func(send func(*sarama.ProducerMessage)) (map[TopicPartition]string, error)
	// Revoked is called after the generation's last commit: drop per-partition state.
	Revoked func()
	// Committed is called after each successful commit.
	Committed func(CommitStats)
}

// TopicPartition names an input partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// CommitStats describes one commit.
type CommitStats struct {
	Duration time.Duration // start -> committed
	Paused   time.Duration // how long callbacks were paused
	Offsets  int           // partitions whose offsets were committed
}

// Runtime owns one instance's producer and commit cycle for one goka processor.
type Runtime struct {
	cfg   Config
	hooks Hooks
	prod  *producer

	// barrier: callbacks hold it shared, a commit holds it exclusively.
	barrier sync.RWMutex
	// stopping (set under barrier) makes callbacks no-ops once Run's context has ended.
	stopping atomic.Bool

	mu        sync.Mutex
	sess      *session
	started   map[topicPartition]int64 // next offset after the last callback started
	committed map[topicPartition]int64 // offsets committed in this generation
	lastSent  int64                    // producer sends counted at the last commit

	commitMu         sync.Mutex // one commit at a time
	commitNow        chan struct{}
	commits          atomic.Int64
	aborts           atomic.Int64
	fenced           atomic.Int64
	commitNanos      atomic.Int64 // total time callbacks were paused for commits
	commitTotalNanos atomic.Int64 // total time from a commit's start to its end
	maxCommit        atomic.Int64
	txnOpen          bool
	failed           error // the first commit failure: the runtime commits nothing after it
	consumerBase     func(clientID string) *sarama.Config
	clients          clientSet // built for goka; closed when Run ends
	deferred         deferTracker

	// claims are the input partitions goka consumes now (position.go), and
	// committedMeta the metadata last committed with each one's offset: a Flush
	// that changes a partition's metadata gets it committed even when its offset
	// did not move (an idle partition's raised watermark).
	claims        map[topicPartition]*claimState
	committedMeta map[topicPartition]string
	offsetClientFields
}

// New creates the runtime and its producer (in ExactlyOnce mode this registers the
// transactional id, fencing any earlier producer with the same id, and begins the
// first transaction).
func New(cfg Config, hooks Hooks) (*Runtime, error) {
	return newRuntime(cfg, hooks, sarama.NewAsyncProducer)
}

// newRuntime is New with the producer's constructor as a parameter (unit tests pass
// a fake).
func newRuntime(cfg Config, hooks Hooks, newAsyncProducer func([]string, *sarama.Config) (sarama.AsyncProducer, error)) (*Runtime, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Runtime{cfg: cfg, hooks: hooks, started: map[topicPartition]int64{}, committedMeta: map[topicPartition]string{}, commitNow: make(chan struct{}, 1)}

	pcfg := cfg.Sarama()
	pcfg.Producer.RequiredAcks = sarama.WaitForAll // durability: every in-sync replica
	pcfg.Producer.Idempotent = true                // no duplicates from retries
	pcfg.Net.MaxOpenRequests = 1                   // required by Sarama for idempotence
	pcfg.Producer.Return.Successes = true
	pcfg.Producer.Return.Errors = true
	pcfg.Producer.Retry.Max = 10
	pcfg.Producer.Retry.Backoff = 100 * time.Millisecond
	pcfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(goka.DefaultHasher())
	// Commits wait for acknowledgements: a long linger would add to every commit.
	pcfg.Producer.Flush.Frequency = time.Millisecond
	pcfg.Producer.Flush.Bytes = 256 << 10
	pcfg.Producer.Compression = sarama.CompressionLZ4
	if cfg.Mode == ExactlyOnce {
		pcfg.Producer.Transaction.ID = cfg.TransactionalID
		pcfg.Producer.Transaction.Timeout = cfg.TransactionTimeout
		pcfg.Producer.Transaction.Retry.Max = 20
		pcfg.Producer.Transaction.Retry.Backoff = 100 * time.Millisecond
	}
	ap, err := newAsyncProducer(cfg.Brokers, TopicScoped(pcfg))
	if err != nil {
		return nil, fmt.Errorf("eos: create producer for group %s: %w", cfg.Group, err)
	}
	r.prod = newProducer(ap)
	if cfg.Mode == ExactlyOnce {
		if err := ap.BeginTxn(); err != nil {
			r.prod.close()
			return nil, fmt.Errorf("eos: begin transaction (%s): %w", cfg.TransactionalID, err)
		}
		r.txnOpen = true
	}
	r.consumerBase = func(clientID string) *sarama.Config {
		c := cfg.Sarama()
		if clientID != "" {
			c.ClientID = clientID
		}
		// Never read what an aborted transaction wrote; and fetch committed offsets
		// only when no transaction holds them pending (RequireStable).
		c.Consumer.IsolationLevel = sarama.ReadCommitted
		c.Consumer.Offsets.Initial = sarama.OffsetOldest
		c.Consumer.Offsets.AutoCommit.Enable = false // the runtime commits
		c.Consumer.MaxWaitTime = 50 * time.Millisecond
		c.Consumer.Fetch.Default = 256 << 10
		if cfg.ReadAhead > 0 {
			c.ChannelBufferSize = cfg.ReadAhead
		}
		c.Consumer.Return.Errors = true
		if len(cfg.DropHeaders) > 0 {
			c.Consumer.Interceptors = append(c.Consumer.Interceptors, headerDropper{keys: cfg.DropHeaders})
		}
		c.Consumer.Interceptors = append(c.Consumer.Interceptors, nullKeyMarker{})
		c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
		c.Consumer.Group.Session.Timeout = cfg.SessionTimeout
		// Members learn of a rebalance at their next heartbeat: keep it short (the
		// survivors' rejoin is part of every failover; a heartbeat is a tiny request).
		c.Consumer.Group.Heartbeat.Interval = min(250*time.Millisecond, cfg.SessionTimeout/3)
		return c
	}
	return r, nil
}

// ConsumerConfig returns the consumer configuration the runtime uses (read_committed).
func (r *Runtime) ConsumerConfig() *sarama.Config { return r.consumerBase("") }

// ProcessorOptions wire goka to the runtime's producer, consumer group and
// read_committed consumers.
func (r *Runtime) ProcessorOptions() []goka.ProcessorOption {
	return []goka.ProcessorOption{
		goka.WithProducerBuilder(func([]string, string, func() hash.Hash32) (goka.Producer, error) {
			return r.prod, nil
		}),
		goka.WithConsumerGroupBuilder(func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
			cfg := TopicScoped(r.consumerBase(clientID))
			cfg.Consumer.Group.InstanceId = r.cfg.GroupInstanceID
			cg, err := sarama.NewConsumerGroup(brokers, group, cfg)
			if err != nil {
				return nil, err
			}
			return &consumerGroup{ConsumerGroup: cg, rt: r}, nil
		}),
		goka.WithConsumerSaramaBuilder(func(brokers []string, clientID string) (sarama.Consumer, error) {
			c, err := sarama.NewConsumer(brokers, TopicScoped(r.consumerBase(clientID)))
			if err != nil {
				return nil, err
			}
			return r.clients.consumer(c), nil
		}),
		goka.WithTopicManagerBuilder(func(brokers []string) (goka.TopicManager, error) {
			// A predecessor's transaction is aborted at the latest after its timeout.
			tm, err := NewTopicManager(brokers, r.consumerBase(""), string(goka.GroupTable(goka.Group(r.cfg.Group))), r.cfg.TransactionTimeout+10*time.Second)
			if err != nil {
				return nil, err
			}
			return r.clients.topicManager(tm), nil
		}),
	}
}

// Wrap makes a goka callback take part in the commit barrier. Every callback of a
// processor run by this runtime must be wrapped.
func (r *Runtime) Wrap(cb goka.ProcessCallback) goka.ProcessCallback {
	return func(ctx goka.Context, msg any) {
		r.barrier.RLock()
		defer r.barrier.RUnlock()
		if r.stopping.Load() {
			// Stopping (stopCallbacks): the message is neither processed nor
			// committed; whoever owns the partition next processes it.
			return
		}
		tp := topicPartition{string(ctx.Topic()), ctx.Partition()}
		r.mu.Lock()
		r.started[tp] = ctx.Offset() + 1
		r.mu.Unlock()
		cb(deferredContext{gokaContext: ctx, d: &r.deferred}, msg)
	}
}

// RequestCommit asks for a commit as soon as possible (e.g. when a window can
// close), instead of at the next interval.
func (r *Runtime) RequestCommit() {
	select {
	case r.commitNow <- struct{}{}:
	default:
	}
}

// Commits and Aborts count the transactions (or offset commits) so far.
func (r *Runtime) Commits() int64 { return r.commits.Load() }

// Aborts counts aborted transactions.
func (r *Runtime) Aborts() int64 { return r.aborts.Load() }

// CommitTime returns the total and the longest time callbacks were paused for
// commits, and the total time commits took (their round trips overlap processing).
func (r *Runtime) CommitTime() (paused, longestPause, total time.Duration) {
	return time.Duration(r.commitNanos.Load()), time.Duration(r.maxCommit.Load()), time.Duration(r.commitTotalNanos.Load())
}

// Run runs proc and the commit cycle until ctx ends or either fails. On return the
// last generation has been committed (or aborted on failure) and the producer and
// every Kafka client built for proc are closed. A commit failure is returned: the
// caller should build a new runtime and processor, which resume from the last commit.
func (r *Runtime) Run(parent context.Context, proc *goka.Processor) error {
	// goka's context ends only after the callbacks have stopped (stopCallbacks): goka
	// closes a processor's lookup tables as soon as its context ends, while its
	// partition processors may still run callbacks that read them.
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	defer cancel()
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(ctx) }()

	tick := time.NewTicker(r.cfg.CommitInterval)
	defer tick.Stop()
	// Early commits (RequestCommit) keep results prompt, but a fast replay crosses a
	// window boundary every few milliseconds: committing on each one paused
	// processing 80% of the time (measured). So commits are at least minGap apart; a
	// request inside the gap is served when the gap ends.
	//
	// Half the interval, not a quarter: under a backlog the early commits set the
	// transaction rate (one per stage per gap), and each costs the broker, on the same
	// cores, a transaction-log write and markers on every partition written.
	// BenchmarkPipelineBacklog, 2M rides, warm broker, alternating: 25 ms gave
	// 184k/158k rides/s (close p99 162/128 ms), 50 ms 194k/193k (p99 152/170 ms).
	minGap := r.cfg.CommitInterval / 2
	var lastCommit time.Time
	var deferred <-chan time.Time
	var runErr error
loop:
	for {
		select {
		case <-tick.C:
		case <-deferred:
			deferred = nil
		case <-r.commitNow:
			if wait := minGap - time.Since(lastCommit); wait > 0 {
				if deferred == nil {
					deferred = time.After(wait)
				}
				continue
			}
		case err := <-procDone:
			runErr = err
			procDone = nil
			break loop
		case <-parent.Done():
			r.stopCallbacks()
			break loop
		}
		if err := r.commit(); err != nil {
			runErr = err
			break loop
		}
		lastCommit = time.Now()
	}
	// Whatever ended the loop (a stop, a failed commit, goka failing by itself),
	// callbacks stop before goka's context ends and it tears the processor down.
	r.stopCallbacks()
	cancel()
	if procDone != nil {
		if err := <-procDone; runErr == nil {
			runErr = err
		}
	}
	// The processor has stopped: close the clients goka leaves open (clientSet).
	if err := r.clients.closeAll(); err != nil {
		r.cfg.Logger.Warn("closing kafka clients", "group", r.cfg.Group, "err", err)
	}
	r.closeOffsetClient()
	r.commitMu.Lock()
	if r.cfg.Mode == ExactlyOnce && r.txnOpen {
		// Whatever was not committed by the last session end is abandoned.
		_ = r.prod.ap.AbortTxn()
		r.txnOpen = false
	}
	r.commitMu.Unlock()
	if err := r.prod.close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("eos: close producer: %w", err)
	}
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	if parent.Err() != nil && runErr == nil {
		// A clean stop (not a failure, after which the stage rejoins at once).
		r.leaveGroup()
	}
	return runErr
}

// deferTimeout bounds how long a commit waits for deferred messages: well inside the
// transaction timeout, after which the broker would abort the transaction anyway.
func (r *Runtime) deferTimeout() time.Duration { return r.cfg.TransactionTimeout / 2 }

// Discard releases a runtime that will not Run (e.g. building its processor
// failed): it aborts the open transaction and closes the producer and the clients
// built so far.
func (r *Runtime) Discard() error {
	err := r.clients.closeAll()
	r.commitMu.Lock()
	if r.cfg.Mode == ExactlyOnce && r.txnOpen {
		_ = r.prod.ap.AbortTxn()
		r.txnOpen = false
	}
	r.commitMu.Unlock()
	if cerr := r.prod.close(); err == nil {
		err = cerr
	}
	return err
}

// stopCallbacks waits for the running callbacks to return and makes later ones
// no-ops, before goka's context ends. goka v1.1.17 closes a processor's lookup
// tables (View.close) as soon as its context ends, while partition processors still
// run callbacks: a ctx.Lookup then raced with the close (seen with -race, view.go
// hash vs close) or failed the callback ("View is either not running..."). The
// messages not processed are not committed either (Wrap); the generation's last
// commit (sessionEnding) covers exactly the callbacks that ran.
func (r *Runtime) stopCallbacks() {
	r.barrier.Lock()
	r.stopping.Store(true)
	r.barrier.Unlock()
}

// leaveGroup removes this static member from the group after a clean stop: a static
// member's consumer does not leave on close (KIP-345), so without this its
// partitions would wait SessionTimeout for the other instances.
func (r *Runtime) leaveGroup() {
	if r.cfg.GroupInstanceID == "" {
		return
	}
	admin, err := sarama.NewClusterAdmin(r.cfg.Brokers, r.consumerBase(""))
	if err != nil {
		r.cfg.Logger.Warn("cannot leave the group; the others take over after the session timeout", "group", r.cfg.Group, "err", err)
		return
	}
	defer admin.Close()
	resp, err := admin.RemoveMemberFromConsumerGroup(r.cfg.Group, []string{r.cfg.GroupInstanceID})
	if err == nil && resp.Err != sarama.ErrNoError {
		err = resp.Err
	}
	if err == nil {
		for _, m := range resp.Members {
			if m.Err != sarama.ErrNoError && m.Err != sarama.ErrUnknownMemberId {
				err = m.Err
			}
		}
	}
	if err != nil {
		r.cfg.Logger.Warn("cannot leave the group; the others take over after the session timeout", "group", r.cfg.Group, "instance", r.cfg.GroupInstanceID, "err", err)
		return
	}
	r.cfg.Logger.Info("left the group", "group", r.cfg.Group, "instance", r.cfg.GroupInstanceID)
}

func (r *Runtime) sessionStarted(s *session) error {
	claims := s.Claims()
	// Before reading the committed offsets, which stay unstable while a departed
	// instance's transaction is open (fence.go).
	r.fenceDepartedBounded(s.Context())
	meta, err := FetchCommittedMetadata(s.Context(), r.cfg.Brokers, r.consumerBase(""), r.cfg.Group, claims)
	if err != nil {
		return fmt.Errorf("eos: read committed offsets of %s: %w", r.cfg.Group, err)
	}
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	r.barrier.Lock()
	defer r.barrier.Unlock()
	r.mu.Lock()
	r.sess = s
	r.started = map[topicPartition]int64{}
	r.committed = map[topicPartition]int64{}
	r.committedMeta = map[topicPartition]string{}
	for tp, md := range meta {
		r.committedMeta[topicPartition{tp.Topic, tp.Partition}] = md
	}
	r.mu.Unlock()
	r.cfg.Logger.Info("generation started", "group", r.cfg.Group, "generation", s.GenerationID(), "claims", claims)
	if r.hooks.Assigned != nil {
		return r.hooks.Assigned(s.Context(), claims, meta)
	}
	return nil
}

// fenceDepartedBounded runs fenceDeparted for at most fenceTimeout and logs the outcome.
func (r *Runtime) fenceDepartedBounded(ctx context.Context) {
	start := time.Now()
	type result struct {
		fenced []string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		f, err := r.fenceDeparted(ctx)
		done <- result{f, err}
	}()
	select {
	case res := <-done:
		switch {
		case res.err != nil:
			r.cfg.Logger.Warn("cannot abort the open transactions of departed instances; they end by timeout",
				"group", r.cfg.Group, "fenced", res.fenced, "err", res.err)
		case len(res.fenced) > 0:
			r.fenced.Add(int64(len(res.fenced)))
			r.cfg.Logger.Info("aborted the open transactions of departed instances", "group", r.cfg.Group,
				"transactional_ids", res.fenced, "took", time.Since(start).Round(time.Millisecond))
		}
	case <-time.After(fenceTimeout):
		r.cfg.Logger.Warn("aborting the open transactions of departed instances takes too long; going on", "group", r.cfg.Group, "waited", fenceTimeout)
	case <-ctx.Done():
	}
}

// Fenced counts the departed instances whose open transactions this runtime aborted.
func (r *Runtime) Fenced() int64 { return r.fenced.Load() }

func (r *Runtime) currentSession(s sarama.ConsumerGroupSession) sarama.ConsumerGroupSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sess != nil && r.sess.ConsumerGroupSession == s {
		return r.sess
	}
	return s
}

// sessionEnding commits what the ending generation did, then drops its state.
func (r *Runtime) sessionEnding(s sarama.ConsumerGroupSession) error {
	err := r.commit()
	r.barrier.Lock()
	if r.hooks.Revoked != nil {
		r.hooks.Revoked()
	}
	r.mu.Lock()
	r.sess = nil
	r.mu.Unlock()
	r.barrier.Unlock()
	if err != nil {
		return err
	}
	r.cfg.Logger.Info("generation ended", "group", r.cfg.Group, "generation", s.GenerationID())
	return nil
}

// commit runs one commit cycle in two parts. With every callback paused it waits
// until goka has finished the started messages, flushes the hooks' buffers and takes
// the offsets to commit. Then the callbacks go on while the transaction's round trips
// (acknowledgements, AddOffsetsToTxn, TxnOffsetCommit, EndTxn) run: what they emit
// meanwhile is held back by the producer and sent in the next transaction, together
// with the offsets of the messages that caused it. Processing pauses only for the
// first part (measured: the round trips took 11-19 ms per commit and paused the
// processor 40 % of a backlog run when they ran under the barrier).
func (r *Runtime) commit() error {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	if r.failed != nil {
		// The generation's last commit (sessionEnding) after a failure: whatever the
		// failed cycle flushed or took is gone, so nothing may be committed now (in
		// at-least-once mode that would commit offsets past lost partial sums).
		return r.failed
	}
	start := time.Now()
	c, err := r.prepareCommit()
	paused := time.Since(start)
	if err != nil || c == nil {
		return err
	}
	if err := r.finishCommit(c); err != nil {
		return err
	}
	for tp, off := range c.marks {
		r.committed[tp] = off
		r.committedMeta[tp] = c.meta[TopicPartition{tp.topic, tp.partition}]
	}
	if r.cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		r.cfg.Logger.Debug("committed", "group", r.cfg.Group, "generation", c.sess.GenerationID(), "offsets", fmt.Sprint(c.marks))
	}
	r.commits.Add(1)
	r.commitNanos.Add(int64(paused))
	if int64(paused) > r.maxCommit.Load() {
		r.maxCommit.Store(int64(paused))
	}
	d := time.Since(start)
	r.commitTotalNanos.Add(int64(d))
	if r.hooks.Committed != nil {
		r.hooks.Committed(CommitStats{Duration: d, Paused: paused, Offsets: len(c.marks)})
	}
	return nil
}

// pendingCommit is what prepareCommit took for finishCommit.
type pendingCommit struct {
	sess    *session
	marks   map[topicPartition]int64
	offsets map[string][]*sarama.PartitionOffsetMetadata
	meta    map[TopicPartition]string
	keys    []topicPartition
	// metaOnly marks partitions committed for a new metadata at an unchanged offset.
	metaOnly map[topicPartition]bool
}

// prepareCommit runs with the callbacks paused. It returns nil when nothing
// happened since the last commit. In ExactlyOnce mode the producer holds later sends
// when it returns.
func (r *Runtime) prepareCommit() (*pendingCommit, error) {
	r.barrier.Lock()
	defer r.barrier.Unlock()
	r.mu.Lock()
	s := r.sess
	r.mu.Unlock()
	if s == nil {
		return nil, nil
	}
	// Deferred messages (deferred.go) finish before their offsets are taken.
	if err := r.deferred.wait(r.deferTimeout()); err != nil {
		return nil, r.fail(err)
	}
	var meta map[TopicPartition]string
	if r.hooks.Flush != nil {
		var err error
		meta, err = r.hooks.Flush(func(m *sarama.ProducerMessage) { r.prod.send(m, nil) })
		if err != nil {
			return nil, r.fail(fmt.Errorf("flush: %w", err))
		}
	}
	// With the barrier held every started callback has returned, and goka emits
	// synchronously from the callback: whatever these messages caused is sent into
	// the open transaction (not yet acknowledged: finishCommit waits for that).
	// So the offsets after them are the ones to commit with it. (goka's own offset
	// marks come only after the acknowledgements: its at-least-once bookkeeping,
	// which the transaction makes unnecessary.)
	r.mu.Lock()
	marks := make(map[topicPartition]int64, len(r.started))
	for tp, off := range r.started {
		marks[tp] = off
	}
	r.mu.Unlock()
	// A partition whose metadata changed without a new offset (nothing delivered:
	// an idle partition whose watermark the stage raised) is committed at its
	// current position, so the change survives a restart.
	metaOnly := map[topicPartition]bool{}
	for tp, off := range marks {
		if r.committed[tp] >= off {
			if md, ok := meta[TopicPartition{tp.topic, tp.partition}]; !ok || r.committedMeta[tp] == md {
				delete(marks, tp) // unchanged since the last commit
			} else {
				metaOnly[tp] = true
			}
		}
	}
	r.mu.Lock()
	for tp, md := range meta {
		k := topicPartition{tp.Topic, tp.Partition}
		if _, ok := marks[k]; ok || r.committedMeta[k] == md {
			continue
		}
		if pos, ok := r.positionLocked(k); ok {
			marks[k] = pos.Next
			metaOnly[k] = true
		}
	}
	r.mu.Unlock()
	if len(marks) == 0 && r.prod.sentCount() == r.lastSent {
		return nil, nil // nothing happened since the last commit
	}
	c := &pendingCommit{sess: s, marks: marks, meta: meta, metaOnly: metaOnly, offsets: map[string][]*sarama.PartitionOffsetMetadata{}}
	for tp := range marks {
		c.keys = append(c.keys, tp)
	}
	sort.Slice(c.keys, func(i, j int) bool {
		if c.keys[i].topic != c.keys[j].topic {
			return c.keys[i].topic < c.keys[j].topic
		}
		return c.keys[i].partition < c.keys[j].partition
	})
	for _, tp := range c.keys {
		md := meta[TopicPartition{tp.topic, tp.partition}]
		c.offsets[tp.topic] = append(c.offsets[tp.topic], &sarama.PartitionOffsetMetadata{
			Partition: tp.partition, Offset: marks[tp], Metadata: &md, LeaderEpoch: -1,
		})
	}
	// Later sends wait for the next transaction (ExactlyOnce), or for these offsets
	// to be committed (AtLeastOnce: so that waiting for the acknowledgements ends).
	r.prod.hold()
	return c, nil
}

// finishCommit waits for the acknowledgements and commits, while callbacks run.
func (r *Runtime) finishCommit(c *pendingCommit) error {
	fail := func(err error) error {
		err = r.fail(err)
		r.prod.dropHeld(err)
		return err
	}
	if err := r.prod.waitAcked(); err != nil {
		return fail(err)
	}
	switch r.cfg.Mode {
	case ExactlyOnce:
		if len(c.offsets) > 0 {
			gm := &sarama.ConsumerGroupMetadata{GroupID: r.cfg.Group, GenerationID: c.sess.GenerationID(), MemberID: c.sess.MemberID()}
			if err := r.prod.ap.AddOffsetsToTxnWithGroupMetadata(c.offsets, gm); err != nil {
				return fail(fmt.Errorf("add offsets to transaction: %w", err))
			}
		}
		if err := r.prod.ap.CommitTxn(); err != nil {
			return fail(fmt.Errorf("commit transaction: %w", err))
		}
		r.txnOpen = false
		if err := r.prod.ap.BeginTxn(); err != nil {
			return fail(fmt.Errorf("begin transaction: %w", err))
		}
		r.txnOpen = true
		r.lastSent = r.prod.sentCount()
		r.prod.release()
	case AtLeastOnce:
		for _, tp := range c.keys {
			md := c.meta[TopicPartition{tp.topic, tp.partition}]
			c.sess.ConsumerGroupSession.MarkOffset(tp.topic, tp.partition, c.marks[tp], md)
			if c.metaOnly[tp] {
				// Sarama's MarkOffset ignores an offset that is not past the marked
				// one; ResetOffset takes the same offset with the new metadata.
				c.sess.ConsumerGroupSession.ResetOffset(tp.topic, tp.partition, c.marks[tp], md)
			}
		}
		c.sess.ConsumerGroupSession.Commit()
		r.lastSent = r.prod.sentCount()
		r.prod.release()
	}
	return nil
}

// fail aborts the open transaction (ExactlyOnce) and returns err: the caller stops
// the processor, whose replacement resumes from the last commit.
func (r *Runtime) fail(err error) error {
	if r.cfg.Mode == ExactlyOnce && r.txnOpen {
		r.aborts.Add(1)
		if aerr := r.prod.ap.AbortTxn(); aerr == nil {
			r.txnOpen = false
		} else {
			r.cfg.Logger.Warn("abort transaction failed", "group", r.cfg.Group, "err", aerr)
		}
	}
	r.cfg.Logger.Error("commit failed; the processor stops and resumes from the last commit", "group", r.cfg.Group, "err", err)
	r.failed = fmt.Errorf("eos: group %s: %w", r.cfg.Group, err)
	return r.failed
}
