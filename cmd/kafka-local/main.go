// Command kafka-local runs a real Apache Kafka (KRaft) cluster on this machine from
// jars resolved from Maven Central: `kafka-local start` (detached), `stop`,
// `status`, or `run` in the foreground until Ctrl-C.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/taxi-stream/taxi-stream/integration/kafkalocal"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kafka-local:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	var cfg kafkalocal.Config
	root := &cobra.Command{
		Use:   "kafka-local",
		Short: "Run a real Apache Kafka " + kafkalocal.KafkaVersion + " (KRaft) on loopback, from Maven Central jars",
		Example: `  kafka-local start --port 9092        # one node, detached, data in .kafka-local
  kafka-local start --nodes 3 --dir /tmp/k3
  kafka-local status
  kafka-local stop
  kafka-local run                      # foreground until Ctrl-C`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&cfg.Dir, "dir", ".kafka-local", "cluster directory (config, data, logs)")

	addStartFlags := func(c *cobra.Command) {
		c.Flags().IntVar(&cfg.Nodes, "nodes", 1, "number of nodes: 1, or 3 (replication factor 3, min ISR 2)")
		c.Flags().IntSliceVar(&cfg.Ports, "port", nil, "client port of each node (default: free ports)")
		c.Flags().IntVar(&cfg.HeapMB, "heap-mb", 768, "JVM heap of each node in MiB")
		c.Flags().StringVar(&cfg.CacheDir, "cache", kafkalocal.DefaultCacheDir(), "jar cache directory ($TAXI_STREAM_CACHE)")
		c.Flags().DurationVar(&cfg.StartTimeout, "timeout", 90*time.Second, "how long to wait for the nodes to start")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	start := &cobra.Command{
		Use:   "start",
		Short: "Start the cluster in the background and print its bootstrap servers",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Detach, cfg.Logger = true, logger
			c, err := kafkalocal.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			// A shell line: eval "$(kafka-local start)" exports it for the programs.
			fmt.Printf("export KAFKA_BROKERS=%s\n", strings.Join(c.Brokers(), ","))
			return nil
		},
	}
	addStartFlags(start)

	run := &cobra.Command{
		Use:   "run",
		Short: "Run the cluster in the foreground; Ctrl-C stops it cleanly",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg.Logger = logger
			c, err := kafkalocal.Start(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Printf("KAFKA_BROKERS=%s\n", strings.Join(c.Brokers(), ","))
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
		RunE: func(*cobra.Command, []string) error {
			return kafkalocal.StopDetached(cfg.Dir, 30*time.Second)
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the nodes of the cluster in --dir",
		RunE: func(*cobra.Command, []string) error {
			nodes, err := kafkalocal.Status(cfg.Dir)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				state := "stopped"
				if n.Running {
					state = fmt.Sprintf("running (pid %d)", n.PID)
				}
				fmt.Printf("node %d  %s  %s  log %s\n", n.ID, n.Broker, state, n.Log)
			}
			return nil
		},
	}
	root.AddCommand(start, run, stopCmd, status)
	return root
}
