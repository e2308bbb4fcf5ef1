// Package kafkaio is the Kafka side of the replay producer and the zones loader, on top of
// segmentio/kafka-go's low-level Client:
//
//   - Records: an arena of encoded records (key, value, headers) that callers append to
//     without allocating per record;
//   - Producer: writes a partition's records as record batches, one produce request at a time,
//     acks=all, never resending a batch whose outcome is unknown (see Producer for why);
//   - Partition: the key hash partitioner shared by sarama, kafka-go's Hash balancer and goka;
//   - Admin: create, describe and delete topics, and read the last record of every partition
//     (what resume starts from).
//
// kafka-go's Writer is not used: it retries a batch up to MaxAttempts times (10 by default),
// and a retry after a lost response appends the batch twice; after a batch finally fails it
// goes on with the next queued batch of the same partition, which leaves a gap below later
// data. Both break resume-by-last-record, so this package talks to Client.Produce directly
// and keeps the invariant "each partition holds a prefix of what was meant for it".
package kafkaio
