package eos

import (
	"context"
	"sync"

	"github.com/IBM/sarama"
)

// consumerGroup wraps the Sarama consumer group that goka builds, so that the
// runtime sees each session start and end and captures goka's offset marks.
type consumerGroup struct {
	sarama.ConsumerGroup
	rt *Runtime
}

func (g *consumerGroup) Consume(ctx context.Context, topics []string, handler sarama.ConsumerGroupHandler) error {
	return g.ConsumerGroup.Consume(ctx, topics, &groupHandler{inner: handler, rt: g.rt})
}

type groupHandler struct {
	inner sarama.ConsumerGroupHandler
	rt    *Runtime
}

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	ws := &session{ConsumerGroupSession: s, rt: h.rt}
	if err := h.rt.sessionStarted(ws); err != nil {
		return err
	}
	return h.inner.Setup(ws)
}

func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	return h.inner.ConsumeClaim(h.rt.currentSession(s), c)
}

func (h *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	ws := h.rt.currentSession(s)
	err := h.inner.Cleanup(ws)
	if endErr := h.rt.sessionEnding(ws); err == nil {
		err = endErr
	}
	return err
}

// session records goka's MarkOffset calls instead of passing them on: offsets are
// committed only by the runtime's commit, together with the outputs they produced.
type session struct {
	sarama.ConsumerGroupSession
	rt *Runtime

	mu     sync.Mutex
	marked map[topicPartition]int64 // next offset to consume, per input partition
}

type topicPartition struct {
	topic     string
	partition int32
}

func (s *session) MarkOffset(topic string, partition int32, offset int64, _ string) {
	s.mu.Lock()
	if s.marked == nil {
		s.marked = map[topicPartition]int64{}
	}
	tp := topicPartition{topic, partition}
	if offset > s.marked[tp] {
		s.marked[tp] = offset
	}
	s.mu.Unlock()
	// Broadcast under the runtime's lock so that a commit checking its condition
	// cannot miss this wake-up.
	s.rt.mu.Lock()
	s.rt.progress.Broadcast()
	s.rt.mu.Unlock()
}

func (s *session) MarkMessage(msg *sarama.ConsumerMessage, metadata string) {
	s.MarkOffset(msg.Topic, msg.Partition, msg.Offset+1, metadata)
}

// Commit is a no-op: the runtime commits.
func (s *session) Commit() {}

// ResetOffset is not used by goka; refuse silently moving offsets backwards.
func (s *session) ResetOffset(string, int32, int64, string) {}

func (s *session) snapshotMarks() map[topicPartition]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[topicPartition]int64, len(s.marked))
	for k, v := range s.marked {
		out[k] = v
	}
	return out
}

func (s *session) markedAtLeast(tp topicPartition, next int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marked[tp] >= next
}
