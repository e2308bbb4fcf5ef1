package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// warmInternalTopics makes the broker create its internal topics before any engine
// is timed: __transaction_state (at the first transactional producer) and
// __consumer_offsets (at the first group coordinator lookup). A new cluster creates
// them once, when the first application needs them; measured on kafka-local, that
// cost the first exactly-once taxi-stream 3.7 s of its start (4.0 s from "pipeline
// starting" to "generation started" against 0.3 s on the next run), and the engine
// that ran first would pay it for the others.
func warmInternalTopics(ctx context.Context, brokers, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	addrs := strings.Split(brokers, ",")
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.ClientID = "taxi-bench-peers-warmup"
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Transaction.ID = id + "-warmup"
	cfg.Producer.Transaction.Retry.Max = 200
	cfg.Producer.Transaction.Retry.Backoff = 50 * time.Millisecond
	cfg.Net.MaxOpenRequests = 1
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			topic := id + "-warmup"
			admin, err := sarama.NewClusterAdmin(addrs, cfg)
			if err != nil {
				return err
			}
			defer admin.Close()
			if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1}, false); err != nil {
				return fmt.Errorf("create topic %s: %w", topic, err)
			}
			defer func() { _ = admin.DeleteTopic(topic) }()
			p, err := sarama.NewSyncProducer(addrs, cfg) // InitProducerId: __transaction_state
			if err != nil {
				return fmt.Errorf("transactional producer: %w", err)
			}
			defer p.Close()
			if err := p.BeginTxn(); err != nil {
				return err
			}
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("warm")}); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			if err := p.CommitTxn(); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			client, err := sarama.NewClient(addrs, cfg)
			if err != nil {
				return err
			}
			defer client.Close()
			for { // FindCoordinator: __consumer_offsets
				if _, err := client.Coordinator(id + "-warmup"); err == nil {
					return nil
				} else if ctx.Err() != nil {
					return fmt.Errorf("group coordinator: %w", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("warm the broker's internal topics: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("warm the broker's internal topics: %w", ctx.Err())
	}
}
