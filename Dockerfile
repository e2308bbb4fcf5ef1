# Images of the docker-compose stack (docs/compose.md). One build stage compiles static
# binaries (CGO_ENABLED=0); each program gets its own small image with only its binary; the
# Kafka image is one KRaft node on the Maven Central jars integration/kafkalocal runs:
#
#   docker build --target taxi-stream    -t taxi-stream/taxi-stream:dev .
#   docker build --target taxi-replay    -t taxi-stream/taxi-replay:dev .     # also taxi-gen
#   docker build --target taxi-results   -t taxi-stream/taxi-results:dev .
#   docker build --target taxi-dashboard -t taxi-stream/taxi-dashboard:dev .
#   docker build --target kafka          -t taxi-stream/kafka:4.1.1 .
#   docker build --target integration    -t taxi-stream/integration:dev .     # go test ./integration/...
#
# The base images are build arguments. Their defaults are the public images a user pulls;
# `make compose-test` builds the same file on images it makes itself, without a registry
# (integration/compose/run: a debootstrap Debian, the host's Go toolchain, Debian's OpenJDK
# and Maven). The file uses nothing BuildKit-only, so both builders build it.

# The builder: the official Go image on Debian 12, the distribution our test machines run.
ARG GO_IMAGE=golang:1.26-bookworm
# The runtime: Alpine rather than distroless/static or scratch, for one reason: the compose
# healthchecks need an HTTP probe inside the container (busybox wget, /bin/sh), which
# distroless and scratch do not have. It adds ~8 MB to a 10-16 MB static binary; CA
# certificates (TLS to the brokers) are included.
ARG RUNTIME_IMAGE=alpine:3.23
# Kafka: Maven resolves the broker's jars from integration/kafkalocal/pom.xml (the classpath
# `make test` runs) on a JDK image; the broker runs on a JRE image.
ARG MAVEN_IMAGE=maven:3.9-eclipse-temurin-17
ARG JRE_IMAGE=eclipse-temurin:17-jre

# Kafka's jars, resolved by Maven from the pom integration/kafkalocal resolves for the tests,
# plus kafka-tools (kafka-topics.sh, kafka-broker-api-versions.sh).
FROM ${MAVEN_IMAGE} AS kafka-jars
WORKDIR /build
COPY integration/kafkalocal/pom.xml ./
RUN mvn -q -B -f pom.xml dependency:copy-dependencies -DoutputDirectory=/opt/kafka/libs \
    && version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' pom.xml) \
    && mvn -q -B dependency:copy -Dartifact="org.apache.kafka:kafka-tools:$version" -DoutputDirectory=/opt/kafka/libs \
    && rm -rf /root/.m2

# One KRaft node (broker and controller), configured like the apache/kafka image: KAFKA_*
# variables become server properties (tools/docker/kafka/bin/kafka-run), /opt/kafka/bin holds
# the tools the compose file runs, the data lives in /var/lib/kafka/data.
FROM ${JRE_IMAGE} AS kafka
COPY --from=kafka-jars /opt/kafka/libs /opt/kafka/libs
COPY tools/docker/kafka/ /opt/kafka/
RUN mkdir -p /var/lib/kafka/data && chown -R 1000:1000 /var/lib/kafka
USER 1000:1000
EXPOSE 9092
ENTRYPOINT ["/opt/kafka/bin/kafka-run"]

FROM ${GO_IMAGE} AS build
WORKDIR /src
# The modules are a layer of their own (kept while go.mod and go.sum do not change), and part
# of the image, so that the integration stage below has them too.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static binaries: no cgo, so no libc to match at run time; -trimpath and -s -w keep them
# small and reproducible.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/taxi-stream ./cmd/taxi-replay ./cmd/taxi-results ./cmd/taxi-dashboard ./cmd/taxi-gen

# The common runtime: an unprivileged user (numeric, so that any base works: busybox and
# Debian add users differently) whose home holds the processor's state; the state directory
# exists in the image so that a named volume mounted there inherits its owner.
FROM ${RUNTIME_IMAGE} AS runtime
RUN mkdir -p /var/lib/taxi-stream/state \
    && chown -R 10001:10001 /var/lib/taxi-stream
ENV HOME=/var/lib/taxi-stream
USER 10001:10001
WORKDIR /var/lib/taxi-stream

# The processor. HTTP (metrics, /healthz, /readyz) on --http-addr, 8080 in compose.
FROM runtime AS taxi-stream
COPY --from=build /out/taxi-stream /usr/local/bin/taxi-stream
ENV TAXI_STREAM_STATE_DIR=/var/lib/taxi-stream/state
EXPOSE 8080
ENTRYPOINT ["taxi-stream"]

# The replay producer, zones loader and topic clean-up, with taxi-gen: tools/docker/taxi-data
# runs them on the files of the data volume, or on generated trips when there are none.
FROM runtime AS taxi-replay
COPY --from=build /out/taxi-replay /usr/local/bin/taxi-replay
COPY --from=build /out/taxi-gen /usr/local/bin/taxi-gen
COPY tools/docker/taxi-data /usr/local/bin/taxi-data
ENTRYPOINT ["taxi-data", "taxi-replay"]

# The results reader (console tables or JSON lines on stdout).
FROM runtime AS taxi-results
COPY --from=build /out/taxi-results /usr/local/bin/taxi-results
ENTRYPOINT ["taxi-results"]

# The dashboard: a web page of the results and of the processors' health, on :8090.
FROM runtime AS taxi-dashboard
COPY --from=build /out/taxi-dashboard /usr/local/bin/taxi-dashboard
EXPOSE 8090
ENTRYPOINT ["taxi-dashboard"]

# The integration tests: the source tree, its modules and the Go toolchain of the build
# stage, the integration package compiled once (so that a run starts testing at once). By
# default it runs the stack's own check (the results topic against the batch oracle of the
# replayed month); `go test ./integration/...` runs the suite, whose JVM-based harnesses
# (the mini HDFS cluster, Kerberos) need a JRE and Maven this image does not have.
FROM build AS integration
# The flags of the build stage's `go build`, so that the dependencies it compiled (its build
# cache is in this image) are not compiled again: only the test packages are new.
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
RUN go test -count=1 -run '^$' ./integration/
CMD ["go", "test", "-count=1", "-run", "^TestComposeStack", "-v", "./integration/"]
