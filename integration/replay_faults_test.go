package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/integration/kafkalocal"
	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/processors/eos"
)

// The replay producer rides through broker faults by itself (issue 12 §1): the shipped
// taxi-replay, with its defaults, keeps replaying while its broker is SIGKILLed and
// restarted (twice, one node) or while one node of three is lost and brought back, exits
// 0, and the rides topic is identical to an uninterrupted replay of the same file: every
// value, key, partition and sequence number, in the same order. On the single node the
// processor runs through the faults too, and its results equal the batch oracle.

// faultFile is the real month replayed: 56,551 rides.
const faultFile = "green_tripdata_2024-01.parquet"

func TestReplayRidesThroughBrokerRestarts(t *testing.T) {
	c := kafka.Local(t)
	if c == nil {
		t.Skip("kills the broker: needs the tests' own local broker, not KAFKA_BROKERS")
	}
	bin := buildReplay(t)
	path := filepath.Join(sharedData(t), faultFile)
	brokers := kafka.Brokers(t)

	ref := kafkatest.UniqueName(t, "reference")
	replayOnce(t, bin, brokers, ref, path)

	// The processor reads the faulty topic while the broker fails under both programs.
	rides := readParquetRides(t, path)
	want := oracle(t, rides, readBoroughs(t, filepath.Join(sharedData(t), "taxi_zone_lookup.csv")))
	topics := pipelineInputs(t, 3)
	h := startPipelineApp(t, topics, eos.ExactlyOnce, "f1", topics.Rides+"-app")
	defer h.stop()

	// The two readers follow the results topic through the faults.
	follow := startProgram(t, filepath.Join(filepath.Dir(bin), "taxi-results"), nil, "--brokers", strings.Join(brokers, ","),
		"--topic", topics.Results, "--format", "json")
	board := startProgram(t, filepath.Join(filepath.Dir(bin), "taxi-dashboard"), nil, "--brokers", strings.Join(brokers, ","),
		"--results-topic", topics.Results, "--query-url", "", "--http-addr", "127.0.0.1:0")

	p := startFaultyReplay(t, bin, brokers, topics.Rides, path)
	for i := range 2 {
		waitGrowing(t, brokers, topics.Rides, p)
		seen := strings.Count(p.out.String(), "produce failed")
		down := time.Now()
		if err := c.KillNode(1); err != nil {
			t.Fatalf("kill the broker: %v", err)
		}
		// Restart once the producer has seen the fault: it must resume by itself.
		waitOutput(t, p, "produce failed", seen+1, 2*time.Minute)
		if err := c.RestartNode(context.Background(), 1); err != nil {
			t.Fatalf("restart the broker: %v", err)
		}
		t.Logf("fault %d: broker SIGKILLed and back after %s", i+1, time.Since(down).Round(100*time.Millisecond))
		// Every partition that paused has resumed before the next fault.
		eventually(t, 5*time.Minute, "the replay resumes every paused partition", func() string {
			out := p.out.String()
			if failed, resumed := strings.Count(out, "produce failed"), strings.Count(out, "produce resumed"); resumed < failed {
				return fmt.Sprintf("%d of %d paused batches resumed", resumed, failed)
			}
			return ""
		})
	}
	finishFaultyReplay(t, p)
	compareTopics(t, brokers, ref, topics.Rides)

	got := checkResultsEqualOracle(t, readAll(t, topics.Results, len(want), 5*time.Minute), want)

	// Each reader shows every result once: none skipped, none twice.
	values := map[string]int{}
	for _, v := range got {
		values[string(v)]++
	}
	printed := func() []string {
		var lines []string
		for _, l := range strings.Split(follow.out.String(), "\n") {
			if strings.HasPrefix(l, "{") {
				lines = append(lines, l)
			}
		}
		return lines
	}
	eventually(t, 3*time.Minute, "taxi-results printed every result", func() string {
		if n := len(printed()); n < len(got) {
			return fmt.Sprintf("%d of %d printed; its output ends:\n%s", n, len(got), tailLines(follow.out.String(), 10))
		}
		return ""
	})
	shown := map[string]int{}
	for _, l := range printed() {
		shown[l]++
	}
	for v, n := range values {
		if shown[v] != n {
			t.Errorf("taxi-results printed %s %d times, the topic holds it %d times", v, shown[v], n)
		}
	}
	if len(printed()) != len(got) {
		t.Errorf("taxi-results printed %d results, the topic holds %d", len(printed()), len(got))
	}
	url := regexp.MustCompile(`dashboard listening" url=(\S+)`).FindStringSubmatch(board.out.String())
	if url == nil {
		t.Fatalf("taxi-dashboard did not say where it listens:\n%s", tailLines(board.out.String(), 20))
	}
	eventually(t, 3*time.Minute, "the dashboard holds every result once", func() string {
		resp, err := http.Get(strings.TrimSuffix(url[1], "/") + "/api/results")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var entries []struct {
			Key string `json:"key"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
			return err.Error()
		}
		keys := map[string]bool{}
		for _, e := range entries {
			if keys[e.Key] {
				return "result " + e.Key + " shown twice"
			}
			keys[e.Key] = true
		}
		if len(keys) != len(got) {
			return fmt.Sprintf("%d of %d results", len(keys), len(got))
		}
		return ""
	})
	t.Logf("taxi-results and taxi-dashboard show each of the %d results once", len(got))
}

func TestReplayRidesThroughALostNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Parallel() // see TestMain
	if _, err := os.Stat(filepath.Join(sharedData(t), faultFile)); err != nil {
		t.Fatal(err)
	}
	bin := buildReplay(t)
	c, err := kafkalocal.Start(context.Background(), kafkalocal.Config{
		Dir: filepath.Join(t.TempDir(), "kafka"), Nodes: 3, HeapMB: 384,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("start a 3-node cluster: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Stop(ctx)
	})
	brokers := c.Brokers()
	path := filepath.Join(sharedData(t), faultFile)
	ref, faulty := kafkatest.UniqueName(t, "reference"), kafkatest.UniqueName(t, "faulty")
	replayOnce(t, bin, brokers, ref, path) // replication 3, min.insync.replicas 2 (the cluster's defaults)

	// The processor (the shipped taxi-stream, exactly-once) runs on the same cluster
	// through the lost node.
	zonesFile := filepath.Join(sharedData(t), "taxi_zone_lookup.csv")
	zonesTopic, results := faulty+"-zones", faulty+"-results"
	if z := startProgram(t, bin, nil, "zones", "--brokers", strings.Join(brokers, ","), "--topic", zonesTopic, "--file", zonesFile); z.wait(3*time.Minute) != 0 {
		t.Fatalf("zones: %s", tailLines(z.out.String(), 20))
	}
	p := startFaultyReplay(t, bin, brokers, faulty, path)
	startStream := func(instance string) *program {
		return startProgram(t, filepath.Join(filepath.Dir(bin), "taxi-stream"), nil, "--brokers", strings.Join(brokers, ","),
			"--rides-topic", faulty, "--zones-topic", zonesTopic, "--results-topic", results,
			"--late-topic", faulty+"-late", "--dead-topic", faulty+"-dead", "--app", faulty+"-app",
			"--instance-id", instance, "--state-dir", t.TempDir(), "--http-addr", "")
	}
	streams := []*program{startStream("n1")}
	waitGrowing(t, brokers, faulty, p)
	victim := leaderOf(t, brokers, faulty, 0)
	down := time.Now()
	if err := c.KillNode(victim); err != nil {
		t.Fatalf("kill node %d: %v", victim, err)
	}
	// A second instance starts while the cluster still lists the dead node (it is
	// fenced only after the broker session timeout): its setup meets the dead node
	// as the controller or the first broker of the metadata, and must wait it out.
	streams = append(streams, startStream("n2"))
	// Two nodes still take writes: the producer must resume while the node is down.
	waitOutput(t, p, "produce resumed", 1, 3*time.Minute)
	t.Logf("node %d SIGKILLed; the producer resumed after %s with two nodes", victim, time.Since(down).Round(100*time.Millisecond))
	if err := c.RestartNode(context.Background(), victim); err != nil {
		t.Fatalf("restart node %d: %v", victim, err)
	}
	finishFaultyReplay(t, p)
	compareTopics(t, brokers, ref, faulty)

	want := oracle(t, readParquetRides(t, path), readBoroughs(t, zonesFile))
	var got map[string]string
	eventually(t, 5*time.Minute, "the processor's results", func() string {
		for i, stream := range streams {
			select {
			case <-stream.done:
				t.Fatalf("taxi-stream n%d exited:\n%s", i+1, tailLines(stream.out.String(), 30))
			default:
			}
		}
		if recordCount(t, brokers, results) < int64(len(want)) {
			return "fewer results than the oracle's cells"
		}
		got = map[string]string{}
		for _, m := range readCommitted(t, brokers, results, len(want)) {
			if _, dup := got[string(m.Key)]; dup {
				t.Fatalf("result %s written twice", m.Key)
			}
			got[string(m.Key)] = string(m.Value)
		}
		if len(got) < len(want) {
			return fmt.Sprintf("%d of %d results", len(got), len(want))
		}
		return ""
	})
	for key, cell := range want {
		checkResultAgainstOracle(t, key, []byte(got[key]), cell)
	}
	if len(got) != len(want) {
		t.Errorf("%d results, the oracle has %d", len(got), len(want))
	}
	for _, stream := range streams {
		stream.stop(t)
	}
	for _, line := range strings.Split(streams[1].out.String(), "\n") {
		if strings.Contains(line, "retrying") || strings.Contains(line, "level=ERROR") {
			t.Logf("n2: %s", line)
		}
	}
	t.Logf("taxi-stream (one instance started before the node was lost, one just after) ran through the lost node: %d results equal the batch oracle", len(got))
}

// TestZonesLoaderWaitsForARestartingBroker: taxi-replay zones started while the broker
// is down (a restart, or a compose stack still starting) waits for it, says so, loads
// every zone once and exits 0.
func TestZonesLoaderWaitsForARestartingBroker(t *testing.T) {
	c := kafka.Local(t)
	if c == nil {
		t.Skip("stops the broker: needs the tests' own local broker, not KAFKA_BROKERS")
	}
	bin := buildReplay(t)
	brokers := kafka.Brokers(t)
	file := filepath.Join(sharedData(t), "taxi_zone_lookup.csv")
	topic := kafkatest.UniqueName(t, "zones")
	if err := c.KillNode(1); err != nil {
		t.Fatalf("kill the broker: %v", err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = c.RestartNode(context.Background(), 1)
		}
	}()
	p := startProgram(t, bin, nil, "zones", "--brokers", strings.Join(brokers, ","), "--topic", topic, "--file", file)
	waitOutput(t, p, "cannot connect to the brokers; retrying", 1, 2*time.Minute)
	if err := c.RestartNode(context.Background(), 1); err != nil {
		t.Fatalf("restart the broker: %v", err)
	}
	restarted = true
	if code := p.wait(5 * time.Minute); code != 0 {
		t.Fatalf("zones loader exited %d:\n%s", code, tailLines(p.out.String(), 20))
	}
	if !strings.Contains(p.out.String(), "brokers reachable again") {
		t.Errorf("the loader did not say the brokers were back:\n%s", tailLines(p.out.String(), 20))
	}
	want := readBoroughs(t, file)
	seen := map[string]int{}
	for _, part := range readPartitions(t, brokers, topic) {
		for _, r := range part {
			seen[r.key]++
		}
	}
	for key, n := range seen {
		if n != 1 {
			t.Errorf("zone %s written %d times", key, n)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d zones in the topic, the file has %d", len(seen), len(want))
	}
	t.Logf("the loader waited for the broker and wrote each of the %d zones once", len(seen))
}

// buildReplay builds taxi-replay (and taxi-stream and the two results readers beside it)
// and returns taxi-replay's path.
func buildReplay(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := buildPrograms(moduleRoot(t), dir, "taxi-replay", "taxi-results", "taxi-dashboard", "taxi-stream"); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "taxi-replay")
}

// replayArgs are the flags of both replays: the defaults but for a marker every 1,000
// rides (more markers to compare) and no progress display.
func replayArgs(brokers []string, topic, path string) []string {
	return []string{"--brokers", strings.Join(brokers, ","), "--topic", topic, "--marker-every", "1000",
		"--progress", "none", path}
}

// replayOnce replays path into topic without faults.
func replayOnce(t *testing.T, bin string, brokers []string, topic, path string) {
	t.Helper()
	p := startProgram(t, bin, nil, replayArgs(brokers, topic, path)...)
	if code := p.wait(5 * time.Minute); code != 0 {
		t.Fatalf("reference replay exited %d:\n%s", code, tailLines(p.out.String(), 30))
	}
}

// startFaultyReplay starts the replay paced at 4,000 rides/s (about 14 s of sending), so
// that the faults land while it sends.
func startFaultyReplay(t *testing.T, bin string, brokers []string, topic, path string) *program {
	t.Helper()
	return startProgram(t, bin, nil, append([]string{"--rate", "4000"}, replayArgs(brokers, topic, path)...)...)
}

// finishFaultyReplay waits for the replay's exit 0 and logs its pauses.
func finishFaultyReplay(t *testing.T, p *program) {
	t.Helper()
	if code := p.wait(10 * time.Minute); code != 0 {
		t.Fatalf("replay through broker faults exited %d:\n%s", code, tailLines(p.out.String(), 40))
	}
	out := p.out.String()
	resumed := regexp.MustCompile(`produce resumed.*partition=(\d+) paused=(\S+)`).FindAllStringSubmatch(out, -1)
	if len(resumed) == 0 {
		t.Errorf("the replay never logged a pause: no fault hit it\n%s", tailLines(out, 40))
	}
	for _, m := range resumed {
		t.Logf("partition %s paused %s", m[1], m[2])
	}
	if m := regexp.MustCompile(`replay summary.*retries=(\d+) paused=(\S+)`).FindStringSubmatch(out); m != nil {
		t.Logf("replay summary: %s resends, held up %s in total", m[1], m[2])
	}
}

// waitGrowing waits until topic holds 1,000 records more than when called (the replay
// sends).
func waitGrowing(t *testing.T, brokers []string, topic string, p *program) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	start := int64(-1)
	for start < 0 && time.Now().Before(deadline) {
		if start = recordCount(t, brokers, topic); start < 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	for recordCount(t, brokers, topic) <= start+1000 {
		select {
		case <-p.done:
			t.Fatalf("the replay ended before the fault:\n%s", tailLines(p.out.String(), 30))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not grow:\n%s", topic, tailLines(p.out.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitOutput waits until the program's output holds needle at least n times.
func waitOutput(t *testing.T, p *program, needle string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(p.out.String(), needle) < n {
		select {
		case <-p.done:
			t.Fatalf("the replay exited while waiting for %q:\n%s", needle, tailLines(p.out.String(), 30))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q (%d times) within %s:\n%s", needle, n, timeout, tailLines(p.out.String(), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recordCount is the number of records of topic (-1 while it does not exist or the
// cluster does not answer).
func recordCount(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	client, err := sarama.NewClient(brokers, kafkatest.SaramaConfig())
	if err != nil {
		return -1
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil || len(parts) == 0 {
		return -1
	}
	var n int64
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return -1
		}
		n += end
	}
	return n
}

// leaderOf returns the node leading topic/partition.
func leaderOf(t *testing.T, brokers []string, topic string, partition int32) int {
	t.Helper()
	client, err := sarama.NewClient(brokers, kafkatest.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	b, err := client.Leader(topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	return int(b.ID())
}

// readCommitted reads topic from the start, read_committed, until it has want records
// and no more arrive for two seconds (a duplicate would), or a minute has passed.
func readCommitted(t *testing.T, brokers []string, topic string, want int) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := kafkatest.SaramaConfig()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		t.Logf("read %s: %v", topic, err)
		return nil
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Logf("read %s: %v", topic, err)
		return nil
	}
	out := make(chan *sarama.ConsumerMessage, 1024)
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Logf("read %s/%d: %v", topic, p, err)
			return nil
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				out <- m
			}
		}()
	}
	var msgs []*sarama.ConsumerMessage
	deadline := time.After(time.Minute)
	for {
		select {
		case m := <-out:
			msgs = append(msgs, m)
		case <-time.After(2 * time.Second):
			if len(msgs) >= want {
				return msgs
			}
		case <-deadline:
			return msgs
		}
	}
}

// topicRecord is what compareTopics compares of a record.
type topicRecord struct {
	key, value, seq, kind string
}

// readPartitions reads every partition of topic completely (up to its high watermark).
// A cluster that is still settling after a fault (no leader yet, stale metadata) is
// read again, for up to three minutes.
func readPartitions(t *testing.T, brokers []string, topic string) [][]topicRecord {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := tryReadPartitions(brokers, topic, deadline)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %s: %v", topic, err)
		}
		t.Logf("read %s: %v; reading again", topic, err)
		time.Sleep(time.Second)
	}
}

func tryReadPartitions(brokers []string, topic string, deadline time.Time) ([][]topicRecord, error) {
	cfg := kafkatest.SaramaConfig()
	cfg.Consumer.Fetch.Default = 8 << 20
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, err
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	out := make([][]topicRecord, len(parts))
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("end of %s/%d: %w", topic, p, err)
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("consume %s/%d: %w", topic, p, err)
		}
		timeout := time.After(time.Until(deadline))
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				r := topicRecord{key: string(m.Key), value: string(m.Value)}
				for _, h := range m.Headers {
					switch string(h.Key) {
					case codecs.HeaderSeq:
						r.seq = string(h.Value)
					case codecs.HeaderKind:
						r.kind = string(h.Value)
					}
				}
				out[p] = append(out[p], r)
				done = m.Offset >= end-1
			case err := <-pc.Errors():
				pc.Close()
				return nil, fmt.Errorf("consume %s/%d: %w", topic, p, err)
			case <-timeout:
				pc.Close()
				return nil, fmt.Errorf("consume %s/%d: timed out at %d records of %d", topic, p, len(out[p]), end)
			}
		}
		pc.Close()
	}
	return out, nil
}

// compareTopics checks that got holds exactly the records of want, partition by
// partition, in the same order.
func compareTopics(t *testing.T, brokers []string, want, got string) {
	t.Helper()
	w, g := readPartitions(t, brokers, want), readPartitions(t, brokers, got)
	if len(w) != len(g) {
		t.Fatalf("%s has %d partitions, %s %d", got, len(g), want, len(w))
	}
	total := 0
	for p := range w {
		total += len(w[p])
		if len(g[p]) != len(w[p]) {
			t.Errorf("partition %d: %d records after the faults, %d without", p, len(g[p]), len(w[p]))
		}
		for i := range min(len(w[p]), len(g[p])) {
			if g[p][i] != w[p][i] {
				t.Errorf("partition %d offset %d: %s, want %s", p, i, describeRecord(g[p][i]), describeRecord(w[p][i]))
				break
			}
		}
	}
	if total < 50_000 {
		t.Errorf("the reference holds %d records, want the whole month", total)
	}
	t.Logf("%s equals the uninterrupted replay: %d records in %d partitions", got, total, len(w))
}

func describeRecord(r topicRecord) string {
	if r.kind != "" {
		return fmt.Sprintf("marker ts-seq %s", r.seq)
	}
	seq, _ := strconv.Atoi(r.seq)
	return fmt.Sprintf("ride %s ts-seq %d", r.key, seq)
}
