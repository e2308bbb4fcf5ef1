package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/topology"
)

// testTopics returns unique topic names for one test.
func testTopics(t testing.TB) topology.Topics {
	base := kafkatest.UniqueName(t, "")
	return topology.Topics{
		Rides: base + "-rides", Zones: base + "-zones", Windows: base + "-windows",
		Results: base + "-results", Late: base + "-late", Dead: base + "-dead",
	}
}

func createTopic(t testing.TB, admin sarama.ClusterAdmin, name string, partitions int32, configs map[string]string) {
	t.Helper()
	d := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1, ConfigEntries: map[string]*string{}}
	for k, v := range configs {
		d.ConfigEntries[k] = &v
	}
	if err := admin.CreateTopic(name, d, false); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if err := kafkatest.WaitTopicReady(context.Background(), kafka.Brokers(t), name, int(partitions)); err != nil {
		t.Fatal(err)
	}
}

// rawRecord is a message to write to an explicit partition.
type rawRecord struct {
	partition int32
	key       string
	value     []byte
	headers   map[string]string
}

func writeRecords(t testing.TB, topic string, recs []rawRecord) {
	t.Helper()
	cfg := kafkatest.SaramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(kafka.Brokers(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for _, r := range recs {
		m := &sarama.ProducerMessage{Topic: topic, Partition: r.partition, Key: sarama.StringEncoder(r.key), Value: sarama.ByteEncoder(r.value)}
		for k, v := range r.headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
		msgs = append(msgs, m)
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("write %s: %v", topic, err)
	}
}

// readAll reads every committed record of topic (read_committed) until the topic has
// been idle for idle after at least want records.
func readAll(t testing.TB, topic string, want int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	return readAllLevel(t, topic, sarama.ReadCommitted, want, timeout)
}

// readAllLevel is readAll with the given isolation level.
func readAllLevel(t testing.TB, topic string, level sarama.IsolationLevel, want int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := kafkatest.SaramaConfig()
	cfg.Consumer.IsolationLevel = level
	cfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	c, err := sarama.NewConsumer(kafka.Brokers(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The topic may be one the processor is still creating (a loaded broker takes a
	// while to propagate new topics): wait for it within the timeout.
	start := time.Now()
	var parts []int32
	for {
		parts, err = c.Partitions(topic)
		if err == nil && len(parts) > 0 {
			break
		}
		if time.Since(start) > timeout {
			t.Fatalf("read %s: %v (waited %s for the topic)", topic, err, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out := make(chan *sarama.ConsumerMessage, 1024)
	for _, p := range parts {
		var pc sarama.PartitionConsumer
		for {
			pc, err = c.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err == nil {
				break
			}
			if time.Since(start) > timeout {
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				out <- m
			}
		}()
	}
	var msgs []*sarama.ConsumerMessage
	deadline := time.After(timeout - time.Since(start))
	for {
		select {
		case m := <-out:
			msgs = append(msgs, m)
		case <-time.After(time.Second):
			if len(msgs) >= want {
				return msgs
			}
		case <-deadline:
			return msgs
		}
	}
}

func rideJSON(dropoff string, pu int, passengers string, dist, fare, tip, total string) []byte {
	ms := func(s string) int64 {
		tm, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			panic(err)
		}
		return tm.UnixMilli()
	}
	d := ms(dropoff)
	return fmt.Appendf(nil, `{"VendorID":2,"lpep_pickup_datetime":%d,"lpep_dropoff_datetime":%d,"PULocationID":%d,"DOLocationID":1,"passenger_count":%s,"trip_distance":%s,"fare_amount":%s,"tip_amount":%s,"total_amount":%s}`,
		d-600_000, d, pu, passengers, dist, fare, tip, total)
}

type saramaMessage = sarama.ConsumerMessage

// pipelineHandle is a pipeline instance running in the test process.
type pipelineHandle struct {
	p    *pipeline.Pipeline
	stop func()
}

// startPipelineApp starts an instance of the app (goka groups <app>-ingest/-windows)
// and waits until it is ready; stop cancels it and checks its error.
func startPipelineApp(t testing.TB, topics topology.Topics, mode eos.Mode, instance, app string, opts ...func(*pipeline.Options)) *pipelineHandle {
	t.Helper()
	p, cancel, done := startPipelineWithApp(t, topics, mode, instance, app, opts...)
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("pipeline %s stopped: %v", instance, err)
	case <-time.After(90 * time.Second):
		t.Fatalf("pipeline %s not ready", instance)
	}
	var once bool
	return &pipelineHandle{p: p, stop: func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pipeline %s: %v", instance, err)
		}
	}}
}

func startPipeline(t testing.TB, topics topology.Topics, mode eos.Mode, instance string) (*pipeline.Pipeline, context.CancelFunc, <-chan error) {
	t.Helper()
	return startPipelineWithApp(t, topics, mode, instance, topics.Rides+"-app")
}

// startPipelineWithApp starts an instance; opts adjust its options.
func startPipelineWithApp(t testing.TB, topics topology.Topics, mode eos.Mode, instance, app string, opts ...func(*pipeline.Options)) (*pipeline.Pipeline, context.CancelFunc, <-chan error) {
	t.Helper()
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	o := pipeline.Options{
		Brokers:    kafka.Brokers(t),
		Topology:   topology.Config{Topics: topics, App: app},
		Guarantee:  mode,
		InstanceID: instance,
		// BENCH_COMMIT_INTERVAL lets the benchmark compare commit intervals.
		CommitInterval: envDuration("BENCH_COMMIT_INTERVAL", 0),
		StateDir:       t.TempDir(),
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("instance", instance),
	}
	for _, opt := range opts {
		opt(&o)
	}
	p, err := pipeline.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return p, cancel, done
}

func TestPipelineSmallInput(t *testing.T) {
	for _, mode := range []eos.Mode{eos.ExactlyOnce, eos.AtLeastOnce} {
		t.Run(string(mode), func(t *testing.T) {
			topics := testTopics(t)
			admin := kafka.Admin(t)
			createTopic(t, admin, topics.Rides, 3, nil)
			createTopic(t, admin, topics.Zones, 1, map[string]string{"cleanup.policy": "compact"})
			writeRecords(t, topics.Zones, []rawRecord{
				{0, "1", []byte(`{"LocationID":1,"Borough":"EWR","Zone":"Newark Airport","service_zone":"EWR"}`), nil},
				{0, "7", []byte(`{"LocationID":7,"Borough":"Queens","Zone":"Astoria","service_zone":"Boro Zone"}`), nil},
			})

			h := startPipelineApp(t, topics, mode, "i1", topics.Rides+"-app")
			defer h.stop()

			marker := func(part int32, wm int64, final bool) rawRecord {
				return rawRecord{part, codecs.MarkerKey, codecs.AppendMarkerJSON(nil, codecs.Marker{Type: "watermark", WatermarkMs: wm, Final: final}),
					map[string]string{codecs.HeaderKind: codecs.KindWatermark}}
			}
			at := func(s string) int64 { tm, _ := time.Parse("2006-01-02 15:04:05", s); return tm.UnixMilli() }
			var recs []rawRecord
			for part := int32(0); part < 3; part++ {
				recs = append(recs, marker(part, at("2024-01-01 13:00:00"), false))
			}
			recs = append(recs,
				rawRecord{0, "a", rideJSON("2024-01-01 13:05:00", 7, "1", "1.5", "10.00", "2.00", "14.5"), nil},
				rawRecord{1, "b", rideJSON("2024-01-01 13:55:00", 7, "null", "2.25", "12.50", "0", "15.8"), nil},
				rawRecord{2, "c", rideJSON("2024-01-01 13:59:59", 1, "3", "10", "40", "8.33", "55.55"), nil},
				rawRecord{0, "d", rideJSON("2024-01-01 14:10:00", 99, "2", "0.5", "5", "1", "7"), nil},
				rawRecord{1, "bad", []byte(`{"not":"a ride"`), nil},
			)
			// Watermark passes 14:00 (+10 min delay) on every partition: hour 13 closes.
			for part := int32(0); part < 3; part++ {
				recs = append(recs, marker(part, at("2024-01-01 14:20:00"), false))
			}
			// A ride for hour 13 now arrives late on partition 2.
			recs = append(recs, rawRecord{2, "late", rideJSON("2024-01-01 13:30:00", 7, "1", "1", "1", "0", "1"), nil})
			for part := int32(0); part < 3; part++ {
				recs = append(recs, marker(part, at("2024-01-01 14:10:00")+1, true))
			}
			writeRecords(t, topics.Rides, recs)

			results := readAll(t, topics.Results, 3, 3*time.Minute)
			got := map[string]map[string]any{}
			for _, m := range results {
				var v map[string]any
				if err := json.Unmarshal(m.Value, &v); err != nil {
					t.Fatalf("result %s: %v", m.Key, err)
				}
				if _, dup := got[string(m.Key)]; dup {
					t.Errorf("result %s written twice", m.Key)
				}
				got[string(m.Key)] = v
			}
			keys := make([]string, 0, len(got))
			for k := range got {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			want := []string{"2024-01-01T13:00:00/EWR", "2024-01-01T13:00:00/Queens", "2024-01-01T14:00:00/Unknown"}
			if strings.Join(keys, " ") != strings.Join(want, " ") {
				t.Fatalf("result keys %v, want %v", keys, want)
			}
			q := got["2024-01-01T13:00:00/Queens"]
			if q["trip_count"] != float64(2) {
				t.Errorf("Queens 13h trip_count = %v, want 2 (the late ride must not count)", q["trip_count"])
			}
			if q["avg_passenger_count"] != 1.0 {
				t.Errorf("Queens 13h avg_passenger_count = %v, want 1 (null excluded)", q["avg_passenger_count"])
			}
			if q["total_fare"] != 22.5 || q["avg_fare"] != 11.25 || q["avg_tip_amount"] != 1.0 {
				t.Errorf("Queens 13h money: %v", q)
			}
			if q["total_distance"] != 3.75 || q["avg_distance"] != 1.88 {
				t.Errorf("Queens 13h distance total %v avg %v, want 3.75 and 1.88 (half away from zero)", q["total_distance"], q["avg_distance"])
			}
			late := readAll(t, topics.Late, 1, 2*time.Minute)
			if len(late) != 1 || string(late[0].Key) != "late" {
				t.Errorf("late topic: %d records, want the one late ride", len(late))
			}
			dead := readAll(t, topics.Dead, 1, 2*time.Minute)
			if len(dead) != 1 || string(dead[0].Key) != "bad" {
				t.Fatalf("dead topic: %d records, want the bad one", len(dead))
			}
			var reason string
			for _, h := range dead[0].Headers {
				if string(h.Key) == codecs.HeaderDeadReason {
					reason = string(h.Value)
				}
			}
			if reason == "" {
				t.Errorf("dead record has no %s header", codecs.HeaderDeadReason)
			}
			t.Logf("dead reason: %q", reason)
		})
	}
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

func TestBadMessagesGoToTheDeadLetterTopicWithReasons(t *testing.T) {
	topics := testTopics(t)
	admin := kafka.Admin(t)
	createTopic(t, admin, topics.Rides, 1, nil)
	createTopic(t, admin, topics.Zones, 1, map[string]string{"cleanup.policy": "compact"})
	h := startPipelineApp(t, topics, eos.ExactlyOnce, "i1", topics.Rides+"-app")
	defer h.stop()
	p := h.p
	good := string(rideJSON("2024-01-01 13:05:00", 7, "1", "1.5", "10.00", "2.00", "14.5"))
	cases := []struct {
		key, value, reason string
	}{
		{"empty", "", "empty"},
		{"not-json", `{"VendorID":2,`, "not JSON"},
		{"array", `[1,2,3]`, "not a JSON object"},
		{"no-dropoff", strings.Replace(good, `"lpep_dropoff_datetime"`, `"other"`, 1), "missing field lpep_dropoff_datetime"},
		{"string-fare", strings.Replace(good, `"fare_amount":10.00`, `"fare_amount":"ten"`, 1), "not a number fare_amount"},
		{"absurd-time", strings.Replace(good, `"lpep_dropoff_datetime":1704114300000`, `"lpep_dropoff_datetime":99999999999999`, 1), "timestamp out of range lpep_dropoff_datetime"},
		{"negative-distance", strings.Replace(good, `"trip_distance":1.5`, `"trip_distance":-3`, 1), "negative trip_distance"},
		{"huge-total", strings.Replace(good, `"total_amount":14.5`, `"total_amount":1e12`, 1), "out of range total_amount"},
		{"null-pu", strings.Replace(good, `"PULocationID":7`, `"PULocationID":null`, 1), "null PULocationID"},
	}
	var recs []rawRecord
	for _, c := range cases {
		var v []byte
		if c.value != "" {
			v = []byte(c.value)
		}
		recs = append(recs, rawRecord{0, c.key, v, nil})
	}
	recs = append(recs, rawRecord{0, "good", []byte(good), nil})
	writeRecords(t, topics.Rides, recs)

	dead := readAll(t, topics.Dead, len(cases), 3*time.Minute)
	got := map[string]string{}
	for _, m := range dead {
		for _, h := range m.Headers {
			if string(h.Key) == codecs.HeaderDeadReason {
				got[string(m.Key)] = string(h.Value)
			}
		}
	}
	for _, c := range cases {
		if got[c.key] != c.reason {
			t.Errorf("%s: dead-letter reason %q, want %q", c.key, got[c.key], c.reason)
		}
	}
	if len(dead) != len(cases) {
		t.Errorf("%d dead-letter records, want %d", len(dead), len(cases))
	}
	// The processor kept going: the good ride after the bad ones was counted.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		in, _ := p.Stages()
		if in != nil && in.Counters.OnTime.Load() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the good ride after the bad ones was not processed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
