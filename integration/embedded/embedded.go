// Package embedded runs an in-process Kafka-protocol cluster (franz-go's kfake) for
// zero-setup runs: the demo when no brokers are configured, and fast unit tests.
// It speaks the real protocol over loopback TCP, so goka, Sarama and kafka-go talk
// to it unchanged. It is not Kafka: everything the project claims is proven again
// on a real broker by the integration tests.
package embedded

import (
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Cluster is a running embedded cluster.
type Cluster struct {
	c *kfake.Cluster
}

// Config configures the embedded cluster.
type Config struct {
	// Brokers is the number of brokers (default 1).
	Brokers int
	// Ports pins the listen ports (one per broker); default: free ports.
	Ports []int
	// DataDir, when set, persists the log there so a restart keeps the data.
	DataDir string
	// Logger receives kfake's own log lines at debug level (default: none).
	Logger *slog.Logger
}

// Start starts an embedded cluster listening on loopback.
func Start(cfg Config) (*Cluster, error) {
	if cfg.Brokers == 0 {
		cfg.Brokers = 1
	}
	if len(cfg.Ports) != 0 && len(cfg.Ports) != cfg.Brokers {
		return nil, fmt.Errorf("embedded kafka: %d ports for %d brokers", len(cfg.Ports), cfg.Brokers)
	}
	opts := []kfake.Opt{kfake.NumBrokers(cfg.Brokers)}
	if len(cfg.Ports) > 0 {
		opts = append(opts, kfake.Ports(cfg.Ports...))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.Logger != nil {
		opts = append(opts, kfake.WithLogger(slogLogger{cfg.Logger}))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	return &Cluster{c: c}, nil
}

// Brokers returns the bootstrap addresses.
func (c *Cluster) Brokers() []string { return c.c.ListenAddrs() }

// Close stops the cluster.
func (c *Cluster) Close() { c.c.Close() }

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	s.l.Debug(fmt.Sprintf(msg, args...), "component", "kfake", "level", level.String())
}
