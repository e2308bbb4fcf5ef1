# taxi-stream: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
# A guard per test binary, not a target: the integration package takes ~13 min on an idle
# 2-core machine within `make test` (docs/benchmarks.md); the margin is for a busy one. CI allows 90 min.
TEST_TIMEOUT ?= 40m
# A count, not a duration: with a duration, a loaded machine that is still gathering
# the baseline corpus when the time is up fails with "context deadline exceeded"
# (seen in CI) although no input failed. 100k executions take ~10 s here.
FUZZTIME ?= 100000x
KAFKA_DIR ?= .kafka-local

## demo: the main job: zones + a month of real trips -> hourly borough summaries (embedded broker; DEMO_ARGS=--brokers ... for a cluster)
demo:
	$(GO) run ./cmd/taxi-demo $(DEMO_ARGS)


.PHONY: bench-peers check-files test-loaded failover chaos-cluster test browser web-vendor vet unit fuzz demo chaos kafka-start kafka-stop kafka-status kafka-cluster-start bench tools

## test: every test: vet, unit and integration tests (real Kafka broker from Maven Central) with -race, brief fuzzing
test: check-files browser vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	@$(MAKE) --no-print-directory fuzz
	@$(MAKE) --no-print-directory compose-test

## compose-test: the docker-compose stack for real: images built without a registry by a private
## dockerd (layer cache in ~/.cache/taxi-stream/compose), a real month replayed, a processor killed,
## Kafka restarted, results checked against the batch oracle, down -v (integration/compose/run)
.PHONY: compose-test
compose-test:
	bash integration/compose/run

vet:
	$(GO) vet ./...

## check-files: no tracked file is a binary or over 1 MiB (build outputs belong in .gitignore)
check-files:
	@bash .ci/check-files

## test-loaded: the whole of `make test` with the CPU oversubscribed (LOAD_PER_CORE busy threads per core):
## no test may assume an idle machine
LOAD_PER_CORE ?= 2
# The integration package alone takes ~3x longer with the CPU shared three ways.
LOADED_TEST_TIMEOUT ?= 75m
test-loaded:
	@mkdir -p bin && $(GO) build -o bin/cpuload ./tools/cpuload
	bin/cpuload -per-core $(LOAD_PER_CORE) -- $(MAKE) --no-print-directory test TEST_TIMEOUT=$(LOADED_TEST_TIMEOUT)

## browser: Debian packages the tests drive: chromium (the dashboard's browser test) and an MIT
## Kerberos KDC, kinit and faketime (the GSSAPI security test), installed with apt-get when missing
CHROMIUM ?= /usr/bin/chromium
KDC ?= /usr/sbin/krb5kdc
browser:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(KDC) ] || [ ! -x /usr/bin/kinit ] || [ ! -x /usr/bin/faketime ]; then \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		echo "installing chromium and krb5-kdc (apt-get)"; \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation krb5-kdc krb5-admin-server krb5-user faketime \
		|| { [ -z "$$CI" ] && echo "warning: not installed: the browser and Kerberos tests will be skipped"; }; \
	fi

## web-vendor: refresh the dashboard's charting library (uPlot, pinned in package-lock.json) in cmd/internal/dashboard/web/vendor (go build needs no npm)
WEB_DIR := cmd/internal/dashboard/web
web-vendor:
	cd $(WEB_DIR) && npm ci --no-audit --no-fund
	cp $(WEB_DIR)/node_modules/uplot/dist/uPlot.iife.min.js $(WEB_DIR)/node_modules/uplot/dist/uPlot.min.css $(WEB_DIR)/vendor/
	cp $(WEB_DIR)/node_modules/uplot/LICENSE $(WEB_DIR)/vendor/uPlot.LICENSE

## unit: only the fast tests (no broker, no JVM)
unit:
	$(GO) test -short -count=1 ./...

## fuzz: run each fuzz target briefly
fuzz:
	@for target in $$(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)' --include='*_test.go' . | sed 's/func //' | sort -u); do \
		pkg=$$(grep -rlE "^func $$target\(" --include='*_test.go' . | head -1 | xargs dirname); \
		echo "fuzz $$target in $$pkg (-fuzztime=$(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done

## kafka-start: a local single-node Kafka in $(KAFKA_DIR); prints `export KAFKA_BROKERS=...`: eval "$$(make -s kafka-start)"
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
CHAOS_FEED_SECONDS ?= 60
CHAOS_REAL ?= green_tripdata_2020-12.parquet,green_tripdata_2023-01.parquet,green_tripdata_2024-01.parquet,green_tripdata_2025-01.parquet
chaos:
	CHAOS_ROWS=$(CHAOS_ROWS) CHAOS_KILLS=$(CHAOS_KILLS) CHAOS_FEED_SECONDS=$(CHAOS_FEED_SECONDS) CHAOS_REAL=$(CHAOS_REAL) $(GO) test -count=1 -v -timeout 60m -run 'TestExactlyOnceUnderProcessKills' ./integration/

## chaos-cluster: the chaos suite on a local 3-node cluster; one broker is SIGKILLed and restarted
chaos-cluster:
	KAFKA_LOCAL_NODES=3 $(MAKE) --no-print-directory chaos

## failover: failover time with and without --hot-standby (make test runs 1 kill per mode)
FAILOVER_KILLS ?= 4
failover:
	FAILOVER_KILLS=$(FAILOVER_KILLS) $(GO) test -count=1 -v -timeout 30m -run 'TestFailoverWithAndWithoutStandby' ./integration/

## bench: the hot-path micro benchmarks
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./codecs/... ./processors/... ./producer/...

## bench-peers: taxi-stream (both guarantees) vs the original Spark job vs franz-go consume+decode, taxi-replay vs the
## original Python producer, on a ROWS-ride backlog on a local broker; adds the table to docs/benchmarks.md (~8 min;
## the first run also creates the Python venv).
## The Python producer sends the first PY_ROWS rows (its rate is flat; -1: all, ~20 min more for 2M)
ROWS ?= 2000000
PY_ROWS ?= 200000
bench-peers:
	$(GO) run ./cmd/taxi-bench-peers --rows $(ROWS) --py-rows $(PY_ROWS) --doc docs/benchmarks.md $(BENCH_PEERS_ARGS)
