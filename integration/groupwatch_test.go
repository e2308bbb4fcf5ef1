package integration

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
)

// groupWatcher samples a consumer group every 50 ms: its members with their
// assigned partitions of topic, the committed offsets and the topic's end offsets.
type groupWatcher struct {
	mu    sync.Mutex
	snaps []groupSnap
	quit  chan struct{}
	done  chan struct{}
}

type groupSnap struct {
	at        time.Time
	members   map[string][]int32 // instance (client id suffix) -> partitions
	committed map[int32]int64
	end       map[int32]int64
}

func watchGroup(t testing.TB, group, topic string) *groupWatcher {
	t.Helper()
	client, err := sarama.NewClient(kafka.Brokers(t), kafkatest.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	w := &groupWatcher{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer admin.Close()
		for {
			select {
			case <-w.quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if s, ok := sampleGroup(client, admin, group, topic); ok {
				w.mu.Lock()
				w.snaps = append(w.snaps, s)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func sampleGroup(client sarama.Client, admin sarama.ClusterAdmin, group, topic string) (groupSnap, bool) {
	s := groupSnap{at: time.Now(), members: map[string][]int32{}, committed: map[int32]int64{}, end: map[int32]int64{}}
	descs, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(descs) != 1 {
		return s, false
	}
	for _, m := range descs[0].Members {
		// goka's client id is taxi-stream-windows-<instance id>.
		name := m.ClientId[strings.LastIndex(m.ClientId, "-")+1:]
		s.members[name] = nil
		if a, err := m.GetMemberAssignment(); err == nil && a != nil {
			s.members[name] = a.Topics[topic]
		}
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return s, false
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return s, false
	}
	for _, p := range parts {
		if b := resp.GetBlock(topic, p); b != nil && b.Err == sarama.ErrNoError {
			s.committed[p] = b.Offset
		}
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return s, false
		}
		s.end[p] = end
	}
	return s, true
}

func (w *groupWatcher) stop() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
}

// wait polls the samples taken after the first one at or after since (the base)
// until cond holds for one.
func (w *groupWatcher) wait(since time.Time, timeout time.Duration, cond func(base, s groupSnap) bool) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		i := slices.IndexFunc(w.snaps, func(s groupSnap) bool { return !s.at.Before(since) })
		if i >= 0 {
			base := w.snaps[i] // the state at since
			for _, s := range w.snaps[i+1:] {
				if cond(base, s) {
					w.mu.Unlock()
					return s.at, true
				}
			}
		}
		w.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}, false
}

// waitMembers waits for a sample after since with n members that all hold partitions.
func (w *groupWatcher) waitMembers(n int, since time.Time, timeout time.Duration) (time.Time, bool) {
	return w.wait(since, timeout, func(_, s groupSnap) bool {
		if len(s.members) != n {
			return false
		}
		for _, parts := range s.members {
			if len(parts) == 0 {
				return false
			}
		}
		return true
	})
}

// waitGone waits for the first sample after since without the member.
func (w *groupWatcher) waitGone(name string, since time.Time, timeout time.Duration) (time.Time, bool) {
	return w.wait(since, timeout, func(_, s groupSnap) bool { _, in := s.members[name]; return !in })
}

// waitProgress waits until each of the partitions has committed beyond its offset
// at since (the rides keep streaming, so every partition gets input).
func (w *groupWatcher) waitProgress(parts []int32, since time.Time, timeout time.Duration) (time.Time, bool) {
	return w.wait(since, timeout, func(base, s groupSnap) bool {
		for _, p := range parts {
			if s.committed[p] <= base.committed[p] {
				return false
			}
		}
		return true
	})
}

// ownedAt returns the partitions the member holds in the sample taken at.
func (w *groupWatcher) ownedAt(name string, at time.Time) []int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.snaps {
		if s.at.Equal(at) {
			return slices.Clone(s.members[name])
		}
	}
	return nil
}

// last describes the latest sample's members, for failure messages.
func (w *groupWatcher) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.snaps) == 0 {
		return "none"
	}
	s := w.snaps[len(w.snaps)-1]
	return fmt.Sprintf("members %v committed %v end %v", s.members, s.committed, s.end)
}

// owned returns the partitions the member holds in the latest sample.
func (w *groupWatcher) owned(name string) []int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.snaps) == 0 {
		return nil
	}
	return slices.Clone(w.snaps[len(w.snaps)-1].members[name])
}

// recoveries returns, sorted, for each kill the time until every partition that had
// input waiting at the kill has committed progress again.
func (w *groupWatcher) recoveries(kills []time.Time) []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []time.Duration
	for _, k := range kills {
		i := sort.Search(len(w.snaps), func(i int) bool { return w.snaps[i].at.After(k) })
		if i == 0 || i == len(w.snaps) {
			continue
		}
		base := w.snaps[i-1]
		for ; i < len(w.snaps); i++ {
			s, all, waiting := w.snaps[i], true, false
			for p, c := range base.committed {
				if base.end[p] > c+1 { // +1: a transaction marker is not input
					waiting = true
					if s.committed[p] <= c {
						all = false
					}
				}
			}
			if !waiting {
				break
			}
			if all {
				out = append(out, s.at.Sub(k))
				break
			}
		}
	}
	slices.Sort(out)
	return out
}
