// Command taxi-bench-peers is `make bench-peers`: taxi-stream against its peers on one
// backlog, measured the way a user runs each of them.
//
// It starts a local Kafka broker (integration/kafkalocal, as `make kafka-start`), generates
// the backlog with taxi-gen, replays it with taxi-replay's defaults into a 3-partition topic,
// and runs in turn, each from offset 0 with a clock from process start until every ride is
// accounted for:
//
//   - the taxi-stream binary with its defaults (exactly_once), then with at_least_once; done
//     when its own /metrics count every ride as closed, late or dead;
//   - the original tutorial's Spark Structured Streaming job (spark_job.py; pyspark from PyPI
//     in a venv under ~/.cache/taxi-stream/bench-peers, the Kafka connector jars from Maven
//     Central), local[2]; done when it has read every message and written the windows the
//     watermark closed;
//   - the limit: a franz-go consumer that decodes every ride with codecs.DecodeRideFacts and
//     does nothing else (`taxi-bench-peers limit`);
//   - the original Python producer (producer.py: pandas.read_parquet + iterrows + to_json +
//     kafka-python) against taxi-replay, in rows/s; taxi-replay is measured a second time
//     into a topic of its own once the broker is warm (its first run, which filled the
//     backlog topic on the fresh broker, is shown but not compared).
//
// It checks that the engines agree cell by cell, prints one table, appends it to
// docs/benchmarks.md (--doc) and ends with one machine-readable line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "limit" {
		err = limitMain(ctx, os.Args[2:])
	} else {
		err = benchMain(ctx, os.Args[1:])
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "taxi-bench-peers:", err)
		}
		os.Exit(1)
	}
}

func benchMain(ctx context.Context, args []string) error {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("taxi-bench-peers", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: taxi-bench-peers [flags]   (make bench-peers ROWS=2000000)\n"+
			"       taxi-bench-peers limit --brokers B --topic T --rides N\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.Rows, "rows", cfg.Rows, "rides of the generated backlog (taxi-gen --rows)")
	fs.IntVar(&cfg.PyRows, "py-rows", cfg.PyRows, "rows the original Python producer sends (-1: all of the backlog; 0: skip it)")
	fs.StringVar(&cfg.Peers, "peers", cfg.Peers, `run Spark and the Python producer: "on", "off", or "auto" (on unless PyPI cannot be reached; with CI=true always on)`)
	fs.StringVar(&cfg.WorkDir, "work-dir", cfg.WorkDir, "directory for the broker, backlog and outputs (default: a new temporary directory, removed at the end)")
	fs.StringVar(&cfg.CacheDir, "cache", cfg.CacheDir, "cache of the Python venv and the Spark connector jars")
	fs.StringVar(&cfg.Zones, "zones", cfg.Zones, "zone lookup CSV (default: ../shared/data/taxi_zone_lookup.csv beside the module)")
	fs.StringVar(&cfg.Doc, "doc", cfg.Doc, `markdown file the table is added to ("" : none)`)
	fs.StringVar(&cfg.PprofDir, "pprof-dir", cfg.PprofDir, "save CPU and allocation profiles of the exactly-once taxi-stream run here (\"\": none)")
	fs.IntVar(&cfg.SparkShufflePartitions, "spark-shuffle-partitions", 0, "spark.sql.shuffle.partitions of the Spark job (0: Spark's default, 200, as the tutorial ran it)")
	fs.IntVar(&cfg.WarmTxns, "warm-txns", cfg.WarmTxns, "transactions that warm the broker's transaction path before the engines run (a fresh broker JVM costs ~3x the CPU per transaction; 0: none)")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "pairs of compared taxi-stream runs (exactly_once and at_least_once, alternating); the table shows each guarantee's median")
	fs.StringVar(&cfg.ABEnv, "ab-env", "", `also run taxi-stream (exactly_once) alternately without and with these environment variables, e.g. "GOGC=200"`)
	fs.IntVar(&cfg.ABRounds, "ab-rounds", 2, "pairs of --ab-env runs")
	fs.StringVar(&cfg.Brokers, "brokers", cfg.Brokers, "use this Kafka cluster instead of starting a local broker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rep, err := Run(ctx, cfg, logger)
	if err != nil {
		return err
	}
	fmt.Print(rep.Table())
	fmt.Println(rep.Line())
	return nil
}
