package replay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"

	kafka "github.com/segmentio/kafka-go"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/replay/kafkaio"
	"github.com/taxi-stream/taxi-stream/producer/replay/source"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
)

// Order is the replay order.
type Order string

const (
	// OrderEventTime sends rows sorted by event time (the dropoff time by default), ties by
	// input position then row: the order in which trips would have arrived in real time.
	OrderEventTime Order = "dropoff"
	// OrderFile sends file after file, each in its own row order (what the original Python
	// producer did).
	OrderFile Order = "file"
)

// Defaults of Config.
const (
	DefaultTopic       = "taxi-rides"
	DefaultMarkerEvery = 1000
	DefaultPartitions  = 3
	DefaultReplication = -1
	DefaultChunkRows   = 2048
	DefaultQueueDepth  = 2
	DefaultLinger      = 100 * time.Millisecond
	DefaultLogEvery    = 10 * time.Second
	// DefaultSortRunRows bounds the rows held in memory while sorting (order.Config.MaxRunRows):
	// 65536 rows are about 30 MB, and two runs are in memory (one read, one spilled). Measured
	// on 2M rows, larger runs sort no faster (the merge of more, smaller runs is cheap) and 1<<18
	// took the process to 420 MB RSS instead of 110 MB.
	DefaultSortRunRows = 1 << 16
)

// Config configures Run. The zero value of every field but Inputs and Brokers means its
// default; Validate names the first bad setting.
type Config struct {
	// Inputs are files, directories, globs and hdfs:// URLs (package source). Required.
	Inputs []string
	// HDFS configures hdfs:// inputs (users, Kerberos).
	HDFS source.HDFSConfig

	// Brokers are the Kafka bootstrap addresses. Required.
	Brokers []string
	// Security: TLS and SASL of the Kafka connections. Default PLAINTEXT.
	Security kafkaio.Security
	// Topic is the rides topic. Default "taxi-rides".
	Topic string
	// Partitions is the partition count used when the topic is created (an existing topic
	// keeps its own). Default 3, as in the original pipeline. Kafka's num.partitions.
	Partitions int
	// Replication is the replication factor used when the topic is created; -1 (the default)
	// takes the broker's default.replication.factor.
	Replication int

	// Order is the send order. Default OrderEventTime.
	Order Order
	// EventTime is the timestamp column that is the event time: the sort key of
	// OrderEventTime and what the markers' watermark is estimated from. Default
	// codecs.ColDropoff (docs/design.md). Spark: the column given to withWatermark.
	EventTime codecs.Column

	// Rate limits the send rate in rows per second; 0 (default) sends as fast as possible.
	Rate float64
	// Speedup replays event time this many times faster than real time (3600: an hour of
	// trips per second); 0 (default) is off. The event-time clock is the producer's watermark
	// estimate, so outliers do not stall or rush the replay; jumps of more than 6 h of event
	// time are not waited for. Exclusive with Rate.
	Speedup float64

	// NoMarkers turns watermark markers off (--markers=false). Default: markers on.
	NoMarkers bool
	// MarkerEvery is the number of rows between two markers. Default 1000.
	MarkerEvery int
	// Watermark configures the estimator behind the markers. Default: the processor's
	// quantile and window with Delay 0 (the processor subtracts its own delay).
	Watermark watermark.Config

	// Resume continues a replay that was interrupted or killed: the topic's partitions are
	// read to find where each ends, and only what is missing is sent (see the package doc).
	Resume bool
	// SkipVerify skips the full read of every input before the first send in file order
	// (event-time order always reads everything first). Default: verify, so that a corrupt
	// file stops the replay before anything is written.
	SkipVerify bool

	// Compression of the record batches: zstd (default), snappy, lz4, gzip or none.
	// Kafka's compression.type.
	Compression string
	// ZstdLevel is the zstd level, 1..22 (default 1); klauspost/compress maps it to its four
	// speeds: 1-2 fastest, 3-5 default (kafka-go's own choice), 6-9 better, 10+ best. On
	// ride batches level 1 costs about 20 % less CPU than 3 for the same ratio (11.5:1,
	// kafkaio's BenchmarkBatchEncode). Kafka's compression.zstd.level.
	ZstdLevel int
	// MaxBatchBytes bounds one record batch by its uncompressed record bytes. Default
	// 1,000,000 (below the broker's default message.max.bytes of 1 MiB).
	MaxBatchBytes int
	// ChunkRows is how many records of one partition are handed to its sender at once (one
	// or more record batches). Default 2048. Larger chunks compress better and cost memory.
	ChunkRows int
	// QueueDepth is how many chunks per partition may wait behind the one being sent.
	// Default 2.
	QueueDepth int
	// Linger is how long a partly filled chunk may wait while the replay is paced or
	// waiting for input. Default 100ms. Kafka's linger.ms.
	Linger time.Duration
	// WriteTimeout bounds one produce request including the acks of all in-sync replicas.
	// Default 30s. Kafka's request.timeout.ms.
	WriteTimeout time.Duration
	// RetryTimeout bounds how long a batch is resent through broker faults (a restart, a
	// leader change, a lost node) before the replay stops; the producer is idempotent, so
	// resending never duplicates. Default 5m. Kafka's delivery.timeout.ms.
	RetryTimeout time.Duration

	// SortRunRows bounds the rows held in memory by the event-time sort (more are spilled
	// to sorted runs in TempDir). Default 65536 (about 30 MB).
	SortRunRows int
	// TempDir holds the sort's spill files. Default os.TempDir().
	TempDir string

	// Logger receives progress and summary lines. Default: discard.
	Logger *slog.Logger
	// ProgressBar, when set, shows a live progress bar there (a terminal); LogEvery is then
	// ignored.
	ProgressBar io.Writer
	// LogEvery is the interval of the progress log lines when there is no ProgressBar.
	// Default 10s; negative turns them off.
	LogEvery time.Duration
}

// DefaultWatermark is the estimator the producer uses for markers: the processor's defaults
// with no delay.
func DefaultWatermark() watermark.Config {
	c := watermark.DefaultConfig()
	c.Delay = 0
	return c
}

func (c Config) withDefaults() Config {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Replication == 0 {
		c.Replication = DefaultReplication
	}
	if c.Order == "" {
		c.Order = OrderEventTime
	}
	if c.EventTime == 0 { // ColVendorID is not a timestamp, so 0 means unset
		c.EventTime = codecs.ColDropoff
	}
	if c.MarkerEvery == 0 {
		c.MarkerEvery = DefaultMarkerEvery
	}
	if c.Watermark == (watermark.Config{}) {
		c.Watermark = DefaultWatermark()
	}
	if c.Compression == "" {
		c.Compression = "zstd"
	}
	if c.ZstdLevel == 0 {
		c.ZstdLevel = kafkaio.DefaultZstdLevel
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = kafkaio.DefaultMaxBatchBytes
	}
	if c.ChunkRows == 0 {
		c.ChunkRows = DefaultChunkRows
	}
	if c.QueueDepth == 0 {
		c.QueueDepth = DefaultQueueDepth
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = kafkaio.DefaultWriteTimeout
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = kafkaio.DefaultRetryTimeout
	}
	if c.SortRunRows == 0 {
		c.SortRunRows = DefaultSortRunRows
	}
	if c.LogEvery == 0 {
		c.LogEvery = DefaultLogEvery
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate fills the defaults and checks every setting, naming the first bad one.
func (c Config) Validate() error {
	_, err := c.validated()
	return err
}

func (c Config) validated() (Config, error) {
	c = c.withDefaults()
	bad := func(format string, args ...any) (Config, error) { return c, fmt.Errorf(format, args...) }
	switch {
	case len(c.Inputs) == 0:
		return bad("inputs: none given, want files, directories, globs or hdfs:// URLs")
	case len(c.Brokers) == 0:
		return bad("brokers: none given")
	case c.Partitions < 1:
		return bad("partitions %d: want >= 1", c.Partitions)
	case c.Replication < -1 || c.Replication > math.MaxInt16:
		return bad("replication %d: want -1 (broker default) or >= 1", c.Replication)
	case c.Order != OrderEventTime && c.Order != OrderFile:
		return bad("order %q: want %q or %q", c.Order, OrderEventTime, OrderFile)
	case c.EventTime >= codecs.NumColumns || c.EventTime.Type() != codecs.TypeTimestamp:
		return bad("event time column %d: want the pickup or dropoff time", c.EventTime)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return bad("rate %v: want >= 0 rows/s (0 = unlimited)", c.Rate)
	case c.Speedup < 0 || math.IsNaN(c.Speedup) || math.IsInf(c.Speedup, 0):
		return bad("speedup %v: want >= 0 (0 = off)", c.Speedup)
	case c.Rate > 0 && c.Speedup > 0:
		return bad("rate %v and speedup %v: choose one", c.Rate, c.Speedup)
	case c.MarkerEvery < 1:
		return bad("marker-every %d: want >= 1", c.MarkerEvery)
	case c.ZstdLevel < 1 || c.ZstdLevel > 22:
		return bad("zstd level %d: want 1..22", c.ZstdLevel)
	case c.MaxBatchBytes < 1024:
		return bad("max batch bytes %d: want >= 1024", c.MaxBatchBytes)
	case c.ChunkRows < 1:
		return bad("chunk rows %d: want >= 1", c.ChunkRows)
	case c.QueueDepth < 1:
		return bad("queue depth %d: want >= 1", c.QueueDepth)
	case c.Linger < 0:
		return bad("linger %v: want >= 0", c.Linger)
	case c.WriteTimeout < 0:
		return bad("write timeout %v: want > 0", c.WriteTimeout)
	case c.RetryTimeout < 0:
		return bad("retry timeout %v: want > 0", c.RetryTimeout)
	case c.SortRunRows < 1:
		return bad("sort run rows %d: want >= 1", c.SortRunRows)
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" || !strings.Contains(b, ":") {
			return bad("broker %q: want host:port", b)
		}
	}
	if err := c.Watermark.Validate(); err != nil {
		return bad("marker %w", err)
	}
	if _, err := ParseCompression(c.Compression); err != nil {
		return c, err
	}
	if err := c.HDFS.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// ParseCompression maps a compression name (zstd, snappy, lz4, gzip, none) to kafka-go's.
func ParseCompression(name string) (kafka.Compression, error) {
	switch strings.ToLower(name) {
	case "zstd":
		return kafka.Zstd, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "gzip":
		return kafka.Gzip, nil
	case "none", "uncompressed":
		return 0, nil
	}
	return 0, errors.New("compression " + fmt.Sprintf("%q", name) + ": want zstd, snappy, lz4, gzip or none")
}

// ParseEventTime maps "dropoff" / "pickup" to the column.
func ParseEventTime(name string) (codecs.Column, error) {
	switch strings.ToLower(name) {
	case "dropoff", "":
		return codecs.ColDropoff, nil
	case "pickup":
		return codecs.ColPickup, nil
	}
	return 0, fmt.Errorf("event time %q: want dropoff or pickup", name)
}
