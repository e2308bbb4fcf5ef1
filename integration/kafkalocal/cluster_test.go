package kafkalocal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_1_0_0
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 300 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 200 * time.Millisecond
	// Retries after a leader change would otherwise duplicate writes (seen: 62 of 60).
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	return cfg
}

func TestStartFailsFastWhenJavaIsMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("JAVA_HOME", "")
	start := time.Now()
	_, err := Start(context.Background(), Config{Dir: t.TempDir()})
	if !errors.Is(err, ErrJavaMissing) {
		t.Fatalf("err = %v, want ErrJavaMissing", err)
	}
	if !strings.Contains(err.Error(), "java") {
		t.Errorf("message does not mention java: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s to fail", d)
	}
}

func TestStartFailsFastWhenPortIsTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("resolves broker jars")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	start := time.Now()
	_, err = Start(context.Background(), Config{Dir: t.TempDir(), Ports: []int{port}})
	if err == nil {
		t.Fatal("started on a taken port")
	}
	if want := fmt.Sprintf("port %d on 127.0.0.1 is already in use", port); !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
	if d := time.Since(start); d > 20*time.Second { // jar resolution may run first
		t.Errorf("took %s to fail", d)
	}
}

func TestBadConfigFailsWithLogTail(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	// An invalid value makes the JVM exit during start-up; the error must carry the
	// log's explanation rather than a timeout.
	_, err := Start(context.Background(), Config{Dir: t.TempDir(), Props: map[string]string{"num.io.threads": "not-a-number"}})
	if err == nil {
		t.Fatal("started with a bad config")
	}
	if !strings.Contains(err.Error(), "num.io.threads") {
		t.Errorf("error does not show the log's reason: %v", err)
	}
}

func TestSingleNodeRestartKeepsData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	ctx := context.Background()
	dir := t.TempDir()
	c, err := Start(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	produce(t, c.Brokers(), "kept", 1, 1, 10)
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	c2, err := Start(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer c2.Stop(ctx)
	if c2.Brokers()[0] != c.Brokers()[0] {
		t.Errorf("restart moved the broker from %s to %s", c.Brokers()[0], c2.Brokers()[0])
	}
	if n := countMessages(t, c2.Brokers(), "kept"); n != 10 {
		t.Fatalf("after restart the topic holds %d messages, want 10", n)
	}
}

func TestThreeNodeClusterSurvivesANodeKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	ctx := context.Background()
	c, err := Start(ctx, Config{Dir: t.TempDir(), Nodes: 3, HeapMB: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	began := time.Now()
	produce(t, c.Brokers(), "replicated", 3, 3, 30)
	createAssigned(t, c.Brokers(), "pair", []int32{1, 2})
	t.Logf("%s: topics written", time.Since(began))

	admin, err := sarama.NewClusterAdmin(c.Brokers(), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	meta, err := admin.DescribeTopics([]string{"replicated"})
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range meta[0].Partitions {
		if len(p.Replicas) != 3 {
			t.Fatalf("partition %d has %d replicas, want 3", p.ID, len(p.Replicas))
		}
	}

	if err := c.KillNode(2); err != nil {
		t.Fatal(err)
	}
	// Two of three replicas satisfy min.insync.replicas=2: acks=all writes go on.
	alive := []string{c.Broker(1), c.Broker(3)}
	produce(t, alive, "replicated", 0, 0, 30)
	t.Logf("%s: written with node 2 dead", time.Since(began))
	if n := countMessages(t, alive, "replicated"); n != 60 {
		t.Fatalf("with node 2 dead the topic holds %d messages, want 60", n)
	}

	// "pair" has two replicas, on nodes 1 and 2. With node 2 dead only one is in
	// sync, below min.insync.replicas=2: acks=all writes must be refused. (The
	// controller quorum still has nodes 1 and 3, so the ISR does shrink.)
	cfg := saramaConfig()
	cfg.Producer.Timeout = 2 * time.Second
	cfg.Producer.Retry.Max = 0
	cfg.Producer.Idempotent = false // Sarama refuses idempotence without retries
	var refusal error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		p, err := sarama.NewSyncProducer(alive, cfg)
		if err != nil {
			refusal = err
			continue
		}
		_, _, refusal = p.SendMessage(&sarama.ProducerMessage{Topic: "pair", Partition: 0, Value: sarama.StringEncoder("x")})
		p.Close()
		if errors.Is(refusal, sarama.ErrNotEnoughReplicas) {
			break
		}
	}
	if !errors.Is(refusal, sarama.ErrNotEnoughReplicas) {
		t.Fatalf("acks=all write with one in-sync replica: got %v, want NOT_ENOUGH_REPLICAS", refusal)
	}
	t.Logf("%s: write to under-replicated topic refused: %v", time.Since(began), refusal)

	for _, id := range []int{2} {
		if err := c.RestartNode(ctx, id); err != nil {
			t.Fatalf("restart node %d: %v", id, err)
		}
	}
	t.Logf("%s: node restarted", time.Since(began))
	produce(t, c.Brokers(), "replicated", 0, 0, 30)
	if n := countMessages(t, c.Brokers(), "replicated"); n != 90 {
		t.Fatalf("after the restart the topic holds %d messages, want 90", n)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: stopped", time.Since(began))
}

func createAssigned(t *testing.T, brokers []string, topic string, replicas []int32) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: -1, ReplicationFactor: -1,
		ReplicaAssignment: map[int32][]int32{0: replicas}}, false)
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// produce creates topic (when partitions > 0) and writes n messages with acks=all.
func produce(t *testing.T, brokers []string, topic string, partitions int32, rf int16, n int) {
	t.Helper()
	cfg := saramaConfig()
	if partitions > 0 {
		admin, err := sarama.NewClusterAdmin(brokers, cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: rf}, false)
		admin.Close()
		if err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := sarama.NewSyncProducer(brokers, cfg)
		if err == nil {
			var msgs []*sarama.ProducerMessage
			for i := 0; i < n; i++ {
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprint(i))})
			}
			err = p.SendMessages(msgs)
			p.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("produce to %s: %v", topic, err)
		}
		// Only retry when nothing was written (client start-up error); a partial
		// batch cannot be retried without duplicates.
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) < n {
			t.Fatalf("produce to %s: %d of %d failed: %v", topic, len(perrs), n, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func countMessages(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	client, err := sarama.NewClient(brokers, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range parts {
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		total += newest - oldest
	}
	return total
}

func TestClusterIDNeverLooksLikeAnOption(t *testing.T) {
	for i := 0; i < 10000; i++ {
		id := newClusterID()
		if id[0] == '-' || len(id) != 22 {
			t.Fatalf("cluster id %q", id)
		}
	}
}

// TestRelativeDirIsMadeAbsolute: `make kafka-start` passes --dir .kafka-local; the
// nodes run in their own directories, where a relative path does not resolve (the
// broker died with NoSuchFileException: .kafka-local/node-1/server.properties).
func TestRelativeDirIsMadeAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg := Config{Dir: ".kafka-local"}
	if err := cfg.applyDefaults(); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, ".kafka-local"); cfg.Dir != want {
		t.Errorf("Dir = %q, want %q", cfg.Dir, want)
	}
}
