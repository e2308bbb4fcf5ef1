package eos

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// clientSet holds the Kafka clients the runtime builds for goka (sarama consumers,
// topic managers), so that Run can close them once the processor has stopped.
//
// goka closes the consumer and topic manager a processor builds for itself, but a
// View never closes the ones it builds (goka v1.1.17 view.go: View.close closes its
// partitions only), and a processor builds one View per lookup table (the ingest
// stage's zone table). Each such consumer and topic manager holds Sarama clients
// whose goroutines (metadata updater, broker connections) would outlive every
// generation of the stage. A client closes once: goka's own Close calls and the
// runtime's do not collide.
type clientSet struct {
	mu   sync.Mutex
	list []*closeOnce
}

// closeOnce makes a Close idempotent: a second one returns the first's error.
type closeOnce struct {
	once   sync.Once
	err    error
	close  func() error
	closed atomic.Bool
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.close(); c.closed.Store(true) })
	return c.err
}

func (s *clientSet) track(close func() error) *closeOnce {
	c := &closeOnce{close: close}
	s.mu.Lock()
	// Drop the clients goka has closed already: a long-running stage goes through
	// many generations, each building clients.
	s.list = slices.DeleteFunc(s.list, func(c *closeOnce) bool { return c.closed.Load() })
	s.list = append(s.list, c)
	s.mu.Unlock()
	return c
}

// consumer tracks a sarama consumer.
func (s *clientSet) consumer(c sarama.Consumer) sarama.Consumer {
	return &trackedConsumer{Consumer: c, closer: s.track(c.Close)}
}

// topicManager tracks a goka topic manager.
func (s *clientSet) topicManager(tm goka.TopicManager) goka.TopicManager {
	return &trackedTopicManager{TopicManager: tm, closer: s.track(tm.Close)}
}

// closeAll closes every client not closed yet.
func (s *clientSet) closeAll() error {
	s.mu.Lock()
	list := s.list
	s.list = nil
	s.mu.Unlock()
	var errs []error
	for _, c := range list {
		if err := c.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type trackedConsumer struct {
	sarama.Consumer
	closer *closeOnce
}

func (c *trackedConsumer) Close() error { return c.closer.Close() }

type trackedTopicManager struct {
	goka.TopicManager
	closer *closeOnce
}

func (t *trackedTopicManager) Close() error { return t.closer.Close() }
