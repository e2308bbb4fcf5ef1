package topology_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/processors/ingest"
	"github.com/taxi-stream/taxi-stream/processors/windows"
	"github.com/taxi-stream/taxi-stream/topology"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

type nopCommitter struct{ n atomic.Int64 }

func (c *nopCommitter) RequestCommit() { c.n.Add(1) }

type quietLogger struct{}

func (quietLogger) Print(...any)          {}
func (quietLogger) Println(...any)        {}
func (quietLogger) Printf(string, ...any) {}

type gokaContext = goka.Context

// partitionCtx makes goka's tester (one partition) look like another input partition.
type partitionCtx struct {
	gokaContext
	p int32
}

func (c partitionCtx) Partition() int32 { return c.p }

// Both stages in goka processors built from IngestGraph and WindowsGraph, the
// ingest stage's flushed partials fed to the windows stage's input: rides of two
// input partitions become one result per (window, borough) once both partitions'
// watermarks pass the window's end.
func TestStagesThroughGraphs(t *testing.T) {
	const t0, hour = int64(1704067200000), int64(3600_000)
	cfg := topology.Config{App: "e2e", IngestPartitions: 2, WindowsPartitions: 2}.WithDefaults()
	cfg.Watermark.Delay = 0
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tt := tester.New(t)
	var part atomic.Int32

	in, err := ingest.New(ingest.Config{
		RidesTopic: cfg.Topics.Rides, App: cfg.App, Zones: ingest.StaticZones{"1": codecs.AppendZoneJSON(nil, codecs.Zone{LocationID: 1, Borough: "Queens", Zone: "Astoria", ServiceZone: "Boro Zone"})},
		LateTopic: goka.Stream(cfg.Topics.Late), DeadTopic: goka.Stream(cfg.Topics.Dead), WindowsTopic: cfg.Topics.Windows,
		WindowsPartitions: cfg.WindowsPartitions, Window: cfg.Window, Watermark: cfg.Watermark, EventTimeField: cfg.EventTimeField,
	}, new(nopCommitter))
	if err != nil {
		t.Fatal(err)
	}
	out, err := windows.New(windows.Config{ResultsTopic: goka.Stream(cfg.Topics.Results), IngestPartitions: cfg.IngestPartitions, App: cfg.App}, new(nopCommitter))
	if err != nil {
		t.Fatal(err)
	}
	procs := []*goka.Processor{}
	for _, g := range []struct {
		graph *goka.GroupGraph
		opts  []goka.ProcessorOption
	}{
		{topology.IngestGraph(cfg, in.Process), []goka.ProcessorOption{
			goka.WithContextWrapper(func(ctx goka.Context) goka.Context { return partitionCtx{ctx, part.Load()} }),
		}},
		{topology.WindowsGraph(cfg, out.Process), nil},
	} {
		p, err := goka.NewProcessor(nil, g.graph, append(g.opts, goka.WithTester(tt), goka.WithLogger(quietLogger{}))...)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(procs))
	for _, p := range procs {
		go func() { done <- p.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range procs {
			if err := <-done; err != nil {
				t.Errorf("processor: %v", err)
			}
		}
	})
	results := tt.NewQueueTracker(cfg.Topics.Results)

	rideJSON := func(event int64, fare string) []byte {
		return fmt.Appendf(nil, `{"lpep_pickup_datetime":%d,"lpep_dropoff_datetime":%d,"PULocationID":1,"passenger_count":1,`+
			`"trip_distance":1.00,"fare_amount":%s,"tip_amount":0.50,"total_amount":%s}`, event-60_000, event, fare, fare)
	}
	marker := func(wm int64) {
		tt.Consume(cfg.Topics.Rides, codecs.MarkerKey, codecs.AppendMarkerJSON(nil, codecs.Marker{Type: "watermark", WatermarkMs: wm, AfterSeq: -1}),
			tester.WithHeaders(goka.Headers{codecs.HeaderKind: []byte(codecs.KindWatermark)}))
	}
	// commit is what the eos runtime does at a commit: flush and deliver the partials.
	commit := func() {
		_, err := in.Hooks().Flush(func(m *sarama.ProducerMessage) {
			k, _ := m.Key.Encode()
			v, _ := m.Value.Encode()
			h := goka.Headers{}
			for _, rh := range m.Headers {
				h[string(rh.Key)] = rh.Value
			}
			if m.Topic != cfg.Topics.Windows {
				t.Errorf("partial sent to %s", m.Topic)
			}
			tt.Consume(m.Topic, string(k), v, tester.WithHeaders(h))
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	part.Store(0)
	tt.Consume(cfg.Topics.Rides, "a", rideJSON(t0+10*60_000, "10.00"))
	tt.Consume(cfg.Topics.Rides, "b", rideJSON(t0+hour+10*60_000, "99.00"))
	marker(t0 + hour)
	part.Store(1)
	tt.Consume(cfg.Topics.Rides, "c", rideJSON(t0+20*60_000, "20.00"))
	commit()
	if _, v, ok := results.NextRaw(); ok {
		t.Fatalf("result %s before partition 1 has a watermark", v)
	}
	marker(t0 + hour + 30*60_000)
	commit()

	k, v, ok := results.NextRaw()
	if !ok {
		t.Fatal("no result after both partitions passed the window end")
	}
	want := aggregate.Result{Window: window.Window{StartMs: t0, EndMs: t0 + hour}, Borough: "Queens",
		Sums: aggregate.Sums{Count: 2, PassengerSum: 2, PassengerCount: 2, DistanceHundredths: 200, TipCents: 100, FareCents: 3000, TotalCents: 3000}}
	if k != "2024-01-01T00:00:00/Queens" || string(v) != string(want.AppendJSON(nil)) {
		t.Errorf("result %q %s\nwant %q %s", k, v, want.Key(), want.AppendJSON(nil))
	}
	if _, v, ok := results.NextRaw(); ok {
		t.Errorf("second result %s: the next hour is still open", v)
	}
	if got := out.Counters.RidesEmitted.Load(); got != 2 {
		t.Errorf("rides emitted %d", got)
	}
	if got := in.Counters.OnTime.Load(); got != 3 {
		t.Errorf("on-time rides %d", got)
	}
}
