package kafkaio

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/compress/gzip"
	"github.com/segmentio/kafka-go/compress/lz4"
	"github.com/segmentio/kafka-go/compress/snappy"
	"github.com/segmentio/kafka-go/compress/zstd"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/sasl"
)

// Security is how connections are secured: kafka.Transport's TLS and SASL. The zero
// value is PLAINTEXT.
type Security struct {
	TLS  *tls.Config    // nil: no TLS
	SASL sasl.Mechanism // nil: no SASL
}

// Defaults of ProducerConfig.
const (
	DefaultMaxBatchBytes = 1_000_000
	DefaultWriteTimeout  = 30 * time.Second
	DefaultZstdLevel     = 1
	// DefaultRetryBackoff is the first pause before resending a batch; it doubles per
	// attempt up to DefaultMaxRetryBackoff.
	DefaultRetryBackoff    = 100 * time.Millisecond
	DefaultMaxRetryBackoff = 2 * time.Second
	// DefaultRetryTimeout bounds how long one batch is retried through broker faults
	// (a broker restart, a leader change, a lost node) before Produce gives up: long
	// enough for a broker to restart and recover its logs, short enough that a cluster
	// that cannot take writes stops the replay with an error. Kafka's
	// delivery.timeout.ms (2 minutes there).
	DefaultRetryTimeout = 5 * time.Minute
)

// ProducerConfig configures a Producer.
type ProducerConfig struct {
	// Brokers are the bootstrap addresses (host:port). Required.
	Brokers []string
	// Topic is the topic written to. Required.
	Topic string
	// Compression of the record batches. Default none (the zero value); the replay sets zstd.
	// Kafka's compression.type on the producer.
	Compression kafka.Compression
	// ZstdLevel is the zstd level, 1..22; klauspost/compress maps it to its four speeds (1-2
	// fastest, 3-5 default, 6-9 better, 10+ best). Default 1. Kafka's compression.zstd.level.
	ZstdLevel int
	// MaxBatchBytes bounds one record batch (one produce request) by the uncompressed size of
	// its records. Default 1,000,000, below the broker's default message.max.bytes (1 MiB) even
	// without compression. Kafka's batch.size (which counts compressed bytes).
	MaxBatchBytes int
	// WriteTimeout bounds one produce request, including the wait for all in-sync replicas.
	// Default 30s. Kafka's request.timeout.ms / delivery.timeout.ms.
	WriteTimeout time.Duration
	// RetryTimeout bounds how long a batch is retried after failures (broker down,
	// connection lost, timeout, no leader) before Produce returns the error; it counts
	// from the batch's first failure. Default DefaultRetryTimeout. Kafka's
	// delivery.timeout.ms.
	RetryTimeout time.Duration
	// ClientID is sent to the broker. Default "taxi-replay".
	ClientID string
	// Logger reports pauses (a batch failing, and resuming) and a cluster that refuses
	// idempotence. Default: discard.
	Logger *slog.Logger
	// Security: TLS and SASL. Default PLAINTEXT.
	Security Security
}

func (c ProducerConfig) withDefaults() (ProducerConfig, error) {
	if len(c.Brokers) == 0 {
		return c, errors.New("kafkaio: no brokers")
	}
	if c.Topic == "" {
		return c, errors.New("kafkaio: no topic")
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.MaxBatchBytes < 1024 {
		return c, fmt.Errorf("kafkaio: max batch bytes %d, want >= 1024", c.MaxBatchBytes)
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ZstdLevel == 0 {
		c.ZstdLevel = DefaultZstdLevel
	}
	if c.ZstdLevel < 1 || c.ZstdLevel > 22 {
		return c, fmt.Errorf("kafkaio: zstd level %d, want 1..22", c.ZstdLevel)
	}
	if c.WriteTimeout < 0 {
		return c, fmt.Errorf("kafkaio: write timeout %v, want > 0", c.WriteTimeout)
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = DefaultRetryTimeout
	}
	if c.RetryTimeout < 0 {
		return c, fmt.Errorf("kafkaio: retry timeout %v, want > 0", c.RetryTimeout)
	}
	if c.ClientID == "" {
		c.ClientID = "taxi-replay"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Producer writes records to the partitions of one topic.
//
// Durability and ordering, set on purpose (kafka-go's own zero values are acks=none for
// RequiredAcks and 10 attempts for Writer.MaxAttempts):
//   - every produce request carries RequiredAcks = RequireAll (acks=all): a batch counts as
//     written only when every in-sync replica has it;
//   - one produce request holds one record batch of one partition, which the broker appends
//     atomically: a batch is in the log entirely or not at all, even if this process is
//     SIGKILLed while the request is on the wire;
//   - Produce sends the batches of a call one after the other and waits for each answer, so a
//     caller that runs one Produce per partition at a time has at most one batch per partition
//     in flight, and a partition's batches are appended in the order they were given;
//   - the producer is idempotent, like Kafka's own with enable.idempotence: it takes a
//     producer id from the cluster (InitProducerId) and numbers each partition's batches
//     (base sequence). A batch whose outcome is unknown (broken connection, timeout, a
//     broker restart or a lost node) is resent as it was, same producer id and sequence,
//     until it is acknowledged or RetryTimeout has passed. A broker that already appended
//     it (on the old leader, and so on the in-sync replica that took over) answers with
//     the original offset instead of appending it again, and one that did not appends it:
//     never a duplicate, never a gap below a later batch;
//   - if the cluster refuses a producer id (no IdempotentWrite permission on an old
//     cluster), a batch is resent only when the broker's answer proves that it appended
//     nothing (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER,
//     NOT_ENOUGH_REPLICAS: all checked before the append); any other failure returns at
//     once, outcome unknown, and resume (Admin.Tails) reads where each partition ends.
//
// Any error Produce returns leaves the partition a prefix of what the caller meant to write.
// It is safe for concurrent use by one goroutine per partition.
type Producer struct {
	cfg       ProducerConfig
	transport *kafka.Transport
	client    *kafka.Client
	encoders  sync.Pool // *batchEncoder, one per concurrent Produce

	mu      sync.Mutex
	session *producerSession // nil until the first Produce
	seqs    map[int]int32    // per partition: the base sequence of its next batch
	failing int              // batches between their first failure and their end
	since   time.Time        // when failing last became > 0
	paused  time.Duration    // total time with failing > 0
}

// producerSession is the cluster's producer id; id -1: idempotence refused.
type producerSession struct {
	id    int64
	epoch int16
}

// NewProducer returns a Producer. It connects lazily, on the first request.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	codec, err := newCodec(cfg.Compression, cfg.ZstdLevel)
	if err != nil {
		return nil, err
	}
	tr := newTransport(cfg.ClientID, cfg.Security)
	p := &Producer{
		cfg:       cfg,
		transport: tr,
		client:    &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr, Timeout: cfg.WriteTimeout},
	}
	p.encoders.New = func() any { return &batchEncoder{codec: codec} }
	p.seqs = make(map[int]int32)
	return p, nil
}

func newTransport(clientID string, sec Security) *kafka.Transport {
	return &kafka.Transport{
		TLS:         sec.TLS,
		SASL:        sec.SASL,
		Dial:        (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DialTimeout: 10 * time.Second,
		ClientID:    clientID,
		// Metadata is refreshed at this interval, so a leader change is seen within it
		// (kafka-go does not refresh it on NOT_LEADER_OR_FOLLOWER or a broken connection):
		// a second keeps the pause after a lost node close to the cluster's own failover
		// time, for one small metadata request per second.
		MetadataTTL: time.Second,
	}
}

// Close closes idle connections.
func (p *Producer) Close() error {
	p.transport.CloseIdleConnections()
	return nil
}

// Result describes what one Produce call wrote.
type Result struct {
	Batches int   // record batches (produce requests) appended
	Records int   // records appended
	Bytes   int64 // uncompressed bytes of the appended records (key + value + headers)
	// Retries counts the resent batches.
	Retries int
}

// ProduceError is returned by Produce when a batch was not (or not surely) written.
type ProduceError struct {
	Topic     string
	Partition int
	// Written counts the records of the call before the failed batch: they are in the log.
	Written int
	// Records is the size of the failed batch.
	Records int
	// Unknown is true when the batch may or may not have been appended (timeout, broken
	// connection, error after the append): resume must look at the log.
	Unknown bool
	Err     error
}

func (e *ProduceError) Error() string {
	state := "not written"
	if e.Unknown {
		state = "outcome unknown"
	}
	return fmt.Sprintf("produce %d records to %s/%d (%s): %v", e.Records, e.Topic, e.Partition, state, e.Err)
}

func (e *ProduceError) Unwrap() error { return e.Err }

// Produce appends all records of rs to partition, in order, as record batches of at most
// MaxBatchBytes each, one request at a time, and waits for each to be acknowledged by all
// in-sync replicas, resending through broker faults (see Producer). On error nothing after
// the failed batch is sent. A request on the wire is never cut off by ctx (its outcome would
// be unknown); ctx ends the waits between attempts.
func (p *Producer) Produce(ctx context.Context, partition int, rs *Records) (Result, error) {
	var res Result
	sess, err := p.producerSession(ctx)
	if err != nil {
		return res, &ProduceError{Topic: p.cfg.Topic, Partition: partition, Records: rs.Len(), Err: err}
	}
	for first := 0; first < rs.Len(); {
		end, size := first, 0
		for end < rs.Len() {
			n := rs.Size(end)
			if end > first && size+n > p.cfg.MaxBatchBytes {
				break
			}
			size += n
			end++
		}
		if err := p.produceBatch(ctx, sess, partition, rs, first, end, &res); err != nil {
			var pe *ProduceError
			if errors.As(err, &pe) {
				pe.Written = res.Records
			}
			return res, err
		}
		res.Batches++
		res.Records += end - first
		for i := first; i < end; i++ {
			res.Bytes += int64(rs.Size(i) - recordOverhead)
		}
		first = end
	}
	return res, nil
}

// produceBatch writes records [first, end) as one batch, resending it as the Producer doc
// says. It adds its retries and pause to res.
func (p *Producer) produceBatch(ctx context.Context, sess producerSession, partition int, rs *Records, first, end int, res *Result) error {
	n := end - first
	seq := int32(-1)
	if sess.id >= 0 {
		seq = p.sequence(partition)
	}
	enc := p.encoders.Get().(*batchEncoder)
	defer p.encoders.Put(enc)
	raw, err := enc.encode(rs, first, end, time.Now().UnixMilli(), batchProducer{sess.id, sess.epoch, seq})
	if err != nil {
		return &ProduceError{Topic: p.cfg.Topic, Partition: partition, Records: n, Err: err}
	}
	var (
		failedAt time.Time // the first failure
		attempts int
		bo       = exponentialBackOff(DefaultRetryBackoff, DefaultMaxRetryBackoff)
	)
	for {
		attempts++
		resp, err := p.client.RawProduce(context.WithoutCancel(ctx), &kafka.RawProduceRequest{
			Topic:        p.cfg.Topic,
			Partition:    partition,
			RequiredAcks: kafka.RequireAll,
			RawRecords:   protocol.RawRecordSet{Reader: bytes.NewReader(raw)},
		})
		if err == nil && resp != nil {
			err = resp.Error
		}
		if err == nil || (sess.id >= 0 && errors.Is(err, kafka.DuplicateSequenceNumber)) {
			if sess.id >= 0 {
				p.advance(partition, seq, n)
			}
			if !failedAt.IsZero() {
				res.Retries += attempts - 1
				p.cfg.Logger.Info("produce resumed", "topic", p.cfg.Topic, "partition", partition,
					"paused", time.Since(failedAt).Round(time.Millisecond), "attempts", attempts)
			}
			return nil
		}
		// The broker checks a batch before it appends it: its final (non-retriable) answers
		// say that nothing was appended, as the notAppended ones do.
		var ke kafka.Error
		final := errors.As(err, &ke) && !ke.Temporary()
		perr := &ProduceError{Topic: p.cfg.Topic, Partition: partition, Records: n, Unknown: !notAppended(err) && !final, Err: err}
		switch {
		case !resendable(err, sess.id >= 0):
			return perr
		case failedAt.IsZero():
			failedAt = time.Now()
			p.pause()
			defer p.unpause()
			how := "resending it as it is (idempotent: the broker drops a copy it already has)"
			if sess.id < 0 {
				how = "resending it (the broker proved it appended nothing)"
			}
			p.cfg.Logger.Warn("produce failed; "+how, "topic", p.cfg.Topic, "partition", partition,
				"records", n, "err", err, "retry_timeout", p.cfg.RetryTimeout)
		case time.Since(failedAt) >= p.cfg.RetryTimeout:
			perr.Err = fmt.Errorf("still failing after %s of retries (--retry-timeout): %w",
				time.Since(failedAt).Round(time.Second), err)
			return perr
		}
		t := time.NewTimer(min(bo.NextBackOff(), p.cfg.RetryTimeout-time.Since(failedAt)))
		select {
		case <-ctx.Done():
			t.Stop()
			perr.Err = fmt.Errorf("%w (while waiting to resend after: %v)", context.Cause(ctx), err)
			return perr
		case <-t.C:
		}
	}
}

// resendable reports whether a failed batch may be resent: with idempotence every failure
// that Kafka calls retriable and every connection failure (the broker drops a copy it
// already has); without, only failures that prove nothing was appended.
func resendable(err error, idempotent bool) bool {
	if notAppended(err) {
		return true
	}
	if !idempotent || refused(err) {
		return false
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary()
	}
	// Not an answer of the broker: a connection that failed or a timeout. Only kafka-go's
	// complaints about the request itself are final.
	var pe protocol.Error
	return !errors.As(err, &pe)
}

// refused reports connection failures that waiting does not cure: the TLS handshake
// failed or the broker refused the SASL login.
func refused(err error) bool {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		recordHdr tls.RecordHeaderError
		alert     tls.AlertError
		ke        kafka.Error
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &recordHdr) || errors.As(err, &alert) ||
		(errors.As(err, &ke) && !ke.Temporary())
}

// producerSession returns the producer id, asking the cluster for one on the first call.
// A cluster that refuses it (authorization, too old) gets the non-idempotent producer, with
// a warning; other failures are retried up to RetryTimeout.
func (p *Producer) producerSession(ctx context.Context) (producerSession, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.session != nil {
		return *p.session, nil
	}
	var sess producerSession
	op := func() error {
		// Like a produce request, never cut off by ctx, bounded by WriteTimeout.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.WriteTimeout)
		defer cancel()
		id, epoch, err := initProducerID(rctx, p.transport, p.client.Addr)
		if err == nil {
			sess = producerSession{id: id, epoch: epoch}
			return nil
		}
		if refused(err) && !errors.Is(err, kafka.ConcurrentTransactions) {
			return backoff.Permanent(err)
		}
		return err
	}
	bo := exponentialBackOff(DefaultRetryBackoff, DefaultMaxRetryBackoff)
	bo.MaxElapsedTime = p.cfg.RetryTimeout
	err := backoff.Retry(op, backoff.WithContext(bo, ctx))
	var ke kafka.Error
	switch {
	case err == nil:
	case errors.As(err, &ke) && !errors.Is(err, kafka.SASLAuthenticationFailed):
		p.cfg.Logger.Warn("the cluster refused an idempotent producer id; a broker fault that leaves a batch's "+
			"outcome unknown stops the replay (rerun with --resume to continue)", "err", err)
		sess = producerSession{id: -1, epoch: -1}
	default:
		return sess, fmt.Errorf("get a producer id (InitProducerId): %w", err)
	}
	p.session = &sess
	return sess, nil
}

// pause and unpause bracket a failing batch, for Paused.
func (p *Producer) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing == 0 {
		p.since = time.Now()
	}
	p.failing++
}

func (p *Producer) unpause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing--
	if p.failing == 0 {
		p.paused += time.Since(p.since)
	}
}

// Paused returns how long at least one batch has been failing (wall-clock time, however
// many partitions failed at once): how long broker faults held the producer up.
func (p *Producer) Paused() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.paused
	if p.failing > 0 {
		d += time.Since(p.since)
	}
	return d
}

// sequence returns the base sequence of partition's next batch.
func (p *Producer) sequence(partition int) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seqs[partition]
}

// advance records that the batch of n records at base sequence seq was acknowledged.
// Sequences wrap to 0 after MaxInt32, as Kafka's do (DefaultRecordBatch.incrementSequence).
func (p *Producer) advance(partition int, seq int32, n int) {
	next := int64(seq) + int64(n)
	if next > math.MaxInt32 {
		next -= math.MaxInt32 + 1
	}
	p.mu.Lock()
	p.seqs[partition] = int32(next)
	p.mu.Unlock()
}

// exponentialBackOff waits initial, then twice as long per retry up to max, without jitter
// and without a time limit of its own: callers bound it by a retry count or a context.
func exponentialBackOff(initial, max time.Duration) *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(initial),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0),
		backoff.WithMaxInterval(max),
		backoff.WithMaxElapsedTime(0),
	)
}

// notAppended reports whether err proves that the broker appended nothing of the batch: these
// errors are checked before the append, so resending cannot duplicate.
func notAppended(err error) bool {
	for _, e := range []kafka.Error{
		kafka.UnknownTopicOrPartition, kafka.LeaderNotAvailable,
		kafka.NotLeaderForPartition, kafka.NotEnoughReplicas,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	// kafka-go's router rejects a request before sending it when its cached metadata does not
	// know the topic, the partition or its leader.
	return errors.Is(err, protocol.ErrNoTopic) || errors.Is(err, protocol.ErrNoPartition) ||
		errors.Is(err, protocol.ErrNoLeader)
}

// newCodec returns a compression codec of its own (kafka-go's compress.Codecs is a
// process-wide table; these values are not shared with it).
func newCodec(c kafka.Compression, zstdLevel int) (compress.Codec, error) {
	switch c {
	case 0:
		return nil, nil
	case kafka.Gzip:
		return &gzip.Codec{}, nil
	case kafka.Snappy:
		return &snappy.Codec{}, nil
	case kafka.Lz4:
		return &lz4.Codec{}, nil
	case kafka.Zstd:
		return &zstd.Codec{Level: zstdLevel}, nil
	}
	return nil, fmt.Errorf("kafkaio: unknown compression %d", c)
}
