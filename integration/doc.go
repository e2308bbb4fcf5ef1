// Package integration holds the project's end-to-end tests against a real Apache
// Kafka broker (started by package kafkatest from Maven Central jars, or the cluster
// named by KAFKA_BROKERS), plus the harness packages they share: kafkalocal (run a
// real broker), kafkatest (per-test-binary broker, unique topics), embedded (an
// in-process Kafka-protocol cluster for zero-setup runs and fast unit tests).
package integration
