// Command taxi-results follows the results topic (read_committed: only final,
// committed results) and prints each window as a console table, like the original
// Spark job's console sink, or as JSON lines.
//
// Exit status (cli.Main): 0 when it stops after --exit-after-idle or cleanly on
// SIGTERM/SIGINT, 1 error, 2 bad usage.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/results"
	"github.com/taxi-stream/taxi-stream/topology"
)

const envPrefix = "TAXI_RESULTS"

func main() { os.Exit(cli.Main("taxi-results", newCommand())) }

func newCommand() *cobra.Command {
	var (
		brokers, topic, format string
		fromNow                bool
		idle, topicWait        time.Duration
		sec                    cli.Security
	)
	cmd := &cobra.Command{
		Use:   "taxi-results",
		Short: "Print the final hourly borough summaries as they are committed",
		Example: `  taxi-results --brokers localhost:9092
  taxi-results --format json | jq .
  taxi-results --from-now
  taxi-results --exit-after-idle 10s   # print what is there, then stop`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bl, err := cli.Brokers(brokers)
			if err != nil {
				return err
			}
			if format != "table" && format != "json" {
				return cli.Usagef("--format %q: want table or json", format)
			}
			if err := sec.Validate(); err != nil {
				return err
			}
			sec.Brokers = bl // Explain probes them for a protocol mismatch
			// The context ends at SIGTERM/SIGINT (cli.Main): a clean stop.
			return sec.Explain(run(cmd.Context(), results.FollowConfig{Brokers: bl, Topic: topic, FromNewest: fromNow,
				Sarama: sec.Sarama(eos.DefaultSaramaConfig), TopicWait: cmp.Or(topicWait, -1), Logger: slog.Default()}, format, idle))
		},
	}
	f := cmd.Flags()
	cli.BrokersFlag(f, &brokers)
	f.StringVar(&topic, "topic", topology.DefaultTopics().Results, "results topic")
	f.StringVar(&format, "format", "table", "table (one console table per window) or json (one JSON line per window and borough)")
	f.BoolVar(&fromNow, "from-now", false, "start at the end of the topic instead of its beginning")
	f.DurationVar(&topicWait, "topic-wait", 2*time.Minute, "how long to wait for the results topic to exist (the processor creates it) before failing; 0 waits as long as it takes")
	f.DurationVar(&idle, "exit-after-idle", 0, "stop when no result has arrived for this long (0: follow forever)")
	sec.Register(f)
	cli.UseEnv(cmd, envPrefix)
	return cmd
}

func run(ctx context.Context, fc results.FollowConfig, format string, idle time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := &results.Grouper{Quiet: 300 * time.Millisecond}
	lastSeen := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- results.Follow(ctx, fc,
			func(r results.Record, err error) {
				select {
				case lastSeen <- struct{}{}:
				default:
				}
				if err != nil {
					slog.Warn("unreadable result record", "key", r.Key, "err", err)
					return
				}
				if format == "json" {
					fmt.Printf("%s\n", r.Value)
					return
				}
				g.Add(r.Result)
			})
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case err := <-done:
			printReady(g, true)
			return err
		case <-lastSeen:
			last = time.Now()
		case <-tick.C:
			printReady(g, false)
			if idle > 0 && time.Since(last) > idle {
				printReady(g, true)
				cancel()
				return <-done
			}
		}
	}
}

func printReady(g *results.Grouper, force bool) {
	for _, w := range g.Ready(force) {
		_ = results.WriteTable(os.Stdout, w)
	}
}
