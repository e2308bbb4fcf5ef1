package replaytest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/producer/tlc"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

// replayRecord is one record of the rides topic as a plain consumer sees it.
type replayRecord struct {
	partition int32
	offset    int64
	key       string
	value     []byte
	headers   map[string]string
}

// readTopicFully reads every record of every partition of topic, up to each partition's
// high watermark at the time of the call, with sarama (independent of the producer's client).
func readTopicFully(t *testing.T, topic string) [][]replayRecord {
	t.Helper()
	cfg := kafkatest.SaramaConfig()
	cfg.Consumer.Fetch.Default = 8 << 20
	client, err := sarama.NewClient(kafka.Brokers(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatal(err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	out := make([][]replayRecord, len(parts))
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		if start >= end {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			t.Fatal(err)
		}
		timeout := time.After(2 * time.Minute)
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				r := replayRecord{partition: p, offset: m.Offset, key: string(m.Key), value: m.Value, headers: map[string]string{}}
				for _, h := range m.Headers {
					r.headers[string(h.Key)] = string(h.Value)
				}
				out[p] = append(out[p], r)
				done = m.Offset >= end-1
			case err := <-pc.Errors():
				t.Fatalf("consume %s/%d: %v", topic, p, err)
			case <-timeout:
				t.Fatalf("consume %s/%d: timed out at %d records of %d", topic, p, len(out[p]), end-start)
			}
		}
		pc.Close()
	}
	return out
}

// topicRecordCount returns the number of records in topic (sum of high watermarks minus
// log starts).
func topicRecordCount(t *testing.T, topic string) int64 {
	t.Helper()
	client, err := sarama.NewClient(kafka.Brokers(t), kafkatest.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatal(err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range parts {
		end, err1 := client.GetOffset(topic, p, sarama.OffsetNewest)
		start, err2 := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		n += end - start
	}
	return n
}

// expectedRide is a trip as read from its file, independently of the producer.
type expectedRide struct {
	key    string
	value  []byte
	file   int
	row    int64
	event  int64 // dropoff ms, math.MinInt64 if null
	hasEvt bool
}

// expectedRides reads files with producer/tlc and encodes each trip with
// codecs.AppendTripJSON, keyed "<base name>:<row>".
func expectedRides(t *testing.T, files []string) []expectedRide {
	t.Helper()
	var out []expectedRide
	for fi, path := range files {
		src, err := tlc.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(path)
		for i, trip := range tlctest.ReadAll(t, src) {
			out = append(out, expectedRide{
				key: fmt.Sprintf("%s:%d", name, i), value: codecs.AppendTripJSON(nil, &trip),
				file: fi, row: int64(i), event: trip.Dropoff.V, hasEvt: trip.Dropoff.Valid,
			})
		}
		src.Close()
	}
	return out
}

// pairsHash is the sha256 of the sorted "key\x00value\n" lines.
func pairsHash(keys []string, values [][]byte) string {
	lines := make([]string, len(keys))
	for i := range keys {
		lines[i] = keys[i] + "\x00" + string(values[i]) + "\n"
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hashPartition is sarama's / goka's FNV-1a partitioner, written out for the check.
func hashPartition(key string, n int) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	p := int32(h.Sum32()) % int32(n)
	if p < 0 {
		p = -p
	}
	return p
}

// replayCheck describes what a finished replay must have produced.
type replayCheck struct {
	files      []string // in input order
	fileOrder  bool     // rows in file order, else by dropoff
	markers    bool
	every      int
	partitions int
}

// checkReplayTopic verifies a completed replay: every row exactly once with the right key,
// value, headers and partition; positions 0..N-1 each used once (rows) or once per partition
// (markers); send order; markers in every partition with correct fields; the final marker last.
// It returns the number of rows.
func checkReplayTopic(t *testing.T, topic string, c replayCheck) int {
	t.Helper()
	want := expectedRides(t, c.files)
	parts := readTopicFully(t, topic)
	if len(parts) != c.partitions {
		t.Fatalf("topic has %d partitions, want %d", len(parts), c.partitions)
	}
	byKey := make(map[string]int, len(want))
	for i, w := range want {
		byKey[w.key] = i
	}

	type ride struct {
		seq int64
		idx int
	}
	var (
		rides      []ride
		gotKeys    []string
		gotValues  [][]byte
		markerSeqs = make([][]int64, len(parts))
		markers    = map[int64]codecs.Marker{}
		seen       = make([]bool, len(want))
	)
	for p, recs := range parts {
		last := int64(-1)
		for _, r := range recs {
			seq, err := strconv.ParseInt(r.headers[codecs.HeaderSeq], 10, 64)
			if err != nil {
				t.Fatalf("%d/%d: ts-seq header %q: %v", p, r.offset, r.headers[codecs.HeaderSeq], err)
			}
			if seq <= last {
				t.Fatalf("partition %d offset %d: ts-seq %d after %d: a duplicate or out of order", p, r.offset, seq, last)
			}
			last = seq
			if r.headers[codecs.HeaderKind] == codecs.KindWatermark {
				if r.key != codecs.MarkerKey {
					t.Fatalf("marker with key %q", r.key)
				}
				m, err := codecs.DecodeMarker(r.value)
				if err != nil {
					t.Fatal(err)
				}
				if prev, ok := markers[seq]; ok && prev != m {
					t.Fatalf("marker %d differs between partitions: %+v vs %+v", seq, prev, m)
				}
				markers[seq] = m
				markerSeqs[p] = append(markerSeqs[p], seq)
				continue
			}
			i, ok := byKey[r.key]
			if !ok {
				t.Fatalf("partition %d offset %d: unexpected key %q", p, r.offset, r.key)
			}
			if seen[i] {
				t.Fatalf("key %s twice", r.key)
			}
			seen[i] = true
			w := want[i]
			name := filepath.Base(c.files[w.file])
			if r.headers[codecs.HeaderSource] != name || r.headers[codecs.HeaderRow] != strconv.FormatInt(w.row, 10) {
				t.Fatalf("%s: headers %v", r.key, r.headers)
			}
			if hp := hashPartition(r.key, len(parts)); hp != int32(p) {
				t.Fatalf("%s in partition %d, its key hashes to %d", r.key, p, hp)
			}
			rides = append(rides, ride{seq, i})
			gotKeys = append(gotKeys, r.key)
			gotValues = append(gotValues, r.value)
		}
	}
	if len(rides) != len(want) {
		missing := 0
		for _, s := range seen {
			if !s {
				missing++
			}
		}
		t.Fatalf("%d rides in the topic, want %d (%d missing)", len(rides), len(want), missing)
	}
	wantKeys, wantValues := make([]string, len(want)), make([][]byte, len(want))
	for i, w := range want {
		wantKeys[i], wantValues[i] = w.key, w.value
	}
	if got, exp := pairsHash(gotKeys, gotValues), pairsHash(wantKeys, wantValues); got != exp {
		t.Fatalf("content hash %s, want %s (computed from the files)", got, exp)
	}

	// Positions: rides and markers together are 0..N-1, each once.
	slices.SortFunc(rides, func(a, b ride) int { return int(a.seq - b.seq) })
	var allSeqs []int64
	for _, r := range rides {
		allSeqs = append(allSeqs, r.seq)
	}
	for s := range markers {
		allSeqs = append(allSeqs, s)
	}
	slices.Sort(allSeqs)
	for i, s := range allSeqs {
		if s != int64(i) {
			t.Fatalf("positions are not 0..N-1: position %d holds ts-seq %d", i, s)
		}
	}
	// Send order.
	for i := 1; i < len(rides); i++ {
		a, b := want[rides[i-1].idx], want[rides[i].idx]
		if c.fileOrder {
			if a.file > b.file || a.file == b.file && a.row >= b.row {
				t.Fatalf("file order broken at ts-seq %d: %s before %s", rides[i].seq, a.key, b.key)
			}
		} else if a.hasEvt && (!b.hasEvt || a.event > b.event) {
			t.Fatalf("dropoff order broken at ts-seq %d: %s (%d) before %s (%d)", rides[i].seq, a.key, a.event, b.key, b.event)
		}
	}
	// Markers.
	if !c.markers {
		if len(markers) != 0 {
			t.Fatalf("%d markers with markers off", len(markers))
		}
		return len(rides)
	}
	wantMarkers := 2 + len(want)/c.every
	for p := range parts {
		if len(markerSeqs[p]) != wantMarkers || !slices.Equal(markerSeqs[p], markerSeqs[0]) {
			t.Fatalf("partition %d holds %d markers, want the same %d in every partition", p, len(markerSeqs[p]), wantMarkers)
		}
		if last := parts[p][len(parts[p])-1]; last.headers[codecs.HeaderKind] != codecs.KindWatermark || !markers[markerSeqs[p][len(markerSeqs[p])-1]].Final {
			t.Fatalf("partition %d does not end with the final marker", p)
		}
	}
	seqs := markerSeqs[0]
	ridesBefore := 0
	lastWM := int64(-1 << 63)
	var maxEvent int64 = -1 << 63
	for k, s := range seqs {
		for ridesBefore < len(rides) && rides[ridesBefore].seq < s {
			if w := want[rides[ridesBefore].idx]; w.hasEvt {
				maxEvent = max(maxEvent, w.event)
			}
			ridesBefore++
		}
		m := markers[s]
		if m.AfterSeq != s-1 || m.Rows != int64(ridesBefore) || m.Final != (k == len(seqs)-1) {
			t.Fatalf("marker at %d: %+v, want after_seq %d, rows %d", s, m, s-1, ridesBefore)
		}
		if !m.Final {
			if m.WatermarkMs < lastWM {
				t.Fatalf("marker at %d: watermark went back", s)
			}
			lastWM = m.WatermarkMs
			if k > 0 && k < len(seqs)-1 && ridesBefore != k*c.every {
				t.Fatalf("marker %d after %d rows, want %d", k, ridesBefore, k*c.every)
			}
		} else if m.WatermarkMs != maxEvent+1 {
			t.Fatalf("final marker watermark %d, want %d", m.WatermarkMs, maxEvent+1)
		}
	}
	if lastWM <= 0 {
		t.Fatalf("no marker carries a watermark (last %d)", lastWM)
	}
	return len(rides)
}

// buildReplayBinary builds cmd/taxi-replay into dir.
func buildReplayBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "taxi-replay")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/taxi-stream/taxi-stream/cmd/taxi-replay")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build taxi-replay: %v\n%s", err, out)
	}
	return bin
}

// replayLogger logs to the test output when -v, else only warnings.
func replayLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func sampleParquetFiles(t *testing.T) []string {
	var out []string
	for _, f := range tlctest.ParquetFiles {
		out = append(out, tlctest.Path(t, f.Name))
	}
	return out
}

func brokersFlag(t *testing.T) string { return strings.Join(kafka.Brokers(t), ",") }

func saramaTopicResource(topic string) sarama.ConfigResource {
	return sarama.ConfigResource{Type: sarama.TopicResource, Name: topic}
}

var kafka = kafkatest.New()

func TestMain(m *testing.M) { os.Exit(kafka.Main(m)) }

// createTopic creates a topic with a fixed name, waiting until it is usable.
func createTopic(t *testing.T, admin sarama.ClusterAdmin, name string, partitions int32) {
	t.Helper()
	if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1}, false); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if err := kafkatest.WaitTopicReady(context.Background(), kafka.Brokers(t), name, int(partitions)); err != nil {
		t.Fatal(err)
	}
}
