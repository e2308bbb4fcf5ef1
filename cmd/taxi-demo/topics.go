package main

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/processors/eos"
)

// createEmptyTopic creates a compacted one-partition topic (the zones topic when
// there is no zone file to load).
func createEmptyTopic(brokers []string, name string) error {
	admin, err := sarama.NewClusterAdmin(brokers, eos.DefaultSaramaConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	compact := "compact"
	err = admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1,
		ConfigEntries: map[string]*string{"cleanup.policy": &compact}}, false)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	return nil
}

// deleteTopics deletes the named topics; a topic that does not exist is no error.
func deleteTopics(brokers []string, names []string) error {
	admin, err := sarama.NewClusterAdmin(brokers, eos.DefaultSaramaConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	var errs []error
	for _, n := range names {
		if err := admin.DeleteTopic(n); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("delete topic %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}
