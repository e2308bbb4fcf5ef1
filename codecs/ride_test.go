package codecs

import (
	"strings"
	"testing"
)

// A message exactly as the original pandas producer wrote it (ints of DOUBLE columns as 1.0).
const pandasRide = `{"VendorID":2,"lpep_pickup_datetime":1609459200000,"lpep_dropoff_datetime":1609459800000,` +
	`"store_and_fwd_flag":"N","RatecodeID":1.0,"PULocationID":74,"DOLocationID":42,"passenger_count":1.0,` +
	`"trip_distance":1.3,"fare_amount":6.5,"extra":0.5,"mta_tax":0.5,"tip_amount":0.29,"tolls_amount":0.0,` +
	`"ehail_fee":null,"improvement_surcharge":0.3,"total_amount":8.09,"payment_type":1.0,"trip_type":1.0,` +
	`"congestion_surcharge":0.0}`

func TestDecodeRideFactsPandas(t *testing.T) {
	got, err := DecodeRideFacts([]byte(pandasRide), "")
	if err != nil {
		t.Fatal(err)
	}
	want := RideFacts{EventMs: 1609459800000, PickupMs: 1609459200000, PULocationID: 74,
		PassengerCount: Int(1), DistanceHundredths: 130, FareCents: 650, TipCents: 29, TotalCents: 809}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	got, err = DecodeRideFacts([]byte(pandasRide), "lpep_pickup_datetime")
	if err != nil || got.EventMs != 1609459200000 {
		t.Fatalf("event field lpep_pickup_datetime: %+v, %v", got, err)
	}
}

// ride builds a valid message with some fields replaced (value "" removes the field).
func ride(repl map[string]string) string {
	fields := []struct{ k, v string }{
		{"VendorID", "2"}, {"lpep_pickup_datetime", "1704070015000"}, {"lpep_dropoff_datetime", "1704070705000"},
		{"PULocationID", "236"}, {"passenger_count", "1"}, {"trip_distance", "1.98"}, {"fare_amount", "12.8"},
		{"tip_amount", "3.61"}, {"total_amount", "21.66"},
	}
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, f := range fields {
		v, ok := repl[f.k]
		if !ok {
			v = f.v
		}
		if v == "" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(`"` + f.k + `":` + v)
	}
	for k, v := range repl {
		if strings.HasPrefix(k, "+") {
			b.WriteString(`,"` + k[1:] + `":` + v)
		}
	}
	b.WriteByte('}')
	return b.String()
}

func TestDecodeRideFactsValid(t *testing.T) {
	base := RideFacts{EventMs: 1704070705000, PickupMs: 1704070015000, PULocationID: 236,
		PassengerCount: Int(1), DistanceHundredths: 198, FareCents: 1280, TipCents: 361, TotalCents: 2166}
	for _, tc := range []struct {
		name string
		msg  string
		want func(*RideFacts)
	}{
		{"ours", ride(nil), func(*RideFacts) {}},
		{"null passengers", ride(map[string]string{"passenger_count": "null"}), func(f *RideFacts) { f.PassengerCount = NullInt{} }},
		{"missing passengers", ride(map[string]string{"passenger_count": ""}), func(f *RideFacts) { f.PassengerCount = NullInt{} }},
		{"zero passengers", ride(map[string]string{"passenger_count": "0.0"}), func(f *RideFacts) { f.PassengerCount = Int(0) }},
		{"refund", ride(map[string]string{"fare_amount": "-120.0", "total_amount": "-120.3", "tip_amount": "-10.5"}),
			func(f *RideFacts) { f.FareCents, f.TotalCents, f.TipCents = -12000, -12030, -1050 }},
		{"zero distance", ride(map[string]string{"trip_distance": "0.0"}), func(f *RideFacts) { f.DistanceHundredths = 0 }},
		{"huge real distance", ride(map[string]string{"trip_distance": "201421.68"}), func(f *RideFacts) { f.DistanceHundredths = 20142168 }},
		{"rounding half away", ride(map[string]string{"tip_amount": "0.125", "fare_amount": "-0.125"}),
			func(f *RideFacts) { f.TipCents, f.FareCents = 13, -13 }},
		{"exponent", ride(map[string]string{"fare_amount": "1.28e1", "PULocationID": "2.36e2"}), func(*RideFacts) {}},
		{"ints as floats", ride(map[string]string{"lpep_dropoff_datetime": "1704070705000.0", "PULocationID": "236.0"}), func(*RideFacts) {}},
		{"unknown fields of any type", ride(map[string]string{"+x": `{"a":[1,{"b":null}],"c":"\u00e9"}`, "+y": "true", "+z": `"s"`}), func(*RideFacts) {}},
		{"duplicate key last wins", ride(map[string]string{"+PULocationID": "7"}), func(f *RideFacts) { f.PULocationID = 7 }},
		{"escaped key", strings.Replace(ride(nil), `"PULocationID"`, `"PULocation\u0049D"`, 1), func(*RideFacts) {}},
		{"spaces", " \n" + strings.ReplaceAll(strings.ReplaceAll(ride(nil), ":", " : "), ",", " ,\r\n\t") + " \n", func(*RideFacts) {}},
		{"yellow names", strings.ReplaceAll(ride(nil), "lpep_", "tpep_"), func(*RideFacts) {}},
		{"bounds low", ride(map[string]string{"lpep_pickup_datetime": "946684800000", "PULocationID": "1"}),
			func(f *RideFacts) { f.PickupMs, f.PULocationID = 946684800000, 1 }},
		{"bounds high", ride(map[string]string{"lpep_pickup_datetime": "4102444799999", "PULocationID": "65535",
			"trip_distance": "999999.99", "total_amount": "-999999.99", "passenger_count": "1000"}),
			func(f *RideFacts) {
				f.PickupMs, f.PULocationID, f.DistanceHundredths, f.TotalCents, f.PassengerCount = 4102444799999, 65535, 99999999, -99999999, Int(1000)
			}},
	} {
		want := base
		tc.want(&want)
		got, err := DecodeRideFacts([]byte(tc.msg), "")
		if err != nil || got != want {
			t.Errorf("%s: DecodeRideFacts(%s) = %+v, %v; want %+v", tc.name, tc.msg, got, err, want)
		}
	}
}

func TestDecodeRideFactsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, msg, event, reason, field string
	}{
		{"empty", "", "", ReasonEmpty, ""},
		{"spaces only", " \r\n", "", ReasonEmpty, ""},
		{"not JSON", "hello", "", ReasonNotJSON, ""},
		{"truncated", ride(nil)[:40], "", ReasonNotJSON, ""},
		{"trailing garbage", ride(nil) + "x", "", ReasonNotJSON, ""},
		{"two objects", ride(nil) + ride(nil), "", ReasonNotJSON, ""},
		{"array", "[1,2]", "", ReasonNotObject, ""},
		{"string", `"ride"`, "", ReasonNotObject, ""},
		{"NaN", ride(map[string]string{"fare_amount": "NaN"}), "", ReasonNotJSON, ""},
		{"Infinity", ride(map[string]string{"tip_amount": "Infinity"}), "", ReasonNotJSON, ""},
		{"-Infinity", ride(map[string]string{"tip_amount": "-Infinity"}), "", ReasonNotJSON, ""},
		{"leading zero", ride(map[string]string{"PULocationID": "0236"}), "", ReasonNotJSON, ""},
		{"hex", ride(map[string]string{"PULocationID": "0x10"}), "", ReasonNotJSON, ""},
		{"bad number in unknown field", ride(map[string]string{"+extra": "1.2.3"}), "", ReasonNotJSON, ""},
		{"bad escape", ride(map[string]string{"+store_and_fwd_flag": `"\x"`}), "", ReasonNotJSON, ""},
		{"control char in string", ride(map[string]string{"+store_and_fwd_flag": "\"a\x01\""}), "", ReasonNotJSON, ""},
		{"syntax wins over field error", ride(map[string]string{"trip_distance": "-1", "+x": "tru"}), "", ReasonNotJSON, ""},
		{"deep nesting", ride(map[string]string{"+x": strings.Repeat("[", 100) + strings.Repeat("]", 100)}), "", ReasonTooDeep, ""},
		{"missing dropoff", ride(map[string]string{"lpep_dropoff_datetime": ""}), "", ReasonMissing, "lpep_dropoff_datetime"},
		{"missing configured event field", ride(nil), "event_time", ReasonMissing, "event_time"},
		{"missing pickup", ride(map[string]string{"lpep_pickup_datetime": ""}), "", ReasonMissing, "lpep_pickup_datetime"},
		{"missing PULocationID", ride(map[string]string{"PULocationID": ""}), "", ReasonMissing, "PULocationID"},
		{"missing distance", ride(map[string]string{"trip_distance": ""}), "", ReasonMissing, "trip_distance"},
		{"missing fare", ride(map[string]string{"fare_amount": ""}), "", ReasonMissing, "fare_amount"},
		{"missing tip", ride(map[string]string{"tip_amount": ""}), "", ReasonMissing, "tip_amount"},
		{"missing total", ride(map[string]string{"total_amount": ""}), "", ReasonMissing, "total_amount"},
		{"empty object", "{}", "", ReasonMissing, "lpep_dropoff_datetime"},
		{"marker", `{"type":"watermark","watermark_ms":1704070705000,"final":false,"after_seq":9,"rows":10}`, "", ReasonMissing, "lpep_dropoff_datetime"},
		{"null dropoff", ride(map[string]string{"lpep_dropoff_datetime": "null"}), "", ReasonNull, "lpep_dropoff_datetime"},
		{"null fare", ride(map[string]string{"fare_amount": "null"}), "", ReasonNull, "fare_amount"},
		{"string timestamp", ride(map[string]string{"lpep_dropoff_datetime": `"2024-01-01 00:00:00"`}), "", ReasonNotNumber, "lpep_dropoff_datetime"},
		{"string money", ride(map[string]string{"total_amount": `"21.66"`}), "", ReasonNotNumber, "total_amount"},
		{"bool PU", ride(map[string]string{"PULocationID": "true"}), "", ReasonNotNumber, "PULocationID"},
		{"object distance", ride(map[string]string{"trip_distance": "{}"}), "", ReasonNotNumber, "trip_distance"},
		{"string passengers", ride(map[string]string{"passenger_count": `"1"`}), "", ReasonNotNumber, "passenger_count"},
		{"seconds not ms", ride(map[string]string{"lpep_dropoff_datetime": "1704070705"}), "", ReasonTimeRange, "lpep_dropoff_datetime"},
		{"microseconds", ride(map[string]string{"lpep_pickup_datetime": "1704070015000000"}), "", ReasonTimeRange, "lpep_pickup_datetime"},
		{"year 1999", ride(map[string]string{"lpep_pickup_datetime": "946684799999"}), "", ReasonTimeRange, "lpep_pickup_datetime"},
		{"year 2100", ride(map[string]string{"lpep_dropoff_datetime": "4102444800000"}), "", ReasonTimeRange, "lpep_dropoff_datetime"},
		{"negative timestamp", ride(map[string]string{"lpep_dropoff_datetime": "-1"}), "", ReasonTimeRange, "lpep_dropoff_datetime"},
		{"huge timestamp", ride(map[string]string{"lpep_dropoff_datetime": "1e300"}), "", ReasonTimeRange, "lpep_dropoff_datetime"},
		{"fractional timestamp", ride(map[string]string{"lpep_dropoff_datetime": "1704070705000.5"}), "", ReasonNotInteger, "lpep_dropoff_datetime"},
		{"fractional PU", ride(map[string]string{"PULocationID": "1.5"}), "", ReasonNotInteger, "PULocationID"},
		{"PU zero", ride(map[string]string{"PULocationID": "0"}), "", ReasonOutOfRange, "PULocationID"},
		{"PU negative", ride(map[string]string{"PULocationID": "-4"}), "", ReasonNegative, "PULocationID"},
		{"PU too big", ride(map[string]string{"PULocationID": "65536"}), "", ReasonOutOfRange, "PULocationID"},
		{"negative passengers", ride(map[string]string{"passenger_count": "-1"}), "", ReasonNegative, "passenger_count"},
		{"absurd passengers", ride(map[string]string{"passenger_count": "1001"}), "", ReasonOutOfRange, "passenger_count"},
		{"fractional passengers", ride(map[string]string{"passenger_count": "1.5"}), "", ReasonNotInteger, "passenger_count"},
		{"negative distance", ride(map[string]string{"trip_distance": "-0.01"}), "", ReasonNegative, "trip_distance"},
		{"distance 1e6", ride(map[string]string{"trip_distance": "1000000"}), "", ReasonOutOfRange, "trip_distance"},
		{"distance 1e300", ride(map[string]string{"trip_distance": "1e300"}), "", ReasonOutOfRange, "trip_distance"},
		{"fare 1e6", ride(map[string]string{"fare_amount": "1000000.0"}), "", ReasonOutOfRange, "fare_amount"},
		{"total -1e6", ride(map[string]string{"total_amount": "-1000000"}), "", ReasonOutOfRange, "total_amount"},
		{"tip 1e20", ride(map[string]string{"tip_amount": "1e20"}), "", ReasonOutOfRange, "tip_amount"},
		{"first field error wins", ride(map[string]string{"PULocationID": "0", "fare_amount": "null"}), "", ReasonOutOfRange, "PULocationID"},
	} {
		got, err := DecodeRideFacts([]byte(tc.msg), tc.event)
		e, ok := err.(*InvalidRideError)
		if !ok || e.Reason != tc.reason || e.Field != tc.field {
			t.Errorf("%s: DecodeRideFacts(%q) = %+v, %#v; want reason %q field %q", tc.name, tc.msg, got, err, tc.reason, tc.field)
			continue
		}
		if got != (RideFacts{}) {
			t.Errorf("%s: got non-zero facts %+v with an error", tc.name, got)
		}
	}
}

func TestInvalidRideErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  InvalidRideError
		want string
	}{
		{InvalidRideError{Reason: ReasonNotJSON, Offset: 3}, "not JSON"},
		{InvalidRideError{Field: "lpep_dropoff_datetime", Reason: ReasonMissing}, "missing field lpep_dropoff_datetime"},
		{InvalidRideError{Field: "trip_distance", Reason: ReasonNegative}, "negative trip_distance"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func FuzzDecodeRideFacts(f *testing.F) {
	f.Add([]byte(pandasRide), "")
	f.Add([]byte(ride(nil)), "lpep_pickup_datetime")
	f.Add([]byte(ride(map[string]string{"passenger_count": "null", "+x": `[{"a":"\u0041"}]`})), "")
	f.Add([]byte(`{"lpep_dropoff_datetime":1e3}`), "")
	f.Add([]byte(`[`), "x")
	f.Fuzz(func(t *testing.T, data []byte, field string) {
		got, err := DecodeRideFacts(data, field)
		if err != nil {
			e, ok := err.(*InvalidRideError)
			if !ok || e.Reason == "" {
				t.Fatalf("error %#v is not a *InvalidRideError with a reason", err)
			}
			if got != (RideFacts{}) {
				t.Fatalf("non-zero facts %+v with error %v", got, err)
			}
			return
		}
		inTime := func(v int64) bool { return v >= MinTimestampMs && v < MaxTimestampMs }
		money := func(v int64) bool { return v > -MaxMoneyCents && v < MaxMoneyCents }
		if !inTime(got.EventMs) || !inTime(got.PickupMs) || got.PULocationID < 1 || int64(got.PULocationID) > MaxLocationID ||
			got.DistanceHundredths < 0 || got.DistanceHundredths >= MaxDistanceHundredths ||
			!money(got.FareCents) || !money(got.TipCents) || !money(got.TotalCents) ||
			(got.PassengerCount.Valid && (got.PassengerCount.V < 0 || got.PassengerCount.V > MaxPassengerCount)) ||
			(!got.PassengerCount.Valid && got.PassengerCount.V != 0) {
			t.Fatalf("accepted out-of-bounds facts %+v from %q", got, data)
		}
	})
}

func BenchmarkDecodeRideFacts(b *testing.B) {
	for _, bc := range []struct{ name, msg string }{
		{"ours", string(AppendTripJSON(nil, &syntheticTrips[0].trip))},
		{"pandas", pandasRide},
		{"ours_2025", string(AppendTripJSON(nil, &syntheticTrips[3].trip))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := []byte(bc.msg)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for i := 0; i < b.N; i++ {
				if _, err := DecodeRideFacts(msg, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestDecodeRideFactsOddEventFields(t *testing.T) {
	// A configured event-time field that is not a timestamp still has to be a valid timestamp.
	for _, tc := range []struct{ field, msg, reason string }{
		{"passenger_count", ride(map[string]string{"passenger_count": "null"}), ReasonNull},
		{"passenger_count", ride(nil), ReasonTimeRange},
		{"trip_distance", ride(nil), ReasonNotInteger},
		{"fare_amount", ride(map[string]string{"fare_amount": "1704070705000"}), ReasonOutOfRange},
	} {
		_, err := DecodeRideFacts([]byte(tc.msg), tc.field)
		e, ok := err.(*InvalidRideError)
		if !ok || e.Field != tc.field || e.Reason != tc.reason {
			t.Errorf("event field %s in %s: error %v, want %q", tc.field, tc.msg, err, tc.reason)
		}
	}
	// A timestamp used as event time and as pickup at once.
	got, err := DecodeRideFacts([]byte(ride(nil)), "lpep_pickup_datetime")
	if err != nil || got.EventMs != got.PickupMs || got.PickupMs != 1704070015000 {
		t.Fatalf("%+v, %v", got, err)
	}
}

// Valid JSON nested deeper than the scanner's limit is "nested too deep", not "not
// JSON" (the dead-letter reason must say what is wrong); the limit stays.
func TestDeepNestingIsTooDeep(t *testing.T) {
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	for name, msg := range map[string]string{
		"field value": `{"lpep_dropoff_datetime":1609459800000,"x":` + deep + `}`,
		"message":     deep,
	} {
		_, err := DecodeRideFacts([]byte(msg), "")
		if err == nil || err.Error() != ReasonTooDeep {
			t.Errorf("%s nested 100000 deep: %v, want %q", name, err, ReasonTooDeep)
		}
		if _, err := DecodeTrip([]byte(msg)); err == nil || !strings.Contains(err.Error(), ReasonTooDeep) {
			t.Errorf("DecodeTrip, %s nested 100000 deep: %v, want %q", name, err, ReasonTooDeep)
		}
	}
	// Shallow nesting is skipped as usual; broken JSON is still "not JSON".
	if _, err := DecodeRideFacts([]byte(`{"x":[[{"a":1}]],"lpep_dropoff_datetime":1}`), ""); err != nil && err.Error() == ReasonTooDeep {
		t.Errorf("shallow nesting reported as too deep: %v", err)
	}
	if _, err := DecodeRideFacts([]byte(`{"x":[[}`), ""); err == nil || err.Error() != ReasonNotJSON {
		t.Errorf("broken JSON: %v, want %q", err, ReasonNotJSON)
	}
}
