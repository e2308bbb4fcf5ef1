package codecs_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/tlc"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

// The -update flag is registered by the internal test package (trip_json_test.go); both are
// compiled into one test binary.
func updateFlag() bool { return flag.Lookup("update").Value.(flag.Getter).Get().(bool) }

// TestRealRowsGolden writes a few real rows of each schema variant (row 0, row 1, the first row
// of the null block, a far outlier, the last row) as ride messages and compares them with
// testdata/realrows.golden, then checks that DecodeTrip gives back the same Trip.
func TestRealRowsGolden(t *testing.T) {
	picks := []struct {
		file string
		rows []int
	}{
		{"green_tripdata_2020-12.parquet", []int{0, 1, 46292, 83129}},
		{"green_tripdata_2023-01.parquet", []int{0, 1, 63887, 68210}},
		{"green_tripdata_2024-01.parquet", []int{0, 1, 53136, 56550}},
		{"green_tripdata_2025-01.parquet", []int{0, 1, 228, 46490, 48325}},
		{tlctest.CSVFile, []int{0, 1, 24502, 35611}},
	}
	var out bytes.Buffer
	for _, p := range picks {
		src, err := tlc.OpenFile(tlctest.Path(t, p.file))
		if err != nil {
			t.Fatal(err)
		}
		trips := tlctest.ReadAll(t, src)
		src.Close()
		for _, i := range p.rows {
			b := codecs.AppendTripJSON(nil, &trips[i])
			fmt.Fprintf(&out, "%s:%d\n%s\n", p.file, i, b)
			back, err := codecs.DecodeTrip(b)
			if err != nil {
				t.Fatalf("%s:%d: %v", p.file, i, err)
			}
			// A null column carries no source type, so only the values and the bytes must agree.
			if diff := cmp.Diff(trips[i], back, cmpopts.IgnoreFields(codecs.Layout{}, "Double")); diff != "" {
				t.Errorf("%s:%d: DecodeTrip differs (-read +decoded):\n%s", p.file, i, diff)
			}
			if again := codecs.AppendTripJSON(nil, &back); !bytes.Equal(again, b) {
				t.Errorf("%s:%d: re-encoded message differs:\n%s\n%s", p.file, i, b, again)
			}
		}
	}
	path := filepath.Join("testdata", "realrows.golden")
	if updateFlag() {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), out.String()); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}
