package main

import (
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
