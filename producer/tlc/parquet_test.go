package tlc_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/tlc"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

func wall(s string) int64 {
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

// fileFacts are the SOURCES.md facts checked against every row of a real file.
type fileFacts struct {
	name                       string
	rows                       int
	layout                     codecs.Layout
	pickupMin, pickupMax       string
	dropoffMin, dropoffMax     string
	nullPassengers, nullRate   int
	nullTripType               int
	nullBlockStart             int
	pu264, pu265               int
	dropBeforePick, dropEqPick int
}

var realFacts = []fileFacts{
	{"green_tripdata_2020-12.parquet", 83130, codecs.GreenLayoutA, "2009-01-01 21:46:25", "2021-01-01 00:03:16",
		"2009-01-01 21:58:56", "2021-01-01 16:00:07", 36838, 36838, 36838, 46292, 121, 204, 1, 83},
	{"green_tripdata_2023-01.parquet", 68211, codecs.GreenLayoutA, "2009-01-01 20:21:27", "2023-02-01 03:10:05",
		"2009-01-02 11:07:31", "2023-02-01 17:27:05", 4324, 4324, 4334, 63887, 135, 66, 0, 61},
	{"green_tripdata_2024-01.parquet", 56551, codecs.GreenLayoutB, "2023-12-31 14:38:47", "2024-01-31 23:57:29",
		"2023-12-31 14:46:45", "2024-02-01 19:17:30", 3415, 3415, 3418, 53136, 112, 29, 0, 76},
	{"green_tripdata_2025-01.parquet", 48326, codecs.GreenLayoutC, "2024-12-25 23:13:15", "2025-02-05 18:46:24",
		"2024-12-25 23:13:17", "2025-02-05 19:11:47", 1836, 1836, 1843, 46490, 105, 18, 0, 48},
}

func TestRealParquetFilesMatchSources(t *testing.T) {
	for _, ff := range realFacts {
		t.Run(ff.name, func(t *testing.T) {
			r := tlctest.OpenParquet(t, ff.name)
			if r.Layout() != ff.layout {
				t.Errorf("layout %+v, want %+v", r.Layout(), ff.layout)
			}
			if r.NumRows() != int64(ff.rows) {
				t.Errorf("NumRows %d, want %d", r.NumRows(), ff.rows)
			}
			trips := tlctest.ReadAll(t, r)
			if len(trips) != ff.rows || r.Pos() != int64(ff.rows) {
				t.Fatalf("read %d rows (Pos %d), want %d", len(trips), r.Pos(), ff.rows)
			}
			checkFacts(t, trips, ff)
		})
	}
}

func checkFacts(t *testing.T, trips []codecs.Trip, ff fileFacts) {
	t.Helper()
	var got fileFacts
	got.name, got.rows, got.layout = ff.name, len(trips), ff.layout
	pmin, pmax, dmin, dmax := int64(math.MaxInt64), int64(math.MinInt64), int64(math.MaxInt64), int64(math.MinInt64)
	got.nullBlockStart = -1
	for i, tr := range trips {
		if tr.Layout != ff.layout {
			t.Fatalf("row %d: layout %+v", i, tr.Layout)
		}
		if !tr.Pickup.Valid || !tr.Dropoff.Valid || !tr.PULocationID.Valid || !tr.DOLocationID.Valid {
			t.Fatalf("row %d: null timestamp or location: %+v", i, tr)
		}
		if tr.EhailFee.Valid {
			t.Fatalf("row %d: ehail_fee not null", i)
		}
		pmin, pmax = min(pmin, tr.Pickup.V), max(pmax, tr.Pickup.V)
		dmin, dmax = min(dmin, tr.Dropoff.V), max(dmax, tr.Dropoff.V)
		if !tr.PassengerCount.Valid {
			got.nullPassengers++
			if got.nullBlockStart < 0 {
				got.nullBlockStart = i
			}
			// The same rows are null in these columns (SOURCES.md "Null pattern").
			if tr.RatecodeID.Valid || tr.StoreAndFwdFlag.Valid || tr.PaymentType.Valid || tr.CongestionSurcharge.Valid ||
				(ff.layout.Present.Has(codecs.ColCBDCongestionFee) && tr.CBDCongestionFee.Valid) {
				t.Fatalf("row %d: null passenger_count but other pattern columns set: %+v", i, tr)
			}
		} else if got.nullBlockStart >= 0 {
			t.Fatalf("row %d: non-null passenger_count after the null block started at %d", i, got.nullBlockStart)
		}
		if !tr.RatecodeID.Valid {
			got.nullRate++
		}
		if !tr.TripType.Valid {
			got.nullTripType++
		}
		switch tr.PULocationID.V {
		case 264:
			got.pu264++
		case 265:
			got.pu265++
		}
		if tr.PULocationID.V < 1 || tr.PULocationID.V > 265 {
			t.Fatalf("row %d: PULocationID %d", i, tr.PULocationID.V)
		}
		if tr.VendorID.V != 1 && tr.VendorID.V != 2 {
			t.Fatalf("row %d: VendorID %+v", i, tr.VendorID)
		}
		switch {
		case tr.Dropoff.V < tr.Pickup.V:
			got.dropBeforePick++
		case tr.Dropoff.V == tr.Pickup.V:
			got.dropEqPick++
		}
	}
	f := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.DateTime) }
	got.pickupMin, got.pickupMax, got.dropoffMin, got.dropoffMax = f(pmin), f(pmax), f(dmin), f(dmax)
	if diff := cmp.Diff(ff, got, cmp.AllowUnexported(fileFacts{})); diff != "" {
		t.Errorf("facts differ from SOURCES.md (-want +got):\n%s", diff)
	}
}

func TestBatchSizesGiveIdenticalRows(t *testing.T) {
	const name = "green_tripdata_2025-01.parquet"
	want := tlctest.ReadAll(t, tlctest.OpenParquet(t, name))
	for _, size := range []int{1, 7, 1023, 1024, 1025, 100000} {
		r := tlctest.OpenParquet(t, name)
		buf := make([]codecs.Trip, size)
		var got []codecs.Trip
		for {
			pos := r.Pos()
			n, err := r.Next(buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 || r.Pos() != pos+int64(n) {
				t.Fatalf("batch %d: n=%d, Pos %d -> %d", size, n, pos, r.Pos())
			}
			got = append(got, buf[:n]...)
		}
		if n, err := r.Next(buf); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("Next after EOF = %d, %v", n, err)
		}
		if len(got) != len(want) {
			t.Fatalf("batch size %d: %d rows, want %d", size, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] { // Trip is comparable; cmp.Equal is too slow for 48k rows
				t.Fatalf("batch size %d: row %d differs:\n%+v\n%+v", size, i, got[i], want[i])
			}
		}
	}
}

// copyReal returns the bytes of a real file.
func copyReal(t *testing.T, name string) []byte {
	b, err := os.ReadFile(tlctest.Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAllErr opens and reads a Parquet file, returning the first error.
func readAllErr(name string, data []byte) (rows int, err error) {
	r, err := tlc.OpenParquet(name, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return 0, err
	}
	defer r.Close()
	buf := make([]codecs.Trip, 1000)
	for {
		n, err := r.Next(buf)
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows += n
	}
}

func TestBadParquetFiles(t *testing.T) {
	real := copyReal(t, "green_tripdata_2024-01.parquet")
	flipped := bytes.Clone(real)
	for i := 1000; i < 200000; i += 997 { // inside the column chunks, away from the footer
		flipped[i] ^= 0xff
	}
	footer := bytes.Clone(real)
	for i := len(footer) - 3000; i < len(footer)-8; i += 7 { // thrift metadata, magic intact
		footer[i] ^= 0x5a
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty.parquet", nil, "empty file (0 bytes)"},
		{"text.parquet", []byte("VendorID,lpep_pickup_datetime\n1,2024-01-01 00:00:00\n"), "not a readable parquet file"},
		{"magic-only.parquet", []byte("PAR1PAR1"), "parquet"},
		{"truncated-half.parquet", real[:len(real)/2], "not a readable parquet file"},
		{"truncated-tail.parquet", real[:len(real)-1], "not a readable parquet file"},
		{"flipped.parquet", flipped, "flipped.parquet"},
		{"flipped-footer.parquet", footer, "flipped-footer.parquet"},
	} {
		// Through a real file in TempDir, as the producer would open it.
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		var err error
		src, err := tlc.OpenFile(path)
		if err == nil {
			_, err = readAllErr(tc.name, tc.data)
			src.Close()
		}
		t.Logf("%s: %v", tc.name, err)
		if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming the file and containing %q", tc.name, err, tc.want)
		}
	}
}

// Rows for writing small Parquet files with parquet-go's writer.
type goodRow struct {
	VendorID     int32    `parquet:"VendorID,optional"`
	Pickup       int64    `parquet:"lpep_pickup_datetime,optional,timestamp(microsecond:local)"`
	Dropoff      int64    `parquet:"lpep_dropoff_datetime,optional,timestamp(microsecond:local)"`
	PULocationID int32    `parquet:"PULocationID,optional"`
	Passengers   *float64 `parquet:"passenger_count,optional"`
	Distance     float64  `parquet:"trip_distance,optional"`
	Fare         float64  `parquet:"fare_amount,optional"`
	Tip          float64  `parquet:"tip_amount,optional"`
	Total        float64  `parquet:"total_amount,optional"`
	Flag         *string  `parquet:"store_and_fwd_flag,optional"`
	Extra        string   `parquet:"my_extra_column,optional"`
}

func writeParquet[T any](t *testing.T, rows []T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWrittenParquetMinimalSchema(t *testing.T) {
	two, y := 2.0, "Y"
	data := writeParquet(t, []goodRow{
		{VendorID: 1, Pickup: 1704067200123456, Dropoff: 1704067800999999, PULocationID: 132, Passengers: &two,
			Distance: 1.5, Fare: 10, Tip: 2.29, Total: 13.29, Flag: &y, Extra: "x"},
		{VendorID: 2, Pickup: -1, Dropoff: -1001, PULocationID: 1},
	})
	r, err := tlc.OpenParquet("mini.parquet", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if diff := cmp.Diff([]string{"my_extra_column"}, r.Ignored()); diff != "" {
		t.Errorf("Ignored (-want +got):\n%s", diff)
	}
	trips := tlctest.ReadAll(t, r)
	wantLayout := codecs.Layout{Flavor: codecs.Green, Present: codecs.ColumnSet(0).With(codecs.ColVendorID).
		With(codecs.ColPickup).With(codecs.ColDropoff).With(codecs.ColPULocationID).With(codecs.ColPassengerCount).
		With(codecs.ColTripDistance).With(codecs.ColFareAmount).With(codecs.ColTipAmount).With(codecs.ColTotalAmount).
		With(codecs.ColStoreAndFwdFlag), Double: codecs.ColumnSet(0).With(codecs.ColPassengerCount)}
	want := []codecs.Trip{
		{Layout: wantLayout, VendorID: codecs.Int(1), Pickup: codecs.Int(1704067200123), Dropoff: codecs.Int(1704067800999),
			PULocationID: codecs.Int(132), PassengerCount: codecs.Int(2), TripDistance: codecs.Float(1.5),
			FareAmount: codecs.Float(10), TipAmount: codecs.Float(2.29), TotalAmount: codecs.Float(13.29),
			StoreAndFwdFlag: codecs.String("Y")},
		// parquet-go writes the zero value of an optional non-pointer field as null.
		{Layout: wantLayout, VendorID: codecs.Int(2), Pickup: codecs.Int(-1), Dropoff: codecs.Int(-2), // floored
			PULocationID: codecs.Int(1)},
	}
	if diff := cmp.Diff(want, trips); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := string(codecs.AppendTripJSON(nil, &trips[0])); !strings.Contains(got, `"passenger_count":2.0`) ||
		strings.Contains(got, "RatecodeID") || strings.Contains(got, "my_extra") {
		t.Errorf("message %s", got)
	}
}

func TestParquetSchemaErrors(t *testing.T) {
	type missingDropoff struct {
		Pickup int64   `parquet:"lpep_pickup_datetime,optional,timestamp(microsecond)"`
		PU     int32   `parquet:"PULocationID,optional"`
		D      float64 `parquet:"trip_distance,optional"`
		F      float64 `parquet:"fare_amount,optional"`
		Tip    float64 `parquet:"tip_amount,optional"`
		Total  float64 `parquet:"total_amount,optional"`
	}
	type missingTip struct {
		Pickup  int64   `parquet:"tpep_pickup_datetime,optional,timestamp(microsecond)"`
		Dropoff int64   `parquet:"tpep_dropoff_datetime,optional,timestamp(microsecond)"`
		PU      int32   `parquet:"PULocationID,optional"`
		D       float64 `parquet:"trip_distance,optional"`
		F       float64 `parquet:"fare_amount,optional"`
		Total   float64 `parquet:"total_amount,optional"`
	}
	type stringPU struct {
		Pickup  int64   `parquet:"lpep_pickup_datetime,optional,timestamp(microsecond)"`
		Dropoff int64   `parquet:"lpep_dropoff_datetime,optional,timestamp(microsecond)"`
		PU      string  `parquet:"PULocationID,optional"`
		D       float64 `parquet:"trip_distance,optional"`
		F       float64 `parquet:"fare_amount,optional"`
		Tip     float64 `parquet:"tip_amount,optional"`
		Total   float64 `parquet:"total_amount,optional"`
	}
	type plainIntTimestamp struct {
		Pickup  int64   `parquet:"lpep_pickup_datetime,optional"`
		Dropoff int64   `parquet:"lpep_dropoff_datetime,optional,timestamp(microsecond)"`
		PU      int32   `parquet:"PULocationID,optional"`
		D       float64 `parquet:"trip_distance,optional"`
		F       float64 `parquet:"fare_amount,optional"`
		Tip     float64 `parquet:"tip_amount,optional"`
		Total   float64 `parquet:"total_amount,optional"`
	}
	type stringFare struct {
		Pickup  int64   `parquet:"lpep_pickup_datetime,optional,timestamp(microsecond)"`
		Dropoff int64   `parquet:"lpep_dropoff_datetime,optional,timestamp(microsecond)"`
		PU      int32   `parquet:"PULocationID,optional"`
		D       float64 `parquet:"trip_distance,optional"`
		F       string  `parquet:"fare_amount,optional"`
		Tip     float64 `parquet:"tip_amount,optional"`
		Total   float64 `parquet:"total_amount,optional"`
	}
	type mixed struct {
		Pickup  int64   `parquet:"lpep_pickup_datetime,optional,timestamp(microsecond)"`
		Dropoff int64   `parquet:"tpep_dropoff_datetime,optional,timestamp(microsecond)"`
		PU      int32   `parquet:"PULocationID,optional"`
		D       float64 `parquet:"trip_distance,optional"`
		F       float64 `parquet:"fare_amount,optional"`
		Tip     float64 `parquet:"tip_amount,optional"`
		Total   float64 `parquet:"total_amount,optional"`
	}
	type fractionalCode struct {
		Pickup  int64   `parquet:"lpep_pickup_datetime,optional,timestamp(microsecond)"`
		Dropoff int64   `parquet:"lpep_dropoff_datetime,optional,timestamp(microsecond)"`
		PU      int32   `parquet:"PULocationID,optional"`
		P       float64 `parquet:"passenger_count,optional"`
		D       float64 `parquet:"trip_distance,optional"`
		F       float64 `parquet:"fare_amount,optional"`
		Tip     float64 `parquet:"tip_amount,optional"`
		Total   float64 `parquet:"total_amount,optional"`
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"missing-dropoff.parquet", writeParquet(t, []missingDropoff{{}}), "missing required column lpep_dropoff_datetime"},
		{"missing-tip.parquet", writeParquet(t, []missingTip{{}}), "missing required column tip_amount"},
		{"string-pu.parquet", writeParquet(t, []stringPU{{}}), "column PULocationID: incompatible type"},
		{"int-timestamp.parquet", writeParquet(t, []plainIntTimestamp{{}}), "column lpep_pickup_datetime: incompatible type"},
		{"string-fare.parquet", writeParquet(t, []stringFare{{}}), "column fare_amount: incompatible type"},
		{"mixed.parquet", writeParquet(t, []mixed{{}}), "mixes lpep_ and tpep_"},
		{"fraction.parquet", writeParquet(t, []fractionalCode{{P: 1}, {P: 1}, {P: 2.5}}),
			"column passenger_count: row 2: value 2.5 is not an integer code"},
	} {
		_, err := readAllErr(tc.name, tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming the file and containing %q", tc.name, err, tc.want)
		}
	}
}

// BenchmarkReadParquet reads a whole real file per iteration and reports rows/s.
func BenchmarkReadParquet(b *testing.B) {
	for _, f := range tlctest.ParquetFiles {
		b.Run(f.Name, func(b *testing.B) {
			data := copyRealB(b, f.Name)
			buf := make([]codecs.Trip, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			rows := 0
			for i := 0; i < b.N; i++ {
				r, err := tlc.OpenParquet(f.Name, bytes.NewReader(data), int64(len(data)))
				if err != nil {
					b.Fatal(err)
				}
				for {
					n, err := r.Next(buf)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					rows += n
				}
				r.Close()
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func copyRealB(b *testing.B, name string) []byte {
	data, err := os.ReadFile(tlctest.Path(b, name))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

type yellowRow struct {
	VendorID     int64    `parquet:"VendorID,optional"`
	Pickup       int64    `parquet:"tpep_pickup_datetime,optional,timestamp(millisecond)"`
	Dropoff      int64    `parquet:"tpep_dropoff_datetime,optional,timestamp(nanosecond)"`
	Passengers   *float64 `parquet:"passenger_count,optional"`
	Distance     *float64 `parquet:"trip_distance,optional"`
	PULocationID int32    `parquet:"PULocationID,optional"`
	Fare         *float64 `parquet:"fare_amount,optional"`
	Tip          *float64 `parquet:"tip_amount,optional"`
	Total        *float64 `parquet:"total_amount,optional"`
	AirportFee   *float64 `parquet:"Airport_fee,optional"`
}

func TestWrittenParquetYellowMultiRowGroup(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	var rows []yellowRow
	for i := range 2500 {
		rows = append(rows, yellowRow{VendorID: int64(1 + i%2), Pickup: 1704067200000 + int64(i), Dropoff: 1704067200000123456 + int64(i)*1e6,
			Passengers: f(float64(i % 5)), Distance: f(float64(i) / 100), PULocationID: int32(1 + i%265), Fare: f(-1.5),
			Tip: f(0.29), Total: f(12.34), AirportFee: f(1.75)})
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[yellowRow](&buf, parquet.MaxRowsPerRowGroup(1000))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	r, err := tlc.OpenParquet("yellow.parquet", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l := r.Layout()
	if l.Flavor != codecs.Yellow || !l.AirportFeeCapital || l.Double != codecs.ColumnSet(0).With(codecs.ColPassengerCount) {
		t.Fatalf("layout %+v", l)
	}
	got := make([]codecs.Trip, 0, len(rows))
	batch := make([]codecs.Trip, 700)
	for {
		n, err := r.Next(batch)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n > 700 {
			t.Fatalf("batch of %d", n)
		}
		got = append(got, batch[:n]...)
	}
	if len(got) != len(rows) {
		t.Fatalf("%d rows, want %d", len(got), len(rows))
	}
	for i, tr := range got {
		in := rows[i]
		want := codecs.Trip{Layout: l, VendorID: codecs.Int(in.VendorID), Pickup: codecs.Int(in.Pickup),
			Dropoff: codecs.Int(in.Dropoff / 1e6), PassengerCount: codecs.Int(int64(*in.Passengers)),
			TripDistance: codecs.Float(*in.Distance), PULocationID: codecs.Int(int64(in.PULocationID)),
			FareAmount: codecs.Float(-1.5), TipAmount: codecs.Float(0.29), TotalAmount: codecs.Float(12.34),
			AirportFee: codecs.Float(1.75)}
		if tr != want {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, tr, want)
		}
	}
	msg := string(codecs.AppendTripJSON(nil, &got[1]))
	const want = `{"VendorID":2,"tpep_pickup_datetime":1704067200001,"tpep_dropoff_datetime":1704067200001,` +
		`"passenger_count":1.0,"trip_distance":0.01,"PULocationID":2,"fare_amount":-1.5,"tip_amount":0.29,` +
		`"total_amount":12.34,"Airport_fee":1.75}`
	if msg != want {
		t.Fatalf("message\n%s\nwant\n%s", msg, want)
	}
}
