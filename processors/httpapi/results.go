package httpapi

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/processors/results"
)

// recentResults keeps the final results of the most recent windows: at most
// limit of them, those with the latest (window start, window end, borough), one
// per result key. The order does not depend on the order the topic's partitions
// are read in, so every instance holds the same set.
type recentResults struct {
	limit int

	mu     sync.RWMutex
	sorted []recentResult // ascending
	total  int64          // records added
}

type recentResult struct {
	key    string
	result aggregate.Result
	value  []byte // the JSON as written to the results topic
}

func compareResults(a, b aggregate.Result) int {
	if c := cmpInt(a.Window.StartMs, b.Window.StartMs); c != 0 {
		return c
	}
	if c := cmpInt(a.Window.EndMs, b.Window.EndMs); c != 0 {
		return c
	}
	return strings.Compare(a.Borough, b.Borough)
}

func newRecentResults(limit int) *recentResults { return &recentResults{limit: limit} }

// Add records one result read from the results topic.
func (r *recentResults) Add(key string, res aggregate.Result, value []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	i, found := slices.BinarySearchFunc(r.sorted, res, func(e recentResult, t aggregate.Result) int {
		return compareResults(e.result, t)
	})
	rec := recentResult{key: key, result: res, value: slices.Clone(value)}
	if found {
		r.sorted[i] = rec // the same key again (a compacted topic re-read)
		return
	}
	if len(r.sorted) >= r.limit {
		if i == 0 {
			return // older than everything kept
		}
		copy(r.sorted, r.sorted[1:i]) // drop the oldest, insert at i-1
		r.sorted[i-1] = rec
		return
	}
	r.sorted = slices.Insert(r.sorted, i, rec)
}

// Last returns the JSON values of the latest n results (optionally of one
// borough only), oldest first.
func (r *recentResults) Last(n int, borough string) [][]byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out [][]byte
	for i := len(r.sorted) - 1; i >= 0 && len(out) < n; i-- {
		if borough == "" || r.sorted[i].result.Borough == borough {
			out = append(out, r.sorted[i].value)
		}
	}
	slices.Reverse(out)
	return out
}

// Len returns how many results are kept, and how many were added in total.
func (r *recentResults) Len() (kept int, added int64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.sorted), r.total
}

// followResults reads the results topic (read_committed, from the beginning:
// the topic is compacted, one record per result) into s.results until ctx ends.
func (s *Server) followResults(ctx context.Context) {
	topic := s.cfg.Topology.Topics.Results
	log := s.log.With("topic", topic)
	wait := 500 * time.Millisecond
	for ctx.Err() == nil {
		err := s.followOnce(ctx, topic)
		if ctx.Err() != nil {
			return
		}
		log.Warn("results reader stopped; retrying", "err", err, "in", wait)
		if !backoff(ctx, &wait, 10*time.Second) {
			return
		}
	}
}

func (s *Server) followOnce(ctx context.Context, topic string) error {
	client, err := unlessDone(ctx, func() (sarama.Client, error) {
		return sarama.NewClient(s.cfg.Brokers, s.kafkaConfig(""))
	}, closeClient)
	if err != nil {
		return err
	}
	_, err = waitPartitions(ctx, client, topic, s.log)
	client.Close()
	if err != nil {
		return err
	}
	bad := 0
	add := func(rec results.Record, err error) {
		if err != nil {
			if bad++; bad <= 10 {
				s.log.Warn("unreadable result skipped", "key", rec.Key, "err", err)
			}
			return
		}
		s.results.Add(rec.Key, rec.Result, rec.Value)
	}
	// Follow connects without a context: do not wait for it when ctx ends (it
	// stops by itself once connected).
	_, err = unlessDone(ctx, func() (struct{}, error) {
		return struct{}{}, results.Follow(ctx, results.FollowConfig{
			Brokers: s.cfg.Brokers, Topic: topic, Logger: s.log,
			Sarama: func() *sarama.Config { return s.kafkaConfig("taxi-stream-results-" + s.cfg.InstanceID) },
		}, add)
	}, nil)
	return err
}
