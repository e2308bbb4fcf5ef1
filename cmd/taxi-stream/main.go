// Command taxi-stream runs the processor: hourly per-borough summaries of taxi rides
// with event-time windows, a robust watermark and exactly-once results. Run several
// instances with the same --app to share the partitions.
//
// Exit status (cli.Main): 0 after a clean stop on SIGTERM/SIGINT, 1 error, 2 bad usage,
// 130 when the shutdown after a signal failed.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/httpapi"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/topology"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

const envPrefix = "TAXI_STREAM"

// main: cli.Main catches SIGTERM/SIGINT before the processor starts, so a stop that
// arrives while it starts still ends in a clean shutdown.
func main() { os.Exit(cli.Main("taxi-stream", newCommand())) }

func newCommand() *cobra.Command {
	var (
		brokers, guarantee, logFormat, logLevel, instance, stateDir string
		windowSize, slide, delay, commitInterval, sessionTimeout    time.Duration
		topicWait                                                   time.Duration
		dynamicMembership, hotStandby, describe                     bool
		quantile                                                    float64
		sample, windowsPartitions, replication                      int
		cfg                                                         topology.Config
		sec                                                         cli.Security
	)
	var httpAddr string
	var profiling bool
	host, _ := os.Hostname()
	cmd := &cobra.Command{
		Use:   "taxi-stream",
		Short: "Hourly per-borough taxi summaries from Kafka, exactly once",
		Long: `taxi-stream reads rides from the rides topic, joins PULocationID to the zone table,
aggregates per pickup borough over event-time windows and writes each window's final
result to the results topic once the watermark has passed it. Late rides go to the late
topic, malformed messages to the dead-letter topic: every ride ends in exactly one of them.

Every flag can also be set by an environment variable (shown in brackets).`,
		Example: `  taxi-stream --brokers localhost:9092
  taxi-stream --brokers k1:9092,k2:9092 --instance-id node-2 --state-dir /var/lib/taxi-stream
  taxi-stream --window 1h --slide 15m --watermark-delay 30m
  TAXI_STREAM_GUARANTEE=at_least_once taxi-stream`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, bl, err := cli.Setup(cmd.Flags(), envPrefix, &logFormat, &logLevel, &brokers, &sec)
			if err != nil {
				return err
			}
			mode, err := eos.ParseMode(guarantee)
			if err != nil {
				return cli.Usagef("--guarantee: %w", err)
			}
			if slide == 0 {
				slide = windowSize
			}
			cfg.Window = window.Spec{Size: windowSize, Slide: slide}
			if err := cfg.Window.Validate(); err != nil {
				return cli.Usagef("--window/--slide: %w", err)
			}
			cfg.Watermark = watermark.Config{Delay: delay, Quantile: quantile, Window: sample}
			if err := cfg.Watermark.Validate(); err != nil {
				return cli.Usagef("--watermark-*: %w", err)
			}
			cfg.WindowsPartitions = windowsPartitions
			if cfg.AllowedLateness < 0 || cfg.AllowedLateness%time.Millisecond != 0 {
				return cli.Usagef("--allowed-lateness %v: must be >= 0 and whole milliseconds", cfg.AllowedLateness)
			}
			if cfg.IdleTimeout < 0 {
				return cli.Usagef("--idle-timeout %v: must be >= 0 (0 turns idle detection off)", cfg.IdleTimeout)
			}
			if cfg.CloseOnIdle && cfg.IdleTimeout == 0 {
				return cli.Usagef("--close-on-idle needs --idle-timeout > 0")
			}
			if describe {
				_, err := fmt.Fprint(cmd.OutOrStdout(), topology.Describe(cfg.WithDefaults()))
				return err
			}
			if stateDir == "" {
				stateDir = filepath.Join(os.TempDir(), "taxi-stream-state", instance)
			}
			p, err := pipeline.New(pipeline.Options{
				Brokers: bl, Topology: cfg, Guarantee: mode, CommitInterval: commitInterval,
				InstanceID: instance, StateDir: stateDir, Logger: log,
				Replication:    int16(replication), // cli.ReplicationFlag: -1 or 1..32767
				SessionTimeout: sessionTimeout, DynamicMembership: dynamicMembership,
				HotStandby: hotStandby, TopicWait: cmp.Or(topicWait, -1), // --topic-wait 0: no limit
				Sarama: sec.Sarama(eos.DefaultSaramaConfig),
			})
			if err != nil {
				return cli.Usage(err) // the options come from the flags
			}
			log.Info("kafka connection", "brokers", bl, "security", sec)
			err = sec.Explain(runPipeline(cmd.Context(), p, httpapi.Config{
				Addr: httpAddr, Brokers: bl, Topology: cfg, InstanceID: instance, Pipeline: p, Logger: log,
				Profiling: profiling,
			}))
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			return err
		},
	}
	f := cmd.Flags()
	cli.BrokersFlag(f, &brokers)
	def := topology.DefaultTopics()
	f.StringVar(&cfg.Topics.Rides, "rides-topic", def.Rides, "input topic of rides and watermark markers")
	f.StringVar(&cfg.Topics.Zones, "zones-topic", def.Zones, "compacted zone lookup topic (LocationID -> borough)")
	f.StringVar(&cfg.Topics.Results, "results-topic", def.Results, "output: one final record per (window, borough), then its revisions with --allowed-lateness")
	f.StringVar(&cfg.Topics.Late, "late-topic", def.Late, "output: rides that arrived after their window closed")
	f.StringVar(&cfg.Topics.Dead, "dead-topic", def.Dead, "output: messages that are not valid rides, with the reason")
	f.StringVar(&cfg.Topics.Windows, "windows-topic", "", "internal repartition topic between the two stages (default <app>-windows-repartition)")
	f.StringVar(&cfg.App, "app", topology.DefaultApp, "application id (Kafka Streams application.id): names the goka groups <app>-ingest and <app>-windows and the internal topics <app>-windows-repartition and <app>-windows-table; two apps on one cluster need different ids")
	f.DurationVar(&windowSize, "window", time.Hour, "window duration (Spark window(col, duration))")
	f.DurationVar(&slide, "slide", 0, "window slide; smaller than --window gives sliding windows (Spark window(col, duration, slide)); default = --window")
	f.StringVar(&cfg.EventTimeField, "event-time-field", "lpep_dropoff_datetime", "ride field holding the event time")
	f.DurationVar(&delay, "watermark-delay", 10*time.Minute, "how far the watermark trails the event times (Spark withWatermark delay): a window closes this long after the data passed its end")
	cli.DaysDurationFlag(f, &cfg.AllowedLateness, "allowed-lateness", 0, "keep a closed window this long (event time) for late rides: each one that arrives updates the window and the results topic gets a revision of that key (\"revision\":N,\"status\":\"revised\"); rides later than that go to the late topic; 0: every ride for a closed window is late (e.g. 45d counts the TLC files' weeks-late blocks)")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", 30*time.Second, "a partition without producer markers that is caught up and got nothing for this long stops holding the watermark back; when all are idle, event time runs on with the wall clock; 0: off")
	f.BoolVar(&cfg.CloseOnIdle, "close-on-idle", false, "when a partition is idle (--idle-timeout), close every window holding a ride seen so far: a finite replay without watermark markers (the original Python producer) ends with every result written")
	f.Float64Var(&quantile, "watermark-quantile", watermark.DefaultConfig().Quantile, "data-driven watermark: quantile of recent event times (robust to outliers)")
	f.IntVar(&sample, "watermark-sample", watermark.DefaultConfig().Window, "data-driven watermark: how many recent event times per partition")
	f.StringVar(&guarantee, "guarantee", string(eos.ExactlyOnce), "exactly_once or at_least_once (Kafka Streams processing.guarantee)")
	f.DurationVar(&commitInterval, "commit-interval", 100*time.Millisecond, "how often offsets, state and outputs are committed (Kafka Streams commit.interval.ms)")
	f.DurationVar(&sessionTimeout, "session-timeout", 10*time.Second, "how long the group waits for a silent instance before moving its partitions (session.timeout.ms; at least the broker's group.min.session.timeout.ms, 6s unless changed)")
	f.BoolVar(&dynamicMembership, "dynamic-membership", false, "join the consumer groups without a group.instance.id; by default an instance is a static member (KIP-345) named by --instance-id, so a restart within --session-timeout gets its partitions back without a rebalance")
	f.BoolVar(&describe, "describe", false, "print the topology these flags declare (groups, topics, window, watermark) and exit without connecting to Kafka")
	f.BoolVar(&hotStandby, "hot-standby", false, "keep a read_committed copy of every windows state partition this instance does not own, so that a failed instance's partitions resume after restoring only the last changelog records (goka WithHotStandby; Kafka Streams num.standby.replicas); default false")
	f.StringVar(&instance, "instance-id", "taxi-stream-"+host, "this instance's stable name (transactional ids); keep it across restarts")
	f.StringVar(&stateDir, "state-dir", "", "local state (LevelDB) directory (default $TMPDIR/taxi-stream-state/<instance-id>; Kafka Streams state.dir)")
	f.DurationVar(&topicWait, "topic-wait", 2*time.Minute, "how long to wait at start for the rides and zones topics to exist before failing with their names (Kafka Streams' MissingSourceTopicException); it also bounds the start-up retries while the cluster settles (a node just lost: topic creation, the zones view); 0 waits as long as it takes (docker compose start order)")
	f.IntVar(&windowsPartitions, "windows-partitions", 0, "partitions of the repartition topic and windows stage (default: as many as the rides topic)")
	cli.ReplicationFlag(f, &replication, "replication factor of the topics the processor creates: 1..32767, or -1 for the broker's setting")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&httpAddr, "http-addr", ":8080", `HTTP server address: /metrics, /healthz, /readyz, /api/v1/... ("" disables it; 127.0.0.1:0 picks a free port, logged)`)
	f.BoolVar(&profiling, "pprof", false, "serve Go runtime profiles under /debug/pprof/ on --http-addr (default false)")
	sec.Register(f)
	cli.UseEnv(cmd, envPrefix)
	return cmd
}
