package order

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/taxi-stream/taxi-stream/codecs"
)

func TestRecordRoundTrip(t *testing.T) {
	layouts := []codecs.Layout{codecs.GreenLayoutA, codecs.GreenLayoutC, {Flavor: codecs.Yellow, AirportFeeCapital: true}}
	rng := rand.New(rand.NewPCG(1, 2))
	rows := []Row{
		{File: 0, Row: 0, Trip: codecs.Trip{Layout: layouts[0]}},
		{File: 2, Row: math.MaxInt64, Trip: codecs.Trip{Layout: layouts[2], StoreAndFwdFlag: codecs.String(strings.Repeat("x", 70000)),
			FareAmount: codecs.Float(math.NaN()), Pickup: codecs.Int(math.MinInt64), Dropoff: codecs.Int(math.MaxInt64)}},
		{File: 1, Row: 5, Trip: codecs.Trip{Layout: layouts[1], StoreAndFwdFlag: codecs.String(""), TipAmount: codecs.Float(math.Copysign(0, -1))}},
	}
	for i := 0; i < 2000; i++ {
		f := rng.IntN(len(layouts))
		tr := codecs.Trip{Layout: layouts[f]}
		for c := codecs.Column(0); c < codecs.NumColumns; c++ {
			if rng.IntN(4) == 0 {
				continue
			}
			switch c.Type() {
			case codecs.TypeString:
				tr.StoreAndFwdFlag = codecs.String([]string{"N", "Y", "é"}[rng.IntN(3)])
			case codecs.TypeAmount:
				*tr.FloatField(c) = codecs.Float(math.Float64frombits(rng.Uint64()))
			default:
				*tr.IntField(c) = codecs.Int(int64(rng.Uint64()))
			}
		}
		rows = append(rows, Row{File: f, Row: rng.Int64(), Trip: tr})
	}
	var buf []byte
	for i, want := range rows {
		buf = appendRecord(buf[:0], &want)
		n, k := binary.Uvarint(buf)
		if k <= 0 || int(n) != len(buf)-k {
			t.Fatalf("row %d: length prefix %d (%d bytes) for %d bytes", i, n, k, len(buf))
		}
		var got Row
		if err := decodeRecord(buf[k:], layouts, &got); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if !sameRow(got, want) {
			t.Fatalf("row %d: got %+v\nwant %+v", i, got, want)
		}
		if err := decodeRecord(buf[k:len(buf)-1], layouts, &got); err == nil {
			t.Fatalf("row %d: truncated record decoded", i)
		}
	}
}

// sameRow compares rows with floats by bits (NaN == NaN).
func sameRow(a, b Row) bool {
	for c := codecs.Column(0); c < codecs.NumColumns; c++ {
		if c.Type() == codecs.TypeAmount {
			fa, fb := a.Trip.FloatField(c), b.Trip.FloatField(c)
			if fa.Valid != fb.Valid || math.Float64bits(fa.V) != math.Float64bits(fb.V) {
				return false
			}
			*fa, *fb = codecs.NullFloat{}, codecs.NullFloat{}
		}
	}
	return a == b
}

func BenchmarkRecordEncodeDecode(b *testing.B) {
	row := Row{File: 1, Row: 12345, Trip: codecs.Trip{Layout: codecs.GreenLayoutB, VendorID: codecs.Int(2),
		Pickup: codecs.Int(1704070015000), Dropoff: codecs.Int(1704070705000), StoreAndFwdFlag: codecs.String("N"),
		RatecodeID: codecs.Int(1), PULocationID: codecs.Int(236), DOLocationID: codecs.Int(239),
		PassengerCount: codecs.Int(1), TripDistance: codecs.Float(1.98), FareAmount: codecs.Float(12.8),
		Extra: codecs.Float(1), MTATax: codecs.Float(0.5), TipAmount: codecs.Float(3.61), TollsAmount: codecs.Float(0),
		ImprovementSurcharge: codecs.Float(1), TotalAmount: codecs.Float(21.66), PaymentType: codecs.Int(1),
		TripType: codecs.Int(1), CongestionSurcharge: codecs.Float(2.75)}}
	layouts := []codecs.Layout{codecs.GreenLayoutA, codecs.GreenLayoutB}
	var buf []byte
	var got Row
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = appendRecord(buf[:0], &row)
		if err := decodeRecord(buf[2:], layouts, &got); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/record")
}
