// Command taxi-gen writes a synthetic NYC green-taxi Parquet file (Schema C, see
// producer/synth) for scale tests, benchmarks and demos.
//
// Exit status (cli.Main): 0 done, 1 error, 2 bad usage, 130 interrupted (SIGINT/SIGTERM
// before the file was complete).
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
	"github.com/taxi-stream/taxi-stream/producer/synth"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	os.Exit(cli.Main("taxi-gen", newCommand(log)))
}

// envPrefix is the prefix of taxi-gen's environment variables (--rows -> TAXI_GEN_ROWS).
const envPrefix = "TAXI_GEN"

func newCommand(log *slog.Logger) *cobra.Command {
	def := synth.DefaultConfig(0)
	var (
		rows        int64
		seed        uint64
		month       string
		months      int
		out         string
		order       string
		outliers    bool
		outlierRate float64
		nullFrac    float64
		compression string
		rowGroup    int
	)
	cmd := &cobra.Command{
		Use:   "taxi-gen --rows N --out FILE",
		Short: "Write a synthetic NYC green-taxi trip Parquet file",
		Long: "taxi-gen writes N synthetic green-taxi trips with the schema of TLC's 2025 files.\n" +
			"The same flags give a byte-identical file.",
		Example: `  taxi-gen --rows 2000000 --out /tmp/trips.parquet
  taxi-gen --rows 500000 --order tlc --month 2025-01 --out /tmp/tlc-like.parquet   # file order like TLC's`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return cli.Usagef("--out is required: the Parquet file to write (or $%s)", cli.EnvName(envPrefix, "out"))
			}
			m, err := synth.ParseMonth(month)
			if err != nil {
				return cli.Usagef("--month: %w", err)
			}
			cfg := synth.Config{
				Seed: seed, Rows: rows, Month: m, Months: months, Order: synth.Order(order),
				NullFraction: nullFrac, OutlierRate: outlierRate,
				Compression: synth.Compression(compression), RowGroupRows: rowGroup,
			}
			if !outliers {
				cfg.OutlierRate = 0
			}
			if err := cfg.Validate(); err != nil {
				return flagError(err)
			}
			start := time.Now()
			st, err := synth.WriteFile(cmd.Context(), out, cfg, synth.WithProgress(1_000_000, func(n int64) {
				log.Info("progress", "rows", n, "of", rows, "elapsed", time.Since(start).Round(time.Millisecond))
			}))
			if err != nil {
				return err
			}
			el := time.Since(start)
			log.Info("done", "file", out, "rows", st.Rows, "bytes", st.Bytes, "null_block_rows", st.NullRows,
				"outliers", st.Outliers, "elapsed", el.Round(time.Millisecond),
				"rows_per_s", fmt.Sprintf("%.0f", float64(st.Rows)/el.Seconds()))
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&rows, "rows", 1_000_000, "number of rows")
	f.Uint64Var(&seed, "seed", def.Seed, "random seed")
	f.StringVar(&month, "month", def.Month.Format("2006-01"), "first month of the pickup range (YYYY-MM)")
	f.IntVar(&months, "months", def.Months, "number of months the rows are spread over")
	f.StringVarP(&out, "out", "o", "", "output Parquet file (required)")
	f.StringVar(&order, "order", string(def.Order), `row order: "sorted" (by pickup) or "tlc" (hour-grouped, shuffled, null block last)`)
	f.BoolVar(&outliers, "outliers", true, "displace the timestamps of rare rows (far past, far future, dropoff before pickup)")
	f.Float64Var(&outlierRate, "outlier-rate", def.OutlierRate, "share of outlier rows when --outliers is on")
	f.Float64Var(&nullFrac, "null-fraction", def.NullFraction, "share of rows in the null block")
	f.StringVar(&compression, "compression", string(def.Compression), "zstd, snappy or none")
	f.IntVar(&rowGroup, "row-group-rows", def.RowGroupRows, "rows per Parquet row group")
	cli.UseEnv(cmd, envPrefix)
	return cmd
}

// configFlags names the flag of each synth.Config setting.
var configFlags = map[string]string{
	"Rows": "rows", "Month": "month", "Months": "months", "Order": "order", "NullFraction": "null-fraction",
	"OutlierRate": "outlier-rate", "Compression": "compression", "RowGroupRows": "row-group-rows",
}

// flagError turns synth.Config.Validate's error into a usage error naming the flag.
func flagError(err error) error {
	var ce *synth.ConfigError
	if errors.As(err, &ce) {
		if name, ok := configFlags[ce.Setting]; ok {
			return cli.Usagef("--%s %v: %s", name, ce.Value, ce.Reason)
		}
	}
	return cli.Usage(err)
}
