package codecs

import (
	"bytes"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// Rows copied from the real files (row 0 and the first row of the null block), so that these
// tests run without shared/data. golden_realdata_test.go checks the same against the files.
var syntheticTrips = []struct {
	name string
	trip Trip
}{
	{"schemaA_2020-12_row0", Trip{
		Layout: GreenLayoutA, VendorID: Int(2), Pickup: Int(1606782577000), Dropoff: Int(1606782771000),
		StoreAndFwdFlag: String("N"), RatecodeID: Int(1), PULocationID: Int(75), DOLocationID: Int(75),
		PassengerCount: Int(1), TripDistance: Float(0.59), FareAmount: Float(4.5), Extra: Float(0.5),
		MTATax: Float(0.5), TipAmount: Float(1.16), TollsAmount: Float(0), ImprovementSurcharge: Float(0.3),
		TotalAmount: Float(6.96), PaymentType: Int(1), TripType: Int(1), CongestionSurcharge: Float(0),
	}},
	{"schemaA_null_block", Trip{
		Layout: GreenLayoutA, VendorID: Int(2), Pickup: Int(1609456320000), Dropoff: Int(1609457820000),
		PULocationID: Int(215), DOLocationID: Int(35), TripDistance: Float(10.34), FareAmount: Float(39.95),
		Extra: Float(0), MTATax: Float(0), TipAmount: Float(2.75), TollsAmount: Float(0),
		ImprovementSurcharge: Float(0.3), TotalAmount: Float(43),
	}},
	{"schemaB_2024-01_row0", Trip{
		Layout: GreenLayoutB, VendorID: Int(2), Pickup: Int(1704070015000), Dropoff: Int(1704070705000),
		StoreAndFwdFlag: String("N"), RatecodeID: Int(1), PULocationID: Int(236), DOLocationID: Int(239),
		PassengerCount: Int(1), TripDistance: Float(1.98), FareAmount: Float(12.8), Extra: Float(1),
		MTATax: Float(0.5), TipAmount: Float(3.61), TollsAmount: Float(0), ImprovementSurcharge: Float(1),
		TotalAmount: Float(21.66), PaymentType: Int(1), TripType: Int(1), CongestionSurcharge: Float(2.75),
	}},
	{"schemaC_2025-01_row0", Trip{
		Layout: GreenLayoutC, VendorID: Int(2), Pickup: Int(1735689781000), Dropoff: Int(1735690632000),
		StoreAndFwdFlag: String("N"), RatecodeID: Int(1), PULocationID: Int(75), DOLocationID: Int(235),
		PassengerCount: Int(1), TripDistance: Float(5.93), FareAmount: Float(24.7), Extra: Float(1),
		MTATax: Float(0.5), TipAmount: Float(6.8), TollsAmount: Float(0), ImprovementSurcharge: Float(1),
		TotalAmount: Float(34), PaymentType: Int(1), TripType: Int(1), CongestionSurcharge: Float(0),
		CBDCongestionFee: Float(0),
	}},
	{"yellow_airport_fee_capital", Trip{
		Layout: Layout{Flavor: Yellow, Present: allColumns.Without(ColEhailFee).Without(ColTripType),
			Double: ColumnSet(0).With(ColPassengerCount), AirportFeeCapital: true},
		VendorID: Int(1), Pickup: Int(1704067200000), Dropoff: Int(1704068100000), PassengerCount: Int(2),
		TripDistance: Float(17.2), RatecodeID: Int(2), StoreAndFwdFlag: String("Y"), PULocationID: Int(132),
		DOLocationID: Int(230), PaymentType: Int(1), FareAmount: Float(70), Extra: Float(0),
		MTATax: Float(0.5), TipAmount: Float(16.54), TollsAmount: Float(6.94), ImprovementSurcharge: Float(1),
		TotalAmount: Float(99.23), CongestionSurcharge: Float(2.5), AirportFee: Float(1.75),
		CBDCongestionFee: Float(0.75),
	}},
	{"edge_values", Trip{
		Layout: Layout{Flavor: Green, Present: ColumnSet(0).With(ColPickup).With(ColDropoff).
			With(ColStoreAndFwdFlag).With(ColTripDistance).With(ColFareAmount).With(ColTipAmount).
			With(ColTotalAmount).With(ColExtra).With(ColPassengerCount), Double: ColumnSet(0).With(ColPassengerCount)},
		Pickup: Int(-1), Dropoff: Int(0), StoreAndFwdFlag: String("a\"b\\c\n\x01é\xff"),
		TripDistance: Float(1e21), FareAmount: Float(math.Copysign(0, -1)), TipAmount: Float(math.NaN()),
		TotalAmount: Float(5e-324), Extra: Float(math.Inf(-1)), PassengerCount: Int(-3),
	}},
}

func TestAppendTripJSONGolden(t *testing.T) {
	var out bytes.Buffer
	for _, tc := range syntheticTrips {
		out.WriteString(tc.name)
		out.WriteByte('\n')
		out.Write(AppendTripJSON(nil, &tc.trip))
		out.WriteByte('\n')
	}
	checkGolden(t, "synthetic_trips.golden", out.Bytes())
}

// normalised is what survives a JSON round trip: nulls carry no source type, so a null TypeCode
// column's DOUBLE bit is dropped, and NaN/Inf amounts become null.
func normalised(tr Trip) Trip {
	for c := Column(0); c < NumColumns; c++ {
		if !tr.Layout.Present.Has(c) {
			if f := tr.FloatField(c); f != nil {
				*f = NullFloat{}
			} else if i := tr.IntField(c); i != nil {
				*i = NullInt{}
			} else {
				tr.StoreAndFwdFlag = NullString{}
			}
			tr.Layout.Double = tr.Layout.Double.Without(c)
			continue
		}
		if c.Type() != TypeCode || !tr.IntField(c).Valid {
			tr.Layout.Double = tr.Layout.Double.Without(c)
		}
		if c.Type() == TypeAmount {
			if f := tr.FloatField(c); f.Valid && (math.IsNaN(f.V) || math.IsInf(f.V, 0)) {
				*f = NullFloat{}
			}
		}
	}
	if !tr.Layout.Present.Has(ColPickup) && !tr.Layout.Present.Has(ColDropoff) {
		tr.Layout.Flavor = Green // only the timestamp names tell the flavor
	}
	if !tr.Layout.Present.Has(ColAirportFee) {
		tr.Layout.AirportFeeCapital = false
	}
	return tr
}

func randomTrip(rng *rand.Rand) Trip {
	var tr Trip
	tr.Layout.Flavor = Flavor(rng.IntN(2))
	tr.Layout.Present = ColumnSet(rng.Uint32()) & allColumns
	tr.Layout.Double = ColumnSet(rng.Uint32()) & allColumns
	tr.Layout.AirportFeeCapital = rng.IntN(2) == 0
	for c := Column(0); c < NumColumns; c++ {
		if rng.IntN(5) == 0 {
			continue // null
		}
		switch c.Type() {
		case TypeString:
			s := []string{"N", "Y", "", "with \"quotes\" and \\", "tab\there", "ünï"}[rng.IntN(6)]
			tr.StoreAndFwdFlag = String(s)
		case TypeAmount:
			var v float64
			switch rng.IntN(4) {
			case 0:
				v = float64(rng.Int64N(1e7)-5e6) / 100
			case 1:
				v = rng.NormFloat64() * 1e3
			case 2:
				v = math.Float64frombits(rng.Uint64())
			default:
				v = float64(rng.Int64N(100))
			}
			*tr.FloatField(c) = Float(v)
		default:
			*tr.IntField(c) = Int(rng.Int64N(1e18) - 5e17)
		}
	}
	return normalised(tr)
}

func TestTripJSONRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cases := make([]Trip, 0, 20000)
	for _, tc := range syntheticTrips {
		cases = append(cases, normalised(tc.trip))
	}
	for i := 0; i < 20000; i++ {
		cases = append(cases, randomTrip(rng))
	}
	for i, want := range cases {
		if want.StoreAndFwdFlag.Valid && !isValidUTF8(want.StoreAndFwdFlag.V) {
			continue // invalid UTF-8 is written as U+FFFD by design
		}
		b := AppendTripJSON(nil, &want)
		got, err := DecodeTrip(b)
		if err != nil {
			t.Fatalf("case %d: DecodeTrip(%s): %v", i, b, err)
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(sameFloat)); diff != "" {
			t.Fatalf("case %d: round trip of %s differs (-want +got):\n%s", i, b, diff)
		}
		if b2 := AppendTripJSON(nil, &got); !bytes.Equal(b, b2) {
			t.Fatalf("case %d: re-encoding differs:\n%s\n%s", i, b, b2)
		}
	}
}

func sameFloat(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

func isValidUTF8(s string) bool {
	return bytes.Equal([]byte(s), bytes.ToValidUTF8([]byte(s), []byte("\ufffd")))
}

func TestDecodeTripPandasMessage(t *testing.T) {
	// As the original producer (pandas DataFrame.to_json(orient="records") per row) wrote it.
	msg := []byte(`{"VendorID":2,"lpep_pickup_datetime":1609459200000,"lpep_dropoff_datetime":1609459800000,` +
		`"store_and_fwd_flag":"N","RatecodeID":1.0,"PULocationID":74,"DOLocationID":42,"passenger_count":1.0,` +
		`"trip_distance":1.3,"fare_amount":6.5,"extra":0.5,"mta_tax":0.5,"tip_amount":0.0,"tolls_amount":0.0,` +
		`"ehail_fee":null,"improvement_surcharge":0.3,"total_amount":7.8,"payment_type":2.0,"trip_type":1.0,` +
		`"congestion_surcharge":0.0}`)
	got, err := DecodeTrip(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := Trip{Layout: GreenLayoutA, VendorID: Int(2), Pickup: Int(1609459200000), Dropoff: Int(1609459800000),
		StoreAndFwdFlag: String("N"), RatecodeID: Int(1), PULocationID: Int(74), DOLocationID: Int(42),
		PassengerCount: Int(1), TripDistance: Float(1.3), FareAmount: Float(6.5), Extra: Float(0.5),
		MTATax: Float(0.5), TipAmount: Float(0), TollsAmount: Float(0), ImprovementSurcharge: Float(0.3),
		TotalAmount: Float(7.8), PaymentType: Int(2), TripType: Int(1), CongestionSurcharge: Float(0)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if re := AppendTripJSON(nil, &got); !bytes.Equal(re, msg) {
		t.Fatalf("re-encoded pandas message differs:\n%s\n%s", msg, re)
	}
}

func TestDecodeTripErrors(t *testing.T) {
	for _, tc := range []struct {
		in, reason, field string
	}{
		{``, ReasonEmpty, ""},
		{`   `, ReasonEmpty, ""},
		{`[1]`, ReasonNotObject, ""},
		{`{"VendorID":1`, ReasonNotJSON, ""},
		{`{"VendorID":1}x`, ReasonNotJSON, ""},
		{`{"VendorID":01}`, ReasonNotJSON, ""},
		{`{"bogus":1}`, ReasonUnknownField, "bogus"},
		{`{"lpep_pickup_datetime":1,"tpep_dropoff_datetime":2}`, ReasonMixedFlavor, "tpep_dropoff_datetime"},
		{`{"VendorID":1.5}`, ReasonNotInteger, "VendorID"},
		{`{"VendorID":"1"}`, ReasonNotNumber, "VendorID"},
		{`{"fare_amount":true}`, ReasonNotNumber, "fare_amount"},
		{`{"fare_amount":1e999}`, ReasonOutOfRange, "fare_amount"},
		{`{"store_and_fwd_flag":1}`, ReasonNotString, "store_and_fwd_flag"},
		{`{"VendorID":1e30}`, ReasonOutOfRange, "VendorID"},
	} {
		_, err := DecodeTrip([]byte(tc.in))
		e, ok := err.(*InvalidRideError)
		if !ok || e.Reason != tc.reason || e.Field != tc.field {
			t.Errorf("DecodeTrip(%q) error = %#v, want reason %q field %q", tc.in, err, tc.reason, tc.field)
		}
	}
}

func TestDecodeTripEscapedKeyAndSpaces(t *testing.T) {
	got, err := DecodeTrip([]byte(" {\n \"PULocation\\u0049D\" : 7 ,\t\"store_and_fwd_flag\":\"\\u0059\"}\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got.PULocationID != Int(7) || got.StoreAndFwdFlag != String("Y") || got.Layout.Present.Len() != 2 {
		t.Fatalf("got %+v", got)
	}
}

func BenchmarkAppendTripJSON(b *testing.B) {
	tr := syntheticTrips[0].trip
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendTripJSON(buf[:0], &tr)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeTrip(b *testing.B) {
	msg := AppendTripJSON(nil, &syntheticTrips[0].trip)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for i := 0; i < b.N; i++ {
		if _, err := DecodeTrip(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func TestColumnOrderIsPermutation(t *testing.T) {
	for _, f := range []Flavor{Green, Yellow} {
		var seen ColumnSet
		for _, c := range ColumnOrder(f) {
			if seen.Has(c) {
				t.Errorf("%s: column %s twice", f, greenNames[c])
			}
			seen = seen.With(c)
		}
		if seen != allColumns {
			t.Errorf("%s: order covers %b, want %b", f, seen, allColumns)
		}
	}
}

func TestLookupColumn(t *testing.T) {
	for _, l := range []Layout{GreenLayoutA, {Flavor: Yellow}, {Flavor: Yellow, AirportFeeCapital: true}} {
		for c := Column(0); c < NumColumns; c++ {
			name := l.Name(c)
			got, f, implies, ok := LookupColumn(name)
			if !ok || got != c || (implies && f != l.Flavor) {
				t.Errorf("LookupColumn(%q) = %d, %s, %v, %v; want %d", name, got, f, implies, ok, c)
			}
		}
	}
	if _, _, _, ok := LookupColumn("vendorid"); ok {
		t.Error("LookupColumn is case-insensitive, want exact names")
	}
}

// FuzzDecodeTrip: DecodeTrip never panics, and whatever it accepts re-encodes to a message that
// decodes to the same Trip.
func FuzzDecodeTrip(f *testing.F) {
	for _, tc := range syntheticTrips {
		f.Add(AppendTripJSON(nil, &tc.trip))
	}
	f.Add([]byte(`{"VendorID":1.0,"PULocation\u0049D":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := DecodeTrip(data)
		if err != nil {
			if _, ok := err.(*InvalidRideError); !ok {
				t.Fatalf("error %#v is not an *InvalidRideError", err)
			}
			return
		}
		b := AppendTripJSON(nil, &tr)
		back, err := DecodeTrip(b)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", b, err)
		}
		if b2 := AppendTripJSON(nil, &back); !bytes.Equal(b, b2) {
			t.Fatalf("unstable encoding:\n%s\n%s", b, b2)
		}
	})
}
