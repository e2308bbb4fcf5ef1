package eos

import (
	"context"

	"github.com/IBM/sarama"
)

// consumerGroup wraps the Sarama consumer group that goka builds, so that the
// runtime sees each session start and end and captures goka's offset marks.
type consumerGroup struct {
	sarama.ConsumerGroup
	rt *Runtime
}

// Consume runs consumer-group sessions until ctx ends or one fails. Sarama's Consume
// returns after each session (a rebalance); goka then waits a fixed 5 s before it
// joins again, and the whole group waits for it. Joining again at once here keeps a
// rebalance to the time the group protocol needs.
func (g *consumerGroup) Consume(ctx context.Context, topics []string, handler sarama.ConsumerGroupHandler) error {
	h := &groupHandler{inner: handler, rt: g.rt}
	for {
		if err := g.ConsumerGroup.Consume(ctx, topics, h); err != nil || ctx.Err() != nil {
			return err
		}
	}
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
	if c != nil {
		h.rt.claimStarted(c)
		defer h.rt.claimEnded(c)
	}
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

// session keeps goka's MarkOffset calls from reaching Sarama: offsets are committed
// only by the runtime's commit, together with the outputs they produced.
type session struct {
	sarama.ConsumerGroupSession
	rt *Runtime
}

type topicPartition struct {
	topic     string
	partition int32
}

// MarkOffset is a no-op: the runtime commits the offsets of the messages whose
// callbacks ran (Runtime.Wrap), in the transaction that holds their outputs.
func (s *session) MarkOffset(string, int32, int64, string) {}

// MarkMessage is a no-op, like MarkOffset.
func (s *session) MarkMessage(*sarama.ConsumerMessage, string) {}

// Commit is a no-op: the runtime commits.
func (s *session) Commit() {}

// ResetOffset is not used by goka; refuse silently moving offsets backwards.
func (s *session) ResetOffset(string, int32, int64, string) {}
