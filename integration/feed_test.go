package integration

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/processors/watermark"
	"github.com/taxi-stream/taxi-stream/producer/order"
)

// sharedData returns ../shared/data next to the repository; the test is skipped
// when it is missing, unless CI is set.
func sharedData(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(data, "SOURCES.md")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("shared data missing at %s", data)
		}
		t.Skipf("shared data missing at %s", data)
	}
	return data
}

// feedOptions shape how feedRides writes a file.
type feedOptions struct {
	fileOrder   bool // default: sorted by dropoff
	markers     bool // watermark markers as docs/design.md says
	markerEvery int
}

// feedRides writes the rides of path to topic the way the replay producer does
// (key <file>:<row>, hash partitioning, headers, markers to every partition) and
// returns the number of rides written. It is a test fixture; the replay producer
// is tested against the same contract in its own tests.
func feedRides(t testing.TB, topic string, partitions int32, path string, opt feedOptions) int {
	t.Helper()
	ctx := context.Background()
	var it order.Iterator
	inputs := []order.Input{order.FileInput(path)}
	if opt.fileOrder {
		it = order.InFileOrder(ctx, inputs)
	} else {
		s, err := order.Sorted(ctx, inputs, order.Config{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		it = s
	}
	defer it.Close()
	if opt.markerEvery == 0 {
		opt.markerEvery = 1000
	}

	cfg := kafkatest.SaramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Partitioner = newMarkerAwarePartitioner
	p, err := sarama.NewSyncProducer(kafka.Brokers(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var pending []*sarama.ProducerMessage
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if err := p.SendMessages(pending); err != nil {
			t.Fatalf("write rides: %v", err)
		}
		pending = pending[:0]
	}
	send := func(m *sarama.ProducerMessage) {
		pending = append(pending, m)
		if len(pending) >= 8192 {
			flush()
		}
	}
	base := filepath.Base(path)
	tracker := watermark.MustNew(watermark.Config{Delay: 0, Quantile: watermark.DefaultConfig().Quantile, Window: watermark.DefaultConfig().Window})
	var seq int64
	rows := 0
	sendMarker := func(final bool, lastEvent int64) {
		wm, ok := tracker.Watermark()
		if !ok {
			wm = 0
		}
		if final {
			wm = lastEvent + 1
		}
		value := codecs.AppendMarkerJSON(nil, codecs.Marker{Type: codecs.KindWatermark, WatermarkMs: wm, Final: final, AfterSeq: seq - 1, Rows: int64(rows)})
		for part := int32(0); part < partitions; part++ {
			send(&sarama.ProducerMessage{
				Topic: topic, Partition: part, Key: sarama.StringEncoder(codecs.MarkerKey), Value: sarama.ByteEncoder(value),
				Headers: []sarama.RecordHeader{
					{Key: []byte(codecs.HeaderKind), Value: []byte(codecs.KindWatermark)},
					{Key: []byte(codecs.HeaderSeq), Value: []byte(strconv.FormatInt(seq, 10))},
				},
				Metadata: "manual",
			})
		}
	}
	if opt.markers {
		sendMarker(false, 0)
	}
	buf := make([]order.Row, 4096)
	var lastEvent int64
	for {
		n, err := it.Next(buf)
		for _, r := range buf[:n] {
			value := codecs.AppendTripJSON(nil, &r.Trip)
			send(&sarama.ProducerMessage{
				Topic: topic, Key: sarama.StringEncoder(base + ":" + strconv.FormatInt(r.Row, 10)), Value: sarama.ByteEncoder(value),
				Headers: []sarama.RecordHeader{
					{Key: []byte(codecs.HeaderSource), Value: []byte(base)},
					{Key: []byte(codecs.HeaderRow), Value: []byte(strconv.FormatInt(r.Row, 10))},
					{Key: []byte(codecs.HeaderSeq), Value: []byte(strconv.FormatInt(seq, 10))},
				},
			})
			seq++
			rows++
			if r.Trip.Dropoff.Valid {
				tracker.ObserveEvent(r.Trip.Dropoff.V)
				lastEvent = max(lastEvent, r.Trip.Dropoff.V)
			}
			if opt.markers && rows%opt.markerEvery == 0 {
				sendMarker(false, 0)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
	}
	// Every replay ends with final markers, so that the last windows close.
	sendMarker(true, lastEvent)
	flush()
	return rows
}

// markerAwarePartitioner hashes rides by key and sends markers (Metadata "manual")
// to the partition they name.
type markerAwarePartitioner struct{ hash sarama.Partitioner }

func newMarkerAwarePartitioner(topic string) sarama.Partitioner {
	return markerAwarePartitioner{hash: sarama.NewHashPartitioner(topic)}
}

func (m markerAwarePartitioner) Partition(msg *sarama.ProducerMessage, n int32) (int32, error) {
	if msg.Metadata == "manual" {
		return msg.Partition, nil
	}
	return m.hash.Partition(msg, n)
}

func (m markerAwarePartitioner) RequiresConsistency() bool { return true }
