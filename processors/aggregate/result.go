package aggregate

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/taxi-stream/taxi-stream/topology/window"
)

// Result is the final aggregate of one (window, borough), emitted once when
// the window closes. Its metrics are derived from the exact Sums.
type Result struct {
	Window  window.Window
	Borough string
	Sums    Sums
	// Revision is 0 for the final result emitted when the window closed, and
	// counts the revisions emitted after it (taxi-stream --allowed-lateness): a
	// consumer keeps the highest revision of each key (the compacted topic keeps
	// the latest record, which is that one).
	Revision int64
}

// Status is "final" for revision 0 and "revised" after it.
func (r Result) Status() string {
	if r.Revision > 0 {
		return "revised"
	}
	return "final"
}

// Key is the result's Kafka key, "<window start wall clock>/<borough>",
// e.g. "2024-01-01T13:00:00/Queens" (docs/design.md, taxi-results).
func (r Result) Key() string {
	return string(r.AppendKey(nil))
}

// AppendKey appends Key() to dst.
func (r Result) AppendKey(dst []byte) []byte {
	dst = window.AppendWallClock(dst, r.Window.StartMs)
	dst = append(dst, '/')
	return append(dst, r.Borough...)
}

// AvgPassengerCount is the average of the non-null passenger counts in
// hundredths, rounded half away from zero; ok is false when every count
// was null (SQL AVG gives NULL).
func (r Result) AvgPassengerCount() (hundredths int64, ok bool) {
	if r.Sums.PassengerCount == 0 {
		return 0, false
	}
	return divRound(100*r.Sums.PassengerSum, r.Sums.PassengerCount), true
}

// avg returns sum/Count rounded half away from zero (0 for no rides).
func (r Result) avg(sum int64) int64 {
	if r.Sums.Count == 0 {
		return 0
	}
	return divRound(sum, r.Sums.Count)
}

// AvgDistanceHundredths is the average trip_distance in hundredths of a mile.
func (r Result) AvgDistanceHundredths() int64 { return r.avg(r.Sums.DistanceHundredths) }

// AvgTipCents is the average tip_amount in cents.
func (r Result) AvgTipCents() int64 { return r.avg(r.Sums.TipCents) }

// AvgFareCents is the average fare_amount in cents.
func (r Result) AvgFareCents() int64 { return r.avg(r.Sums.FareCents) }

// AvgTotalCents is the average total_amount in cents.
func (r Result) AvgTotalCents() int64 { return r.avg(r.Sums.TotalCents) }

// MarshalJSON writes the result's JSON. Field order and number formatting
// are fixed, so equal results give identical bytes:
//
//	{"window":{"start":"2024-01-01T13:00:00","end":"2024-01-01T14:00:00",
//	 "start_ms":1704114000000,"end_ms":1704117600000},"borough":"Queens",
//	 "trip_count":3,"avg_passenger_count":1.33,"total_distance":10.50,
//	 "avg_distance":3.50,"avg_tip_amount":1.00,"total_fare":30.00,
//	 "avg_fare":10.00,"total_amount":40.50,"avg_total_amount":13.50,
//	 "input_count":3,"sums":{"count":3,"passenger_sum":4,"passenger_count":3,
//	 "distance_hundredths":1050,"tip_cents":300,"fare_cents":3000,"total_cents":4050},
//	 "revision":0,"status":"final"}
//
// (on one line). Window times are RFC 3339 wall clock without zone and
// epoch ms of the wall clock. Money, distance and averages have exactly two
// decimals; avg_passenger_count is null when no ride had a passenger count.
// input_count is the number of rides aggregated (equal to trip_count); "sums"
// are the exact integers, so consumers can re-aggregate without rounding.
// "revision" and "status" tell the final result (0, "final") from the later
// revisions of the same key (1, 2, ..., "revised"; see Revision).
func (r Result) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 512)), nil
}

// AppendJSON appends the MarshalJSON encoding to dst.
func (r Result) AppendJSON(b []byte) []byte {
	s := r.Sums
	b = append(b, `{"window":{"start":"`...)
	b = window.AppendWallClock(b, r.Window.StartMs)
	b = append(b, `","end":"`...)
	b = window.AppendWallClock(b, r.Window.EndMs)
	b = append(b, `","start_ms":`...)
	b = strconv.AppendInt(b, r.Window.StartMs, 10)
	b = append(b, `,"end_ms":`...)
	b = strconv.AppendInt(b, r.Window.EndMs, 10)
	b = append(b, `},"borough":`...)
	b = appendJSONString(b, r.Borough)
	b = append(b, `,"trip_count":`...)
	b = strconv.AppendInt(b, s.Count, 10)
	b = append(b, `,"avg_passenger_count":`...)
	if avg, ok := r.AvgPassengerCount(); ok {
		b = appendHundredths(b, avg)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"total_distance":`...)
	b = appendHundredths(b, s.DistanceHundredths)
	b = append(b, `,"avg_distance":`...)
	b = appendHundredths(b, r.AvgDistanceHundredths())
	b = append(b, `,"avg_tip_amount":`...)
	b = appendHundredths(b, r.AvgTipCents())
	b = append(b, `,"total_fare":`...)
	b = appendHundredths(b, s.FareCents)
	b = append(b, `,"avg_fare":`...)
	b = appendHundredths(b, r.AvgFareCents())
	b = append(b, `,"total_amount":`...)
	b = appendHundredths(b, s.TotalCents)
	b = append(b, `,"avg_total_amount":`...)
	b = appendHundredths(b, r.AvgTotalCents())
	b = append(b, `,"input_count":`...)
	b = strconv.AppendInt(b, s.Count, 10)
	b = append(b, `,"sums":{"count":`...)
	b = strconv.AppendInt(b, s.Count, 10)
	b = append(b, `,"passenger_sum":`...)
	b = strconv.AppendInt(b, s.PassengerSum, 10)
	b = append(b, `,"passenger_count":`...)
	b = strconv.AppendInt(b, s.PassengerCount, 10)
	b = append(b, `,"distance_hundredths":`...)
	b = strconv.AppendInt(b, s.DistanceHundredths, 10)
	b = append(b, `,"tip_cents":`...)
	b = strconv.AppendInt(b, s.TipCents, 10)
	b = append(b, `,"fare_cents":`...)
	b = strconv.AppendInt(b, s.FareCents, 10)
	b = append(b, `,"total_cents":`...)
	b = strconv.AppendInt(b, s.TotalCents, 10)
	b = append(b, `},"revision":`...)
	b = strconv.AppendInt(b, r.Revision, 10)
	b = append(b, `,"status":"`...)
	b = append(b, r.Status()...)
	return append(b, `"}`...)
}

// resultJSON is the part of the JSON that UnmarshalJSON reads: the exact
// values. The derived metrics are recomputed from them.
type resultJSON struct {
	Window struct {
		StartMs *int64 `json:"start_ms"`
		EndMs   *int64 `json:"end_ms"`
	} `json:"window"`
	Borough *string `json:"borough"`
	Sums    *struct {
		Count              int64 `json:"count"`
		PassengerSum       int64 `json:"passenger_sum"`
		PassengerCount     int64 `json:"passenger_count"`
		DistanceHundredths int64 `json:"distance_hundredths"`
		TipCents           int64 `json:"tip_cents"`
		FareCents          int64 `json:"fare_cents"`
		TotalCents         int64 `json:"total_cents"`
	} `json:"sums"`
	Revision *int64 `json:"revision"` // absent in results written before revisions: 0
}

// UnmarshalJSON reads a result written by MarshalJSON from its exact fields
// (window.start_ms, window.end_ms, borough, sums); the derived metrics are
// not read, they follow from the sums.
func (r *Result) UnmarshalJSON(data []byte) error {
	var j resultJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("result JSON: %w", err)
	}
	switch {
	case j.Window.StartMs == nil || j.Window.EndMs == nil:
		return fmt.Errorf("result JSON: window.start_ms or window.end_ms missing")
	case *j.Window.EndMs <= *j.Window.StartMs:
		return fmt.Errorf("result JSON: window end_ms %d not after start_ms %d", *j.Window.EndMs, *j.Window.StartMs)
	case j.Borough == nil:
		return fmt.Errorf("result JSON: borough missing")
	case j.Sums == nil:
		return fmt.Errorf("result JSON: sums missing")
	}
	*r = Result{
		Window:  window.Window{StartMs: *j.Window.StartMs, EndMs: *j.Window.EndMs},
		Borough: *j.Borough,
		Sums:    Sums(*j.Sums),
	}
	if j.Revision != nil {
		if *j.Revision < 0 {
			return fmt.Errorf("result JSON: revision %d < 0", *j.Revision)
		}
		r.Revision = *j.Revision
	}
	return nil
}

// appendHundredths appends v/100 with exactly two decimals: 1234 → 12.34,
// -5 → -0.05.
func appendHundredths(b []byte, v int64) []byte {
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		u = -u // two's complement: correct for math.MinInt64 too
	}
	b = strconv.AppendUint(b, u/100, 10)
	f := u % 100
	return append(b, '.', byte('0'+f/10), byte('0'+f%10))
}

// appendJSONString appends s as a JSON string. It escapes '"', '\\' and
// control characters and replaces invalid UTF-8 by U+FFFD; everything else is
// written as is, so the output depends only on s.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
