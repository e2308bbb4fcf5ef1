package codecs

// Validation bounds of DecodeRideFacts. They are generous on purpose: every row of the real TLC
// files in shared/data passes (ride_realdata_test.go checks all 291830 rows and logs the ranges),
// while values no taxi meter can produce are rejected before they reach exact int64 sums.
// Measured ranges of the four Parquet files and the CSV: timestamps 2009-01-01 .. 2025-02-05,
// PULocationID 1..265, passenger_count 0..9, trip_distance 0 .. 201421.68 miles, fare_amount
// -120.00 .. 1422.60, tip_amount -10.50 .. 252.05, total_amount -120.30 .. 1424.10 dollars.
const (
	// MinTimestampMs is 2000-01-01T00:00:00 (wall clock as UTC), inclusive.
	MinTimestampMs int64 = 946684800000
	// MaxTimestampMs is 2100-01-01T00:00:00, exclusive.
	MaxTimestampMs int64 = 4102444800000
	// MaxMoneyCents bounds |fare|, |tip|, |total| (exclusive): one million dollars.
	MaxMoneyCents int64 = 100_000_000
	// MaxDistanceHundredths bounds trip_distance (exclusive): one million miles. Negative
	// distances are rejected.
	MaxDistanceHundredths int64 = 100_000_000
	// MaxPassengerCount bounds passenger_count (inclusive); negative counts are rejected.
	MaxPassengerCount int64 = 1000
	// MaxLocationID bounds PULocationID (inclusive); IDs start at 1. TLC uses 1..265.
	MaxLocationID int64 = 65535
)

// DefaultEventTimeField is the event-time field of DecodeRideFacts when none is given: the
// dropoff time. With "" both spellings, lpep_dropoff_datetime and tpep_dropoff_datetime, match.
const DefaultEventTimeField = "lpep_dropoff_datetime"

// RideFacts is what the aggregation needs from one ride message, in exact integers.
type RideFacts struct {
	EventMs            int64 // event time (dropoff by default), epoch ms of the wall clock
	PickupMs           int64 // lpep_/tpep_pickup_datetime, epoch ms of the wall clock
	PULocationID       int32
	PassengerCount     NullInt // null in TLC's "null block" rows
	DistanceHundredths int64   // trip_distance in hundredths of a mile
	FareCents          int64
	TipCents           int64
	TotalCents         int64
}

// Reasons of InvalidRideError. They are short, fixed strings so that a dead-letter header can
// be grouped and counted.
const (
	ReasonEmpty        = "empty"
	ReasonNotJSON      = "not JSON"
	ReasonTooDeep      = "nested too deep" // deeper than 64 levels: no ride is
	ReasonNotObject    = "not a JSON object"
	ReasonMissing      = "missing field"
	ReasonNull         = "null"
	ReasonNotNumber    = "not a number"
	ReasonNotInteger   = "not an integer"
	ReasonTimeRange    = "timestamp out of range"
	ReasonOutOfRange   = "out of range"
	ReasonNegative     = "negative"
	ReasonUnknownField = "unknown field"
	ReasonMixedFlavor  = "mixed lpep_/tpep_ fields"
	ReasonNotString    = "not a string"
)

// InvalidRideError says why a message is not a valid ride. Field is empty for errors about the
// whole message (empty, not JSON, not an object).
type InvalidRideError struct {
	Field  string
	Reason string
	// Offset is the byte offset of a syntax error (Reason == ReasonNotJSON), else 0.
	Offset int
}

// Error returns the reason followed by the field, e.g. "negative trip_distance" or
// "missing field lpep_dropoff_datetime"; this is what goes into the ts-dead-reason header.
func (e *InvalidRideError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Reason + " " + e.Field
}

// needed fields of RideFacts, as bits of a "seen" mask.
const (
	needEvent = 1 << iota
	needPickup
	needPU
	needDistance
	needFare
	needTip
	needTotal
	needAll = needEvent | needPickup | needPU | needDistance | needFare | needTip | needTotal
)

// DecodeRideFacts extracts the aggregation's inputs from one ride message: the replay
// producer's JSON or the original pandas producer's (ints may come as 1.0, ehail_fee null).
// eventTimeField names the event-time field; "" means the dropoff time of either flavor.
// Required fields: the event time, the pickup time, PULocationID, trip_distance, fare_amount,
// tip_amount and total_amount (non-null numbers); passenger_count may be null or missing. Other
// fields are skipped (but must be valid JSON). Duplicate keys: the last one wins, as in
// encoding/json. Money and distance are converted from the decimal text (see ParseFixed2), so
// they are exact.
//
// Errors are *InvalidRideError. A syntax error anywhere wins over a field error.
//
// Hot path: this is called once per ride. It is a single pass over the bytes with no
// allocation on success (see BenchmarkDecodeRideFacts). DecodeTrip is the full-row front end of
// the same parser (objectScanner).
func DecodeRideFacts(data []byte, eventTimeField string) (RideFacts, error) {
	var f RideFacts
	o := objectScanner{scanner: scanner{data: data}}
	if err := o.open(); err != nil {
		return RideFacts{}, err
	}
	var fieldErr *InvalidRideError
	fail := func(field, reason string) {
		if fieldErr == nil {
			fieldErr = &InvalidRideError{Field: field, Reason: reason}
		}
	}

	var seen uint
members:
	for {
		key, _, ok := o.next()
		if !ok {
			break
		}
		var want uint
		if eventTimeField == "" {
			if string(key) == "lpep_dropoff_datetime" || string(key) == "tpep_dropoff_datetime" {
				want |= needEvent
			}
		} else if string(key) == eventTimeField {
			want |= needEvent
		}
		isPassengers := false
		switch string(key) {
		case "lpep_pickup_datetime", "tpep_pickup_datetime":
			want |= needPickup
		case "PULocationID":
			want |= needPU
		case "passenger_count":
			isPassengers = true
		case "trip_distance":
			want |= needDistance
		case "fare_amount":
			want |= needFare
		case "tip_amount":
			want |= needTip
		case "total_amount":
			want |= needTotal
		}

		if want == 0 && !isPassengers {
			if !o.skip() {
				break
			}
			continue
		}
		kind, text, _, ok := o.value()
		if !ok {
			break
		}
		seen |= want
		switch {
		case kind == valueNull && want == 0: // passenger_count may be null
			f.PassengerCount = NullInt{}
		case kind == valueNull:
			fail(fieldName(key), ReasonNull)
		case kind != valueNumber:
			fail(fieldName(key), ReasonNotNumber)
		default:
			// One key can have two roles (the configured event-time field may be any field),
			// so the integer and the fixed-point parts are independent.
			if want&(needEvent|needPickup|needPU) != 0 || isPassengers {
				v, err := integer(text)
				if err == ErrNotNumber {
					o.badNumber(text)
					break members
				}
				f.decodeInteger(want, isPassengers, v, err, key, fail)
			}
			if want&(needDistance|needFare|needTip|needTotal) != 0 {
				v, err := fixed2(text)
				if err == ErrNotNumber {
					o.badNumber(text)
					break members
				}
				f.decodeFixed2(want, v, err, key, fail)
			}
		}
	}
	if err := o.end(); err != nil {
		return RideFacts{}, err
	}
	if fieldErr != nil {
		return RideFacts{}, fieldErr
	}
	if seen != needAll {
		return RideFacts{}, &InvalidRideError{Field: missingField(seen, eventTimeField), Reason: ReasonMissing}
	}
	return f, nil
}

// decodeInteger stores an integer-valued field and reports bounds violations.
func (f *RideFacts) decodeInteger(want uint, isPassengers bool, v int64, err error, key []byte, fail func(string, string)) {
	if want&(needEvent|needPickup) != 0 {
		if reason := timestampReason(v, err); reason != "" {
			fail(fieldName(key), reason)
		}
		if want&needEvent != 0 {
			f.EventMs = v
		}
		if want&needPickup != 0 {
			f.PickupMs = v
		}
	}
	if want&needPU != 0 {
		if reason := boundedReason(v, err, 1, MaxLocationID); reason != "" {
			fail(fieldName(key), reason)
		}
		f.PULocationID = int32(v)
	}
	if isPassengers {
		if reason := boundedReason(v, err, 0, MaxPassengerCount); reason != "" {
			fail(fieldName(key), reason)
		}
		f.PassengerCount = NullInt{V: v, Valid: true}
	}
}

// decodeFixed2 stores a distance or money field (in hundredths) and reports bounds violations.
func (f *RideFacts) decodeFixed2(want uint, v int64, err error, key []byte, fail func(string, string)) {
	if want&needDistance != 0 {
		switch {
		case err != nil || v >= MaxDistanceHundredths:
			fail(fieldName(key), ReasonOutOfRange)
		case v < 0:
			fail(fieldName(key), ReasonNegative)
		}
		f.DistanceHundredths = v
	}
	if want&(needFare|needTip|needTotal) != 0 {
		if err != nil || v >= MaxMoneyCents || v <= -MaxMoneyCents {
			fail(fieldName(key), ReasonOutOfRange)
		}
		switch {
		case want&needFare != 0:
			f.FareCents = v
		case want&needTip != 0:
			f.TipCents = v
		default:
			f.TotalCents = v
		}
	}
}

// fieldName turns a key into the error's field name (allocates; error path only).
func fieldName(key []byte) string { return string(key) }

func missingField(seen uint, eventTimeField string) string {
	switch {
	case seen&needEvent == 0:
		if eventTimeField == "" {
			return DefaultEventTimeField
		}
		return eventTimeField
	case seen&needPickup == 0:
		return "lpep_pickup_datetime"
	case seen&needPU == 0:
		return "PULocationID"
	case seen&needDistance == 0:
		return "trip_distance"
	case seen&needFare == 0:
		return "fare_amount"
	case seen&needTip == 0:
		return "tip_amount"
	default:
		return "total_amount"
	}
}

func timestampReason(v int64, err error) string {
	switch {
	case err == ErrNotInteger:
		return ReasonNotInteger
	case err != nil || v < MinTimestampMs || v >= MaxTimestampMs:
		return ReasonTimeRange
	}
	return ""
}

func boundedReason(v int64, err error, lo, hi int64) string {
	switch {
	case err == ErrNotInteger:
		return ReasonNotInteger
	case err != nil || v > hi:
		return ReasonOutOfRange
	case v < lo && v < 0:
		return ReasonNegative
	case v < lo:
		return ReasonOutOfRange
	}
	return ""
}
