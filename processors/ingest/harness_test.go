package ingest_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/processors/internal/stagetest"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/ingest"
	"github.com/taxi-stream/taxi-stream/topology"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

// Times of the tests: epoch ms of the wall clock.
const (
	t0     int64 = 1704067200000 // 2024-01-01T00:00:00
	minute int64 = 60_000
	hour   int64 = 60 * minute
)

const (
	ridesTopic   = "rides"
	lateTopic    = "late"
	deadTopic    = "dead"
	windowsTopic = "windows-repartition"
)

// ride is the part of a ride message the tests vary.
type ride struct {
	event  int64 // dropoff time
	pickup int64 // 0: event − 10 min
	pu     int
	pass   string // passenger_count JSON ("null" allowed)
	dist   string
	fare   string
	tip    string
	total  string
}

func (r ride) JSON() []byte {
	pickup := r.pickup
	if pickup == 0 {
		pickup = r.event - 10*minute
	}
	pass := r.pass
	if pass == "" {
		pass = "1"
	}
	dflt := func(s string) string {
		if s == "" {
			return "0"
		}
		return s
	}
	return fmt.Appendf(nil, `{"VendorID":2,"lpep_pickup_datetime":%d,"lpep_dropoff_datetime":%d,"store_and_fwd_flag":"N",`+
		`"PULocationID":%d,"DOLocationID":7,"passenger_count":%s,"trip_distance":%s,"fare_amount":%s,`+
		`"tip_amount":%s,"total_amount":%s,"ehail_fee":null}`,
		pickup, r.event, r.pu, pass, dflt(r.dist), dflt(r.fare), dflt(r.tip), dflt(r.total))
}

func zoneJSON(id int, borough string) []byte {
	return codecs.AppendZoneJSON(nil, codecs.Zone{LocationID: id, Borough: borough, Zone: "Zone " + strconv.Itoa(id), ServiceZone: "Boro Zone"})
}

// testZones: 1 Manhattan, 3 Queens, 600 Bronx (above the precomputed key table),
// 2 a malformed record (not JSON), 4 a record with an unknown field, 5 a valid record
// with an empty borough; 99 is missing.
func testZones() ingest.StaticZones {
	return ingest.StaticZones{
		"1":   zoneJSON(1, "Manhattan"),
		"3":   zoneJSON(3, "Queens"),
		"600": zoneJSON(600, "Bronx"),
		"2":   []byte(`{"LocationID":2,"Borough":`),
		"4":   []byte(`{"LocationID":4,"Borough":"Brooklyn","Zone":"x","service_zone":"y","extra":1}`),
		"5":   zoneJSON(5, ""),
	}
}

// baseConfig: 1 h tumbling windows, 3 windows partitions, marker-friendly watermark
// (10 min delay).
func baseConfig() ingest.Config {
	return ingest.Config{
		RidesTopic:        ridesTopic,
		Zones:             testZones(),
		LateTopic:         lateTopic,
		DeadTopic:         deadTopic,
		WindowsTopic:      windowsTopic,
		WindowsPartitions: 3,
		Window:            window.Tumbling(time.Hour),
		Watermark:         watermark.DefaultConfig(),
	}
}

// partitionCtx makes goka's tester (which has one partition) look like another
// input partition.
type partitionCtx struct {
	gokaContext
	p int32
}

// gokaContext lets a struct embed goka.Context (whose method Context would clash
// with the field name).
type gokaContext = goka.Context

func (c partitionCtx) Partition() int32 { return c.p }

// harness runs the ingest stage in a goka processor built from
// topology.IngestGraph on goka's tester.
type harness struct {
	t       *testing.T
	tt      *tester.Tester
	cfg     ingest.Config
	stage   *ingest.Stage
	commits *stagetest.Committer
	part    atomic.Int32 // the input partition the next messages appear to come from
	offset  int64        // offset of the next rides message
	late    *tester.QueueTracker
	dead    *tester.QueueTracker
}

func newHarness(t *testing.T, cfg ingest.Config) *harness {
	t.Helper()
	h := &harness{t: t, tt: tester.New(t), cfg: cfg, commits: new(stagetest.Committer)}
	stage, err := ingest.New(cfg, h.commits)
	if err != nil {
		t.Fatal(err)
	}
	h.stage = stage
	topo := topology.Config{App: "test", Topics: topology.Topics{
		Rides: cfg.RidesTopic, Zones: "zones", Windows: cfg.WindowsTopic, Results: "results",
		Late: string(cfg.LateTopic), Dead: string(cfg.DeadTopic),
	}}
	proc, err := goka.NewProcessor(nil, topology.IngestGraph(topo, stage.Process),
		goka.WithTester(h.tt),
		goka.WithLogger(stagetest.QuietLogger{}),
		goka.WithNilHandling(goka.NilProcess), // as the pipeline: empty messages reach the callback
		goka.WithContextWrapper(func(ctx goka.Context) goka.Context { return partitionCtx{ctx, h.part.Load()} }),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	h.late = h.tt.NewQueueTracker(string(cfg.LateTopic))
	h.dead = h.tt.NewQueueTracker(string(cfg.DeadTopic))
	return h
}

// consume sends one message to the rides topic and returns its offset.
func (h *harness) consume(key string, value []byte, headers goka.Headers) int64 {
	h.t.Helper()
	var opts []tester.EmitOption
	if headers != nil {
		opts = append(opts, tester.WithHeaders(headers))
	}
	if value == nil {
		h.tt.Consume(h.cfg.RidesTopic, key, nil, opts...)
	} else {
		h.tt.Consume(h.cfg.RidesTopic, key, value, opts...)
	}
	off := h.offset
	h.offset++
	return off
}

func (h *harness) ride(key string, r ride) int64 { return h.consume(key, r.JSON(), nil) }

func (h *harness) marker(wm int64, final bool) int64 {
	return h.consume(codecs.MarkerKey, codecs.AppendMarkerJSON(nil, codecs.Marker{Type: codecs.KindWatermark, WatermarkMs: wm, Final: final, AfterSeq: -1}),
		goka.Headers{codecs.HeaderKind: []byte(codecs.KindWatermark)})
}

// sent is one message the flush hook sent.
type sent struct {
	topic   string
	key     string
	headers []sarama.RecordHeader
	partial aggregate.Partial
	raw     []byte
}

func (h *harness) flush() ([]sent, map[eos.TopicPartition]string) {
	h.t.Helper()
	return flushStage(h.t, h.stage)
}

func flushStage(t *testing.T, s *ingest.Stage) ([]sent, map[eos.TopicPartition]string) {
	t.Helper()
	var msgs []*sarama.ProducerMessage
	meta, err := s.Hooks().Flush(func(m *sarama.ProducerMessage) { msgs = append(msgs, m) })
	if err != nil {
		t.Fatalf("flush: %v", err)
	}
	out := make([]sent, 0, len(msgs))
	for _, m := range msgs {
		k, err := m.Key.Encode()
		if err != nil {
			t.Fatal(err)
		}
		v, err := m.Value.Encode()
		if err != nil {
			t.Fatal(err)
		}
		var p aggregate.Partial
		if err := p.UnmarshalBinary(v); err != nil {
			t.Fatalf("flushed value is not a partial: %v", err)
		}
		out = append(out, sent{topic: m.Topic, key: string(k), headers: m.Headers, partial: p, raw: v})
	}
	return out, meta
}

type cellKey struct {
	w       window.Window
	borough string
}

// sumsOf merges the entries of partials by (window, borough).
func sumsOf(msgs []sent) map[cellKey]aggregate.Sums {
	out := map[cellKey]aggregate.Sums{}
	for _, m := range msgs {
		for _, e := range m.partial.Entries {
			k := cellKey{e.Window, e.Borough}
			s := out[k]
			s.Merge(e.Sums)
			out[k] = s
		}
	}
	return out
}

// next reads the next record of a queue; it fails the test if there is none.
func next(t *testing.T, q *tester.QueueTracker, what string) (goka.Headers, string, []byte) {
	t.Helper()
	h, k, v, ok := q.NextRawWithHeaders()
	if !ok {
		t.Fatalf("no %s record", what)
	}
	return h, k, v
}

func expectEmpty(t *testing.T, q *tester.QueueTracker, what string) {
	t.Helper()
	if h, k, v, ok := q.NextRawWithHeaders(); ok {
		t.Fatalf("unexpected %s record: key %q value %q headers %q", what, k, v, h)
	}
}

func hdr(h goka.Headers, k string) string { return string(h[k]) }

// checkInputHeaders checks the headers every late and dead-letter record carries
// (with the app header only when the stage has an app).
func checkInputHeaders(t *testing.T, h goka.Headers, partition int32, offset int64) {
	t.Helper()
	checkInputHeadersApp(t, h, partition, offset, "")
}

func checkInputHeadersApp(t *testing.T, h goka.Headers, partition int32, offset int64, app string) {
	t.Helper()
	if got, ok := h[codecs.HeaderApp]; app == "" && ok {
		t.Errorf("%s header %q without an app", codecs.HeaderApp, got)
	} else if app != "" && string(got) != app {
		t.Errorf("%s = %q, want %q", codecs.HeaderApp, got, app)
	}
	if got := hdr(h, codecs.HeaderInputTopic); got != ridesTopic {
		t.Errorf("%s = %q, want %q", codecs.HeaderInputTopic, got, ridesTopic)
	}
	if got, want := hdr(h, codecs.HeaderInputPartition), strconv.Itoa(int(partition)); got != want {
		t.Errorf("%s = %q, want %q", codecs.HeaderInputPartition, got, want)
	}
	if got, want := hdr(h, codecs.HeaderInputOffset), strconv.FormatInt(offset, 10); got != want {
		t.Errorf("%s = %q, want %q", codecs.HeaderInputOffset, got, want)
	}
}

type counts struct{ in, onTime, late, dead, markers int64 }

func countersOf(s *ingest.Stage) counts {
	c := &s.Counters
	return counts{c.In.Load(), c.OnTime.Load(), c.Late.Load(), c.Dead.Load(), c.Markers.Load()}
}

// checkCounters compares the counters and checks that every message read that is
// not a valid marker was counted once (bad markers are dead-lettered and counted as
// input): In = OnTime + Late + Dead.
func checkCounters(t *testing.T, s *ingest.Stage, want counts) {
	t.Helper()
	got := countersOf(s)
	if got != want {
		t.Errorf("counters %+v, want %+v", got, want)
	}
	if got.in != got.onTime+got.late+got.dead {
		t.Errorf("counters do not conserve input: in %d != on-time %d + late %d + dead %d",
			got.in, got.onTime, got.late, got.dead)
	}
}

func decodeMeta(t *testing.T, cfg watermark.Config, md string) *watermark.Tracker {
	t.Helper()
	tr := watermark.MustNew(cfg)
	if len(md) < 4 || md[:4] != "wm1:" {
		t.Fatalf("metadata %q lacks the wm1: prefix", md)
	}
	if err := restore(tr, md[4:]); err != nil {
		t.Fatalf("metadata %q: %v", md, err)
	}
	return tr
}
