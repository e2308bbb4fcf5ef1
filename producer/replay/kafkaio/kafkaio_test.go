package kafkaio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

// gokaPartition is goka's View.hash (goka v1.1.17 view.go), written out.
func gokaPartition(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	hash := int32(h.Sum32())
	if hash < 0 {
		hash = -hash
	}
	return int(hash % int32(n))
}

func TestPartitionMatchesKafkaGoAndGoka(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"", "1", "132", "265", "green_tripdata_2024-01.parquet:4711", "__taxi_stream_watermark__"}
	for range 2000 {
		keys = append(keys, fmt.Sprintf("f%d.parquet:%d", rng.IntN(10), rng.Int64N(1e7)))
	}
	for i := 1; i <= 300; i++ {
		keys = append(keys, strconv.Itoa(i))
	}
	var hash kafka.Hash
	for _, n := range []int{1, 2, 3, 7, 12, 64} {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		seen := make([]int, n)
		for _, k := range keys {
			got := Partition([]byte(k), n)
			if want := hash.Balance(kafka.Message{Key: []byte(k)}, parts...); got != want {
				t.Fatalf("Partition(%q, %d) = %d, kafka-go Hash balancer says %d", k, n, got, want)
			}
			if want := gokaPartition(k, n); got != want {
				t.Fatalf("Partition(%q, %d) = %d, goka's view says %d", k, n, got, want)
			}
			seen[got]++
		}
		for p, c := range seen {
			if c == 0 {
				t.Errorf("n=%d: partition %d never chosen", n, p)
			}
		}
	}
}

type testRecord struct {
	key, value string
	headers    [][2]string
}

func fill(rs *Records, recs []testRecord) {
	for _, r := range recs {
		rs.Begin()
		rs.Buf = append(rs.Buf, r.key...)
		rs.EndKey()
		rs.Buf = append(rs.Buf, r.value...)
		rs.EndValue()
		for _, h := range r.headers {
			rs.Buf = append(rs.Buf, h[1]...)
			rs.EndHeader(h[0])
		}
		rs.End()
	}
}

func sampleRecords(n int) []testRecord {
	var out []testRecord
	for i := range n {
		r := testRecord{key: fmt.Sprintf("file.parquet:%d", i), value: fmt.Sprintf(`{"VendorID":%d,"fare_amount":%d.5}`, i%3, i)}
		switch i % 3 {
		case 0:
			r.headers = [][2]string{{"ts-source", "file.parquet"}, {"ts-row", strconv.Itoa(i)}, {"ts-seq", strconv.Itoa(i + 1)}}
		case 1:
			r.headers = [][2]string{{"ts-kind", "watermark"}, {"ts-seq", strconv.Itoa(i)}}
		}
		out = append(out, r)
	}
	out = append(out, testRecord{key: "", value: ""}) // empty key and value
	return out
}

func TestRecordsAccessors(t *testing.T) {
	var rs Records
	recs := sampleRecords(10)
	fill(&rs, recs)
	if rs.Len() != len(recs) {
		t.Fatalf("Len = %d, want %d", rs.Len(), len(recs))
	}
	for i, r := range recs {
		if string(rs.Key(i)) != r.key || string(rs.Value(i)) != r.value {
			t.Errorf("record %d: key %q value %q, want %q %q", i, rs.Key(i), rs.Value(i), r.key, r.value)
		}
		for _, h := range r.headers {
			if v, ok := rs.Header(i, h[0]); !ok || string(v) != h[1] {
				t.Errorf("record %d: header %s = %q %v, want %q", i, h[0], v, ok, h[1])
			}
		}
		if _, ok := rs.Header(i, "absent"); ok {
			t.Errorf("record %d: absent header found", i)
		}
	}
	rs.Reset()
	if rs.Len() != 0 || len(rs.Buf) != 0 {
		t.Errorf("after Reset: Len %d, Buf %d bytes", rs.Len(), len(rs.Buf))
	}
}

// TestBatchEncodingRoundTrip decodes the rendered record batches with kafka-go's own reader,
// which checks the batch framing and decompresses, for every codec.
func TestBatchEncodingRoundTrip(t *testing.T) {
	recs := sampleRecords(500)
	var rs Records
	fill(&rs, recs)
	for _, c := range []kafka.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			codec, err := newCodec(c, 1)
			if err != nil {
				t.Fatal(err)
			}
			enc := &batchEncoder{codec: codec}
			for _, span := range [][2]int{{0, rs.Len()}, {7, 8}, {100, 350}} {
				raw, err := enc.encode(&rs, span[0], span[1], 1_700_000_000_123, noProducer)
				if err != nil {
					t.Fatal(err)
				}
				size := 0
				for i := span[0]; i < span[1]; i++ {
					size += rs.Size(i)
				}
				if c == 0 && len(raw)-batchHeaderSize > size {
					t.Errorf("encoded records take %d bytes, Size promised at most %d", len(raw)-batchHeaderSize, size)
				}
				got := decode(t, raw)
				want := recs[span[0]:span[1]]
				if len(got) != len(want) {
					t.Fatalf("decoded %d records, want %d", len(got), len(want))
				}
				for i := range want {
					if got[i].key != want[i].key || got[i].value != want[i].value || fmt.Sprint(got[i].headers) != fmt.Sprint(want[i].headers) {
						t.Fatalf("record %d: got %+v, want %+v", i, got[i], want[i])
					}
				}
			}
		})
	}
}

func decode(t *testing.T, raw []byte) []testRecord {
	t.Helper()
	var set protocol.RecordSet
	if _, err := set.ReadFrom(bufio.NewReader(bytes.NewReader(raw))); err != nil {
		t.Fatalf("kafka-go cannot read the batch: %v", err)
	}
	if set.Version != 2 {
		t.Fatalf("record set version %d, want 2", set.Version)
	}
	var out []testRecord
	for i := 0; ; i++ {
		r, err := set.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Offset != int64(i) {
			t.Fatalf("record %d has offset %d", i, r.Offset)
		}
		if ms := r.Time.UnixMilli(); ms != 1_700_000_000_123 {
			t.Fatalf("record %d: timestamp %d", i, ms)
		}
		k, _ := protocol.ReadAll(r.Key)
		v, _ := protocol.ReadAll(r.Value)
		tr := testRecord{key: string(k), value: string(v)}
		for _, h := range r.Headers {
			tr.headers = append(tr.headers, [2]string{h.Key, string(h.Value)})
		}
		out = append(out, tr)
	}
}

func TestNotAppended(t *testing.T) {
	for _, tc := range []struct {
		err  error
		safe bool
	}{
		{kafka.NotLeaderForPartition, true},
		{fmt.Errorf("wrapped: %w", kafka.LeaderNotAvailable), true},
		{kafka.UnknownTopicOrPartition, true},
		{kafka.NotEnoughReplicas, true},
		{kafka.NotEnoughReplicasAfterAppend, false},
		{kafka.RequestTimedOut, false},
		{io.ErrUnexpectedEOF, false},
		{errors.New("i/o timeout"), false},
		{protocol.NewErrNoLeader("t", 0), true},
		{protocol.NewErrNoTopic("t"), true},
	} {
		if got := notAppended(tc.err); got != tc.safe {
			t.Errorf("notAppended(%v) = %v, want %v", tc.err, got, tc.safe)
		}
	}
}

// BenchmarkBatchEncode renders one chunk of 2048 real rides (green 2024-01, encoded as the
// replay does) as a record batch with each codec.
func BenchmarkBatchEncode(b *testing.B) {
	var rs Records
	trips := tlctest.ReadAll(b, tlctest.OpenParquet(b, "green_tripdata_2024-01.parquet"))[:2048]
	for i := range trips {
		rs.Begin()
		rs.Buf = fmt.Appendf(rs.Buf, "green_tripdata_2024-01.parquet:%d", i)
		rs.EndKey()
		rs.Buf = codecs.AppendTripJSON(rs.Buf, &trips[i])
		rs.EndValue()
		rs.Buf = append(rs.Buf, "green_tripdata_2024-01.parquet"...)
		rs.EndHeader(codecs.HeaderSource)
		rs.Buf = strconv.AppendInt(rs.Buf, int64(i), 10)
		rs.EndHeader(codecs.HeaderRow)
		rs.Buf = strconv.AppendInt(rs.Buf, int64(i+1), 10)
		rs.EndHeader(codecs.HeaderSeq)
		rs.End()
	}
	for _, tc := range []struct {
		c     kafka.Compression
		level int
	}{{0, 0}, {kafka.Snappy, 0}, {kafka.Lz4, 0}, {kafka.Zstd, 1}, {kafka.Zstd, 3}} {
		b.Run(fmt.Sprintf("%v-%d", tc.c, tc.level), func(b *testing.B) {
			codec, _ := newCodec(tc.c, tc.level)
			enc := &batchEncoder{codec: codec}
			b.SetBytes(int64(len(rs.Buf)))
			for b.Loop() {
				if _, err := enc.encode(&rs, 0, rs.Len(), 0, noProducer); err != nil {
					b.Fatal(err)
				}
			}
			raw, _ := enc.encode(&rs, 0, rs.Len(), 0, noProducer)
			b.ReportMetric(float64(len(rs.Buf))/float64(len(raw)), "ratio")
			b.ReportMetric(float64(rs.Len())*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkPartition(b *testing.B) {
	key := []byte("green_tripdata_2024-01.parquet:4711")
	for b.Loop() {
		Partition(key, 3)
	}
}
