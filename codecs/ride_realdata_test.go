package codecs_test

import (
	"testing"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/tlc"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

// realSources opens every real trip file (the four Parquet files and the CSV).
func realSources(t *testing.T) []tlc.Source {
	var srcs []tlc.Source
	for _, f := range tlctest.ParquetFiles {
		srcs = append(srcs, tlctest.OpenParquet(t, f.Name))
	}
	csv, err := tlc.OpenFile(tlctest.Path(t, tlctest.CSVFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { csv.Close() })
	return append(srcs, csv)
}

type span struct{ min, max int64 }

func (s *span) add(v int64) {
	if v < s.min {
		s.min = v
	}
	if v > s.max {
		s.max = v
	}
}

func newSpan() span { return span{min: 1<<63 - 1, max: -1 << 63} }

// TestRealRowsPassDecodeRideFacts encodes every real row as the producer does and checks that
// DecodeRideFacts accepts it with exactly the row's values, and that the cents computed from the
// Parquet doubles equal the cents computed from the JSON text. It logs the measured ranges that
// the validation bounds were chosen from.
func TestRealRowsPassDecodeRideFacts(t *testing.T) {
	var buf []byte
	ev, pu, pass, dist, fare, tip, total := newSpan(), newSpan(), newSpan(), newSpan(), newSpan(), newSpan(), newSpan()
	rows := 0
	for _, src := range realSources(t) {
		for i, trip := range tlctest.ReadAll(t, src) {
			buf = codecs.AppendTripJSON(buf[:0], &trip)
			f, err := codecs.DecodeRideFacts(buf, "")
			if err != nil {
				t.Fatalf("%s row %d: %v\n%s", src.Name(), i, err, buf)
			}
			rows++
			if f.EventMs != trip.Dropoff.V || f.PickupMs != trip.Pickup.V || int64(f.PULocationID) != trip.PULocationID.V ||
				f.PassengerCount != trip.PassengerCount {
				t.Fatalf("%s row %d: facts %+v differ from trip %+v", src.Name(), i, f, trip)
			}
			for _, c := range []struct {
				name string
				json int64
				v    codecs.NullFloat
			}{{"trip_distance", f.DistanceHundredths, trip.TripDistance}, {"fare_amount", f.FareCents, trip.FareAmount},
				{"tip_amount", f.TipCents, trip.TipAmount}, {"total_amount", f.TotalCents, trip.TotalAmount}} {
				want, err := codecs.Fixed2OfFloat(c.v.V)
				if err != nil || want != c.json {
					t.Fatalf("%s row %d %s: Fixed2OfFloat(%v) = %d, %v; JSON gave %d", src.Name(), i, c.name, c.v.V, want, err, c.json)
				}
			}
			if i%50 == 0 { // a configured event-time field (sampled to keep the test fast under -race)
				g, err := codecs.DecodeRideFacts(buf, "lpep_pickup_datetime")
				if err != nil || g.EventMs != trip.Pickup.V {
					t.Fatalf("%s row %d: event field lpep_pickup_datetime: %+v, %v", src.Name(), i, g, err)
				}
			}
			ev.add(f.EventMs)
			ev.add(f.PickupMs)
			pu.add(int64(f.PULocationID))
			if f.PassengerCount.Valid {
				pass.add(f.PassengerCount.V)
			}
			dist.add(f.DistanceHundredths)
			fare.add(f.FareCents)
			tip.add(f.TipCents)
			total.add(f.TotalCents)
		}
	}
	if want := 83130 + 68211 + 56551 + 48326 + 35612; rows != want {
		t.Fatalf("decoded %d rows, want %d", rows, want)
	}
	t.Logf("real ranges over %d rows: timestamps ms %v, PULocationID %v, passengers %v, distance/100 %v, fare¢ %v, tip¢ %v, total¢ %v",
		rows, ev, pu, pass, dist, fare, tip, total)
}
