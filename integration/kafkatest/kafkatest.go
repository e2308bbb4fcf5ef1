// Package kafkatest gives integration tests a real Kafka cluster.
//
// When KAFKA_BROKERS is set (host:port,host:port) the tests use that cluster, which
// is how the docker-compose integration service runs them. Otherwise the first test
// that asks for a broker starts one local single-node broker (package kafkalocal)
// for the whole test binary, and Main stops it when the tests end.
//
// Use it from a test package like this:
//
//	var kafka = kafkatest.New()
//
//	func TestMain(m *testing.M) { os.Exit(kafka.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		brokers := kafka.Brokers(t)
//		topic := kafka.Topic(t, kafkatest.Partitions(3))
//		...
//	}
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/integration/kafkalocal"
)

// EnvBrokers names the environment variable that points the tests at a cluster.
const EnvBrokers = "KAFKA_BROKERS"

// Env is the Kafka of one test binary.
type Env struct {
	once    sync.Once
	brokers []string
	cluster *kafkalocal.Cluster
	dir     string
	err     error
	short   bool
}

// New returns an Env; nothing is started until a test asks for brokers.
// EnvLocalNodes sets the size of the local cluster the tests start: 1 (default) or
// 3 (replication factor 3, min.insync.replicas 2), e.g. for the chaos suite's
// broker-kill run.
const EnvLocalNodes = "KAFKA_LOCAL_NODES"

func New() *Env { return &Env{} }

// Main runs the tests and stops the local broker afterwards. Use it as
// os.Exit(env.Main(m)) in TestMain.
func (e *Env) Main(m *testing.M) int {
	flag.Parse()
	e.short = testing.Short()
	code := m.Run()
	if e.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := e.cluster.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "kafkatest: stopping the local broker:", err)
		}
		cancel()
		if code == 0 {
			os.RemoveAll(e.dir)
		} else {
			fmt.Fprintf(os.Stderr, "kafkatest: tests failed; broker files kept in %s\n", e.dir)
		}
	}
	return code
}

func (e *Env) start() {
	if list := os.Getenv(EnvBrokers); list != "" {
		for _, b := range strings.Split(list, ",") {
			if b = strings.TrimSpace(b); b != "" {
				e.brokers = append(e.brokers, b)
			}
		}
		return
	}
	dir, err := os.MkdirTemp("", "kafkatest-")
	if err != nil {
		e.err = err
		return
	}
	e.dir = dir
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	start := time.Now()
	nodes, _ := strconv.Atoi(os.Getenv(EnvLocalNodes)) // 0: kafkalocal's default, one node
	c, err := kafkalocal.Start(context.Background(), kafkalocal.Config{
		Dir:    dir,
		Nodes:  nodes,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		e.err = fmt.Errorf("start a local Kafka broker for the tests (set %s to use a running cluster): %w", EnvBrokers, err)
		return
	}
	e.cluster = c
	e.brokers = c.Brokers()
	fmt.Fprintf(os.Stderr, "kafkatest: local Kafka %s at %s started in %s\n",
		kafkalocal.KafkaVersion, strings.Join(e.brokers, ","), time.Since(start).Round(time.Millisecond))
}

// Brokers returns the cluster's bootstrap addresses, starting the local broker on
// first use. With -short the test is skipped; a broker that cannot start fails it.
func (e *Env) Brokers(t testing.TB) []string {
	t.Helper()
	if e.short {
		t.Skip("needs a Kafka broker; skipped with -short")
	}
	e.once.Do(e.start)
	if e.err != nil {
		t.Fatal(e.err)
	}
	return e.brokers
}

// Local returns the local cluster, or nil when the tests use KAFKA_BROKERS.
func (e *Env) Local(t testing.TB) *kafkalocal.Cluster {
	e.Brokers(t)
	return e.cluster
}

// SaramaConfig returns a Sarama config for this broker version with the durability
// settings the project uses (acks=all, idempotence off unless a test turns it on).
func SaramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_1_0_0
	cfg.ClientID = "kafkatest"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Metadata.RefreshFrequency = 2 * time.Second
	return cfg
}

// Admin returns a cluster admin closed at the end of the test.
func (e *Env) Admin(t testing.TB) sarama.ClusterAdmin {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(e.Brokers(t), SaramaConfig())
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}

// TopicOption changes how Topic creates a topic.
type TopicOption func(*sarama.TopicDetail)

// Partitions sets the partition count (default 1).
func Partitions(n int32) TopicOption { return func(d *sarama.TopicDetail) { d.NumPartitions = n } }

// Config sets a topic config entry, e.g. Config("cleanup.policy", "compact").
func Config(key, value string) TopicOption {
	return func(d *sarama.TopicDetail) {
		if d.ConfigEntries == nil {
			d.ConfigEntries = map[string]*string{}
		}
		d.ConfigEntries[key] = &value
	}
}

// Compacted makes the topic compacted, with settings that let compaction run within
// a test (small segments, eager cleaner).
func Compacted() TopicOption {
	return func(d *sarama.TopicDetail) {
		for k, v := range map[string]string{
			"cleanup.policy": "compact", "segment.ms": "100",
			"min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100",
		} {
			Config(k, v)(d)
		}
	}
}

// Topic creates a topic with a name unique to this test run and deletes it when the
// test ends. Replication is the cluster's default.
func (e *Env) Topic(t testing.TB, opts ...TopicOption) string {
	t.Helper()
	name := UniqueName(t, "")
	detail := &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1}
	for _, o := range opts {
		o(detail)
	}
	admin := e.Admin(t)
	if err := admin.CreateTopic(name, detail, false); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	t.Cleanup(func() { _ = admin.DeleteTopic(name) })
	if err := WaitTopicReady(context.Background(), e.Brokers(t), name, int(detail.NumPartitions)); err != nil {
		t.Fatal(err)
	}
	return name
}

// WaitTopicReady waits until every broker's metadata shows the topic with all its
// partitions led: CreateTopic returns before that, and a client that writes at once
// gets UNKNOWN_TOPIC_OR_PARTITION.
func WaitTopicReady(ctx context.Context, brokers []string, topic string, partitions int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := sarama.NewClient(brokers, SaramaConfig())
	if err != nil {
		return fmt.Errorf("metadata client: %w", err)
	}
	defer client.Close()
	for {
		err := func() error {
			if err := client.RefreshMetadata(topic); err != nil {
				return err
			}
			ps, err := client.Partitions(topic)
			if err != nil {
				return err
			}
			if len(ps) != partitions {
				return fmt.Errorf("%d of %d partitions visible", len(ps), partitions)
			}
			for _, b := range client.Brokers() {
				if err := b.Open(client.Config()); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
					return err
				}
				resp, err := b.GetMetadata(&sarama.MetadataRequest{Version: 7, Topics: []string{topic}})
				if err != nil {
					return err
				}
				if len(resp.Topics) != 1 || resp.Topics[0].Err != sarama.ErrNoError || len(resp.Topics[0].Partitions) != partitions {
					return fmt.Errorf("broker %s does not know %s yet", b.Addr(), topic)
				}
				for _, p := range resp.Topics[0].Partitions {
					if p.Err != sarama.ErrNoError || p.Leader < 0 {
						return fmt.Errorf("partition %d of %s has no leader yet", p.ID, topic)
					}
				}
			}
			// Metadata can name a leader before it serves the partition
			// (NOT_LEADER_OR_FOLLOWER on the first produce, seen with many tests on one
			// broker): ask each leader for the partition's end offset.
			for _, p := range ps {
				if _, err := client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
					return fmt.Errorf("partition %d of %s: %w", p, topic, err)
				}
			}
			return nil
		}()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not ready: %w", topic, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// UniqueName returns a Kafka-safe name made of the test name, a suffix and random
// hex, so that tests never see each other's data, even on a shared cluster.
func UniqueName(t testing.TB, suffix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(base) > 120 {
		base = base[:120]
	}
	if suffix != "" {
		base += "-" + suffix
	}
	return base + "-" + hex.EncodeToString(b[:])
}
