package synth

import (
	"bytes"
	"context"
	"fmt"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// sharedData returns the path of a file in ../shared/data next to the module root. It skips the
// test when the directory is missing, unless CI is set.
func sharedData(t testing.TB, name string) string { return filepath.Join(tlctest.DataDir(t), name) }

// columnInfo is what a reader sees of one leaf column.
type columnInfo struct {
	Name     string
	Physical string // parquet physical type
	Logical  string // logical type annotation, "" if none
	// Converted is the deprecated converted_type annotation, "" if none (only compared for the
	// footer schema; parquet-go derives it from the logical type).
	Converted string
	Optional  bool
}

// columnsOfFile reads the schema of a Parquet file from its footer (the SchemaElements, i.e.
// exactly what was written, not parquet-go's interpretation of it).
func columnsOfFile(t *testing.T, f *parquet.File) []columnInfo {
	t.Helper()
	var cols []columnInfo
	for _, el := range f.Metadata().Schema[1:] { // [0] is the root
		if el.NumChildren.V != 0 || !el.Type.Valid {
			t.Fatalf("unexpected group node %q", el.Name)
		}
		info := columnInfo{
			Name:     el.Name,
			Physical: el.Type.V.String(),
			Logical:  el.LogicalType.String(),
			Optional: el.RepetitionType.Valid && el.RepetitionType.V == format.Optional,
		}
		if ct, ok := el.ConvertedType.Get(); ok {
			info.Converted = fmt.Sprint(ct)
		}
		cols = append(cols, info)
	}
	return cols
}

func openParquet(t *testing.T, data []byte) *parquet.File {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("opening generated Parquet: %v", err)
	}
	return f
}

func writeToBuffer(t *testing.T, cfg Config) ([]byte, Stats) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	st, err := g.WriteParquet(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != int64(buf.Len()) {
		t.Errorf("Stats.Bytes = %d, buffer holds %d", st.Bytes, buf.Len())
	}
	return buf.Bytes(), st
}

// TestSchemaMatchesRealFile reads the footer schema of the real 2025-01 file and of a generated
// file and requires the same columns in the same order with the same physical and logical types,
// all optional.
func TestSchemaMatchesRealFile(t *testing.T) {
	realPath := sharedData(t, "green_tripdata_2025-01.parquet")
	rf, err := os.Open(realPath)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	st, err := rf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	real, err := parquet.OpenFile(rf, st.Size())
	if err != nil {
		t.Fatalf("%s: %v", realPath, err)
	}
	want := columnsOfFile(t, real)
	if len(want) != 21 {
		t.Fatalf("real file has %d columns, SOURCES.md says 21", len(want))
	}

	data, _ := writeToBuffer(t, DefaultConfig(5000))
	got := columnsOfFile(t, openParquet(t, data))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("generated schema differs from %s (-real +generated):\n%s", realPath, diff)
	}
	for _, c := range got {
		if !c.Optional {
			t.Errorf("column %s is not optional", c.Name)
		}
	}
	// The timestamp columns carry the exact annotation of SOURCES.md.
	for _, c := range got[1:3] {
		if c.Logical != "TIMESTAMP(isAdjustedToUTC=false,unit=MICROS)" {
			t.Errorf("%s logical type = %q", c.Name, c.Logical)
		}
	}
}

// TestSchemaSeenByParquetGo compares the schemas as parquet-go interprets them (Kind, logical
// type, optional), which is what the replay producer's reader sees.
func TestSchemaSeenByParquetGo(t *testing.T) {
	realPath := sharedData(t, "green_tripdata_2025-01.parquet")
	raw, err := os.ReadFile(realPath)
	if err != nil {
		t.Fatal(err)
	}
	describe := func(s *parquet.Schema) []columnInfo {
		var out []columnInfo
		for _, path := range s.Columns() {
			leaf, _ := s.Lookup(path...)
			info := columnInfo{Name: path[0], Physical: leaf.Node.Type().Kind().String(), Optional: leaf.Node.Optional()}
			if lt := leaf.Node.Type().LogicalType(); lt != nil {
				info.Logical = lt.String()
			}
			out = append(out, info)
		}
		return out
	}
	data, _ := writeToBuffer(t, DefaultConfig(5000))
	want := describe(openParquet(t, raw).Schema())
	got := describe(openParquet(t, data).Schema())
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parquet-go sees different schemas (-real +generated):\n%s", diff)
	}
}

// TestColumnOrder checks the col* constants against the schema.
func TestColumnOrder(t *testing.T) {
	want := []string{
		"VendorID", "lpep_pickup_datetime", "lpep_dropoff_datetime", "store_and_fwd_flag",
		"RatecodeID", "PULocationID", "DOLocationID", "passenger_count", "trip_distance",
		"fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount", "ehail_fee",
		"improvement_surcharge", "total_amount", "payment_type", "trip_type",
		"congestion_surcharge", "cbd_congestion_fee",
	}
	var got []string
	for _, path := range Schema().Columns() {
		got = append(got, path[0])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("schema column order (-want +got):\n%s", diff)
	}
	idx := map[string]int{
		"VendorID": colVendorID, "lpep_pickup_datetime": colPickup, "lpep_dropoff_datetime": colDropoff,
		"store_and_fwd_flag": colStoreAndFwd, "RatecodeID": colRatecodeID, "PULocationID": colPULocationID,
		"DOLocationID": colDOLocationID, "passenger_count": colPassengerCount, "trip_distance": colTripDistance,
		"fare_amount": colFareAmount, "extra": colExtra, "mta_tax": colMTATax, "tip_amount": colTipAmount,
		"tolls_amount": colTollsAmount, "ehail_fee": colEhailFee, "improvement_surcharge": colImprovement,
		"total_amount": colTotalAmount, "payment_type": colPaymentType, "trip_type": colTripType,
		"congestion_surcharge": colCongestion, "cbd_congestion_fee": colCBD,
	}
	for i, name := range want {
		if idx[name] != i {
			t.Errorf("constant for %s = %d, schema position %d", name, idx[name], i)
		}
	}
	if numColumns != len(want) {
		t.Errorf("numColumns = %d, want %d", numColumns, len(want))
	}
}
