package synth

import (
	"context"
	"io"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// The benchmarks report rows/s; they never fail on speed.

// BenchmarkGenerate measures the in-memory generator alone (no Parquet).
func BenchmarkGenerate(b *testing.B) {
	for _, order := range []Order{OrderSorted, OrderTLC} {
		b.Run(string(order), func(b *testing.B) {
			cfg := DefaultConfig(1_000_000)
			cfg.Order = order
			g, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := g.Generate(context.Background(), func([]Ride) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*float64(cfg.Rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkWriteParquet measures generation + encoding + compression into io.Discard, per codec.
func BenchmarkWriteParquet(b *testing.B) {
	for _, c := range []Compression{CompressionZstd, CompressionSnappy, CompressionNone} {
		b.Run(string(c), func(b *testing.B) {
			cfg := DefaultConfig(1_000_000)
			cfg.Compression = c
			g, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			var size int64
			b.ReportAllocs()
			for b.Loop() {
				st, err := g.WriteParquet(context.Background(), io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				size = st.Bytes
			}
			b.ReportMetric(float64(b.N)*float64(cfg.Rows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size)/float64(cfg.Rows), "bytes/row")
		})
	}
}

// BenchmarkColumnValues measures the conversion of a batch of rides into parquet.Values, all
// columns.
func BenchmarkColumnValues(b *testing.B) {
	rides, err := Rides(context.Background(), DefaultConfig(batchRows))
	if err != nil {
		b.Fatal(err)
	}
	vals := make([]parquet.Value, 0, len(rides))
	yes, no := []byte("Y"), []byte("N")
	for b.Loop() {
		for col := range numColumns {
			vals = columnValues(vals[:0], col, rides, yes, no)
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(rides))/b.Elapsed().Seconds(), "rows/s")
}
