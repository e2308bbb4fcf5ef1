package topology_test

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/taxi-stream/taxi-stream/topology"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func defaults(ingest int) topology.Config {
	return topology.Config{IngestPartitions: ingest}.WithDefaults()
}

func TestWithDefaults(t *testing.T) {
	c := defaults(4)
	want := topology.Config{
		Topics: topology.Topics{
			Rides: "taxi-rides", Zones: "taxi-zones", Windows: "taxi-stream-windows-repartition",
			Results: "taxi-results", Late: "taxi-late", Dead: "taxi-dead",
		},
		App:               "taxi-stream",
		Window:            window.Spec{Size: time.Hour, Slide: time.Hour},
		Watermark:         watermark.Config{Delay: 10 * time.Minute, Quantile: 0.05, Window: 128},
		EventTimeField:    "lpep_dropoff_datetime",
		IngestPartitions:  4,
		WindowsPartitions: 4,
	}
	if c != want {
		t.Errorf("defaults:\n%+v\nwant\n%+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}

	// Set fields are kept; the repartition topic follows the app; unset topics
	// get their defaults one by one.
	set := topology.Config{
		Topics:            topology.Topics{Rides: "my-rides", Late: "my-late"},
		App:               "nyc",
		Window:            window.Spec{Size: 2 * time.Hour, Slide: 30 * time.Minute},
		Watermark:         watermark.Config{Delay: 0, Quantile: 0.5, Window: 16},
		EventTimeField:    "tpep_pickup_datetime",
		IngestPartitions:  3,
		WindowsPartitions: 5,
	}
	got := set.WithDefaults()
	want = set
	want.Topics = topology.Topics{Rides: "my-rides", Zones: "taxi-zones", Windows: "nyc-windows-repartition",
		Results: "taxi-results", Late: "my-late", Dead: "taxi-dead"}
	if got != want {
		t.Errorf("WithDefaults changed set fields:\n%+v\nwant\n%+v", got, want)
	}
	if got := got.WithDefaults(); got != want {
		t.Error("WithDefaults is not idempotent")
	}
	if topology.RepartitionTopic("x") != "x-windows-repartition" {
		t.Errorf("RepartitionTopic(x) = %q", topology.RepartitionTopic("x"))
	}
}

func TestValidateNamesTheBadSetting(t *testing.T) {
	cases := []struct {
		name string
		edit func(*topology.Config)
		want string
	}{
		{"window size", func(c *topology.Config) { c.Window = window.Spec{Size: -time.Hour, Slide: time.Hour} }, "window size -1h0m0s: must be > 0"},
		{"window multiple", func(c *topology.Config) { c.Window = window.Spec{Size: 90 * time.Minute, Slide: time.Hour} }, "must be a multiple of window slide"},
		{"watermark delay", func(c *topology.Config) { c.Watermark.Delay = -time.Second }, "watermark delay -1s: must be >= 0"},
		{"watermark quantile", func(c *topology.Config) { c.Watermark.Quantile = 0 }, "watermark quantile 0: must be > 0 and < 1"},
		{"watermark window", func(c *topology.Config) { c.Watermark.Window = 0 }, "watermark window 0"},
		{"ingest partitions", func(c *topology.Config) { c.IngestPartitions = 0 }, `topology: the rides topic "taxi-rides" has 0 partitions`},
		{"windows partitions", func(c *topology.Config) { c.WindowsPartitions = -2 }, "topology: windows partitions must be > 0, not -2"},
		{"empty topic", func(c *topology.Config) { c.Topics.Dead = "" }, "topology: every topic needs a name"},
		{"same topics", func(c *topology.Config) { c.Topics.Late = c.Topics.Dead }, "topology: topic names must differ"},
		{"same rides and results", func(c *topology.Config) { c.Topics.Results = c.Topics.Rides }, "topology: topic names must differ"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := defaults(4)
			c.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestGroups(t *testing.T) {
	c := defaults(1)
	c.App = "nyc"
	if c.IngestGroup() != "nyc-ingest" || c.WindowsGroup() != "nyc-windows" {
		t.Errorf("groups %q %q", c.IngestGroup(), c.WindowsGroup())
	}
	if got := topology.ChangelogTopic("nyc"); got != "nyc-windows-table" || got != string(goka.GroupTable(c.WindowsGroup())) {
		t.Errorf("ChangelogTopic(nyc) = %q", got)
	}
}

func TestProcessorTopics(t *testing.T) {
	c := defaults(4)
	c.WindowsPartitions = 6
	specs := topology.ProcessorTopics(c)
	compact := map[string]string{"cleanup.policy": "compact", "segment.bytes": "16777216", "min.cleanable.dirty.ratio": "0.1"}
	want := []topology.TopicSpec{
		{Name: "taxi-stream-windows-repartition", Partitions: 6, Configs: map[string]string{"retention.ms": "604800000"}},
		{Name: "taxi-stream-windows-table", Partitions: 6, Configs: compact},
		{Name: "taxi-results", Partitions: 6, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: "taxi-late", Partitions: 4},
		{Name: "taxi-dead", Partitions: 4},
	}
	if diff := cmp.Diff(want, specs); diff != "" {
		t.Errorf("ProcessorTopics (-want +got):\n%s", diff)
	}
	// goka requires the repartition topic and the changelog to be copartitioned.
	if specs[0].Partitions != specs[1].Partitions {
		t.Error("repartition topic and changelog differ in partitions")
	}
	// The rides and zones topics belong to the replay producer.
	for _, s := range specs {
		if s.Name == c.Topics.Rides || s.Name == c.Topics.Zones {
			t.Errorf("ProcessorTopics includes %s", s.Name)
		}
	}
}

func names(es goka.Edges) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Topic())
	}
	return out
}

func TestGraphs(t *testing.T) {
	c := defaults(2)
	called := 0
	process := func(goka.Context, any) { called++ }

	in := topology.IngestGraph(c, process)
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	if in.Group() != c.IngestGroup() {
		t.Errorf("ingest group %q", in.Group())
	}
	if got := names(in.InputStreams()); !slices.Equal(got, []string{"taxi-rides"}) {
		t.Errorf("ingest inputs %v", got)
	}
	if got := names(in.OutputStreams()); !slices.Equal(got, []string{"taxi-late", "taxi-dead", "taxi-stream-windows-repartition"}) {
		t.Errorf("ingest outputs %v", got)
	}
	if in.GroupTable() != nil || len(in.LookupTables()) != 0 || len(in.JointTables()) != 0 || in.LoopStream() != nil {
		t.Error("the ingest stage has no table, lookup, join or loop")
	}

	wg := topology.WindowsGraph(c, process)
	if err := wg.Validate(); err != nil {
		t.Fatal(err)
	}
	if wg.Group() != c.WindowsGroup() {
		t.Errorf("windows group %q", wg.Group())
	}
	if got := names(wg.InputStreams()); !slices.Equal(got, []string{"taxi-stream-windows-repartition"}) {
		t.Errorf("windows inputs %v", got)
	}
	if got := names(wg.OutputStreams()); !slices.Equal(got, []string{"taxi-results"}) {
		t.Errorf("windows outputs %v", got)
	}
	if gt := wg.GroupTable(); gt == nil || gt.Topic() != topology.ChangelogTopic(c.App) {
		t.Errorf("windows table %v", gt)
	}

	// Every edge carries raw bytes: the stages decode themselves.
	for _, e := range append(in.AllEdges(), wg.AllEdges()...) {
		if _, ok := e.Codec().(*codec.Bytes); !ok {
			t.Errorf("edge %s has codec %T, want *codec.Bytes", e, e.Codec())
		}
	}
}

// Describe's output is snapshotted in testdata/describe.golden (go test -update
// rewrites it).
func TestDescribe(t *testing.T) {
	custom := topology.Config{
		App:              "nyc",
		Topics:           topology.Topics{Rides: "r", Zones: "z", Results: "res", Late: "l", Dead: "d"},
		Window:           window.Spec{Size: 2 * time.Hour, Slide: 30 * time.Minute},
		Watermark:        watermark.Config{Delay: 90 * time.Second, Quantile: 0.25, Window: 64},
		EventTimeField:   "tpep_pickup_datetime",
		IngestPartitions: 3,
	}.WithDefaults()
	got := "# defaults\n" + topology.Describe(defaults(4)) + "# custom\n" + topology.Describe(custom)
	path := filepath.Join("testdata", "describe.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs from Describe (run with -update if the change is intended):\n%s", path, diff)
	}
	// Independently of the golden file: the settings and every topic are named.
	d := topology.Describe(custom)
	for _, s := range []string{"window 2h0m0s slide 30m0s on tpep_pickup_datetime", "watermark delay 1m30s (quantile 0.25 of last 64 events",
		"group nyc-ingest\n  input   r\n  lookup  z", "output  l\n  output  d\n  output  nyc-windows-repartition\n",
		"group nyc-windows\n  input   nyc-windows-repartition\n  table   nyc-windows-table", "output  res\n"} {
		if !strings.Contains(d, s) {
			t.Errorf("Describe lacks %q:\n%s", s, d)
		}
	}
}
