package eos

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

type countingConsumer struct {
	sarama.Consumer
	closes atomic.Int32
	err    error
}

func (c *countingConsumer) Close() error { c.closes.Add(1); return c.err }

type countingTopicManager struct {
	goka.TopicManager
	closes atomic.Int32
	err    error
}

func (c *countingTopicManager) Close() error { c.closes.Add(1); return c.err }

func TestClientSetClosesEachClientOnce(t *testing.T) {
	var s clientSet
	c1, c2 := &countingConsumer{}, &countingConsumer{err: sarama.ErrClosedClient}
	tm := &countingTopicManager{}
	tc1, tc2 := s.consumer(c1), s.consumer(c2)
	ttm := s.topicManager(tm)

	// goka closes what it built for itself: once.
	if err := tc1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tc1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.closeAll(); err != nil {
		t.Fatalf("closeAll() = %v; a client closed already by sarama is no error", err)
	}
	if c1.closes.Load() != 1 || c2.closes.Load() != 1 || tm.closes.Load() != 1 {
		t.Errorf("closes: %d %d %d, want each client closed exactly once", c1.closes.Load(), c2.closes.Load(), tm.closes.Load())
	}
	// After closeAll, goka's Close does not close again and returns the first result.
	if err := tc2.Close(); !errors.Is(err, sarama.ErrClosedClient) {
		t.Errorf("second Close() = %v, want the first one's error", err)
	}
	if err := ttm.Close(); err != nil || tm.closes.Load() != 1 {
		t.Errorf("topic manager closed again: %v %d", err, tm.closes.Load())
	}
	if err := s.closeAll(); err != nil {
		t.Errorf("second closeAll: %v", err)
	}
}

func TestClientSetJoinsErrors(t *testing.T) {
	var s clientSet
	s.consumer(&countingConsumer{err: errors.New("consumer failed")})
	s.topicManager(&countingTopicManager{err: errors.New("tm failed")})
	err := s.closeAll()
	if err == nil || !strings.Contains(err.Error(), "consumer failed") || !strings.Contains(err.Error(), "tm failed") {
		t.Errorf("closeAll() = %v, want both errors", err)
	}
}

// TestClientSetForgetsClosedClients: a long-running stage builds clients each
// generation; those goka closed leave the set.
func TestClientSetForgetsClosedClients(t *testing.T) {
	var s clientSet
	for range 100 {
		c := s.consumer(&countingConsumer{})
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	open := &countingConsumer{}
	s.consumer(open)
	s.mu.Lock()
	n := len(s.list)
	s.mu.Unlock()
	if n != 1 {
		t.Errorf("set holds %d clients, want only the open one", n)
	}
	if err := s.closeAll(); err != nil || open.closes.Load() != 1 {
		t.Errorf("closeAll: %v, open client closed %d times", err, open.closes.Load())
	}
}
