// Command kafka-local runs a real Apache Kafka (KRaft) cluster on this machine from
// jars resolved from Maven Central: `kafka-local start` (detached), `stop`,
// `status`, or `run` in the foreground until Ctrl-C. Every flag can also be set by
// an environment variable: KAFKA_LOCAL_<FLAG> (--heap-mb: KAFKA_LOCAL_HEAP_MB).
//
// Exit status (cli.Main): 0 done (run: stopped by Ctrl-C/SIGTERM, cluster stopped
// cleanly), 1 error, 2 bad usage, 130 interrupted (e.g. start, before the cluster
// was up).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
	"github.com/taxi-stream/taxi-stream/integration/kafkalocal"
)

// envPrefix is the prefix of kafka-local's environment variables (--nodes ->
// KAFKA_LOCAL_NODES, the variable the integration tests' harness reads too).
const envPrefix = "KAFKA_LOCAL"

func main() { os.Exit(cli.Main("kafka-local", newRootCmd())) }

func newRootCmd() *cobra.Command {
	var cfg kafkalocal.Config
	root := &cobra.Command{
		Use:   "kafka-local",
		Short: "Run a real Apache Kafka " + kafkalocal.KafkaVersion + " (KRaft) on loopback, from Maven Central jars",
		Example: `  kafka-local start --port 9092        # one node, detached, data in .kafka-local
  kafka-local start --nodes 3 --dir /tmp/k3
  kafka-local status
  kafka-local stop
  kafka-local run                      # foreground until Ctrl-C
  KAFKA_LOCAL_NODES=3 kafka-local start --dir /tmp/k3`,
		// An unknown command is a usage error (cli.Prepare), and so is none.
		RunE: func(*cobra.Command, []string) error {
			return cli.Usagef("a command is required: start, run, stop or status (see --help)")
		},
	}
	root.PersistentFlags().StringVar(&cfg.Dir, "dir", ".kafka-local", "cluster directory (config, data, logs)")

	addStartFlags := func(c *cobra.Command) {
		c.Flags().IntVar(&cfg.Nodes, "nodes", 1, "number of nodes: 1, or 3 (replication factor 3, min ISR 2)")
		c.Flags().IntSliceVar(&cfg.Ports, "port", nil, "client port of each node (default: free ports)")
		c.Flags().IntVar(&cfg.HeapMB, "heap-mb", 768, "JVM heap of each node in MiB")
		c.Flags().StringVar(&cfg.CacheDir, "cache", kafkalocal.DefaultCacheDir(), "jar cache directory (also $TAXI_STREAM_CACHE)")
		c.Flags().DurationVar(&cfg.StartTimeout, "timeout", 90*time.Second, "how long to wait for the nodes to start")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	start := &cobra.Command{
		Use:   "start",
		Short: "Start the cluster in the background and print its bootstrap servers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkStart(cfg); err != nil {
				return err
			}
			// Already running in --dir: print the same line again, so that
			// eval "$(make -s kafka-start)" works in every new shell.
			if nodes, err := kafkalocal.Status(cfg.Dir); err == nil && len(nodes) > 0 && allRunning(nodes) {
				var brokers []string
				for _, n := range nodes {
					brokers = append(brokers, n.Broker)
				}
				logger.Info("the cluster is already running", "dir", cfg.Dir, "brokers", strings.Join(brokers, ","))
				fmt.Fprintf(cmd.OutOrStdout(), "export KAFKA_BROKERS=%s\n", strings.Join(brokers, ","))
				return nil
			}
			cfg.Detach, cfg.Logger = true, logger
			c, err := kafkalocal.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			// A shell line: eval "$(kafka-local start)" exports it for the programs.
			fmt.Fprintf(cmd.OutOrStdout(), "export KAFKA_BROKERS=%s\n", strings.Join(c.Brokers(), ","))
			return nil
		},
	}
	addStartFlags(start)

	run := &cobra.Command{
		Use:   "run",
		Short: "Run the cluster in the foreground; Ctrl-C stops it cleanly",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkStart(cfg); err != nil {
				return err
			}
			ctx := cmd.Context() // ends at SIGINT/SIGTERM (cli.Main): the normal stop
			cfg.Logger = logger
			c, err := kafkalocal.Start(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "KAFKA_BROKERS=%s\n", strings.Join(c.Brokers(), ","))
			<-ctx.Done()
			logger.Info("stopping")
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return c.Stop(stopCtx)
		},
	}
	addStartFlags(run)

	stopCmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop a cluster started with start",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return kafkalocal.StopDetached(cfg.Dir, 30*time.Second)
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the nodes of the cluster in --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nodes, err := kafkalocal.Status(cfg.Dir)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				state := "stopped"
				if n.Running {
					state = fmt.Sprintf("running (pid %d)", n.PID)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "node %d  %s  %s  log %s\n", n.ID, n.Broker, state, n.Log)
			}
			return nil
		},
	}
	root.AddCommand(start, run, stopCmd, status)
	cli.UseEnv(root, envPrefix)
	return root
}

// checkStart checks the flags of start and run; its errors are usage errors.
func checkStart(cfg kafkalocal.Config) error {
	switch {
	case cfg.Dir == "":
		return cli.Usagef("--dir is empty: give the cluster directory")
	case cfg.Nodes != 1 && cfg.Nodes != 3:
		return cli.Usagef("--nodes %d: want 1 or 3", cfg.Nodes)
	case len(cfg.Ports) != 0 && len(cfg.Ports) != cfg.Nodes:
		return cli.Usagef("--port: %d ports given for %d nodes (one per node, or none for free ports)", len(cfg.Ports), cfg.Nodes)
	case cfg.HeapMB < 1:
		return cli.Usagef("--heap-mb %d: want a positive number of MiB", cfg.HeapMB)
	case cfg.StartTimeout <= 0:
		return cli.Usagef("--timeout %s: want a positive duration", cfg.StartTimeout)
	}
	return nil
}

func allRunning(nodes []kafkalocal.DetachedNode) bool {
	for _, n := range nodes {
		if !n.Running {
			return false
		}
	}
	return true
}
