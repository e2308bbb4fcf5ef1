// Package zones loads TLC's taxi zone lookup CSV (taxi_zone_lookup.csv, or the legacy
// taxi+_zone_lookup.csv) from a file or an http(s) URL into the compacted zones topic that
// the processor reads as a goka lookup table (docs/design.md, taxi-zones).
//
// Each zone is one record: key codecs.ZoneKey(LocationID) ("132"), value codecs.AppendZoneJSON.
// With one partition (the default) every key lands there. With more, each key is written to
// the partition goka's view looks it up in (FNV-1a 32-bit of the key, as kafkaio.Partition),
// because goka finds a table key only in that partition. Loading the same file again is
// harmless: compaction keeps the latest record per key.
package zones

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/replay/kafkaio"
)

// Defaults of Config.
const (
	DefaultTopic      = "taxi-zones"
	DefaultPartitions = 1
	// DefaultMaxLocationID bounds LocationIDs: TLC's table has 1..265, so a larger ID is a
	// typo or another file.
	DefaultMaxLocationID = 1000
	// MaxFileBytes bounds the zone file (TLC's is 12 KB).
	MaxFileBytes = 16 << 20
)

// Config configures Run.
type Config struct {
	// File is the zone lookup CSV: a local path or an http(s):// URL. Required.
	File string
	// Brokers are the Kafka bootstrap addresses. Required.
	Brokers []string
	// Topic is the zones topic. Default "taxi-zones".
	Topic string
	// Partitions is used when the topic is created; an existing topic keeps its own count.
	// Default 1.
	Partitions int
	// Replication is the replication factor when the topic is created; -1 (default): the
	// broker's default.
	Replication int
	// MaxLocationID is the largest accepted LocationID. Default 1000.
	MaxLocationID int
	// HTTPClient fetches URLs. Default: a client with a 30s timeout.
	HTTPClient *http.Client
	// WriteTimeout bounds each Kafka request. Default 30s.
	WriteTimeout time.Duration
	// RetryTimeout bounds how long brokers that cannot be connected to (restarting,
	// still starting) are waited for, and how long a batch is resent through a broker
	// fault. Default 5m.
	RetryTimeout time.Duration
	// Security: TLS and SASL of the Kafka connections. Default PLAINTEXT.
	Security kafkaio.Security
	// Logger. Default: discard.
	Logger *slog.Logger
	// MissingFileOK: when File is a local path that does not exist, create the
	// (empty) compacted zones topic, warn, and load nothing, instead of failing. The
	// processor then starts and counts every ride under the borough "Unknown" (a
	// docker compose stack without the TLC files, docs/compose.md).
	MissingFileOK bool
}

func (c Config) validated() (Config, error) {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Replication == 0 {
		c.Replication = -1
	}
	if c.MaxLocationID == 0 {
		c.MaxLocationID = DefaultMaxLocationID
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = kafkaio.DefaultWriteTimeout
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = kafkaio.DefaultRetryTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.File == "":
		return c, errors.New("zones: file: none given, want a path or an http(s) URL")
	case len(c.Brokers) == 0:
		return c, errors.New("zones: brokers: none given")
	case c.Partitions < 1:
		return c, fmt.Errorf("zones: partitions %d: want >= 1", c.Partitions)
	case c.Replication < -1 || c.Replication == 0:
		return c, fmt.Errorf("zones: replication %d: want -1 (broker default) or >= 1", c.Replication)
	case c.MaxLocationID < 1:
		return c, fmt.Errorf("zones: max location id %d: want >= 1", c.MaxLocationID)
	case c.WriteTimeout < 0:
		return c, fmt.Errorf("zones: write timeout %v: want > 0", c.WriteTimeout)
	}
	return c, nil
}

// Validate checks the config, naming the first bad setting.
func (c Config) Validate() error {
	_, err := c.validated()
	return err
}

// Summary reports a load.
type Summary struct {
	Zones      int
	Partitions int
	Created    bool
	// PerPartition counts the zones written to each partition.
	PerPartition []int
}

// Load reads and checks the zone file: codecs.ParseZoneCSV's rules (exact header, 4 fields,
// unique LocationIDs > 0) plus LocationID <= MaxLocationID. Errors name the file and line.
func Load(ctx context.Context, cfg Config) ([]codecs.Zone, error) {
	cfg, err := cfg.validatedForLoad()
	if err != nil {
		return nil, err
	}
	data, err := fetch(ctx, cfg)
	if err != nil {
		return nil, err
	}
	zones, err := codecs.ParseZoneCSV(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("zones: %s: %w", cfg.File, err)
	}
	for i, z := range zones {
		if z.LocationID > cfg.MaxLocationID {
			return nil, fmt.Errorf("zones: %s: zone %d of the file (LocationID %d, %q): LocationID out of range, want 1..%d",
				cfg.File, i+1, z.LocationID, z.Zone, cfg.MaxLocationID)
		}
	}
	return zones, nil
}

// validatedForLoad applies the defaults without requiring brokers (Load needs none).
func (c Config) validatedForLoad() (Config, error) {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"unused:0"}
	}
	return c.validated()
}

func fetch(ctx context.Context, cfg Config) ([]byte, error) {
	lower := strings.ToLower(cfg.File)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
		f, err := os.Open(cfg.File)
		if err != nil {
			return nil, fmt.Errorf("zones: %w", err)
		}
		defer f.Close()
		return readLimited(f, cfg.File)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.File, nil)
	if err != nil {
		return nil, fmt.Errorf("zones: %s: %w", cfg.File, err)
	}
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("zones: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("zones: GET %s: %s", cfg.File, resp.Status)
	}
	return readLimited(resp.Body, cfg.File)
}

func readLimited(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("zones: read %s: %w", name, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("zones: %s: larger than %d bytes, not a zone lookup file", name, MaxFileBytes)
	}
	return data, nil
}

// Run loads the zone file and writes every zone to the compacted zones topic (created with
// cleanup.policy=compact when missing; an existing topic that is not compacted is an error,
// since retention would delete zones from the lookup table).
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg, err := cfg.validated()
	if err != nil {
		return Summary{}, err
	}
	var zones []codecs.Zone
	missing := false
	if cfg.MissingFileOK && !strings.HasPrefix(cfg.File, "http://") && !strings.HasPrefix(cfg.File, "https://") {
		if _, err := os.Stat(cfg.File); errors.Is(err, fs.ErrNotExist) {
			missing = true
			cfg.Logger.Warn("zone lookup file missing: creating the empty zones topic; every ride counts under borough Unknown until a zone table is loaded",
				"file", cfg.File, "topic", cfg.Topic)
		}
	}
	if !missing {
		if zones, err = Load(ctx, cfg); err != nil {
			return Summary{}, err
		}
	}
	admin := kafkaio.NewAdmin(cfg.Brokers, cfg.WriteTimeout).WithSecurity(cfg.Security).WithRetry(cfg.RetryTimeout, cfg.Logger)
	parts, created, err := admin.EnsureTopic(ctx, kafkaio.TopicSpec{
		Name: cfg.Topic, Partitions: cfg.Partitions, Replication: cfg.Replication,
		Configs: map[string]string{"cleanup.policy": "compact"},
	})
	if err != nil {
		return Summary{}, fmt.Errorf("zones: %w", err)
	}
	if !created {
		tc, err := admin.TopicConfig(ctx, cfg.Topic)
		if err != nil {
			return Summary{}, fmt.Errorf("zones: %w", err)
		}
		if !strings.Contains(tc["cleanup.policy"], "compact") {
			return Summary{}, fmt.Errorf("zones: topic %s has cleanup.policy=%q, want compact (retention would delete zones); delete it or choose another --topic",
				cfg.Topic, tc["cleanup.policy"])
		}
	}
	sum := Summary{Zones: len(zones), Partitions: parts, Created: created, PerPartition: make([]int, parts)}
	recs := make([]kafkaio.Records, parts)
	for _, z := range zones {
		key := codecs.ZoneKey(z.LocationID)
		p := kafkaio.Partition([]byte(key), parts)
		rs := &recs[p]
		rs.Begin()
		rs.Buf = append(rs.Buf, key...)
		rs.EndKey()
		rs.Buf = codecs.AppendZoneJSON(rs.Buf, z)
		rs.EndValue()
		rs.End()
		sum.PerPartition[p]++
	}
	producer, err := kafkaio.NewProducer(kafkaio.ProducerConfig{
		Brokers: cfg.Brokers, Topic: cfg.Topic, WriteTimeout: cfg.WriteTimeout, ClientID: "taxi-replay-zones",
		Security: cfg.Security, RetryTimeout: cfg.RetryTimeout, Logger: cfg.Logger,
	})
	if err != nil {
		return Summary{}, err
	}
	defer producer.Close()
	for p := range recs {
		if recs[p].Len() == 0 {
			continue
		}
		if _, err := producer.Produce(ctx, p, &recs[p]); err != nil {
			return sum, fmt.Errorf("zones: %w", err)
		}
	}
	cfg.Logger.Info("zones loaded", "file", cfg.File, "topic", cfg.Topic, "zones", len(zones),
		"partitions", parts, "created", created)
	return sum, nil
}
