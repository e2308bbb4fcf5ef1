package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// ErrTopicNotFound is returned (wrapped) when a topic does not exist.
var ErrTopicNotFound = errors.New("topic not found")

// Admin manages topics and reads partition ends. Every call uses a fresh connection pool:
// kafka-go's Transport answers metadata requests from a cache that can be seconds old, and
// topic creation, deletion and resume must see the cluster as it is now.
type Admin struct {
	brokers   []string
	timeout   time.Duration
	clientID  string
	security  Security
	retryWait time.Duration // how long unreachable brokers are waited for (0: not at all)
	log       *slog.Logger
}

// NewAdmin returns an Admin for the cluster at brokers; timeout bounds each request
// (default 30s).
func NewAdmin(brokers []string, timeout time.Duration) *Admin {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &Admin{brokers: brokers, timeout: timeout, clientID: "taxi-replay-admin"}
}

// WithSecurity returns a copy of a that connects with sec (TLS, SASL).
func (a *Admin) WithSecurity(sec Security) *Admin {
	c := *a
	c.security = sec
	return &c
}

// WithRetry returns a copy of a that waits up to wait for brokers it cannot connect to
// (a broker restarting, a cluster still starting: connection refused, host unknown),
// logging the wait to log, before it gives up with the error.
func (a *Admin) WithRetry(wait time.Duration, log *slog.Logger) *Admin {
	c := *a
	c.retryWait, c.log = wait, log
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return &c
}

// with runs f with a client on a new transport, closed afterwards. With WithRetry, f is
// run again while no broker can be connected to: a request that could not be sent at all
// is safe to send again.
func (a *Admin) with(ctx context.Context, f func(*kafka.Client) error) error {
	if len(a.brokers) == 0 {
		return errors.New("kafkaio: no brokers")
	}
	run := func() error {
		tr := newTransport(a.clientID, a.security)
		defer tr.CloseIdleConnections()
		return f(&kafka.Client{Addr: kafka.TCP(a.brokers...), Transport: tr, Timeout: a.timeout})
	}
	err := run()
	if err == nil || a.retryWait <= 0 || !BrokerDown(err) {
		return err
	}
	start := time.Now()
	a.log.Warn("cannot connect to the brokers; retrying (--retry-timeout)", "brokers", a.brokers, "err", err,
		"retry_timeout", a.retryWait)
	bo := exponentialBackOff(200*time.Millisecond, 5*time.Second)
	for {
		wait := bo.NextBackOff()
		if time.Since(start)+wait > a.retryWait {
			return fmt.Errorf("%w (still failing after %s; --retry-timeout)", err, time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		if err = run(); err == nil || !BrokerDown(err) {
			a.log.Info("brokers reachable again", "brokers", a.brokers, "waited", time.Since(start).Round(time.Millisecond))
			return err
		}
	}
}

// BrokerDown reports whether err says that no connection to a broker could be made
// (refused, unreachable network or host, unknown host, dial timeout): nothing was sent.
func BrokerDown(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.As(err, &dns) ||
		(errors.As(err, &op) && op.Op == "dial")
}

// TopicInfo is a topic's metadata.
type TopicInfo struct {
	Name       string
	Partitions int
	// Ready is true when every partition has a leader.
	Ready bool
}

// Describe returns the topic's metadata, or an error wrapping ErrTopicNotFound.
func (a *Admin) Describe(ctx context.Context, topic string) (TopicInfo, error) {
	var info TopicInfo
	err := a.with(ctx, func(c *kafka.Client) error {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return fmt.Errorf("metadata of topic %s: %w", topic, err)
		}
		for _, t := range md.Topics {
			if t.Name != topic {
				continue
			}
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				return fmt.Errorf("topic %s: %w", topic, ErrTopicNotFound)
			}
			if t.Error != nil {
				return fmt.Errorf("metadata of topic %s: %w", topic, t.Error)
			}
			info = TopicInfo{Name: topic, Partitions: len(t.Partitions), Ready: len(t.Partitions) > 0}
			for _, p := range t.Partitions {
				if p.Error != nil || p.Leader.Host == "" {
					info.Ready = false
				}
			}
			return nil
		}
		return fmt.Errorf("topic %s: %w", topic, ErrTopicNotFound)
	})
	return info, err
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name       string
	Partitions int
	// Replication is the replication factor; -1 takes the broker's default
	// (default.replication.factor).
	Replication int
	// Configs are topic configs, e.g. cleanup.policy=compact.
	Configs map[string]string
}

// EnsureTopic creates the topic if it is missing and waits until every partition has a
// leader. It returns the topic's partition count (the existing one if the topic was there)
// and whether it was created.
func (a *Admin) EnsureTopic(ctx context.Context, spec TopicSpec) (partitions int, created bool, err error) {
	if spec.Partitions < 1 {
		return 0, false, fmt.Errorf("topic %s: partitions %d, want >= 1", spec.Name, spec.Partitions)
	}
	info, err := a.Describe(ctx, spec.Name)
	switch {
	case err == nil:
		info, err = a.WaitReady(ctx, spec.Name)
		return info.Partitions, false, err
	case !errors.Is(err, ErrTopicNotFound):
		return 0, false, err
	}
	err = a.with(ctx, func(c *kafka.Client) error {
		tc := kafka.TopicConfig{Topic: spec.Name, NumPartitions: spec.Partitions, ReplicationFactor: spec.Replication}
		keys := make([]string, 0, len(spec.Configs))
		for k := range spec.Configs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: spec.Configs[k]})
		}
		resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{tc}})
		if err != nil {
			return fmt.Errorf("create topic %s: %w", spec.Name, err)
		}
		if err := resp.Errors[spec.Name]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s (%d partitions, replication %d): %w", spec.Name, spec.Partitions, spec.Replication, err)
		}
		created = true
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	info, err = a.WaitReady(ctx, spec.Name)
	return info.Partitions, created, err
}

// WaitReady polls the topic's metadata until every partition has a leader (a topic is
// usable a moment after CreateTopics returns), at most the Admin's timeout.
func (a *Admin) WaitReady(ctx context.Context, topic string) (TopicInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	var info TopicInfo
	var last error
	err := backoff.Retry(func() error {
		var err error
		info, err = a.Describe(ctx, topic)
		if err == nil && !info.Ready {
			err = errors.New("not every partition has a leader")
		}
		if err == nil {
			// The metadata can name a leader a moment before that broker serves the
			// partition: ask every leader for the partition's offsets too.
			_, err = a.Tails(ctx, topic, info.Partitions)
		}
		last = err
		return err
	}, backoff.WithContext(backoff.NewConstantBackOff(100*time.Millisecond), ctx))
	if err != nil {
		// Only the context stops the retries; report why the topic was not ready.
		return info, fmt.Errorf("topic %s not ready: %w", topic, last)
	}
	return info, nil
}

// TopicConfig returns the topic's config values (cleanup.policy, ...).
func (a *Admin) TopicConfig(ctx context.Context, topic string) (map[string]string, error) {
	out := map[string]string{}
	err := a.with(ctx, func(c *kafka.Client) error {
		resp, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{
			Resources: []kafka.DescribeConfigRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic}},
		})
		if err != nil {
			return fmt.Errorf("describe configs of topic %s: %w", topic, err)
		}
		for _, r := range resp.Resources {
			if r.Error != nil {
				return fmt.Errorf("describe configs of topic %s: %w", topic, r.Error)
			}
			for _, e := range r.ConfigEntries {
				out[e.ConfigName] = e.ConfigValue
			}
		}
		return nil
	})
	return out, err
}

// DeleteTopics deletes the named topics. The result maps each name to its error (nil when
// deleted; wrapping ErrTopicNotFound when it did not exist).
func (a *Admin) DeleteTopics(ctx context.Context, names []string) (map[string]error, error) {
	out := make(map[string]error, len(names))
	err := a.with(ctx, func(c *kafka.Client) error {
		resp, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: names})
		if err != nil {
			return fmt.Errorf("delete topics: %w", err)
		}
		for _, n := range names {
			e, ok := resp.Errors[n]
			switch {
			case !ok:
				out[n] = errors.New("no answer from the broker")
			case errors.Is(e, kafka.UnknownTopicOrPartition):
				out[n] = fmt.Errorf("topic %s: %w", n, ErrTopicNotFound)
			default:
				out[n] = e
			}
		}
		return nil
	})
	return out, err
}

// Tail is where one partition ends.
type Tail struct {
	Partition int
	// Start and End are the log start offset and the high watermark: the partition holds the
	// records at offsets [Start, End).
	Start, End int64
	// Last is the record at End-1; nil when the partition is empty.
	Last *TailRecord
}

// TailRecord is the last record of a partition.
type TailRecord struct {
	Offset  int64
	Key     []byte
	Headers map[string]string
}

// Tails returns the end of each of the topic's partitions [0, partitions) with its last
// record. A partition whose records were all deleted (Start == End > 0, e.g. by retention)
// has Last == nil and End > 0.
//
// Errors that say the cluster is still settling (a new topic's leaders, a leader change) are
// retried for up to the Admin's timeout: these requests only read.
func (a *Admin) Tails(ctx context.Context, topic string, partitions int) ([]Tail, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	var settling error // the last retriable error, nil after a final one
	tails, err := backoff.RetryWithData(func() ([]Tail, error) {
		tails, err := a.tails(ctx, topic, partitions)
		if err != nil && !retriable(err) {
			settling = nil
			return tails, backoff.Permanent(err)
		}
		settling = err
		return tails, err
	}, backoff.WithContext(exponentialBackOff(50*time.Millisecond, time.Second), ctx))
	if err != nil && settling != nil {
		// ctx ended while the cluster was still settling: backoff returns ctx.Err().
		return nil, fmt.Errorf("%w (still failing when %v)", settling, err)
	}
	return tails, err
}

// retriable reports errors of a cluster that is settling: no leader yet, a stale leader.
func retriable(err error) bool {
	var ke kafka.Error
	if errors.As(err, &ke) && ke.Temporary() {
		return true
	}
	return notAppended(err)
}

func (a *Admin) tails(ctx context.Context, topic string, partitions int) ([]Tail, error) {
	tails := make([]Tail, partitions)
	err := a.with(ctx, func(c *kafka.Client) error {
		var reqs []kafka.OffsetRequest
		for p := range partitions {
			reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
		}
		resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			return fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		seen := 0
		for _, po := range resp.Topics[topic] {
			if po.Error != nil {
				return fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error)
			}
			if po.Partition < 0 || po.Partition >= partitions {
				continue
			}
			tails[po.Partition] = Tail{Partition: po.Partition, Start: po.FirstOffset, End: po.LastOffset}
			seen++
		}
		if seen != partitions {
			return fmt.Errorf("list offsets of %s: %d of %d partitions answered", topic, seen, partitions)
		}
		for p := range tails {
			t := &tails[p]
			if t.End <= t.Start {
				continue
			}
			last, err := lastRecord(ctx, c, topic, p, t.End-1)
			if err != nil {
				return err
			}
			t.Last = last
		}
		return nil
	})
	return tails, err
}

// lastRecord fetches the record at offset (the batch holding it comes whole).
func lastRecord(ctx context.Context, c *kafka.Client, topic string, partition int, offset int64) (*TailRecord, error) {
	resp, err := c.Fetch(ctx, &kafka.FetchRequest{
		Topic: topic, Partition: partition, Offset: offset,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("fetch %s/%d at offset %d: %w", topic, partition, offset, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("fetch %s/%d at offset %d: %w", topic, partition, offset, resp.Error)
	}
	defer func() {
		if cl, ok := resp.Records.(io.Closer); ok {
			cl.Close()
		}
	}()
	for {
		rec, err := resp.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("fetch %s/%d: no record at offset %d", topic, partition, offset)
		}
		if err != nil {
			return nil, fmt.Errorf("fetch %s/%d at offset %d: %w", topic, partition, offset, err)
		}
		if rec.Offset != offset {
			closeRecord(rec)
			continue
		}
		key, err := protocol.ReadAll(rec.Key)
		closeRecord(rec)
		if err != nil {
			return nil, fmt.Errorf("fetch %s/%d at offset %d: key: %w", topic, partition, offset, err)
		}
		tr := &TailRecord{Offset: offset, Key: key, Headers: make(map[string]string, len(rec.Headers))}
		for _, h := range rec.Headers {
			tr.Headers[h.Key] = string(h.Value)
		}
		return tr, nil
	}
}

func closeRecord(r *kafka.Record) {
	if r.Key != nil {
		r.Key.Close()
	}
	if r.Value != nil {
		r.Value.Close()
	}
}

// HeaderInt parses an integer header of a tail record.
func (r *TailRecord) HeaderInt(name string) (int64, error) {
	v, ok := r.Headers[name]
	if !ok {
		return 0, fmt.Errorf("record at offset %d has no %s header", r.Offset, name)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("record at offset %d: header %s=%q is not an integer", r.Offset, name, v)
	}
	return n, nil
}
