package eos

import "github.com/IBM/sarama"

// TopicScoped makes the clients built from c keep the metadata of the topics they
// use only, and returns c. Sarama's default (Metadata.Full) fetches every topic's
// metadata when a client is created and every RefreshFrequency after, and holds
// it: on a shared cluster that is the whole cluster's, in each of the dozen
// clients a taxi-stream process runs. Measured on a broker with 517 topics
// (1,529 partitions): 10.7 MB of a 36 MB live heap, and ~100 MiB peak RSS on a
// 2M-ride backlog instead of ~75 (docs/benchmarks.md "Memory on a shared cluster").
//
// Only for producers and consumers. A cluster admin (and goka's topic manager) needs
// full metadata: with Full unset, Sarama's Controller() refreshes "the known
// topics", and a new client knows none (ErrNoTopicsToUpdateMetadata).
func TopicScoped(c *sarama.Config) *sarama.Config {
	c.Metadata.Full = false
	return c
}
