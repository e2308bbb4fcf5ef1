package eos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// Where each claimed input partition stands, for stages that decide things from
// it (the ingest stage's idle partitions): the next offset to process, the high
// watermark the consumer last saw, and a fresh look at the log end.

// Position is an input partition's progress in the current generation.
type Position struct {
	// Next is the offset after the last callback that ran (or the generation's
	// starting offset when none ran): the offset a commit now would store.
	Next int64
	// HighWaterMark is the log end offset as of the consumer's last fetch that
	// returned records (Sarama's HighWaterMarkOffset; -1 before any).
	HighWaterMark int64
	// Delivered is true once a callback of this generation ran for the partition.
	Delivered bool
}

// claimState is what the runtime keeps of a claim while goka consumes it.
type claimState struct {
	claim sarama.ConsumerGroupClaim
	// start is the resolved starting offset: the committed one, or the log's
	// oldest/newest offset resolved by a ListOffsets request (-1 until known).
	start int64
}

func (r *Runtime) claimStarted(c sarama.ConsumerGroupClaim) {
	tp := topicPartition{c.Topic(), c.Partition()}
	cs := &claimState{claim: c, start: c.InitialOffset()}
	r.mu.Lock()
	if r.claims == nil {
		r.claims = map[topicPartition]*claimState{}
	}
	r.claims[tp] = cs
	r.mu.Unlock()
	if cs.start >= 0 {
		return
	}
	// No committed offset: the consumer started at the log's oldest (or newest)
	// offset, which Sarama resolved without telling. Ask the broker for the same.
	go func() {
		off, err := r.listOffset(tp.topic, tp.partition, c.InitialOffset(), 30*time.Second)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.cfg.Logger.Warn("cannot resolve the starting offset of a partition without a committed offset; it is never treated as idle in this generation",
				"group", r.cfg.Group, "topic", tp.topic, "partition", tp.partition, "err", err)
			return
		}
		if r.claims[tp] == cs {
			cs.start = off
		}
	}()
}

func (r *Runtime) claimEnded(c sarama.ConsumerGroupClaim) {
	tp := topicPartition{c.Topic(), c.Partition()}
	r.mu.Lock()
	if cs := r.claims[tp]; cs != nil && cs.claim == c {
		delete(r.claims, tp)
	}
	r.mu.Unlock()
}

// Position returns the progress of a claimed input partition; ok is false when the
// partition is not claimed or its starting offset is not known yet.
func (r *Runtime) Position(topic string, partition int32) (pos Position, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.positionLocked(topicPartition{topic, partition})
}

func (r *Runtime) positionLocked(tp topicPartition) (Position, bool) {
	cs := r.claims[tp]
	if cs == nil {
		return Position{}, false
	}
	pos := Position{HighWaterMark: cs.claim.HighWaterMarkOffset()}
	if next, ok := r.started[tp]; ok {
		pos.Next, pos.Delivered = next, true
		return pos, true
	}
	if cs.start < 0 {
		return Position{}, false
	}
	pos.Next = cs.start
	return pos, true
}

// LogEnd asks the partition's leader for its log end offset (high watermark) now,
// waiting at most timeout. Unlike Position.HighWaterMark it does not depend on
// the consumer having fetched anything lately: a stage uses it to confirm that a
// partition which delivered nothing for a while really has nothing to deliver
// (and not a broker that cannot be reached).
func (r *Runtime) LogEnd(topic string, partition int32, timeout time.Duration) (int64, error) {
	return r.listOffset(topic, partition, sarama.OffsetNewest, timeout)
}

func (r *Runtime) listOffset(topic string, partition int32, which int64, timeout time.Duration) (int64, error) {
	type result struct {
		off int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		client, err := r.offsetClient()
		if err != nil {
			done <- result{-1, err}
			return
		}
		off, err := client.GetOffset(topic, partition, which)
		done <- result{off, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	select {
	case res := <-done:
		if res.err != nil {
			return -1, fmt.Errorf("eos: list offsets of %s/%d: %w", topic, partition, res.err)
		}
		return res.off, nil
	case <-ctx.Done():
		return -1, fmt.Errorf("eos: list offsets of %s/%d: no answer within %v", topic, partition, timeout)
	}
}

// offsetClient is one Kafka client for the runtime's offset requests, made on
// first use and closed with the runtime's other clients.
func (r *Runtime) offsetClient() (sarama.Client, error) {
	r.offsetClientMu.Lock()
	defer r.offsetClientMu.Unlock()
	if r.offsetClientV != nil {
		return r.offsetClientV, nil
	}
	c, err := sarama.NewClient(r.cfg.Brokers, TopicScoped(r.consumerBase("")))
	if err != nil {
		return nil, err
	}
	r.offsetClientV = c
	return c, nil
}

func (r *Runtime) closeOffsetClient() {
	r.offsetClientMu.Lock()
	defer r.offsetClientMu.Unlock()
	if r.offsetClientV != nil {
		_ = r.offsetClientV.Close()
		r.offsetClientV = nil
	}
}

// offsetClientFields are embedded in Runtime.
type offsetClientFields struct {
	offsetClientMu sync.Mutex
	offsetClientV  sarama.Client
}
