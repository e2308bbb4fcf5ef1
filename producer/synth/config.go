package synth

import (
	"fmt"
	"time"
)

// Order is the order of the rows inside a generated file.
type Order string

const (
	// OrderSorted sorts the rows by their nominal pickup time (outliers keep the position of the
	// pickup they were displaced from, see Config.OutlierRate). Ties keep generation order.
	OrderSorted Order = "sorted"
	// OrderTLC imitates the real TLC files (SOURCES.md "File order"): first the rows outside the
	// null block, grouped by pickup hour and shuffled inside the hour, then the null block, again
	// from the start of the range, grouped by hour and shuffled inside the hour.
	OrderTLC Order = "tlc"
)

// Compression names a Parquet compression codec.
type Compression string

const (
	CompressionZstd   Compression = "zstd"   // zstd, fastest level (the TLC files use zstd)
	CompressionSnappy Compression = "snappy" // snappy
	CompressionNone   Compression = "none"   // uncompressed
)

// Limits checked by Config.Validate.
const (
	// MaxRows bounds Config.Rows (2^32, about 4.3 billion; the sort scratch of the busiest hour
	// stays below 250 MB).
	MaxRows = int64(1) << 32
	// MaxMonths bounds Config.Months (100 years).
	MaxMonths = 1200
	// MaxOutlierRate bounds Config.OutlierRate.
	MaxOutlierRate = 0.01
	// MaxNullFraction bounds Config.NullFraction.
	MaxNullFraction = 0.5
	// MinRowGroupRows bounds Config.RowGroupRows from below.
	MinRowGroupRows = 1024
)

// Range limits of Config.Month (wall-clock Unix seconds): green taxis (Boro Taxis) started in
// August 2013, and the range must end by 2100-01-01.
const (
	firstMonth   = 1375315200 // 2013-08-01
	lastMonthEnd = 4102444800 // 2100-01-01
)

// Config is everything that determines a generated file. Equal Configs give byte-identical
// files. Zero values of the optional knobs turn the feature off; DefaultConfig gives the
// realistic defaults.
type Config struct {
	// Seed selects the random stream. Default 1.
	Seed uint64
	// Rows is the number of rows to generate (required, 1..MaxRows).
	Rows int64
	// Month is the first month of the nominal pickup range, as a time whose year and month are
	// used (day, clock and location must be the first of the month, 00:00, UTC; see ParseMonth).
	// Default 2025-01. Timestamps are NYC wall clock written as naive TIMESTAMP(MICROS) values,
	// exactly like TLC's files.
	Month time.Time
	// Months is how many consecutive months the rows are spread over. Default 1.
	Months int
	// Order of the rows in the file. Default OrderSorted.
	Order Order
	// NullFraction is the share of rows in TLC's null block, whose passenger_count, RatecodeID,
	// store_and_fwd_flag, payment_type, trip_type, congestion_surcharge and cbd_congestion_fee
	// are null together (SOURCES.md: 3.8 %..6.3 % in 2023–2025). Default 0.06, 0 turns it off.
	NullFraction float64
	// OutlierRate is the share of rows whose timestamps are displaced like TLC's broken rows:
	// a third to 2009-01-01 (far past), a third 1 to 365 days after the end of the range (far
	// future), a third with the dropoff up to one hour before the pickup. Default 1e-5 (1 in
	// 100k), 0 turns them off.
	OutlierRate float64
	// Compression of the Parquet column chunks. Default CompressionZstd.
	Compression Compression
	// RowGroupRows is the number of rows per Parquet row group; it bounds the writer's memory.
	// Default 1<<20.
	RowGroupRows int
}

// Defaults of Config.
const (
	DefaultSeed         = 1
	DefaultNullFraction = 0.06
	DefaultOutlierRate  = 1e-5
	DefaultRowGroupRows = 1 << 20
)

// DefaultConfig returns the realistic defaults for rows rows in January 2025.
func DefaultConfig(rows int64) Config {
	return Config{
		Seed:         DefaultSeed,
		Rows:         rows,
		Month:        time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC),
		Months:       1,
		Order:        OrderSorted,
		NullFraction: DefaultNullFraction,
		OutlierRate:  DefaultOutlierRate,
		Compression:  CompressionZstd,
		RowGroupRows: DefaultRowGroupRows,
	}
}

// ParseMonth parses "2025-01" into the Config.Month form.
func ParseMonth(s string) (time.Time, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("synth: month %q: want YYYY-MM: %w", s, err)
	}
	return t, nil
}

// ConfigError says which Config setting is invalid and why.
type ConfigError struct {
	Setting string // Config field name, e.g. "Rows"
	Value   any
	Reason  string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("synth: Config.%s = %v: %s", e.Setting, e.Value, e.Reason)
}

// Validate checks every setting and returns a *ConfigError naming the first invalid one.
func (c Config) Validate() error {
	bad := func(setting string, value any, reason string) error {
		return &ConfigError{Setting: setting, Value: value, Reason: reason}
	}
	if c.Rows < 1 || c.Rows > MaxRows {
		return bad("Rows", c.Rows, fmt.Sprintf("must be in 1..%d", MaxRows))
	}
	if c.Month.Location() != time.UTC || c.Month.Day() != 1 || c.Month.Hour() != 0 ||
		c.Month.Minute() != 0 || c.Month.Second() != 0 || c.Month.Nanosecond() != 0 {
		return bad("Month", c.Month, "must be the first of a month, 00:00 UTC (use ParseMonth)")
	}
	if c.Month.Unix() < firstMonth {
		return bad("Month", c.Month.Format("2006-01"), "must not be before 2013-08 (first green taxi month)")
	}
	if c.Months < 1 || c.Months > MaxMonths {
		return bad("Months", c.Months, fmt.Sprintf("must be in 1..%d", MaxMonths))
	}
	if end := c.Month.AddDate(0, c.Months, 0); end.Unix() > lastMonthEnd {
		return bad("Months", c.Months, "range must end by 2100-01")
	}
	if c.Order != OrderSorted && c.Order != OrderTLC {
		return bad("Order", c.Order, `must be "sorted" or "tlc"`)
	}
	if !(c.NullFraction >= 0 && c.NullFraction <= MaxNullFraction) { // also rejects NaN
		return bad("NullFraction", c.NullFraction, fmt.Sprintf("must be in [0, %g]", MaxNullFraction))
	}
	if !(c.OutlierRate >= 0 && c.OutlierRate <= MaxOutlierRate) {
		return bad("OutlierRate", c.OutlierRate, fmt.Sprintf("must be in [0, %g]", MaxOutlierRate))
	}
	switch c.Compression {
	case CompressionZstd, CompressionSnappy, CompressionNone:
	default:
		return bad("Compression", c.Compression, `must be "zstd", "snappy" or "none"`)
	}
	if c.RowGroupRows < MinRowGroupRows {
		return bad("RowGroupRows", c.RowGroupRows, fmt.Sprintf("must be >= %d", MinRowGroupRows))
	}
	return nil
}

// rangeStart and rangeEnd are the nominal pickup range [start, end) in wall-clock Unix seconds.
func (c Config) rangeStart() int64 { return c.Month.Unix() }
func (c Config) rangeEnd() int64   { return c.Month.AddDate(0, c.Months, 0).Unix() }
