// Package deploy holds the tests of the container deployment: docker-compose.yml and the
// Dockerfile at the module root (docs/compose.md).
//
// Our machines have no Docker engine, so the stack is never started here. The tests check
// what can be checked without one, with the libraries Docker itself uses: the compose file
// is loaded by compose-go (the loader of `docker compose config`: schema, interpolation,
// merge keys) and the Dockerfile by BuildKit's parser and lint rules. Then, against the real
// binaries built as the Dockerfile builds them: every program a service runs exists in its
// image, every flag and environment variable it is given exists (from the binary's --help)
// and parses, the binaries are static; and the topology: Kafka in KRaft mode, start order
// with healthchecks, three processors with distinct instance ids, the integration service
// pointed at the compose broker. The integration suite itself runs against a real local
// broker in `make test` (integration/kafkatest), the way the compose service runs it
// against the compose broker (KAFKA_BROKERS).
package deploy
