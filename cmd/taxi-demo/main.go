// Command taxi-demo is the main job end to end on one machine: it starts an embedded
// Kafka-protocol broker (or uses --brokers), loads the zone table, replays a month of
// real TLC trips (../shared/data when present, else generated ones), runs the
// processor with its query API and the live dashboard (the URL is printed), prints
// each hourly window as it closes, and stops when every ride is accounted for
// (--hold keeps the dashboard up until Ctrl-C).
//
// Exit status (cli.Main): 0 done (with --hold: stopped by Ctrl-C after the replay),
// 1 error, 2 bad usage, 130 interrupted before every ride was accounted for.
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
)

const envPrefix = "TAXI_DEMO"

func main() { os.Exit(cli.Main("taxi-demo", newCommand())) }

func newCommand() *cobra.Command {
	var cfg demoConfig
	cmd := &cobra.Command{
		Use:   "taxi-demo",
		Short: "Replay a month of taxi trips through taxi-stream and print the hourly borough summaries",
		Example: `  taxi-demo                                   # embedded broker, real data from ../shared/data
  taxi-demo --brokers localhost:9092          # a real cluster
  taxi-demo --file green_tripdata_2025-01.parquet --format json
  taxi-demo --synthetic 500000                # generated trips
  taxi-demo --speedup 7200 --hold             # watch it live on the dashboard (two hours per second), stay up until Ctrl-C`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), cfg) // the context ends at SIGINT/SIGTERM (cli.Main)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.brokers, "brokers", "", "Kafka bootstrap servers; empty: start an embedded broker in this process")
	f.StringVar(&cfg.dataDir, "data", "", "directory with TLC files and taxi_zone_lookup.csv (default: ../shared/data next to the repository, if present)")
	f.StringVar(&cfg.file, "file", "green_tripdata_2024-01.parquet", "trip file to replay, relative to --data (or a path)")
	f.IntVar(&cfg.synthetic, "synthetic", 0, "replay this many generated trips instead of a real file (default: only when no real data is found: 200000)")
	f.StringVar(&cfg.format, "format", "table", "how windows are printed: table or json")
	f.Float64Var(&cfg.speedup, "speedup", 0, "replay event time this many times faster than real time (0: as fast as possible)")
	f.IntVar(&cfg.partitions, "partitions", 3, "partitions of the rides topic")
	f.StringVar(&cfg.logLevel, "log-level", "warn", "log level of the components")
	f.StringVar(&cfg.dashboardAddr, "dashboard-addr", "127.0.0.1:8090", "address of the live dashboard (a taken port falls back to a free one); empty: no dashboard")
	f.StringVar(&cfg.apiAddr, "http-addr", "127.0.0.1:0", "address of the processor's HTTP server (query API, /metrics) that the dashboard polls")
	f.BoolVar(&cfg.keepTopics, "keep-topics", false, "with --brokers: keep the run's topics (demo-<run>-*, taxi-demo-<run>-*) instead of deleting them at the end")
	f.BoolVar(&cfg.hold, "hold", false, "keep the processor and the dashboard running after the replay has finished, until Ctrl-C")
	cli.UseEnv(cmd, envPrefix)
	return cmd
}
