package tlc_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/tlc"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

func TestRealCSVMatchesSources(t *testing.T) {
	src, err := tlc.OpenFile(tlctest.Path(t, tlctest.CSVFile))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	trips := tlctest.ReadAll(t, src)
	if len(trips) != tlctest.CSVRows || src.Pos() != tlctest.CSVRows {
		t.Fatalf("%d rows (Pos %d), want %d", len(trips), src.Pos(), tlctest.CSVRows)
	}
	if want := codecs.GreenLayoutB; src.Layout() != want {
		t.Errorf("layout %+v, want %+v (schema A's columns, integer codes)", src.Layout(), want)
	}
	vendors := map[codecs.NullInt]int{}
	rate6, nullBlock := 0, -1
	pmin, pmax, dmax := int64(1<<62), int64(0), int64(0)
	outside := 0
	aprilStart, mayStart := wall("2020-04-01 00:00:00"), wall("2020-05-01 00:00:00")
	for i, tr := range trips {
		vendors[tr.VendorID]++
		if tr.RatecodeID == codecs.Int(6) {
			rate6++
		}
		if !tr.VendorID.Valid {
			if nullBlock < 0 {
				nullBlock = i
			}
			if tr.StoreAndFwdFlag.Valid || tr.RatecodeID.Valid || tr.PassengerCount.Valid || tr.PaymentType.Valid ||
				tr.TripType.Valid || tr.CongestionSurcharge.Valid {
				t.Fatalf("row %d: null VendorID but not the whole null pattern: %+v", i, tr)
			}
		} else if nullBlock >= 0 {
			t.Fatalf("row %d: VendorID after the null block", i)
		}
		if tr.EhailFee.Valid {
			t.Fatalf("row %d: ehail_fee set", i)
		}
		if tr.Dropoff.V < tr.Pickup.V {
			t.Fatalf("row %d: dropoff < pickup", i)
		}
		pmin, pmax, dmax = min(pmin, tr.Pickup.V), max(pmax, tr.Pickup.V), max(dmax, tr.Dropoff.V)
		if tr.Dropoff.V < aprilStart || tr.Dropoff.V >= mayStart {
			outside++
		}
	}
	f := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.DateTime) }
	got := []any{vendors, rate6, nullBlock, f(pmin), f(pmax), f(dmax), outside}
	want := []any{map[codecs.NullInt]int{codecs.Int(2): 20690, codecs.Int(1): 3812, {}: 11110}, 1, 24502,
		"2009-01-01 00:03:41", "2020-04-30 23:59:00", "2020-05-01 00:47:00", 28}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("facts differ from SOURCES.md (-want +got):\n%s", diff)
	}
	// Row 0 exactly: 2,2020-04-01 00:44:02,2020-04-01 00:52:23,N,1,42,41,1,1.68,8,0.5,0.5,0,0,,0.3,9.3,1,1,0
	want0 := codecs.Trip{Layout: codecs.GreenLayoutB, VendorID: codecs.Int(2), Pickup: codecs.Int(wall("2020-04-01 00:44:02")),
		Dropoff: codecs.Int(wall("2020-04-01 00:52:23")), StoreAndFwdFlag: codecs.String("N"), RatecodeID: codecs.Int(1),
		PULocationID: codecs.Int(42), DOLocationID: codecs.Int(41), PassengerCount: codecs.Int(1),
		TripDistance: codecs.Float(1.68), FareAmount: codecs.Float(8), Extra: codecs.Float(0.5), MTATax: codecs.Float(0.5),
		TipAmount: codecs.Float(0), TollsAmount: codecs.Float(0), ImprovementSurcharge: codecs.Float(0.3),
		TotalAmount: codecs.Float(9.3), PaymentType: codecs.Int(1), TripType: codecs.Int(1), CongestionSurcharge: codecs.Float(0)}
	if diff := cmp.Diff(want0, trips[0]); diff != "" {
		t.Errorf("row 0 (-want +got):\n%s", diff)
	}
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCSVVariants(t *testing.T) {
	const text = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,PULocationID,trip_distance,fare_amount,tip_amount,total_amount,Airport_fee,passenger_count,note\n" +
		"1,2024-02-29 23:59:59,2024-03-01 00:00:00.5,132,.01,-2.5,0,1e2,1.75,1.0,hello\n" +
		",2024-01-01T00:00:00,2024-01-01 00:00:01.123456,1,0,0,0,0,,,\n"
	for name, data := range map[string][]byte{"plain": []byte(text), "gzip": gz(t, text)} {
		r, err := tlc.OpenCSV(name, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff([]string{"note"}, r.Ignored()); diff != "" {
			t.Errorf("%s: Ignored (-want +got):\n%s", name, diff)
		}
		trips := tlctest.ReadAll(t, r)
		l := r.Layout()
		if l.Flavor != codecs.Yellow || !l.AirportFeeCapital || l.Present.Len() != 10 {
			t.Errorf("%s: layout %+v", name, l)
		}
		want := []codecs.Trip{
			{Layout: l, VendorID: codecs.Int(1), Pickup: codecs.Int(wall("2024-02-29 23:59:59")),
				Dropoff: codecs.Int(wall("2024-03-01 00:00:00") + 500), PULocationID: codecs.Int(132),
				TripDistance: codecs.Float(0.01), FareAmount: codecs.Float(-2.5), TipAmount: codecs.Float(0),
				TotalAmount: codecs.Float(100), AirportFee: codecs.Float(1.75), PassengerCount: codecs.Int(1)},
			{Layout: l, Pickup: codecs.Int(wall("2024-01-01 00:00:00")), Dropoff: codecs.Int(wall("2024-01-01 00:00:01") + 123),
				PULocationID: codecs.Int(1), TripDistance: codecs.Float(0), FareAmount: codecs.Float(0),
				TipAmount: codecs.Float(0), TotalAmount: codecs.Float(0)},
		}
		if diff := cmp.Diff(want, trips); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
		r.Close()
	}
}

func TestCSVErrors(t *testing.T) {
	const h = "lpep_pickup_datetime,lpep_dropoff_datetime,PULocationID,trip_distance,fare_amount,tip_amount,total_amount,RatecodeID\r\n"
	const ok = "2020-04-01 00:44:02,2020-04-01 00:52:23,42,1.68,8,0,9.3,1\r\n"
	for _, tc := range []struct{ name, in, want string }{
		{"empty.csv", "", "empty CSV"},
		{"no-dropoff.csv", "lpep_pickup_datetime,PULocationID,trip_distance,fare_amount,tip_amount,total_amount\n", "missing required column lpep_dropoff_datetime"},
		{"dup.csv", "PULocationID," + h, "column PULocationID: duplicate column"},
		{"bad-time.csv", h + ok + "2020-04-31 00:00:00,2020-04-01 00:52:23,42,1.68,8,0,9.3,1\r\n", `line 3: column lpep_pickup_datetime: "2020-04-31 00:00:00": bad timestamp`},
		{"bad-time2.csv", h + "2020-04-01 00:44,2020-04-01 00:52:23,42,1.68,8,0,9.3,1\r\n", "line 2: column lpep_pickup_datetime"},
		{"bad-number.csv", h + "2020-04-01 00:44:02,2020-04-01 00:52:23,42,1.6.8,8,0,9.3,1\r\n", `line 2: column trip_distance: "1.6.8": not a finite number`},
		{"nan.csv", h + "2020-04-01 00:44:02,2020-04-01 00:52:23,42,NaN,8,0,9.3,1\r\n", "line 2: column trip_distance"},
		{"bad-code.csv", h + "2020-04-01 00:44:02,2020-04-01 00:52:23,42,1,8,0,9.3,1.5\r\n", `line 2: column RatecodeID: "1.5": not an integer code`},
		{"fields.csv", h + ok + "2020-04-01 00:44:02,2020-04-01 00:52:23,42\r\n", "line 3: 3 fields, want 8"},
		{"quote.csv", h + "\"2020-04-01,x\r\n", "line 2"},
	} {
		r, err := tlc.OpenCSV(tc.name, strings.NewReader(tc.in))
		if err == nil {
			_, err = readAllCSV(r)
		}
		if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming the file and containing %q", tc.name, err, tc.want)
		}
	}
}

func readAllCSV(r *tlc.CSVReader) (int, error) {
	buf := make([]codecs.Trip, 16)
	rows := 0
	for {
		n, err := r.Next(buf)
		if n == 0 {
			if errors.Is(err, io.EOF) {
				return rows, nil
			}
			return rows, err
		}
		rows += n
	}
}

func BenchmarkReadCSV(b *testing.B) {
	data := copyRealB(b, tlctest.CSVFile)
	buf := make([]codecs.Trip, 4096)
	b.ReportAllocs()
	rows := 0
	for i := 0; i < b.N; i++ {
		r, err := tlc.OpenCSV(tlctest.CSVFile, bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			n, err := r.Next(buf)
			if n == 0 {
				if !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
				break
			}
			rows += n
		}
		r.Close()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
