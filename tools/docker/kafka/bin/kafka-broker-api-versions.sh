#!/bin/sh
# kafka-broker-api-versions.sh of Kafka's distribution, on the image's jars (the healthcheck).
exec "${JAVA_HOME:+$JAVA_HOME/bin/}java" -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.yaml \
	-cp '/opt/kafka/libs/*' org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
