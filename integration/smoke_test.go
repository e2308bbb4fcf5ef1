package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/taxi-stream/taxi-stream/integration/embedded"
	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
)

var kafka = kafkatest.New()

// TestMain starts the package's broker. Most tests run one at a time. The ones
// that mostly wait (on killed processes, their own clusters, idle timeouts) call
// t.Parallel: Go runs them after the sequential ones, -parallel (GOMAXPROCS) at a
// time, which takes minutes off the package on two cores. Tests that restart the
// shared broker (kafka.Local: the broker-fault tests, the chaos suite's broker
// fault) or count goroutines must stay sequential.
func TestMain(m *testing.M) { os.Exit(kafka.Main(m)) }

// target is a cluster a smoke check runs against.
type target struct {
	name    string
	brokers func(t *testing.T) []string
	// topic creates a uniquely named topic.
	topic func(t *testing.T, partitions int32, configs map[string]string) string
}

func realTarget() target {
	return target{
		name:    "real",
		brokers: func(t *testing.T) []string { return kafka.Brokers(t) },
		topic: func(t *testing.T, partitions int32, configs map[string]string) string {
			opts := []kafkatest.TopicOption{kafkatest.Partitions(partitions)}
			for k, v := range configs {
				opts = append(opts, kafkatest.Config(k, v))
			}
			return kafka.Topic(t, opts...)
		},
	}
}

func embeddedTarget() target {
	var cluster *embedded.Cluster
	start := func(t *testing.T) []string {
		if cluster == nil {
			c, err := embedded.Start(embedded.Config{})
			if err != nil {
				t.Fatal(err)
			}
			cluster = c
			t.Cleanup(func() { c.Close(); cluster = nil })
		}
		return cluster.Brokers()
	}
	return target{
		name:    "embedded",
		brokers: start,
		topic: func(t *testing.T, partitions int32, configs map[string]string) string {
			admin, err := sarama.NewClusterAdmin(start(t), kafkatest.SaramaConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			name := kafkatest.UniqueName(t, "")
			detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: map[string]*string{}}
			for k, v := range configs {
				detail.ConfigEntries[k] = &v
			}
			if err := admin.CreateTopic(name, detail, false); err != nil {
				t.Fatalf("create topic %s: %v", name, err)
			}
			if err := kafkatest.WaitTopicReady(context.Background(), start(t), name, int(partitions)); err != nil {
				t.Fatal(err)
			}
			return name
		},
	}
}

// forEachTarget runs check against the real broker and the embedded one.
func forEachTarget(t *testing.T, check func(t *testing.T, tg target)) {
	for _, tg := range []target{realTarget(), embeddedTarget()} {
		t.Run(tg.name, func(t *testing.T) { check(t, tg) })
	}
}

func TestCompactedTopicConfigReadBack(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		topic := tg.topic(t, 3, map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "1000"})
		admin, err := sarama.NewClusterAdmin(tg.brokers(t), kafkatest.SaramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
		if err != nil {
			t.Fatalf("describe configs of %s: %v", topic, err)
		}
		got := map[string]string{}
		for _, e := range entries {
			got[e.Name] = e.Value
		}
		if got["cleanup.policy"] != "compact" {
			t.Errorf("cleanup.policy = %q, want compact", got["cleanup.policy"])
		}
		if got["min.compaction.lag.ms"] != "1000" {
			t.Errorf("min.compaction.lag.ms = %q, want 1000", got["min.compaction.lag.ms"])
		}
		meta, err := admin.DescribeTopics([]string{topic})
		if err != nil || len(meta) != 1 {
			t.Fatalf("describe topic: %v", err)
		}
		if n := len(meta[0].Partitions); n != 3 {
			t.Errorf("partitions = %d, want 3", n)
		}
	})
}

func TestKafkaGoProduceConsume(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		const n = 2000
		topic := tg.topic(t, 3, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		w := &kafkago.Writer{
			Addr:         kafkago.TCP(tg.brokers(t)...),
			Topic:        topic,
			Balancer:     &kafkago.Hash{},
			RequiredAcks: kafkago.RequireAll, // kafka-go's zero value is "none": set on purpose
			BatchTimeout: 5 * time.Millisecond,
			Compression:  kafkago.Zstd,
		}
		msgs := make([]kafkago.Message, n)
		for i := range msgs {
			msgs[i] = kafkago.Message{Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf(`{"i":%d}`, i))}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}

		seen := map[string]string{}
		perPartition := map[int][]int64{}
		for p := 0; p < 3; p++ {
			r := kafkago.NewReader(kafkago.ReaderConfig{
				Brokers: tg.brokers(t), Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond,
			})
			conn, err := kafkago.DialLeader(ctx, "tcp", tg.brokers(t)[0], topic, p)
			if err != nil {
				t.Fatal(err)
			}
			last, err := conn.ReadLastOffset()
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			for int64(len(perPartition[p])) < last {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("read partition %d: %v", p, err)
				}
				seen[string(m.Key)] = string(m.Value)
				perPartition[p] = append(perPartition[p], m.Offset)
			}
			r.Close()
		}
		if len(seen) != n {
			t.Fatalf("read %d distinct keys, want %d", len(seen), n)
		}
		for i := 0; i < n; i++ {
			if want := fmt.Sprintf(`{"i":%d}`, i); seen[strconv.Itoa(i)] != want {
				t.Fatalf("key %d: value %q, want %q", i, seen[strconv.Itoa(i)], want)
			}
		}
		for p, offs := range perPartition {
			if len(offs) == 0 {
				t.Errorf("partition %d got no messages: hash balancer did not spread", p)
			}
			if !sort.SliceIsSorted(offs, func(i, j int) bool { return offs[i] < offs[j] }) {
				t.Errorf("partition %d offsets out of order", p)
			}
		}
	})
}

// gokaOptions wires goka to this broker version without touching goka's global config.
func gokaOptions(t *testing.T) []goka.ProcessorOption {
	cfg := kafkatest.SaramaConfig()
	cfg.Producer.Flush.Frequency = 10 * time.Millisecond
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = 1
	tmc.Stream.Replication = 1
	tmc.CreateTopicTimeout = 20 * time.Second
	return []goka.ProcessorOption{
		goka.WithStorageBuilder(storage.DefaultBuilder(t.TempDir())),
		goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(cfg)),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(cfg)),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(cfg)),
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(cfg, tmc)),
	}
}

func TestGokaPersistAndView(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		brokers := tg.brokers(t)
		input := tg.topic(t, 3, nil)
		group := goka.Group(kafkatest.UniqueName(t, "group"))
		// goka creates the group table itself (compacted, copartitioned with the input).

		graph := goka.DefineGroup(group,
			goka.Input(goka.Stream(input), new(codec.Int64), func(ctx goka.Context, msg any) {
				sum, _ := ctx.Value().(int64)
				ctx.SetValue(sum + msg.(int64))
			}),
			goka.Persist(new(codec.Int64)),
		)
		proc, err := goka.NewProcessor(brokers, graph, gokaOptions(t)...)
		if err != nil {
			t.Fatalf("new processor: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- proc.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("processor: %v", err)
			}
		}()
		if err := proc.WaitForReadyContext(ctx); err != nil {
			t.Fatalf("processor not ready: %v", err)
		}

		cfg := kafkatest.SaramaConfig()
		emitter, err := goka.NewEmitter(brokers, goka.Stream(input), new(codec.Int64),
			goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{}
		for i := 1; i <= 300; i++ {
			key := fmt.Sprintf("k%d", i%7)
			want[key] += int64(i)
			if err := emitter.EmitSync(key, int64(i)); err != nil {
				t.Fatalf("emit: %v", err)
			}
		}
		if err := emitter.Finish(); err != nil {
			t.Fatal(err)
		}

		view, err := goka.NewView(brokers, goka.GroupTable(group), new(codec.Int64),
			goka.WithViewStorageBuilder(storage.DefaultBuilder(t.TempDir())),
			goka.WithViewConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(cfg)),
			goka.WithViewTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(cfg, goka.NewTopicManagerConfig())))
		if err != nil {
			t.Fatalf("new view: %v", err)
		}
		vdone := make(chan error, 1)
		go func() { vdone <- view.Run(ctx) }()
		defer func() { cancel(); <-vdone }()
		select {
		case <-view.WaitRunning():
		case err := <-vdone:
			t.Fatalf("view stopped before running: %v", err)
		case <-ctx.Done():
			t.Fatal("view not running in time")
		}

		deadline := time.Now().Add(60 * time.Second)
		for {
			got := map[string]int64{}
			for key := range want {
				v, err := view.Get(key)
				if err != nil {
					t.Fatalf("view get %s: %v", key, err)
				}
				if v != nil {
					got[key] = v.(int64)
				}
			}
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("view shows %v, want %v", got, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

func TestSaramaTransactionVisibility(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		brokers := tg.brokers(t)
		topic := tg.topic(t, 1, nil)

		pcfg := kafkatest.SaramaConfig()
		pcfg.Producer.Idempotent = true
		pcfg.Producer.Transaction.ID = kafkatest.UniqueName(t, "txn")
		pcfg.Net.MaxOpenRequests = 1
		producer, err := sarama.NewSyncProducer(brokers, pcfg)
		if err != nil {
			t.Fatalf("transactional producer: %v", err)
		}
		defer producer.Close()

		send := func(prefix string, n int) {
			for i := 0; i < n; i++ {
				if _, _, err := producer.SendMessage(&sarama.ProducerMessage{
					Topic: topic, Value: sarama.StringEncoder(fmt.Sprintf("%s-%d", prefix, i)),
				}); err != nil {
					t.Fatalf("send %s-%d: %v", prefix, i, err)
				}
			}
		}
		committedConsumer := newPartitionReader(t, brokers, topic, sarama.ReadCommitted)
		uncommittedConsumer := newPartitionReader(t, brokers, topic, sarama.ReadUncommitted)

		// 1. Open transaction: the read_uncommitted consumer sees the writes, the
		// read_committed one must not.
		if err := producer.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		send("committed", 5)
		if got := uncommittedConsumer.take(t, 5, time.Minute); len(got) != 5 {
			t.Fatalf("read_uncommitted saw %d open-transaction records, want 5", len(got))
		}
		if got := committedConsumer.take(t, 1, 1500*time.Millisecond); len(got) != 0 {
			t.Fatalf("read_committed saw %v before commit", got)
		}
		if err := producer.CommitTxn(); err != nil {
			t.Fatal(err)
		}
		got := committedConsumer.take(t, 5, time.Minute)
		if fmt.Sprint(got) != "[committed-0 committed-1 committed-2 committed-3 committed-4]" {
			t.Fatalf("after commit read_committed got %v", got)
		}

		// 2. Aborted transaction, then a committed one: the aborted records never show.
		if err := producer.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		send("aborted", 5)
		if err := producer.AbortTxn(); err != nil {
			t.Fatal(err)
		}
		if err := producer.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		send("after", 2)
		if err := producer.CommitTxn(); err != nil {
			t.Fatal(err)
		}
		got = committedConsumer.take(t, 2, time.Minute)
		if fmt.Sprint(got) != "[after-0 after-1]" {
			t.Fatalf("after abort+commit read_committed got %v, want only the committed records", got)
		}
		if extra := committedConsumer.take(t, 1, time.Second); len(extra) != 0 {
			t.Fatalf("read_committed saw extra records %v", extra)
		}
		// The aborted records were written (read_uncommitted sees them).
		raw := uncommittedConsumer.take(t, 7, time.Minute)
		if fmt.Sprint(raw) != "[aborted-0 aborted-1 aborted-2 aborted-3 aborted-4 after-0 after-1]" {
			t.Fatalf("read_uncommitted got %v", raw)
		}
	})
}

type partitionReader struct {
	pc sarama.PartitionConsumer
}

func newPartitionReader(t *testing.T, brokers []string, topic string, iso sarama.IsolationLevel) *partitionReader {
	cfg := kafkatest.SaramaConfig()
	cfg.Consumer.IsolationLevel = iso
	cfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); c.Close() })
	return &partitionReader{pc: pc}
}

// take reads up to n values, waiting at most d.
func (r *partitionReader) take(t *testing.T, n int, d time.Duration) []string {
	var out []string
	timeout := time.After(d)
	for len(out) < n {
		select {
		case m := <-r.pc.Messages():
			out = append(out, string(m.Value))
		case err := <-r.pc.Errors():
			t.Fatalf("consume: %v", err)
		case <-timeout:
			return out
		}
	}
	return out
}
