# taxi-stream: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
# Keeps the whole run well under CI's budget on 2 cores (measured: see docs/benchmarks.md).
TEST_TIMEOUT ?= 25m
FUZZTIME ?= 10s
KAFKA_DIR ?= .kafka-local

## demo: the main job: zones + a month of real trips -> hourly borough summaries (embedded broker; DEMO_ARGS=--brokers ... for a cluster)
demo:
	$(GO) run ./cmd/taxi-demo $(DEMO_ARGS)

.PHONY: test vet unit fuzz demo chaos kafka-start kafka-stop kafka-status kafka-cluster-start bench tools

## test: every test: vet, unit and integration tests (real Kafka broker from Maven Central) with -race, brief fuzzing
test: vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	@$(MAKE) --no-print-directory fuzz

vet:
	$(GO) vet ./...

## unit: only the fast tests (no broker, no JVM)
unit:
	$(GO) test -short -count=1 ./...

## fuzz: run each fuzz target briefly
fuzz:
	@for target in $$(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)' --include='*_test.go' . | sed 's/func //' | sort -u); do \
		pkg=$$(grep -rlE "^func $$target\(" --include='*_test.go' . | head -1 | xargs dirname); \
		echo "fuzz $$target in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done

## kafka-start: a local single-node Kafka in $(KAFKA_DIR) (prints KAFKA_BROKERS=...)
kafka-start:
	$(GO) run ./cmd/kafka-local start --dir $(KAFKA_DIR)

## kafka-cluster-start: a local 3-node Kafka cluster (RF 3, min ISR 2) in $(KAFKA_DIR)-3
kafka-cluster-start:
	$(GO) run ./cmd/kafka-local start --nodes 3 --dir $(KAFKA_DIR)-3

kafka-stop:
	-$(GO) run ./cmd/kafka-local stop --dir $(KAFKA_DIR)
	-$(GO) run ./cmd/kafka-local stop --dir $(KAFKA_DIR)-3 2>/dev/null

kafka-status:
	$(GO) run ./cmd/kafka-local status --dir $(KAFKA_DIR)

## chaos: the long exactly-once chaos run (make test runs a short one): CHAOS_ROWS rides, at least CHAOS_KILLS SIGKILLs
CHAOS_ROWS ?= 1000000
CHAOS_KILLS ?= 12
chaos:
	CHAOS_ROWS=$(CHAOS_ROWS) CHAOS_KILLS=$(CHAOS_KILLS) $(GO) test -count=1 -v -timeout 60m -run 'TestExactlyOnceUnderProcessKills' ./integration/

## bench: the hot-path micro benchmarks
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./codecs/... ./processors/... ./producer/...
