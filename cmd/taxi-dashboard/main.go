// Command taxi-dashboard serves a live web page of taxi-stream's hourly borough
// summaries: the final results (read_committed from the results topic) as time
// series per borough, the open windows' running aggregates (provisional) and the
// pipeline's health from the processors' query API. Updates are pushed to the page
// (Server-Sent Events); the page reconnects by itself when the server restarts.
//
// Brokers that cannot be reached do not stop it: the page, /api/status
// (results.error, results.broker_unreachable) and the log say "broker unreachable"
// until a broker answers.
//
// Exit status (cli.Main): 0 after a clean stop on SIGTERM/SIGINT, 1 error (e.g. the
// --http-addr port is taken), 2 bad usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
	"github.com/taxi-stream/taxi-stream/cmd/internal/dashboard"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/topology"
)

const envPrefix = "TAXI_DASHBOARD"

func main() { os.Exit(cli.Main("taxi-dashboard", newCommand())) }

func newCommand() *cobra.Command {
	var (
		brokers, topic, queryURLs, addr, logFormat, logLevel string
		sec                                                  cli.Security
	)
	cmd := &cobra.Command{
		Use:   "taxi-dashboard",
		Short: "Serve a live web page of the hourly borough summaries and the pipeline's health",
		Example: `  taxi-dashboard --brokers localhost:9092 --query-url http://localhost:8080
  taxi-dashboard --query-url http://stream-1:8080,http://stream-2:8080 --http-addr 127.0.0.1:8090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, bl, err := cli.Setup(cmd.Flags(), envPrefix, &logFormat, &logLevel, &brokers, &sec)
			if err != nil {
				return err
			}
			var urls []string
			for _, u := range strings.Split(queryURLs, ",") {
				if u = strings.TrimSpace(u); u != "" {
					urls = append(urls, u)
				}
			}
			srv, err := dashboard.New(dashboard.Config{
				Brokers: bl, ResultsTopic: topic, QueryURLs: urls, Logger: log,
				Sarama: sec.Sarama(eos.DefaultSaramaConfig), Explain: sec.Explain,
			})
			if err != nil {
				return cli.Usage(err) // a bad --query-url
			}
			ctx := cmd.Context() // ends at SIGTERM/SIGINT (cli.Main): a clean stop
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("--http-addr %s: %w", addr, err)
			}
			log.Info("dashboard", "url", dashboard.URL(ln.Addr()), "results_topic", topic, "query_urls", urls)
			fmt.Fprintf(os.Stderr, "taxi-dashboard: open %s\n", dashboard.URL(ln.Addr()))
			if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	cli.BrokersFlag(f, &brokers)
	f.StringVar(&topic, "results-topic", topology.DefaultTopics().Results, "the processor's results topic (read from the beginning, read_committed)")
	f.StringVar(&queryURLs, "query-url", "http://localhost:8080", "comma-separated base URLs of the processor instances' HTTP servers (taxi-stream --http-addr); empty: results only")
	f.StringVar(&addr, "http-addr", ":8090", "address the dashboard listens on")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	sec.Register(f)
	cli.UseEnv(cmd, envPrefix)
	return cmd
}
