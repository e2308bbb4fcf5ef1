package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"golang.org/x/sync/errgroup"
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
	cfg := warmConfig(id + "-warmup") // its one topic has one partition: the manual partitioner's 0
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

// warmTransactions runs n small transactions on the broker before any engine is timed,
// from 4 transactional producers at once: each writes a record to each of 3 partitions,
// adds a consumer offset to the transaction (TxnOffsetCommit) and commits, which is the
// broker's work in an exactly-once commit. A fresh broker JVM runs that path
// interpreted or lightly compiled for thousands of transactions: in `make bench-peers`
// on kafka-local (2 cores) the rounds below cost the broker 16.2, 7.0, 4.9 and 5.1 ms of
// CPU per transaction, one after the other. An exactly-once taxi-stream run makes a few
// hundred, so on a broker started minutes before it paid for the JIT, on the same two
// cores the engines run on (exactly-once ÷ at-least-once 0.67-0.84 per round without
// this warm-up; medians 0.84-1.04 with it). A production broker has run millions.
//
// The warm-up runs in rounds of at most 2,000 transactions and logs the broker's CPU
// per transaction of each round when the broker is the run's own.
func warmTransactions(ctx context.Context, brokers, id string, n int, meter brokerMeter, log *slog.Logger) error {
	if n <= 0 {
		return nil
	}
	start := time.Now()
	log.Info("warming the broker's transaction path", "transactions", n)
	addrs := strings.Split(brokers, ",")
	topic := id + "-warmup-txn"
	admin, err := sarama.NewClusterAdmin(addrs, warmConfig(""))
	if err != nil {
		return fmt.Errorf("warm transactions: %w", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: -1}, false); err != nil {
		return fmt.Errorf("warm transactions: create topic %s: %w", topic, err)
	}
	group := id + "-warmup-group"
	defer func() {
		_ = admin.DeleteConsumerGroup(group)
		_ = admin.DeleteTopic(topic)
	}()
	const producers = 4
	prods := make([]sarama.SyncProducer, producers)
	for w := range prods {
		p, err := sarama.NewSyncProducer(addrs, warmConfig(fmt.Sprintf("%s-%d", topic, w)))
		if err != nil {
			return fmt.Errorf("warm transactions: transactional producer: %w", err)
		}
		defer p.Close()
		prods[w] = p
	}
	const roundSize = 2000
	for first, round := 0, 1; first < n; first, round = first+roundSize, round+1 {
		end := min(first+roundSize, n)
		roundStart, broker0 := time.Now(), meter.now()
		g, gctx := errgroup.WithContext(ctx)
		for w, p := range prods {
			g.Go(func() error {
				for i := first + w; i < end; i += producers {
					if err := gctx.Err(); err != nil {
						return err
					}
					if err := warmTransaction(p, topic, group, int64(i)); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return fmt.Errorf("warm transactions: %w", err)
		}
		attrs := []any{"round", round, "transactions", end - first, "elapsed", time.Since(roundStart).Round(time.Millisecond)}
		if meter.known() {
			perTxn := (meter.now() - broker0) / time.Duration(end-first)
			attrs = append(attrs, "broker_cpu_per_transaction", perTxn.Round(10*time.Microsecond))
		}
		log.Info("warm-up round", attrs...)
	}
	log.Info("broker warmed", "transactions", n, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

func warmTransaction(p sarama.SyncProducer, topic, group string, offset int64) error {
	if err := p.BeginTxn(); err != nil {
		return err
	}
	msgs := make([]*sarama.ProducerMessage, 3)
	for part := range msgs {
		msgs[part] = &sarama.ProducerMessage{Topic: topic, Partition: int32(part), Value: sarama.StringEncoder("warm")}
	}
	if err := p.SendMessages(msgs); err != nil {
		_ = p.AbortTxn()
		return fmt.Errorf("send: %w", err)
	}
	offsets := map[string][]*sarama.PartitionOffsetMetadata{topic: {{Partition: int32(offset % 3), Offset: offset}}}
	if err := p.AddOffsetsToTxn(offsets, group); err != nil {
		_ = p.AbortTxn()
		return fmt.Errorf("add offsets: %w", err)
	}
	if err := p.CommitTxn(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// warmConfig is the Sarama config of the warm-up clients (transactional when txnID is set).
func warmConfig(txnID string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.ClientID = "taxi-bench-peers-warmup"
	if txnID != "" {
		cfg.Producer.Idempotent = true
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Producer.Return.Successes = true
		cfg.Producer.Transaction.ID = txnID
		cfg.Producer.Transaction.Retry.Max = 200
		cfg.Producer.Transaction.Retry.Backoff = 50 * time.Millisecond
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
		cfg.Net.MaxOpenRequests = 1
	}
	return cfg
}
