// Package replaytest holds the end-to-end tests of the replay producer (producer/replay,
// producer/zones, cmd/taxi-replay) on a real Kafka broker (integration/kafkatest) and a real
// HDFS (integration/hdfstest): content of the rides topic against the Parquet files, both
// orders, markers, HDFS input, SIGKILL + resume, bad files, zones through a goka view,
// cleanup, and the throughput benchmark. It is its own test binary, with its own broker.
package replaytest
