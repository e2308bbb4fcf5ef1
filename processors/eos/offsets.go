package eos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// FetchCommittedMetadata returns the metadata committed with each claimed
// partition's offset (missing: nothing committed yet). It asks for stable offsets
// (KIP-447 RequireStable): while a transaction that commits offsets for the group is
// still open the broker answers UNSTABLE_OFFSET_COMMIT and we retry, so a new owner
// never starts from an offset its predecessor is about to move.
func FetchCommittedMetadata(ctx context.Context, brokers []string, cfg *sarama.Config, group string, claims map[string][]int32) (map[TopicPartition]string, error) {
	scoped := *cfg
	client, err := sarama.NewClient(brokers, TopicScoped(&scoped))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		out, retry, err := fetchOnce(client, group, claims)
		if err == nil && !retry {
			return out, nil
		}
		if err != nil && !retry {
			return nil, err
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("offsets stayed unstable (an open transaction holds them)")
			}
			return nil, fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func fetchOnce(client sarama.Client, group string, claims map[string][]int32) (map[TopicPartition]string, bool, error) {
	if err := client.RefreshCoordinator(group); err != nil {
		return nil, true, err
	}
	coord, err := client.Coordinator(group)
	if err != nil {
		return nil, true, err
	}
	req := &sarama.OffsetFetchRequest{Version: 7, ConsumerGroup: group, RequireStable: true}
	for topic, parts := range claims {
		for _, p := range parts {
			req.AddPartition(topic, p)
		}
	}
	resp, err := coord.FetchOffset(req)
	if err != nil {
		return nil, true, err
	}
	switch resp.Err {
	case sarama.ErrNoError:
	case sarama.ErrUnstableOffsetCommit, sarama.ErrNotCoordinatorForConsumer, sarama.ErrOffsetsLoadInProgress, sarama.ErrConsumerCoordinatorNotAvailable:
		return nil, true, resp.Err
	default:
		return nil, false, resp.Err
	}
	out := map[TopicPartition]string{}
	for topic, parts := range claims {
		for _, p := range parts {
			block := resp.GetBlock(topic, p)
			if block == nil {
				continue
			}
			switch block.Err {
			case sarama.ErrNoError:
			case sarama.ErrUnstableOffsetCommit:
				return nil, true, block.Err
			default:
				return nil, false, fmt.Errorf("offset of %s/%d: %w", topic, p, block.Err)
			}
			if block.Offset >= 0 {
				out[TopicPartition{topic, p}] = block.Metadata
			}
		}
	}
	return out, false, nil
}

// topicManager makes goka's table recovery work on topics written in transactions.
// goka recovers a table partition until it has read offset "newest - 1"; in a
// transactional topic that offset is a commit marker, which consumers never see, so
// recovery would wait forever. GetOffset(OffsetNewest) therefore reports the offset
// after the last record a read_committed consumer can see.
//
// For the group's own table (its changelog) GetOffset(OffsetNewest) first waits
// until no transaction is open on the partition (last stable offset = high
// watermark). A predecessor's transaction may have committed (its offsets are
// stable) while the commit marker of this changelog partition is not written yet:
// recovering only up to the last stable offset then would miss the state that
// transaction wrote, and the new owner would, e.g., close a window a second time
// (seen in the chaos suite once rebalances got fast). A killed owner's open
// transaction is aborted when it restarts, or after the transaction timeout.
type topicManager struct {
	goka.TopicManager
	client      sarama.Client // read_committed
	uncommitted sarama.Client // read_uncommitted: the high watermark
	stableTopic string        // the group table's changelog
	stableWait  time.Duration
}

// NewTopicManager returns goka's topic manager with transaction-aware GetOffset.
// cfg should be a read_committed consumer config. For stableTopic (the group table's
// changelog; "" for none) GetOffset(OffsetNewest) waits up to stableWait for open
// transactions to end.
func NewTopicManager(brokers []string, cfg *sarama.Config, stableTopic string, stableWait time.Duration) (goka.TopicManager, error) {
	tmc := goka.NewTopicManagerConfig()
	// Topics are created and checked by the application with the cluster's
	// replication (topology.EnsureTopics); goka must neither create topics with its
	// own defaults nor refuse ours for having another replication factor.
	tmc.NoCreate = true
	tmc.MismatchBehavior = goka.TMConfigMismatchBehaviorIgnore
	inner, err := goka.NewTopicManager(brokers, cfg, tmc)
	if err != nil {
		return nil, err
	}
	scoped := *cfg // goka's manager above needs full metadata; our clients do not
	client, err := sarama.NewClient(brokers, TopicScoped(&scoped))
	if err != nil {
		inner.Close()
		return nil, err
	}
	tm := &topicManager{TopicManager: inner, client: client, stableTopic: stableTopic, stableWait: stableWait}
	if stableTopic != "" {
		ucfg := scoped
		ucfg.Consumer.IsolationLevel = sarama.ReadUncommitted
		if tm.uncommitted, err = sarama.NewClient(brokers, &ucfg); err != nil {
			client.Close()
			inner.Close()
			return nil, err
		}
	}
	return tm, nil
}

func (t *topicManager) Close() error {
	err := t.TopicManager.Close()
	if cerr := t.client.Close(); err == nil {
		err = cerr
	}
	if t.uncommitted != nil {
		if cerr := t.uncommitted.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func (t *topicManager) GetOffset(topic string, partition int32, at int64) (int64, error) {
	if at != sarama.OffsetNewest {
		return t.TopicManager.GetOffset(topic, partition, at)
	}
	if topic == t.stableTopic {
		if err := t.waitStable(topic, partition); err != nil {
			return 0, err
		}
	}
	return LastVisibleOffset(t.client, topic, partition)
}

// waitStable waits until no transaction is open on the partition.
func (t *topicManager) waitStable(topic string, partition int32) error {
	deadline := time.Now().Add(t.stableWait)
	for {
		lso, err := lastStableOffset(t.client, topic, partition)
		if err != nil {
			return err
		}
		// Sarama's Client.GetOffset always lists offsets read_uncommitted: the high
		// watermark.
		hwm, err := t.uncommitted.GetOffset(topic, partition, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		if lso >= hwm {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("changelog %s/%d: a transaction is still open after %s (last stable offset %d, high watermark %d)", topic, partition, t.stableWait, lso, hwm)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastStableOffset lists the partition's end offset read_committed: the last stable
// offset (Sarama's Client.GetOffset ignores the isolation level).
func lastStableOffset(client sarama.Client, topic string, partition int32) (int64, error) {
	broker, err := client.Leader(topic, partition)
	if err != nil {
		return 0, err
	}
	req := sarama.NewOffsetRequest(client.Config().Version)
	req.IsolationLevel = sarama.ReadCommitted
	req.AddBlock(topic, partition, sarama.OffsetNewest, 1)
	resp, err := broker.GetAvailableOffsets(req)
	if err != nil {
		return 0, err
	}
	block := resp.GetBlock(topic, partition)
	if block == nil {
		return 0, sarama.ErrIncompleteResponse
	}
	if block.Err != sarama.ErrNoError {
		return 0, block.Err
	}
	if block.Offset > 0 || len(block.Offsets) == 0 {
		return block.Offset, nil
	}
	return block.Offsets[0], nil
}

// LastVisibleOffset returns 1 + the offset of the last record in the partition that a
// read_committed consumer can see (data, not a transaction marker, not aborted), or
// the log start offset when there is none.
func LastVisibleOffset(client sarama.Client, topic string, partition int32) (int64, error) {
	oldest, err := client.GetOffset(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return 0, err
	}
	lso, err := lastStableOffset(client, topic, partition)
	if err != nil {
		return 0, err
	}
	if lso <= oldest {
		return lso, nil
	}
	broker, err := client.Leader(topic, partition)
	if err != nil {
		return 0, err
	}
	// Scan backwards in growing windows until a visible record is found.
	for window := int64(512); ; window *= 8 {
		from := max(oldest, lso-window)
		last, err := lastVisibleIn(broker, topic, partition, from, lso)
		if err != nil {
			return 0, err
		}
		if last >= 0 {
			return last + 1, nil
		}
		if from == oldest {
			return oldest, nil
		}
	}
}

// fetcher is the part of *sarama.Broker that lastVisibleIn uses.
type fetcher interface {
	Fetch(*sarama.FetchRequest) (*sarama.FetchResponse, error)
}

// lastVisibleIn reads [from, to) and returns the offset of the last visible record,
// or -1. It applies the read_committed rules itself (as the Java consumer does):
// batches of a producer whose transaction is listed as aborted are skipped until
// that producer's abort marker.
func lastVisibleIn(broker fetcher, topic string, partition int32, from, to int64) (int64, error) {
	last := int64(-1)
	aborting := map[int64]bool{}
	offset := from
	for offset < to {
		req := &sarama.FetchRequest{Version: 11, MaxWaitTime: 0, MinBytes: 0, MaxBytes: 8 << 20, Isolation: sarama.ReadCommitted}
		req.AddBlock(topic, partition, offset, 4<<20, -1)
		resp, err := broker.Fetch(req)
		if err != nil {
			return -1, err
		}
		block := resp.GetBlock(topic, partition)
		if block == nil {
			return -1, fmt.Errorf("fetch %s/%d: no block in response", topic, partition)
		}
		if block.Err != sarama.ErrNoError {
			return -1, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, block.Err)
		}
		// Each aborted transaction starts to apply at its first offset and ends at its
		// producer's abort marker; the same producer may write committed transactions
		// after it (a restarted instance keeps its producer id), so every entry is used
		// once, in offset order, as the Java consumer does.
		aborted := slices.Clone(block.AbortedTransactions)
		slices.SortFunc(aborted, func(a, b *sarama.AbortedTransaction) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
		next := 0
		progressed := false
		for _, rs := range block.RecordsSet {
			b := rs.RecordBatch
			if b == nil {
				continue
			}
			end := b.FirstOffset + int64(b.LastOffsetDelta) + 1
			if end <= offset {
				continue
			}
			for ; next < len(aborted) && aborted[next].FirstOffset <= b.FirstOffset+int64(b.LastOffsetDelta); next++ {
				aborting[aborted[next].ProducerID] = true
			}
			switch {
			case b.Control:
				if len(b.Records) > 0 && isAbortMarker(b.Records[0]) {
					delete(aborting, b.ProducerID)
				}
			case b.IsTransactional && aborting[b.ProducerID]:
			default:
				for _, rec := range b.Records {
					if o := b.FirstOffset + rec.OffsetDelta; o < to && o >= from {
						last = o
					}
				}
			}
			offset = end
			progressed = true
		}
		if !progressed {
			break
		}
	}
	return last, nil
}

// isAbortMarker reads a control record's key: int16 version, int16 type (0 abort).
func isAbortMarker(rec *sarama.Record) bool {
	k := rec.Key
	return len(k) >= 4 && k[2] == 0 && k[3] == 0
}
