package kafkaio

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
	// DefaultRetryBackoff is the first pause before resending a batch the broker rejected
	// without appending it; it doubles per attempt.
	DefaultRetryBackoff = 100 * time.Millisecond
	// DefaultMaxRejectRetries is how often such a batch is resent: with at most 2 s
	// between attempts, about 75 s, long enough for a new topic's leaders to be
	// elected or a leader to move on a loaded cluster (8 attempts, ~9 s, failed a
	// replay into a just-created topic with "no leader" on a loaded machine). Resending
	// is safe: these batches were proven not appended.
	DefaultMaxRejectRetries = 40
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
	// ClientID is sent to the broker. Default "taxi-replay".
	ClientID string
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
	if c.ClientID == "" {
		c.ClientID = "taxi-replay"
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
//   - a batch is resent only when the broker's answer proves that it appended nothing
//     (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER,
//     NOT_ENOUGH_REPLICAS: all checked before the append). Any other failure, including a
//     timeout or a broken connection, leaves the outcome unknown: Produce returns at once and
//     sends nothing more, so it never duplicates a batch and never leaves a gap below a later
//     batch. A caller that stops at the first error keeps every partition a prefix of what it
//     meant to write; resume then reads where each partition ends (Admin.Tails).
//
// It is safe for concurrent use by one goroutine per partition.
type Producer struct {
	cfg       ProducerConfig
	transport *kafka.Transport
	client    *kafka.Client
	encoders  sync.Pool // *batchEncoder, one per concurrent Produce
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
		// (produce retries for NOT_LEADER_OR_FOLLOWER wait long enough in total).
		MetadataTTL: 5 * time.Second,
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
// in-sync replicas. On error nothing after the failed batch is sent (see Producer).
func (p *Producer) Produce(ctx context.Context, partition int, rs *Records) (Result, error) {
	var res Result
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
		if err := p.produceBatch(ctx, partition, rs, first, end); err != nil {
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

func (p *Producer) produceBatch(ctx context.Context, partition int, rs *Records, first, end int) error {
	var rejected *ProduceError // the last answer that proved nothing was appended
	attempt := func() error {
		enc := p.encoders.Get().(*batchEncoder)
		raw, err := enc.encode(rs, first, end, time.Now().UnixMilli())
		if err != nil {
			p.encoders.Put(enc)
			return backoff.Permanent(&ProduceError{Topic: p.cfg.Topic, Partition: partition, Records: end - first, Err: err})
		}
		resp, err := p.client.RawProduce(ctx, &kafka.RawProduceRequest{
			Topic:        p.cfg.Topic,
			Partition:    partition,
			RequiredAcks: kafka.RequireAll,
			RawRecords:   protocol.RawRecordSet{Reader: bytes.NewReader(raw)},
		})
		p.encoders.Put(enc)
		if err == nil && resp != nil {
			err = resp.Error
		}
		if err == nil {
			return nil
		}
		perr := &ProduceError{Topic: p.cfg.Topic, Partition: partition, Records: end - first, Unknown: !notAppended(err), Err: err}
		if perr.Unknown {
			return backoff.Permanent(perr) // resending could duplicate the batch
		}
		rejected = perr
		return perr
	}
	bo := backoff.WithContext(backoff.WithMaxRetries(
		exponentialBackOff(DefaultRetryBackoff, 2*time.Second), DefaultMaxRejectRetries), ctx)
	err := backoff.Retry(attempt, bo)
	if err == nil {
		return nil
	}
	var perr *ProduceError
	if errors.As(err, &perr) || rejected == nil {
		return err // not resendable, or still rejected after the last resend
	}
	// ctx ended while waiting to resend a rejected batch: backoff returns ctx.Err().
	rejected.Err = fmt.Errorf("%w (while waiting to resend after: %v)", err, rejected.Err)
	return rejected
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
