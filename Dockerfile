# syntax=docker/dockerfile:1
#
# Images of the docker-compose stack (docs/compose.md). One build stage compiles static
# binaries (CGO_ENABLED=0); each program gets its own small image with only its binary:
#
#   docker build --target taxi-stream  -t taxi-stream/taxi-stream:dev .
#   docker build --target taxi-replay  -t taxi-stream/taxi-replay:dev .
#   docker build --target taxi-results -t taxi-stream/taxi-results:dev .
#   docker build --target integration  -t taxi-stream/integration:dev .   # go test ./integration/...
#
# integration/deploy checks this file with `make test` (stages, binaries, static build, lint
# rules of BuildKit's own Dockerfile parser); no image has been built on our machines, which
# have no Docker engine.

# The builder: the official Go image on Debian 12, the distribution our test machines run,
# so the integration stage gets the same OpenJDK 17 and Maven 3.8 that `make test` uses.
ARG GO_IMAGE=golang:1.26-bookworm
# The runtime: Alpine rather than distroless/static or scratch, for one reason: the compose
# healthchecks need an HTTP probe inside the container (busybox wget, /bin/sh), which
# distroless and scratch do not have. It adds ~8 MB to a 10-16 MB static binary; CA
# certificates (TLS to the brokers) are included.
ARG RUNTIME_IMAGE=alpine:3.23

FROM ${GO_IMAGE} AS build
WORKDIR /src
# The modules are a layer of their own (kept while go.mod and go.sum do not change), and part
# of the image, so that the integration stage below has them too.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static binaries: no cgo, so no libc to match at run time; -trimpath and -s -w keep them
# small and reproducible.
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/taxi-stream ./cmd/taxi-replay ./cmd/taxi-results

# The common runtime: an unprivileged user whose home holds the processor's state; the state
# directory exists in the image so that a named volume mounted there inherits its owner.
FROM ${RUNTIME_IMAGE} AS runtime
RUN adduser -D -u 10001 -h /var/lib/taxi-stream taxi \
    && mkdir -p /var/lib/taxi-stream/state \
    && chown -R taxi:taxi /var/lib/taxi-stream
USER taxi
WORKDIR /var/lib/taxi-stream

# The processor. HTTP (metrics, /healthz, /readyz) on --http-addr, 8080 in compose.
FROM runtime AS taxi-stream
COPY --from=build /out/taxi-stream /usr/local/bin/taxi-stream
ENV TAXI_STREAM_STATE_DIR=/var/lib/taxi-stream/state
EXPOSE 8080
ENTRYPOINT ["taxi-stream"]

# The replay producer, zones loader and topic clean-up.
FROM runtime AS taxi-replay
COPY --from=build /out/taxi-replay /usr/local/bin/taxi-replay
ENTRYPOINT ["taxi-replay"]

# The results reader (console tables or JSON lines on stdout).
FROM runtime AS taxi-results
COPY --from=build /out/taxi-results /usr/local/bin/taxi-results
ENTRYPOINT ["taxi-results"]

# The integration suite: the source tree and the Go toolchain of the build stage, plus the
# JRE and Maven the JVM-based harnesses need (the mini HDFS cluster, kafkalocal's own tests).
# With KAFKA_BROKERS set, the Kafka tests use that cluster instead of starting a broker.
FROM build AS integration
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven \
    && rm -rf /var/lib/apt/lists/*
# Compile the test binaries (with the race detector, as `make test` runs them) once, so that
# a run starts testing at once. -run '^$' runs no test and starts no broker.
RUN go test -race -run '^$' ./integration/...
CMD ["go", "test", "-race", "-count=1", "-timeout", "25m", "./integration/..."]
