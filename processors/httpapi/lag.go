package httpapi

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// partitionLag is a consumer group's lag on one input partition: the records
// between its committed offset and the partition's end.
type partitionLag struct {
	ownedPartition
	Committed int64 // -1: nothing committed yet (the group starts at the oldest record)
	End       int64 // last stable offset (read_committed's end of the partition)
	Lag       int64
}

// lagReader computes consumer lag at most once per ttl (scrapes and status
// requests share the result) with one Kafka client kept open.
type lagReader struct {
	brokers     []string
	kafkaConfig func(string) *sarama.Config
	ttl         time.Duration

	mu     sync.Mutex
	client sarama.Client
	admin  sarama.ClusterAdmin
	at     time.Time
	owned  []ownedPartition
	last   []partitionLag
	err    error
}

func newLagReader(brokers []string, kafkaConfig func(string) *sarama.Config, ttl time.Duration) *lagReader {
	return &lagReader{brokers: brokers, kafkaConfig: kafkaConfig, ttl: ttl}
}

// Lag returns the lag of the owned partitions (cached for ttl).
func (l *lagReader) Lag(owned []ownedPartition) ([]partitionLag, error) {
	if len(owned) == 0 {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.at) < l.ttl && slices.Equal(owned, l.owned) {
		return l.last, l.err
	}
	l.last, l.err = l.read(owned)
	l.at, l.owned = time.Now(), owned
	if l.err != nil {
		l.closeLocked() // reconnect next time
	}
	return l.last, l.err
}

func (l *lagReader) read(owned []ownedPartition) ([]partitionLag, error) {
	if l.client == nil {
		cfg := l.kafkaConfig("taxi-stream-lag")
		// A scrape must not hang on an unreachable cluster.
		cfg.Net.DialTimeout, cfg.Net.ReadTimeout, cfg.Net.WriteTimeout = 3*time.Second, 5*time.Second, 5*time.Second
		cfg.Metadata.Retry.Max = 1
		client, err := sarama.NewClient(l.brokers, cfg)
		if err != nil {
			return nil, fmt.Errorf("consumer lag: connect: %w", err)
		}
		admin, err := sarama.NewClusterAdminFromClient(client)
		if err != nil {
			client.Close()
			return nil, fmt.Errorf("consumer lag: %w", err)
		}
		l.client, l.admin = client, admin
	}
	byGroup := map[string]map[string][]int32{}
	for _, o := range owned {
		if byGroup[o.Group] == nil {
			byGroup[o.Group] = map[string][]int32{}
		}
		byGroup[o.Group][o.Topic] = append(byGroup[o.Group][o.Topic], o.Partition)
	}
	committed := map[ownedPartition]int64{}
	for group, parts := range byGroup {
		resp, err := l.admin.ListConsumerGroupOffsets(group, parts)
		if err != nil {
			return nil, fmt.Errorf("consumer lag: committed offsets of %s: %w", group, err)
		}
		if !errors.Is(resp.Err, sarama.ErrNoError) {
			return nil, fmt.Errorf("consumer lag: committed offsets of %s: %w", group, resp.Err)
		}
		for topic, ps := range parts {
			for _, p := range ps {
				off := int64(-1)
				if b := resp.GetBlock(topic, p); b != nil && errors.Is(b.Err, sarama.ErrNoError) {
					off = b.Offset
				}
				committed[ownedPartition{group, topic, p}] = off
			}
		}
	}
	out := make([]partitionLag, 0, len(owned))
	for _, o := range owned {
		// The client's config is read_committed: newest is the last stable offset.
		end, err := l.client.GetOffset(o.Topic, o.Partition, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("consumer lag: end of %s/%d: %w", o.Topic, o.Partition, err)
		}
		c := committed[o]
		from := c
		if c < 0 {
			if from, err = l.client.GetOffset(o.Topic, o.Partition, sarama.OffsetOldest); err != nil {
				return nil, fmt.Errorf("consumer lag: start of %s/%d: %w", o.Topic, o.Partition, err)
			}
		}
		out = append(out, partitionLag{ownedPartition: o, Committed: c, End: end, Lag: max(0, end-from)})
	}
	return out, nil
}

func (l *lagReader) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeLocked()
}

func (l *lagReader) closeLocked() {
	if l.admin != nil {
		_ = l.admin.Close() // closes the client too
	} else if l.client != nil {
		_ = l.client.Close()
	}
	l.client, l.admin = nil, nil
}
