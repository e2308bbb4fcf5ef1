// Package topology declares taxi-stream's dataflow as values: the two goka group
// graphs (ingest, windows), the topics between them with their settings, and a
// printable description (Describe) that tests snapshot.
package topology

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

// Topics names every topic of the pipeline.
type Topics struct {
	Rides   string // input rides and watermark markers (written by the replay producer)
	Zones   string // zone lookup, compacted, keyed by LocationID
	Windows string // repartition topic: ingest partials -> windows stage (default <app>-windows-repartition)
	Results string // final results, compacted, key "<window start>/<borough>"
	Late    string // rides that arrived after their window closed
	Dead    string // messages that are not valid rides, with the reason
}

// DefaultApp is the application id when none is configured.
const DefaultApp = "taxi-stream"

// DefaultTopics are the shared topic names used when none are configured. The
// internal topics (Windows, and the windows stage's changelog) are not shared: they
// are named from the app (RepartitionTopic, ChangelogTopic), as Kafka Streams names
// them from application.id, so that two apps on one cluster never read each
// other's partial sums.
func DefaultTopics() Topics {
	return Topics{
		Rides: "taxi-rides", Zones: "taxi-zones",
		Results: "taxi-results", Late: "taxi-late", Dead: "taxi-dead",
	}
}

// RepartitionTopic is the default repartition topic of an app.
func RepartitionTopic(app string) string { return app + "-windows-repartition" }

// ChangelogTopic is the windows stage's state changelog of an app (goka's group table).
func ChangelogTopic(app string) string {
	return string(goka.GroupTable(Config{App: app}.WindowsGroup()))
}

// Config is the dataflow's shape.
type Config struct {
	Topics Topics
	// App prefixes the two goka groups: <App>-ingest and <App>-windows (Kafka Streams'
	// application.id). Default "taxi-stream".
	App string
	// Window is the window spec (Spark's window(col, duration, slide)). Default 1h tumbling.
	Window window.Spec
	// Watermark configures the watermark (Spark's withWatermark delay, plus the robust
	// estimator's quantile and sample size). Default 10 min, q=0.05, N=128.
	Watermark watermark.Config
	// EventTimeField is the ride field with the event time. Default lpep_dropoff_datetime.
	EventTimeField string
	// IngestPartitions is the partition count of the rides topic (read from Kafka at start).
	IngestPartitions int
	// WindowsPartitions is the partition count of the repartition topic and of the
	// windows stage. Default: IngestPartitions.
	WindowsPartitions int
	// AllowedLateness keeps a closed window open for revisions this long past its
	// end (in event time, measured by the watermark): a ride that arrives after the
	// final result but within it updates the window, and the results topic gets a
	// revision of that key. 0 (default): rides for a closed window are late.
	AllowedLateness time.Duration
	// IdleTimeout: a partition without producer markers that is caught up and got
	// nothing for this long stops holding the watermark back. 0 (default here;
	// taxi-stream's flag defaults to 30s): off.
	IdleTimeout time.Duration
	// CloseOnIdle: an idle partition closes every window holding a ride seen so far
	// (a finite replay without markers). Needs IdleTimeout.
	CloseOnIdle bool
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.App == "" {
		c.App = DefaultApp
	}
	def := DefaultTopics()
	for _, t := range []struct {
		v   *string
		def string
	}{
		{&c.Topics.Rides, def.Rides}, {&c.Topics.Zones, def.Zones}, {&c.Topics.Results, def.Results},
		{&c.Topics.Late, def.Late}, {&c.Topics.Dead, def.Dead}, {&c.Topics.Windows, RepartitionTopic(c.App)},
	} {
		if *t.v == "" {
			*t.v = t.def
		}
	}
	if c.Window == (window.Spec{}) {
		c.Window = window.Tumbling(time.Hour)
	}
	if c.Watermark == (watermark.Config{}) {
		c.Watermark = watermark.DefaultConfig()
	}
	if c.EventTimeField == "" {
		c.EventTimeField = "lpep_dropoff_datetime"
	}
	if c.WindowsPartitions == 0 {
		c.WindowsPartitions = c.IngestPartitions
	}
	return c
}

// Validate checks the config and names the bad setting.
func (c Config) Validate() error {
	if err := c.Window.Validate(); err != nil {
		return err
	}
	if err := c.Watermark.Validate(); err != nil {
		return err
	}
	if c.AllowedLateness < 0 || c.AllowedLateness%time.Millisecond != 0 {
		return fmt.Errorf("topology: allowed lateness %v: must be >= 0 and a whole number of milliseconds", c.AllowedLateness)
	}
	if c.IdleTimeout < 0 {
		return fmt.Errorf("topology: idle timeout %v: must be >= 0", c.IdleTimeout)
	}
	if c.CloseOnIdle && c.IdleTimeout == 0 {
		return fmt.Errorf("topology: close on idle needs an idle timeout > 0")
	}
	if c.IngestPartitions <= 0 {
		return fmt.Errorf("topology: the rides topic %q has %d partitions", c.Topics.Rides, c.IngestPartitions)
	}
	if c.WindowsPartitions <= 0 {
		return fmt.Errorf("topology: windows partitions must be > 0, not %d", c.WindowsPartitions)
	}
	names := []string{c.Topics.Rides, c.Topics.Zones, c.Topics.Windows, c.Topics.Results, c.Topics.Late, c.Topics.Dead}
	for _, n := range names {
		if n == "" {
			return fmt.Errorf("topology: every topic needs a name: %+v", c.Topics)
		}
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(names) {
		return fmt.Errorf("topology: topic names must differ: %+v", c.Topics)
	}
	return nil
}

// IngestGroup and WindowsGroup are the goka groups.
func (c Config) IngestGroup() goka.Group  { return goka.Group(c.App + "-ingest") }
func (c Config) WindowsGroup() goka.Group { return goka.Group(c.App + "-windows") }

// IngestGraph declares the ingest stage. The repartition topic is written by the
// stage's commit hook (not through ctx.Emit), so it appears as an Output edge for
// the description only. The zone table is not a goka Lookup edge: the pipeline owns
// that view, so that it outlives every callback (see processors/pipeline/zones.go);
// Describe lists it.
func IngestGraph(c Config, process goka.ProcessCallback) *goka.GroupGraph {
	return goka.DefineGroup(c.IngestGroup(),
		goka.Input(goka.Stream(c.Topics.Rides), new(codec.Bytes), process),
		goka.Output(goka.Stream(c.Topics.Late), new(codec.Bytes)),
		goka.Output(goka.Stream(c.Topics.Dead), new(codec.Bytes)),
		goka.Output(goka.Stream(c.Topics.Windows), new(codec.Bytes)),
	)
}

// WindowsGraph declares the windows stage.
func WindowsGraph(c Config, process goka.ProcessCallback) *goka.GroupGraph {
	return goka.DefineGroup(c.WindowsGroup(),
		goka.Input(goka.Stream(c.Topics.Windows), new(codec.Bytes), process),
		goka.Persist(new(codec.Bytes)),
		goka.Output(goka.Stream(c.Topics.Results), new(codec.Bytes)),
	)
}

// Describe prints the dataflow: each group's edges and the settings that shape it.
func Describe(c Config) string {
	noop := func(goka.Context, any) {}
	var b strings.Builder
	fmt.Fprintf(&b, "window %s slide %s on %s; watermark delay %s (quantile %.2f of last %d events, or producer markers)\n",
		c.Window.Size, c.Window.Slide, c.EventTimeField, c.Watermark.Delay, c.Watermark.Quantile, c.Watermark.Window)
	if c.AllowedLateness > 0 {
		fmt.Fprintf(&b, "allowed lateness %s: closed windows take revisions until the watermark passes end + %s\n", c.AllowedLateness, c.AllowedLateness)
	}
	if c.IdleTimeout > 0 {
		fmt.Fprintf(&b, "idle timeout %s (close on idle: %v)\n", c.IdleTimeout, c.CloseOnIdle)
	}
	for _, g := range []*goka.GroupGraph{IngestGraph(c, noop), WindowsGraph(c, noop)} {
		fmt.Fprintf(&b, "group %s\n", g.Group())
		for _, e := range g.InputStreams() {
			fmt.Fprintf(&b, "  input   %s\n", e.Topic())
		}
		if g.Group() == c.IngestGroup() {
			fmt.Fprintf(&b, "  lookup  %s (a view of every partition, owned by the pipeline)\n", c.Topics.Zones)
		}
		if t := g.GroupTable(); t != nil {
			fmt.Fprintf(&b, "  table   %s (LevelDB + compacted changelog)\n", t.Topic())
		}
		for _, e := range g.OutputStreams() {
			fmt.Fprintf(&b, "  output  %s\n", e.Topic())
		}
	}
	return b.String()
}
