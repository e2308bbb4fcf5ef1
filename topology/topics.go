package topology

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// TopicSpec is a topic the pipeline needs.
type TopicSpec struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// ProcessorTopics are the topics the processor creates when they are missing: the
// repartition topic, the windows stage's changelog, results, late and dead-letter.
// (The rides and zones topics belong to the replay producer.)
func ProcessorTopics(c Config) []TopicSpec {
	compact := map[string]string{
		"cleanup.policy": "compact",
		// Keep the changelog small so that a new machine restores quickly.
		"segment.bytes":             strconv.Itoa(16 << 20),
		"min.cleanable.dirty.ratio": "0.1",
	}
	return []TopicSpec{
		// Partials are consumed within seconds; a week of retention covers any outage
		// the operators will tolerate without a replay.
		{Name: c.Topics.Windows, Partitions: int32(c.WindowsPartitions), Configs: map[string]string{"retention.ms": strconv.Itoa(7 * 24 * 3600 * 1000)}},
		{Name: string(goka.GroupTable(c.WindowsGroup())), Partitions: int32(c.WindowsPartitions), Configs: compact},
		{Name: c.Topics.Results, Partitions: int32(c.WindowsPartitions), Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: c.Topics.Late, Partitions: int32(c.IngestPartitions)},
		{Name: c.Topics.Dead, Partitions: int32(c.IngestPartitions)},
	}
}

// EnsureTopics creates the missing topics with replication factor rf (-1: the
// broker's default) and checks that existing ones have the partition count the
// pipeline relies on (goka requires the repartition topic and the changelog to be
// copartitioned).
func EnsureTopics(admin sarama.ClusterAdmin, specs []TopicSpec, rf int16) error {
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	for _, s := range specs {
		if d, ok := existing[s.Name]; ok {
			if s.Partitions > 0 && d.NumPartitions != s.Partitions {
				return fmt.Errorf("topic %s has %d partitions, the pipeline needs %d (delete it, or configure matching partitions)",
					s.Name, d.NumPartitions, s.Partitions)
			}
			continue
		}
		detail := &sarama.TopicDetail{NumPartitions: s.Partitions, ReplicationFactor: rf, ConfigEntries: map[string]*string{}}
		for k, v := range s.Configs {
			detail.ConfigEntries[k] = &v
		}
		if err := admin.CreateTopic(s.Name, detail, false); err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", s.Name, err)
		}
	}
	return nil
}

// Partitions returns a topic's partition count.
func Partitions(admin sarama.ClusterAdmin, topic string) (int, error) {
	md, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	if len(md) != 1 || md[0].Err != sarama.ErrNoError {
		if len(md) == 1 {
			return 0, fmt.Errorf("topic %s: %w", topic, md[0].Err)
		}
		return 0, fmt.Errorf("topic %s not found", topic)
	}
	return len(md[0].Partitions), nil
}
