// Package aggregate holds the exact per-(window, borough) sums of the
// processor, the combiner that builds partial sums on the ingest side, the
// windows-stage State that merges them and closes windows, and the final
// Result with its deterministic JSON.
//
// Every sum is an exact integer: money in cents, distance in hundredths of a
// mile, passengers as a count. Averages are derived from the sums only when a
// result is written, rounded half away from zero to 2 decimals with integer
// arithmetic, so the same rides always give byte-identical results whatever
// the partitioning, the commit timing or the order of merges.
package aggregate

// Ride is what the aggregation needs from one on-time ride. The glue maps the
// decoder's output to it (dollars to cents, miles to hundredths).
type Ride struct {
	EventMs int64 // event time (dropoff), epoch ms of the wall clock
	// PassengerCount is the passenger_count column; it is null (HasPassengerCount
	// false) in the TLC files' null block and then left out of the average,
	// like SQL AVG.
	PassengerCount     int64
	HasPassengerCount  bool
	DistanceHundredths int64 // trip_distance in hundredths of a mile
	TipCents           int64 // tip_amount in cents
	FareCents          int64 // fare_amount in cents
	TotalCents         int64 // total_amount in cents
}

// Sums are the exact sums of the rides of one (window, borough). The zero
// value is empty. Sums of disjoint sets of rides merge by addition, in any
// order.
type Sums struct {
	Count              int64 // rides
	PassengerSum       int64 // sum of the non-null passenger counts
	PassengerCount     int64 // rides with a non-null passenger count
	DistanceHundredths int64
	TipCents           int64
	FareCents          int64
	TotalCents         int64
}

// Add adds one ride.
func (s *Sums) Add(r Ride) {
	s.Count++
	if r.HasPassengerCount {
		s.PassengerSum += r.PassengerCount
		s.PassengerCount++
	}
	s.DistanceHundredths += r.DistanceHundredths
	s.TipCents += r.TipCents
	s.FareCents += r.FareCents
	s.TotalCents += r.TotalCents
}

// Merge adds the sums of another, disjoint set of rides.
func (s *Sums) Merge(o Sums) {
	s.Count += o.Count
	s.PassengerSum += o.PassengerSum
	s.PassengerCount += o.PassengerCount
	s.DistanceHundredths += o.DistanceHundredths
	s.TipCents += o.TipCents
	s.FareCents += o.FareCents
	s.TotalCents += o.TotalCents
}

// divRound returns n/d rounded half away from zero, for d > 0.
func divRound(n, d int64) int64 {
	q, r := n/d, n%d
	if r < 0 {
		r = -r
	}
	if r >= d-r { // 2r >= d without overflow
		if n < 0 {
			q--
		} else {
			q++
		}
	}
	return q
}
