package replay

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/order"
	"github.com/taxi-stream/taxi-stream/producer/replay/kafkaio"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
)

// testRows returns n rows of two files with dropoff times that wander (so the watermark
// estimate moves) and a far-past outlier.
func testRows(n int) []order.Row {
	rows := make([]order.Row, n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := range rows {
		ms := base + int64(i)*60_000 - int64(i%7)*300_000
		if i == 50 {
			ms = time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
		}
		rows[i] = order.Row{File: i % 2, Row: int64(i / 2), Trip: codecs.Trip{Layout: codecs.GreenLayoutB, Dropoff: codecs.Int(ms), Pickup: codecs.Int(ms - 600_000)}}
	}
	return rows
}

func testConfig() Config {
	return Config{Inputs: []string{"x"}, Brokers: []string{"b:1"}, MarkerEvery: 100}.withDefaults()
}

// sequence runs the sequencer over rows and returns every item (key copied).
func sequence(cfg Config, rows []order.Row, parts int) []item {
	s := newSequencer(cfg, []string{"a.parquet", "b.parquet"}, parts)
	var out []item
	add := func(it item, ok bool) {
		if ok {
			it.key = append([]byte(nil), it.key...)
			out = append(out, it)
		}
	}
	add(s.start())
	for i := range rows {
		add(s.row(&rows[i]), true)
		add(s.periodic())
	}
	add(s.final())
	return out
}

func TestSequencePositionsAndMarkers(t *testing.T) {
	const n = 1050
	rows := testRows(n)
	cfg := testConfig()
	items := sequence(cfg, rows, 3)

	if want := int64(n) + markerCount(cfg, n); int64(len(items)) != want {
		t.Fatalf("%d items, want %d rows + markers = %d", len(items), n, want)
	}
	// An independent estimator over the rows in send order.
	tr := watermark.MustNew(DefaultWatermark())
	rowsSeen, lastWM := int64(0), NoWatermark
	var maxEvent int64 = math.MinInt64
	for i, it := range items {
		if it.seq != int64(i) {
			t.Fatalf("item %d has position %d", i, it.seq)
		}
		if !it.marker {
			r := rows[rowsSeen]
			if want := fmt.Sprintf("%s:%d", []string{"a.parquet", "b.parquet"}[r.File], r.Row); string(it.key) != want {
				t.Fatalf("item %d: key %q, want %q", i, it.key, want)
			}
			if want := kafkaio.Partition([]byte(it.key), 3); it.part != want {
				t.Fatalf("item %d: partition %d, want %d", i, it.part, want)
			}
			tr.ObserveEvent(r.Trip.Dropoff.V)
			maxEvent = max(maxEvent, r.Trip.Dropoff.V)
			rowsSeen++
			continue
		}
		m := it.m
		if m.Type != codecs.KindWatermark || m.AfterSeq != it.seq-1 || m.Rows != rowsSeen {
			t.Fatalf("marker at %d: %+v (rows before it: %d)", it.seq, m, rowsSeen)
		}
		final := i == len(items)-1
		if m.Final != final {
			t.Fatalf("marker at %d: final=%v, want %v", it.seq, m.Final, final)
		}
		switch {
		case final:
			if m.WatermarkMs != maxEvent+1 {
				t.Errorf("final marker watermark %d, want max event + 1 = %d", m.WatermarkMs, maxEvent+1)
			}
		default:
			want := NoWatermark
			if wm, ok := tr.Watermark(); ok {
				want = wm
			}
			if m.WatermarkMs != want {
				t.Errorf("marker at %d: watermark %d, want the estimator's %d", it.seq, m.WatermarkMs, want)
			}
			if m.WatermarkMs < lastWM {
				t.Errorf("marker at %d: watermark went back from %d to %d", it.seq, lastWM, m.WatermarkMs)
			}
			lastWM = m.WatermarkMs
			if rowsSeen%100 != 0 {
				t.Errorf("marker at %d after %d rows, want every 100", it.seq, rowsSeen)
			}
		}
	}
	if items[0].m.WatermarkMs != NoWatermark || !items[0].marker {
		t.Errorf("first item %+v, want a marker without watermark", items[0])
	}
	if lastWM == NoWatermark {
		t.Error("no marker ever carried a watermark")
	}

	// Deterministic: the same rows give the same sequence.
	again := sequence(cfg, rows, 3)
	for i := range items {
		if fmt.Sprint(items[i]) != fmt.Sprint(again[i]) {
			t.Fatalf("item %d differs between two runs: %+v vs %+v", i, items[i], again[i])
		}
	}
}

func TestSequenceWithoutMarkers(t *testing.T) {
	cfg := testConfig()
	cfg.NoMarkers = true
	items := sequence(cfg, testRows(250), 2)
	if len(items) != 250 {
		t.Fatalf("%d items, want 250 rows only", len(items))
	}
	for i, it := range items {
		if it.marker || it.seq != int64(i) {
			t.Fatalf("item %d: %+v", i, it)
		}
	}
}

// sliceIterator is an order.Iterator over rows.
type sliceIterator struct {
	rows []order.Row
	pos  int
}

func (s *sliceIterator) Next(dst []order.Row) (int, error) {
	if s.pos >= len(s.rows) {
		return 0, io.EOF
	}
	n := copy(dst, s.rows[s.pos:])
	s.pos += n
	return n, nil
}

func (s *sliceIterator) Close() error { return nil }

// pointsAt returns the resume points of a topic that holds every item with position < cut
// (per partition: its last such item).
func pointsAt(items []item, parts int, cut int64) []resumePoint {
	pts := fresh(parts)
	for _, it := range items {
		if it.seq >= cut {
			break
		}
		if it.marker {
			for p := range pts {
				pts[p] = resumePoint{last: it.seq, marker: true}
			}
			continue
		}
		pts[it.part] = resumePoint{last: it.seq, key: it.key}
	}
	return pts
}

func TestVerifyResume(t *testing.T) {
	rows := testRows(1050)
	cfg := testConfig()
	items := sequence(cfg, rows, 3)
	verify := func(cfg Config, pts []resumePoint) error {
		return verifyResume(t.Context(), &sliceIterator{rows: rows}, newSequencer(cfg, []string{"a.parquet", "b.parquet"}, 3), pts, "topic")
	}
	for _, cut := range []int64{1, 2, 5, 101, 102, 500, int64(len(items) - 1), int64(len(items))} {
		if err := verify(cfg, pointsAt(items, 3, cut)); err != nil {
			t.Errorf("cut at %d: %v", cut, err)
		}
	}
	// Other marker spacing: where both sequences have the same number of markers before a
	// position they agree there (and resuming is then correct); at a marker they differ.
	for _, tc := range []struct {
		name   string
		cut    int64
		cfg    func(*Config)
		pts    func([]resumePoint)
		substr string
	}{
		{"other marker spacing", 102, func(c *Config) { c.MarkerEvery = 99 }, nil, "this replay has ride"},
		{"markers off", 537, func(c *Config) { c.NoMarkers = true }, nil, "this replay has"},
		{"other key", 537, nil, func(p []resumePoint) {
			for i := range p {
				if !p[i].marker {
					p[i].key = []byte("c.parquet:1")
					return
				}
			}
		}, "ride c.parquet:1"},
		{"marker where a ride is", 537, nil, func(p []resumePoint) {
			for i := range p {
				if !p[i].marker {
					p[i].marker = true
					return
				}
			}
		}, "this replay has ride"},
		{"beyond the end", 537, nil, func(p []resumePoint) { p[1] = resumePoint{last: 1 << 40, marker: true} }, "beyond this replay's last position"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			pts := pointsAt(items, 3, tc.cut)
			if tc.pts != nil {
				tc.pts(pts)
			}
			err := verify(c, pts)
			if !errors.Is(err, ErrResumeMismatch) || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("got %v, want ErrResumeMismatch mentioning %q", err, tc.substr)
			}
		})
	}
}

func TestPacerRate(t *testing.T) {
	p := newPacer(1000, 0)
	t0 := time.Unix(100, 0)
	for i := range 5 {
		at := p.next(t0.Add(time.Duration(i)*time.Microsecond), 0, false)
		if want := t0.Add(time.Duration(i) * time.Millisecond); !at.Equal(want) {
			t.Errorf("row %d due at %v, want %v", i, at.Sub(t0), want.Sub(t0))
		}
	}
}

func TestPacerSpeedup(t *testing.T) {
	p := newPacer(0, 3600) // an hour of event time per second
	t0 := time.Unix(100, 0)
	hour := int64(3_600_000)
	if at := p.next(t0, 0, false); !at.IsZero() {
		t.Errorf("no clock yet: due %v, want now", at)
	}
	if at := p.next(t0, 10*hour, true); !at.IsZero() {
		t.Errorf("first clock value anchors: due %v, want now", at)
	}
	steps := []struct {
		clock int64
		want  time.Duration
	}{
		{10*hour + hour/2, 500 * time.Millisecond},
		{10*hour + hour/4, 500 * time.Millisecond}, // the clock never goes back
		{12 * hour, 2 * time.Second},
		{12*hour + 30*24*hour, 2 * time.Second}, // a month's jump is skipped, not slept
		{12*hour + 30*24*hour + hour, 3 * time.Second},
	}
	for _, s := range steps {
		if got := p.next(t0, s.clock, true).Sub(t0); got != s.want {
			t.Errorf("clock %.2f h: due after %v, want %v", float64(s.clock)/float64(hour), got, s.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Inputs: []string{"f.parquet"}, Brokers: []string{"localhost:9092"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	c, _ := ok.validated()
	if c.Topic != "taxi-rides" || c.Partitions != 3 || c.Replication != -1 || c.MarkerEvery != 1000 ||
		c.Order != OrderEventTime || c.EventTime != codecs.ColDropoff || c.Compression != "zstd" ||
		c.Watermark.Delay != 0 || c.Watermark.Window != watermark.DefaultWindow {
		t.Errorf("defaults: %+v", c)
	}
	for _, tc := range []struct {
		change func(*Config)
		substr string
	}{
		{func(c *Config) { c.Inputs = nil }, "inputs"},
		{func(c *Config) { c.Brokers = nil }, "brokers"},
		{func(c *Config) { c.Brokers = []string{"nohost"} }, `broker "nohost"`},
		{func(c *Config) { c.Partitions = -1 }, "partitions -1"},
		{func(c *Config) { c.Replication = -2 }, "replication -2"},
		{func(c *Config) { c.Order = "random" }, `order "random"`},
		{func(c *Config) { c.EventTime = codecs.ColFareAmount }, "event time column"},
		{func(c *Config) { c.Rate = -1 }, "rate -1"},
		{func(c *Config) { c.Speedup = math.NaN() }, "speedup NaN"},
		{func(c *Config) { c.Rate, c.Speedup = 10, 10 }, "choose one"},
		{func(c *Config) { c.MarkerEvery = -5 }, "marker-every -5"},
		{func(c *Config) { c.Compression = "brotli" }, `compression "brotli"`},
		{func(c *Config) { c.ZstdLevel = 23 }, "zstd level 23"},
		{func(c *Config) { c.MaxBatchBytes = 100 }, "max batch bytes 100"},
		{func(c *Config) { c.Watermark = watermark.Config{Quantile: 2, Window: 10} }, "quantile 2"},
		{func(c *Config) { c.HDFS.Kerberos.Keytab = "/k.keytab" }, "--hdfs-principal"},
	} {
		c := ok
		tc.change(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("got %v, want an error mentioning %q", err, tc.substr)
		}
	}
}

func BenchmarkSequencer(b *testing.B) {
	rows := testRows(4096)
	s := newSequencer(testConfig(), []string{"a.parquet", "b.parquet"}, 3)
	for b.Loop() {
		for i := range rows {
			s.row(&rows[i])
			s.periodic()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}
