// Package tlctest locates the real TLC data files for tests (../shared/data next to the module
// root) and reads them. Tests skip when the data is missing, unless the CI environment variable
// is set, in which case they fail.
package tlctest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/tlc"
)

// ParquetFiles are the real green Parquet files with their row counts (SOURCES.md).
var ParquetFiles = []struct {
	Name string
	Rows int64
}{
	{"green_tripdata_2020-12.parquet", 83130},
	{"green_tripdata_2023-01.parquet", 68211},
	{"green_tripdata_2024-01.parquet", 56551},
	{"green_tripdata_2025-01.parquet", 48326},
}

// CSVFile is the real gzipped CSV file and CSVRows its row count.
const (
	CSVFile = "green_tripdata_2020-04.csv.gz"
	CSVRows = 35612
)

// DataDir returns the absolute path of shared/data: the module root (the first directory
// upwards from the working directory holding go.mod) joined with ../shared/data.
func DataDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("tlctest: no go.mod above the working directory")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(data, "SOURCES.md")); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("tlctest: real data missing at %s (CI is set): %v", data, err)
		}
		tb.Skipf("tlctest: real data missing at %s: %v", data, err)
	}
	return data
}

// Path returns the path of a data file.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Join(DataDir(tb), name)
}

// OpenParquet opens a real Parquet file; the file is closed at the end of the test.
func OpenParquet(tb testing.TB, name string) *tlc.Reader {
	tb.Helper()
	f, err := os.Open(Path(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	r, err := tlc.OpenParquet(name, f, st.Size())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// ReadAll returns every trip of a source in file order.
func ReadAll(tb testing.TB, src tlc.Source) []codecs.Trip {
	tb.Helper()
	var all []codecs.Trip
	buf := make([]codecs.Trip, 4096)
	for {
		n, err := src.Next(buf)
		if errors.Is(err, io.EOF) {
			return all
		}
		if err != nil {
			tb.Fatal(err)
		}
		all = append(all, buf[:n]...)
	}
}
