// Command taxi-replay replays NYC TLC trip files (Parquet or CSV; local, globs, directories,
// hdfs://) into the Kafka rides topic with watermark markers, loads the zone lookup table into
// the compacted zones topic, and deletes the project's topics.
//
//	taxi-replay [flags] FILES...          replay (same as taxi-replay replay)
//	taxi-replay zones --file PATH_OR_URL  load the zone lookup CSV
//	taxi-replay cleanup --yes             delete the project's topics
//
// Exit status (cli.Main): 0 done, 1 error, 2 bad usage, 130 interrupted (SIGINT/SIGTERM:
// the batches queued so far were sent and acknowledged; rerun with --resume to continue).
// A second signal quits at once.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
	"github.com/taxi-stream/taxi-stream/producer/replay"
	"github.com/taxi-stream/taxi-stream/producer/replay/kafkaio"
	"github.com/taxi-stream/taxi-stream/producer/zones"
	"github.com/taxi-stream/taxi-stream/topology"
)

func main() { os.Exit(cli.Main("taxi-replay", newRoot())) }

// common are the flags of every subcommand.
type common struct {
	brokers   string
	logLevel  string
	logFormat string
	timeout   time.Duration
	sec       cli.Security
}

func (c *common) register(cmd *cobra.Command) {
	f := cmd.Flags()
	cli.BrokersFlag(f, &c.brokers)
	f.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	f.DurationVar(&c.timeout, "write-timeout", 30*time.Second, "timeout of one Kafka request, including the acks of all in-sync replicas")
	c.sec.Register(f)
}

// security checks the security flags and returns the kafka-go settings.
func (c *common) security() (kafkaio.Security, error) {
	if err := c.sec.Validate(); err != nil {
		return kafkaio.Security{}, err // a usage error
	}
	tlsCfg, mech, err := c.sec.KafkaGo()
	if err != nil {
		return kafkaio.Security{}, cli.Usage(err)
	}
	return kafkaio.Security{TLS: tlsCfg, SASL: mech}, nil
}

// brokerList and logger check their flags; their errors are usage errors.
// brokerList also gives the list to the security settings, whose Explain probes
// the brokers for a protocol mismatch.
func (c *common) brokerList() ([]string, error) {
	list, err := cli.Brokers(c.brokers)
	c.sec.Brokers = list
	return list, err
}

func (c *common) logger() (*slog.Logger, error) {
	return cli.NewLogger(os.Stderr, c.logFormat, c.logLevel)
}

// envPrefix is the prefix of taxi-replay's environment variables (--marker-every ->
// TAXI_REPLAY_MARKER_EVERY), the same for every subcommand.
const envPrefix = "TAXI_REPLAY"

func newRoot() *cobra.Command {
	root, rf := newReplayCommand("taxi-replay [flags] FILES...")
	root.Short = "Replay NYC TLC trip files into Kafka, load zones, clean up topics"
	root.Long = "taxi-replay replays TLC trip files into the rides topic (see `taxi-replay replay --help`),\n" +
		"loads the zone lookup table (`zones`) and deletes the project's topics (`cleanup`).\n" +
		"Without a subcommand it replays."
	_ = rf
	root.CompletionOptions.DisableDefaultCmd = true
	sub, _ := newReplayCommand("replay [flags] FILES...")
	root.AddCommand(sub, newZonesCommand(), newCleanupCommand())
	cli.UseEnv(root, envPrefix) // for the subcommands too
	return root
}

// replayFlags maps flags to replay.Config.
type replayFlags struct {
	common
	cfg         replay.Config
	order       string
	eventTime   string
	markers     bool
	verify      bool
	hdfsConf    string
	progress    string
	progressLog time.Duration
	cpuProfile  string
}

func newReplayCommand(use string) (*cobra.Command, *replayFlags) {
	rf := &replayFlags{}
	cmd := &cobra.Command{
		Use:   use,
		Short: "Replay trip files (Parquet/CSV, local, globs, directories, hdfs://) into the rides topic",
		Long: `Replays TLC trip files into the rides topic: one JSON message per trip, key <file>:<row>,
headers ts-source, ts-row, ts-seq, and watermark markers to every partition (docs/design.md).

Inputs: files (.parquet, .csv, .csv.gz), directories (walked), globs, hdfs://namenode:port/path
(HADOOP_CONF_DIR is honoured; Kerberos with --hdfs-keytab + --hdfs-principal or a ticket cache).
Every input is checked (footer, schema; in file order every row) before anything is sent.

Broker faults (a restart, a leader change, a lost node) pause the replay: the producer is
idempotent and resends each unacknowledged batch as it was until --retry-timeout, so the broker
keeps one copy; the log says how long it paused.

--resume continues an interrupted or killed replay with the same inputs and flags: each partition's
last record tells where it ends, and only what is missing is sent (no gap, no duplicate).`,
		Example: `  taxi-replay --brokers localhost:9092 ../shared/data/green_tripdata_2024-01.parquet
  taxi-replay --speedup 3600 'data/green_tripdata_2025-*.parquet'
  taxi-replay --order file --rate 5000 hdfs://namenode:8020/tlc/green/
  taxi-replay --resume data/                  # continue after an interruption
  TAXI_REPLAY_BROKERS=k1:9093 TAXI_REPLAY_SECURITY_PROTOCOL=SASL_SSL taxi-replay ...`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usagef("no input files given (see --help)")
			}
			cfg, err := rf.config(args)
			if err != nil {
				return err
			}
			if rf.cpuProfile != "" {
				stop, err := startCPUProfile(rf.cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			_, err = replay.Run(cmd.Context(), cfg)
			return rf.sec.Explain(err)
		},
	}
	rf.common.register(cmd)
	f := cmd.Flags()
	c := &rf.cfg
	f.StringVar(&c.Topic, "topic", replay.DefaultTopic, "rides topic")
	f.IntVar(&c.Partitions, "partitions", replay.DefaultPartitions, "partitions when the topic is created (an existing topic keeps its own)")
	cli.ReplicationFlag(f, &c.Replication, "replication factor when the topic is created: 1..32767, or -1 for the broker's setting")
	f.StringVar(&rf.order, "order", string(replay.OrderEventTime), `send order: "dropoff" (sorted by event time, the realistic arrival order) or "file" (file after file, row order)`)
	f.StringVar(&rf.eventTime, "event-time", "dropoff", `event-time column: "dropoff" or "pickup" (sort key and marker watermark)`)
	f.Float64Var(&c.Rate, "rate", 0, "send at most this many rows per second (0: as fast as possible)")
	f.Float64Var(&c.Speedup, "speedup", 0, "replay event time this many times faster than real time, e.g. 3600 = an hour of trips per second (0: off)")
	f.BoolVar(&rf.markers, "markers", true, "send watermark markers to every partition (before the first row, every --marker-every rows, and a final one)")
	f.IntVar(&c.MarkerEvery, "marker-every", replay.DefaultMarkerEvery, "rows between two watermark markers")
	f.BoolVar(&c.Resume, "resume", false, "continue an interrupted replay of the same inputs and flags: send only what the topic does not hold yet (default false: send everything)")
	f.BoolVar(&rf.verify, "verify", true, "in --order file, read every input completely before the first send, so a corrupt file stops the replay before anything is written")
	f.StringVar(&c.Compression, "compression", "zstd", "record batch compression: zstd, snappy, lz4, gzip or none")
	f.IntVar(&c.ZstdLevel, "zstd-level", 1, "zstd level 1..22 (1-2 fastest, 3-5 balanced, 6-9 better, 10+ best compression)")
	f.IntVar(&c.MaxBatchBytes, "batch-bytes", 1_000_000, "largest record batch (one produce request), in uncompressed record bytes")
	f.IntVar(&c.ChunkRows, "chunk-rows", replay.DefaultChunkRows, "records of one partition handed to its sender at once")
	f.IntVar(&c.QueueDepth, "queue-depth", replay.DefaultQueueDepth, "chunks per partition that may wait behind the one being sent")
	f.DurationVar(&c.Linger, "linger", replay.DefaultLinger, "how long a partly filled chunk may wait when the replay is paced")
	f.DurationVar(&c.RetryTimeout, "retry-timeout", kafkaio.DefaultRetryTimeout, "how long a batch is resent through a broker fault (restart, leader change, lost node), "+
		"and brokers that cannot be reached are waited for, before the replay stops; resending never duplicates (idempotent producer)")
	f.IntVar(&c.SortRunRows, "sort-run-rows", replay.DefaultSortRunRows, "rows of a run of the event-time sort; full runs are spilled to --temp-dir, two runs are in memory (about 440 bytes per row each)")
	f.StringVar(&c.TempDir, "temp-dir", "", "directory for the sort's spill files (default: the system temp dir)")
	f.StringVar(&rf.progress, "progress", "auto", `progress display: "auto" (a bar on a terminal, log lines otherwise), "bar", "log" or "none"`)
	f.DurationVar(&rf.progressLog, "progress-every", replay.DefaultLogEvery, "interval of the progress log lines")
	f.StringVar(&rf.cpuProfile, "cpu-profile", "", "write a CPU profile (pprof) of the replay to this file (default: none)")
	_ = f.MarkHidden("cpu-profile")
	h := &c.HDFS
	f.StringVar(&rf.hdfsConf, "hadoop-conf-dir", "", "Hadoop configuration directory (default: $HADOOP_CONF_DIR, then $HADOOP_HOME/conf)")
	f.StringVar(&h.User, "hdfs-user", "", "HDFS user with simple authentication (default: $HADOOP_USER_NAME, else the OS user)")
	f.StringVar(&h.Kerberos.Principal, "hdfs-principal", "", "Kerberos principal user@REALM (default: none; required with --hdfs-keytab, checked against the ticket cache otherwise)")
	f.StringVar(&h.Kerberos.Keytab, "hdfs-keytab", "", "Kerberos keytab file to log in with (default: none, use the ticket cache)")
	f.StringVar(&h.Kerberos.CCache, "hdfs-ccache", "", "Kerberos ticket cache (default: $KRB5CCNAME, else /tmp/krb5cc_<uid>)")
	// One krb5.conf for Kafka and HDFS: --kerberos-config (cli.Security) serves both;
	// --krb5-conf, the HDFS-only flag of earlier versions, still works.
	f.StringVar(&h.Kerberos.Config, "krb5-conf", "", "krb5.conf for HDFS only (deprecated: --kerberos-config serves Kafka and HDFS)")
	_ = f.MarkDeprecated("krb5-conf", "use --kerberos-config: one krb5.conf for Kafka and HDFS")
	f.StringVar(&h.Kerberos.ServicePrincipal, "hdfs-service-principal", "", "NameNode Kerberos principal, e.g. nn/_HOST@REALM (default: dfs.namenode.kerberos.principal)")
	return cmd, rf
}

func (rf *replayFlags) config(args []string) (replay.Config, error) {
	log, err := rf.logger()
	if err != nil {
		return replay.Config{}, err
	}
	cfg := rf.cfg
	cfg.Inputs = args
	if cfg.Brokers, err = rf.brokerList(); err != nil {
		return cfg, err
	}
	if cfg.Security, err = rf.security(); err != nil {
		return cfg, err
	}
	log.Debug("kafka connection", "brokers", cfg.Brokers, "security", &rf.sec)
	cfg.Order = replay.Order(rf.order)
	cfg.NoMarkers = !rf.markers
	cfg.SkipVerify = !rf.verify
	cfg.HDFS.ConfDir = rf.hdfsConf
	if cfg.HDFS.Kerberos.Config == "" {
		cfg.HDFS.Kerberos.Config = rf.sec.Kerberos.Config // "": $KRB5_CONFIG, else /etc/krb5.conf
	}
	cfg.WriteTimeout = rf.timeout
	cfg.Logger = log
	if cfg.EventTime, err = replay.ParseEventTime(rf.eventTime); err != nil {
		return cfg, cli.Usage(err)
	}
	cfg.LogEvery = rf.progressLog
	switch rf.progress {
	case "auto":
		if term.IsTerminal(int(os.Stderr.Fd())) {
			cfg.ProgressBar = os.Stderr
		}
	case "bar":
		cfg.ProgressBar = os.Stderr
	case "log":
	case "none":
		cfg.LogEvery = -1
	default:
		return cfg, cli.Usagef("--progress %q: want auto, bar, log or none", rf.progress)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, cli.Usage(err)
	}
	return cfg, nil
}

func newZonesCommand() *cobra.Command {
	var (
		cc  common
		cfg zones.Config
	)
	cmd := &cobra.Command{
		Use:   "zones --file PATH_OR_URL",
		Short: "Load the TLC zone lookup CSV (file or http(s) URL) into the compacted zones topic",
		Long: `Loads taxi_zone_lookup.csv (or the legacy taxi+_zone_lookup.csv) into the compacted zones
topic: key = LocationID, value = {"LocationID":..,"Borough":..,"Zone":..,"service_zone":..}.
With more than one partition each key goes to the partition goka's lookup reads it from.
A bad header, a duplicate or an out-of-range LocationID stops the load before anything is written.`,
		Example: `  taxi-replay zones --file ../shared/data/taxi_zone_lookup.csv
  taxi-replay zones --file https://d37ci6vzurychx.cloudfront.net/misc/taxi_zone_lookup.csv --brokers k1:9092`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cc.logger()
			if err != nil {
				return err
			}
			if cfg.Brokers, err = cc.brokerList(); err != nil {
				return err
			}
			cfg.Logger, cfg.WriteTimeout = log, cc.timeout
			if cfg.File == "" {
				return cli.Usagef("--file is required: the zone lookup CSV, a path or an http(s) URL (or $%s)", cli.EnvName(envPrefix, "file"))
			}
			if cfg.Security, err = cc.security(); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return cli.Usage(err)
			}
			log.Debug("kafka connection", "brokers", cfg.Brokers, "security", &cc.sec)
			sum, err := zones.Run(cmd.Context(), cfg)
			if err != nil {
				return cc.sec.Explain(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "loaded %d zones into %s (%d partitions, per partition %v)\n",
				sum.Zones, cfg.Topic, sum.Partitions, sum.PerPartition)
			return nil
		},
	}
	cc.register(cmd)
	f := cmd.Flags()
	f.StringVar(&cfg.File, "file", "", "zone lookup CSV: a path or an http(s) URL (required, no default)")
	f.StringVar(&cfg.Topic, "topic", zones.DefaultTopic, "zones topic (compacted)")
	f.IntVar(&cfg.Partitions, "partitions", zones.DefaultPartitions, "partitions when the topic is created (an existing topic keeps its own)")
	cli.ReplicationFlag(f, &cfg.Replication, "replication factor when the topic is created: 1..32767, or -1 for the broker's setting")
	f.IntVar(&cfg.MaxLocationID, "max-location-id", zones.DefaultMaxLocationID, "largest accepted LocationID (TLC's table has 1..265)")
	f.DurationVar(&cfg.RetryTimeout, "retry-timeout", kafkaio.DefaultRetryTimeout, "how long brokers that cannot be reached (restarting, still starting) are waited for, and a batch is resent through a broker fault")
	f.BoolVar(&cfg.MissingFileOK, "missing-file-ok", false, "when --file is a local path that does not exist, create the empty zones topic and exit 0 with a warning (every ride then counts under borough Unknown) instead of failing; for a docker compose stack without the TLC files (default false)")
	// --file is checked by zones.Config.Validate, not cobra's required flags: those are
	// checked before $TAXI_REPLAY_FILE is bound.
	return cmd
}

func newCleanupCommand() *cobra.Command {
	var (
		cc     common
		yes    bool
		topics = map[string]*string{}
	)
	names := []struct{ flag, def, what string }{
		{"rides", "taxi-rides", "rides topic"},
		{"zones", "taxi-zones", "zones topic"},
		{"results", "taxi-results", "results topic"},
		{"late", "taxi-late", "late rides topic"},
		{"dead", "taxi-dead", "dead-letter topic"},
		{"windows", "", "repartition topic of the windows stage (default <app>-windows-repartition)"},
		{"windows-table", "", "changelog of the windows stage (default <app>-windows-table, goka's group table)"},
	}
	var app string
	cmd := &cobra.Command{
		Use:   "cleanup --yes",
		Short: "Delete the project's topics (rides, zones, results, late, dead, repartition, changelog)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []string
			for _, n := range names {
				v := *topics[n.flag]
				if !cmd.Flags().Changed(n.flag) {
					switch n.flag { // the processor app's internal topics
					case "windows":
						v = topology.RepartitionTopic(app)
					case "windows-table":
						v = topology.ChangelogTopic(app)
					}
				}
				if v != "" {
					list = append(list, v)
				}
			}
			if !yes {
				return cli.Usagef("would delete %s: confirm with --yes", strings.Join(list, ", "))
			}
			sec, err := cc.security()
			if err != nil {
				return err
			}
			brokers, err := cc.brokerList()
			if err != nil {
				return err
			}
			res, err := replay.CleanupSecure(cmd.Context(), brokers, sec, list, cc.timeout)
			err = cc.sec.Explain(err)
			for _, r := range res {
				state := "deleted"
				switch {
				case r.Err != nil:
					state = "FAILED: " + r.Err.Error()
				case !r.Deleted:
					state = "not found"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", r.Topic, state)
			}
			return err
		},
	}
	cc.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&yes, "yes", false, "really delete the topics (default false: list them and exit with status 2)")
	f.StringVar(&app, "app", topology.DefaultApp, "the processor app (taxi-stream --app) whose internal topics to delete")
	for _, n := range names {
		topics[n.flag] = f.String(n.flag, n.def, n.what+` to delete ("" keeps it)`)
	}
	return cmd
}

// startCPUProfile writes a pprof CPU profile to path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
