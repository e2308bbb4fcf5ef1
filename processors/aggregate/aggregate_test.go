package aggregate

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const hourMs = int64(time.Hour / time.Millisecond)

// wall parses "2006-01-02 15:04:05" as epoch ms of the wall clock.
func wall(t testing.TB, s string) int64 {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UnixMilli()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run with -update if the change is intended):\n%s", path, cmp.Diff(string(want), string(got)))
	}
}

func TestDivRound(t *testing.T) {
	tests := []struct{ n, d, want int64 }{
		{0, 3, 0}, {1, 3, 0}, {2, 3, 1}, {3, 3, 1}, {4, 3, 1}, {5, 3, 2},
		{5, 2, 3}, {-5, 2, -3}, {7, 2, 4}, {-7, 2, -4}, // halves go away from zero
		{-1, 3, 0}, {-2, 3, -1}, {-4, 3, -1},
		{1, 1, 1}, {-1, 1, -1},
		{math.MaxInt64, 2, math.MaxInt64/2 + 1}, {math.MinInt64, 2, math.MinInt64 / 2},
		{math.MaxInt64, math.MaxInt64, 1}, {math.MaxInt64 - 1, math.MaxInt64, 1}, {math.MaxInt64 / 2, math.MaxInt64, 0},
	}
	for _, tt := range tests {
		if got := divRound(tt.n, tt.d); got != tt.want {
			t.Errorf("divRound(%d, %d) = %d, want %d", tt.n, tt.d, got, tt.want)
		}
	}
}

// refDivRound rounds n/d half away from zero with big.Rat, independently of divRound.
func refDivRound(n, d int64) int64 {
	x := new(big.Rat).SetFrac(big.NewInt(n), big.NewInt(d))
	neg := x.Sign() < 0
	x.Abs(x)
	x.Add(x, big.NewRat(1, 2))
	q := new(big.Int).Quo(x.Num(), x.Denom()) // floor of |n/d| + 1/2
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}

func TestDivRoundMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		d := rng.Int64N(1000) + 1
		n := rng.Int64N(2_000_000) - 1_000_000
		if got, want := divRound(n, d), refDivRound(n, d); got != want {
			t.Fatalf("divRound(%d, %d) = %d, reference %d", n, d, got, want)
		}
	}
}

func TestAppendHundredths(t *testing.T) {
	tests := []struct {
		v    int64
		want string
	}{
		{0, "0.00"}, {5, "0.05"}, {50, "0.50"}, {100, "1.00"}, {1234, "12.34"},
		{-5, "-0.05"}, {-100, "-1.00"}, {-1234, "-12.34"},
		{math.MaxInt64, "92233720368547758.07"}, {math.MinInt64, "-92233720368547758.08"},
	}
	for _, tt := range tests {
		if got := string(appendHundredths(nil, tt.v)); got != tt.want {
			t.Errorf("appendHundredths(%d) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"Queens", "N/A", "Staten Island", `a"b\c`, "tab\there\n", "\x00\x1f\x7f", "Zürich ☃", "bad \xff utf8", ""} {
		b := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: not JSON: %v", s, b, err)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if back != want {
			t.Errorf("appendJSONString(%q) = %s, decodes to %q, want %q", s, b, back, want)
		}
	}
}

// rides is a small fixed set of rides used by the golden tests.
func rides(t testing.TB) []struct {
	borough string
	ride    Ride
} {
	r := func(ts string, pass int64, hasPass bool, dist, tip, fare, total int64) Ride {
		return Ride{EventMs: wall(t, ts), PassengerCount: pass, HasPassengerCount: hasPass,
			DistanceHundredths: dist, TipCents: tip, FareCents: fare, TotalCents: total}
	}
	return []struct {
		borough string
		ride    Ride
	}{
		{"Queens", r("2024-01-01 13:05:00", 1, true, 350, 100, 1000, 1350)},
		{"Queens", r("2024-01-01 13:59:59", 2, true, 350, 100, 1000, 1350)},
		{"Queens", r("2024-01-01 13:30:00", 1, true, 350, 100, 1000, 1350)},
		{"Manhattan", r("2024-01-01 13:00:00", 0, false, 101, 0, 550, 700)}, // null passenger count
		{"Manhattan", r("2024-01-01 13:10:00", 0, false, 100, 1, 551, 701)}, // avg tip 0.5 cents → 0.01
		{"Brooklyn", r("2024-01-01 14:00:00", 3, true, 0, 0, -350, -450)},   // refund: negative money, next window
		{"Brooklyn", r("2024-01-01 14:20:00", 0, true, 5, 0, -351, -451)},   // avg fare -3.505 → -3.51
		{`Odd "Borough"`, r("2024-01-01 13:45:00", 9, true, 12345, 999, 99999, 123456)},
		{"N/A", r("1969-12-31 23:30:00", 1, true, 1, 1, 1, 1)}, // before the epoch
	}
}

// aggregateDirect sums rides per (hour window, borough) without the
// combiner or the state.
func aggregateDirect(t testing.TB, spec window.Spec) []Result {
	sums := map[cell]*Sums{}
	for _, x := range rides(t) {
		for _, w := range spec.Windows(x.ride.EventMs, nil) {
			k := cell{w, x.borough}
			if sums[k] == nil {
				sums[k] = new(Sums)
			}
			sums[k].Add(x.ride)
		}
	}
	var out []Result
	for k, s := range sums {
		out = append(out, Result{Window: k.w, Borough: k.borough, Sums: *s})
	}
	slices.SortFunc(out, func(a, b Result) int {
		return compareEntries(Entry{Window: a.Window, Borough: a.Borough}, Entry{Window: b.Window, Borough: b.Borough})
	})
	return out
}

func TestResultJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	for _, spec := range []window.Spec{window.Tumbling(time.Hour), {Size: time.Hour, Slide: 30 * time.Minute}} {
		for _, r := range aggregateDirect(t, spec) {
			b, err := json.Marshal(r) // through encoding/json: MarshalJSON must be valid JSON
			if err != nil {
				t.Fatal(err)
			}
			direct, _ := r.MarshalJSON()
			if !bytes.Equal(b, direct) {
				t.Fatalf("encoding/json reformatted the result:\n%s\n%s", direct, b)
			}
			var back Result
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("UnmarshalJSON(%s): %v", b, err)
			}
			if back != r {
				t.Fatalf("JSON round trip: got %+v, want %+v", back, r)
			}
			fmt.Fprintf(&buf, "%s\t%s\n", r.Key(), b)
		}
	}
	golden(t, "results.golden", buf.Bytes())
}

func TestResultMetrics(t *testing.T) {
	// Independent check of every derived metric on random sums.
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		count := rng.Int64N(50) + 1
		s := Sums{
			Count: count, PassengerCount: rng.Int64N(count + 1),
			DistanceHundredths: rng.Int64N(100000), TipCents: rng.Int64N(20000) - 1000,
			FareCents: rng.Int64N(200000) - 10000, TotalCents: rng.Int64N(300000) - 10000,
		}
		s.PassengerSum = rng.Int64N(9*s.PassengerCount + 1)
		r := Result{Window: window.Window{StartMs: 0, EndMs: hourMs}, Borough: "Queens", Sums: s}
		var j map[string]any
		b, _ := r.MarshalJSON()
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&j); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"trip_count":       fmt.Sprint(count),
			"input_count":      fmt.Sprint(count),
			"total_distance":   string(appendHundredths(nil, s.DistanceHundredths)),
			"avg_distance":     string(appendHundredths(nil, refDivRound(s.DistanceHundredths, count))),
			"avg_tip_amount":   string(appendHundredths(nil, refDivRound(s.TipCents, count))),
			"total_fare":       string(appendHundredths(nil, s.FareCents)),
			"avg_fare":         string(appendHundredths(nil, refDivRound(s.FareCents, count))),
			"total_amount":     string(appendHundredths(nil, s.TotalCents)),
			"avg_total_amount": string(appendHundredths(nil, refDivRound(s.TotalCents, count))),
		}
		if s.PassengerCount > 0 {
			want["avg_passenger_count"] = string(appendHundredths(nil, refDivRound(100*s.PassengerSum, s.PassengerCount)))
		}
		for k, v := range want {
			if got := fmt.Sprint(j[k]); got != v {
				t.Fatalf("sums %+v: %s = %s, want %s (JSON %s)", s, k, got, v, b)
			}
		}
		if s.PassengerCount == 0 && j["avg_passenger_count"] != nil {
			t.Fatalf("sums %+v: avg_passenger_count = %v, want null", s, j["avg_passenger_count"])
		}
	}
}

func TestResultUnmarshalRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":       `{`,
		"no window":      `{"borough":"Queens","sums":{}}`,
		"empty window":   `{"window":{"start_ms":5,"end_ms":5},"borough":"Queens","sums":{}}`,
		"no borough":     `{"window":{"start_ms":0,"end_ms":5},"sums":{}}`,
		"no sums":        `{"window":{"start_ms":0,"end_ms":5},"borough":"Queens"}`,
		"fractional sum": `{"window":{"start_ms":0,"end_ms":5},"borough":"Queens","sums":{"count":1.5}}`,
	} {
		var r Result
		if err := json.Unmarshal([]byte(in), &r); err == nil {
			t.Errorf("%s: UnmarshalJSON(%s) accepted it: %+v", name, in, r)
		}
	}
}

func TestSumsMergeOrderIndependent(t *testing.T) {
	all := rides(t)
	var direct Sums
	for _, x := range all {
		direct.Add(x.ride)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 100 {
		// Split the rides into random groups, sum each, merge in random order.
		groups := make([]Sums, 1+rng.IntN(4))
		for _, i := range rng.Perm(len(all)) {
			groups[rng.IntN(len(groups))].Add(all[i].ride)
		}
		var merged Sums
		for _, i := range rng.Perm(len(groups)) {
			merged.Merge(groups[i])
		}
		if merged != direct {
			t.Fatalf("merged %+v, want %+v", merged, direct)
		}
	}
	if direct.Count != int64(len(all)) || direct.PassengerCount != int64(len(all)-2) {
		t.Fatalf("direct sums %+v: want Count %d, PassengerCount %d (two null counts)", direct, len(all), len(all)-2)
	}
}

func TestCombinerFlush(t *testing.T) {
	spec := window.Tumbling(time.Hour)
	var c Combiner
	for _, x := range rides(t) {
		c.Add(spec.Earliest(x.ride.EventMs), x.borough, x.ride)
	}
	want := aggregateDirect(t, spec)
	if c.Len() != len(want) {
		t.Fatalf("Len() = %d, want %d", c.Len(), len(want))
	}
	got := c.Flush(nil)
	var gotResults []Result
	for _, e := range got {
		gotResults = append(gotResults, Result{Window: e.Window, Borough: e.Borough, Sums: e.Sums})
	}
	if diff := cmp.Diff(want, gotResults); diff != "" {
		t.Fatalf("Flush (-want +got):\n%s", diff)
	}
	if c.Len() != 0 || len(c.Flush(nil)) != 0 {
		t.Fatal("Flush did not empty the combiner")
	}
}

func TestStateApplyClose(t *testing.T) {
	h13, h14, h15 := wall(t, "2024-01-01 13:00:00"), wall(t, "2024-01-01 14:00:00"), wall(t, "2024-01-01 15:00:00")
	w13 := window.Window{StartMs: h13, EndMs: h14}
	w14 := window.Window{StartMs: h14, EndMs: h15}
	one := Sums{Count: 1, PassengerSum: 1, PassengerCount: 1, FareCents: 100, TotalCents: 150}
	two := Sums{Count: 2, PassengerSum: 2, PassengerCount: 2, FareCents: 200, TotalCents: 300}

	var s State
	if _, ok := s.MinWatermark(2); ok {
		t.Fatal("MinWatermark without any watermark is ok")
	}
	s.Apply(Partial{Partition: 0, Watermark: h13, HasWatermark: true, Entries: []Entry{
		{w14, "Queens", one}, {w13, "Queens", one}, {w13, "Bronx", one},
	}}, 0)
	s.Apply(Partial{Partition: 1, Entries: []Entry{{w13, "Queens", one}}}, 0) // partition 1 has no watermark yet
	if _, ok := s.MinWatermark(2); ok {
		t.Fatal("MinWatermark is ok while partition 1 has no watermark")
	}
	if wm, ok := s.MinWatermark(1); !ok || wm != h13 {
		t.Fatalf("MinWatermark(1) = %d, %v; want %d", wm, ok, h13)
	}
	// Partition 1 sends w13's last ride together with the watermark that closes it.
	s.Apply(Partial{Partition: 1, Watermark: h14 + 5, HasWatermark: true, Entries: []Entry{{w13, "Queens", one}}}, 0)
	s.Apply(Partial{Partition: 0, Watermark: h14, HasWatermark: true}, 0)
	s.Apply(Partial{Partition: 1, Watermark: h13, HasWatermark: true}, 0) // lower: ignored
	if wm, _ := s.Watermark(1); wm != h14+5 {
		t.Fatalf("partition 1 watermark went down to %d", wm)
	}
	wm, ok := s.MinWatermark(2)
	if !ok || wm != h14 {
		t.Fatalf("MinWatermark(2) = %d, %v; want %d", wm, ok, h14)
	}
	got := s.Close(wm, 0)
	want := []Result{
		{Window: w13, Borough: "Bronx", Sums: one},
		{Window: w13, Borough: "Queens", Sums: Sums{Count: 3, PassengerSum: 3, PassengerCount: 3, FareCents: 300, TotalCents: 450}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Close (-want +got):\n%s", diff)
	}
	if s.Len() != 1 {
		t.Fatalf("Len() after Close = %d, want 1 (w14 Queens)", s.Len())
	}
	if again := s.Close(wm, 0); again != nil {
		t.Fatalf("second Close emitted %v", again)
	}
	// A (buggy) partial for the closed window is dropped, never re-emitted.
	if dropped := s.Apply(Partial{Partition: 0, Entries: []Entry{{w13, "Queens", two}, {w14, "Queens", one}}}, 0).DroppedRides; dropped != 2 {
		t.Fatalf("Apply to a closed window dropped %d rides, want 2", dropped)
	}
	if got := s.Close(watermark.Closed, 0); !cmp.Equal(got, []Result{{Window: w14, Borough: "Queens", Sums: two}}) {
		t.Fatalf("final Close = %v", got)
	}
	if s.Len() != 0 {
		t.Fatalf("state not empty after the final close: %v", s.Entries())
	}
}

// TestStateDeterministic feeds the same rides through different partition
// counts, flush points and partial orders and checks the results are
// byte-identical and equal to the direct aggregation.
func TestStateDeterministic(t *testing.T) {
	spec := window.Spec{Size: time.Hour, Slide: 15 * time.Minute}
	rng := rand.New(rand.NewPCG(11, 12))
	boroughs := []string{"Bronx", "Brooklyn", "EWR", "Manhattan", "N/A", "Queens", "Staten Island", "Unknown"}
	type ride struct {
		borough string
		r       Ride
	}
	base := wall(t, "2025-01-01 00:00:00")
	var all []ride
	for range 5000 {
		all = append(all, ride{boroughs[rng.IntN(len(boroughs))], Ride{
			EventMs: base + rng.Int64N(48*hourMs), PassengerCount: rng.Int64N(7), HasPassengerCount: rng.IntN(10) > 0,
			DistanceHundredths: rng.Int64N(3000), TipCents: rng.Int64N(1000), FareCents: rng.Int64N(8000) - 100, TotalCents: rng.Int64N(10000),
		}})
	}
	direct := map[cell]*Sums{}
	for _, x := range all {
		for _, w := range spec.Windows(x.r.EventMs, nil) {
			k := cell{w, x.borough}
			if direct[k] == nil {
				direct[k] = new(Sums)
			}
			direct[k].Add(x.r)
		}
	}
	var want []byte
	wantResults := make([]Result, 0, len(direct))
	for k, s := range direct {
		wantResults = append(wantResults, Result{Window: k.w, Borough: k.borough, Sums: *s})
	}
	slices.SortFunc(wantResults, func(a, b Result) int {
		return compareEntries(Entry{Window: a.Window, Borough: a.Borough}, Entry{Window: b.Window, Borough: b.Borough})
	})
	for _, r := range wantResults {
		want = r.AppendJSON(want)
		want = append(want, '\n')
	}

	for _, parts := range []int{1, 3, 7} {
		for trial := range 3 {
			var combiners = make([]Combiner, parts)
			var partials []Partial
			for i, x := range all {
				p := (i*31 + trial) % parts
				for _, w := range spec.Windows(x.r.EventMs, nil) {
					combiners[p].Add(w, x.borough, x.r)
				}
				if rng.IntN(200) == 0 {
					partials = append(partials, Partial{Partition: int32(p), Entries: combiners[p].Flush(nil)})
				}
			}
			for p := range combiners {
				partials = append(partials, Partial{Partition: int32(p), Watermark: watermark.Closed, HasWatermark: true, Entries: combiners[p].Flush(nil)})
			}
			// Partials of different partitions interleave arbitrarily; within a
			// partition they keep their order (Kafka).
			queues := make([][]int, parts)
			for i, p := range partials {
				queues[p.Partition] = append(queues[p.Partition], i)
			}
			var order []int
			for len(order) < len(partials) {
				q := rng.IntN(parts)
				if len(queues[q]) > 0 {
					order = append(order, queues[q][0])
					queues[q] = queues[q][1:]
				}
			}
			var s State
			var got []byte
			for _, i := range order {
				// Encode and decode each partial, as the repartition topic does.
				b, _ := partials[i].MarshalBinary()
				var p Partial
				if err := p.UnmarshalBinary(b); err != nil {
					t.Fatal(err)
				}
				if dropped := s.Apply(p, 0).DroppedRides; dropped != 0 {
					t.Fatalf("dropped %d rides", dropped)
				}
				// Persist and restore the state, as the goka table does.
				sb, _ := s.MarshalBinary()
				s = State{}
				if err := s.UnmarshalBinary(sb); err != nil {
					t.Fatal(err)
				}
				if wm, ok := s.MinWatermark(parts); ok {
					for _, r := range s.Close(wm, 0) {
						got = r.AppendJSON(got)
						got = append(got, '\n')
					}
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%d partitions, trial %d: results differ from the direct aggregation", parts, trial)
			}
		}
	}
}

// sampleState returns a state with a few open windows and watermarks.
func sampleState(t testing.TB) *State {
	var s State
	var c Combiner
	spec := window.Tumbling(time.Hour)
	for _, x := range rides(t) {
		c.Add(spec.Earliest(x.ride.EventMs), x.borough, x.ride)
	}
	s.Apply(Partial{Partition: 2, Watermark: wall(t, "2024-01-01 12:00:00"), HasWatermark: true, Entries: c.Flush(nil)}, 0)
	s.Apply(Partial{Partition: 0, Watermark: watermark.Closed, HasWatermark: true}, 0)
	s.Apply(Partial{Partition: 1, Watermark: math.MinInt64, HasWatermark: true}, 0)
	s.Close(wall(t, "1970-01-01 00:00:00"), 0) // closes the 1969 window
	return &s
}

func TestStateEncodingGolden(t *testing.T) {
	s := sampleState(t)
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "state.golden.hex", []byte(hex.Dump(b)))
	var back State
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.Entries(), back.Entries()); diff != "" {
		t.Fatalf("entries after round trip (-want +got):\n%s", diff)
	}
	for _, p := range []int32{0, 1, 2, 3} {
		w1, ok1 := s.Watermark(p)
		w2, ok2 := back.Watermark(p)
		if w1 != w2 || ok1 != ok2 {
			t.Fatalf("partition %d watermark %d,%v after round trip, want %d,%v", p, w2, ok2, w1, ok1)
		}
	}
	c1, k1 := s.ClosedThrough()
	c2, k2 := back.ClosedThrough()
	if c1 != c2 || k1 != k2 {
		t.Fatalf("closed through %d,%v after round trip, want %d,%v", c2, k2, c1, k1)
	}
	b2, _ := back.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Fatal("re-encoding differs")
	}
	var empty State
	eb, _ := empty.MarshalBinary()
	if err := back.UnmarshalBinary(eb); err != nil || back.Len() != 0 {
		t.Fatalf("empty state round trip: %v, %d cells", err, back.Len())
	}
}

func TestPartialEncoding(t *testing.T) {
	w := window.Window{StartMs: 0, EndMs: hourMs}
	w2 := window.Window{StartMs: hourMs, EndMs: 2 * hourMs}
	one := Sums{Count: 1, PassengerSum: 2, PassengerCount: 1, DistanceHundredths: 3, TipCents: 4, FareCents: 5, TotalCents: 6}
	in := Partial{Partition: 5, Watermark: -7, HasWatermark: true, Entries: []Entry{
		{w2, "Queens", one}, {w, "Queens", one}, {w2, "Bronx", one}, {w, "Queens", one},
	}}
	b, err := in.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Partial
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	two := one
	two.Merge(one)
	want := Partial{Partition: 5, Watermark: -7, HasWatermark: true, Entries: []Entry{
		{w, "Queens", two}, {w2, "Bronx", one}, {w2, "Queens", one},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if in.Entries[0].Window != w2 {
		t.Fatal("MarshalBinary reordered the caller's entries")
	}
	var st State
	if err := st.UnmarshalBinary(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a partial decoded as a state: %v", err)
	}
}

// withCRC appends a valid checksum to body, so that the decoder's other
// checks are reached.
func withCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(slices.Clone(body), codecs.CRC32C(body))
}

func TestEncodingCorruptRejected(t *testing.T) {
	good, _ := sampleState(t).MarshalBinary()
	before := sampleState(t)
	check := func(t *testing.T, name string, data []byte) {
		t.Helper()
		s := sampleState(t)
		if err := s.UnmarshalBinary(data); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: UnmarshalBinary = %v, want ErrCorrupt", name, err)
		}
		if !cmp.Equal(s.Entries(), before.Entries()) {
			t.Fatalf("%s: rejected input changed the state", name)
		}
	}
	for i := range good {
		for bit := range 8 {
			b := slices.Clone(good)
			b[i] ^= 1 << bit
			check(t, fmt.Sprintf("flip byte %d bit %d", i, bit), b)
		}
	}
	for n := range len(good) {
		check(t, fmt.Sprintf("truncated to %d", n), good[:n])
	}
	// Hand-built bodies: see the layout in encoding.go. A cell is
	// "0, 2,0,0,0,0,0,0": borough 0, count 1 (zigzag 2), other sums 0.
	semantic := map[string][]byte{
		"version 2":                withCRC([]byte{'S', 2, 0, 0, 0, 0}),
		"unknown flag":             withCRC([]byte{'S', 1, 2, 0, 0, 0}),
		"trailing byte":            withCRC(append(slices.Clone(good[:len(good)-4]), 0)),
		"watermarks not ascending": withCRC([]byte{'S', 1, 0, 2, 2, 0, 2, 0, 0, 0}),
		"negative partition":       withCRC([]byte{'S', 1, 0, 1, 1, 0, 0, 0}),
		"unsorted boroughs": withCRC([]byte{'S', 1, 0, 0, 2, 1, 'b', 1, 'a', 1, 0, 2, 2,
			0, 2, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0}),
		"unused borough":       withCRC([]byte{'S', 1, 0, 0, 2, 1, 'a', 1, 'b', 1, 0, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0}),
		"zero size window":     withCRC([]byte{'S', 1, 0, 0, 1, 1, 'a', 1, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0}),
		"window without cells": withCRC([]byte{'S', 1, 0, 0, 0, 1, 0, 2, 0}),
		"windows not ascending": withCRC([]byte{'S', 1, 0, 0, 1, 1, 'a', 2,
			2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0,
			0, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0}),
		"cell boroughs not ascending": withCRC([]byte{'S', 1, 0, 0, 2, 1, 'a', 1, 'b', 1, 0, 2, 2,
			1, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0}),
		"passenger count above count": withCRC([]byte{'S', 1, 0, 0, 1, 1, 'a', 1, 0, 2, 1, 0, 2, 0, 4, 0, 0, 0, 0}),
		"negative count":              withCRC([]byte{'S', 1, 0, 0, 1, 1, 'a', 1, 0, 2, 1, 0, 1, 0, 0, 0, 0, 0, 0}),
		"open window already closed":  withCRC([]byte{'S', 1, 1, 4, 0, 1, 1, 'a', 1, 0, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0}),
		"huge borough count":          withCRC([]byte{'S', 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}),
		"empty":                       nil,
	}
	for name, b := range semantic {
		check(t, name, b)
	}
	// The minimal valid encodings next to the semantic cases above decode.
	for name, b := range map[string][]byte{
		"one cell":           withCRC([]byte{'S', 1, 0, 0, 1, 1, 'a', 1, 0, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0}),
		"closed before cell": withCRC([]byte{'S', 1, 1, 2, 0, 1, 1, 'a', 1, 0, 4, 1, 0, 2, 0, 0, 0, 0, 0, 0}),
		"two windows, two boroughs": withCRC([]byte{'S', 1, 0, 0, 2, 1, 'a', 1, 'b', 2,
			0, 2, 1, 1, 2, 0, 0, 0, 0, 0, 0,
			2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0}),
	} {
		var s State
		if err := s.UnmarshalBinary(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func BenchmarkSumsAdd(b *testing.B) {
	r := Ride{EventMs: 1, PassengerCount: 1, HasPassengerCount: true, DistanceHundredths: 250, TipCents: 100, FareCents: 1200, TotalCents: 1500}
	var s Sums
	for b.Loop() {
		s.Add(r)
	}
	if s.Count == 0 {
		b.Fatal("no rides added")
	}
}

func benchRides(n int) ([]Ride, []string) {
	rng := rand.New(rand.NewPCG(1, 1))
	boroughs := []string{"Bronx", "Brooklyn", "EWR", "Manhattan", "N/A", "Queens", "Staten Island", "Unknown"}
	rides := make([]Ride, n)
	names := make([]string, n)
	for i := range rides {
		rides[i] = Ride{EventMs: int64(1735689600000) + int64(i)*7000 + rng.Int64N(3600)*1000, PassengerCount: 1, HasPassengerCount: true, DistanceHundredths: 250, TipCents: 100, FareCents: 1200, TotalCents: 1500}
		names[i] = boroughs[rng.IntN(len(boroughs))]
	}
	return rides, names
}

func BenchmarkCombinerAdd(b *testing.B) {
	rides, names := benchRides(1 << 12)
	spec := window.Tumbling(time.Hour)
	var c Combiner
	i := 0
	for b.Loop() {
		j := i & (len(rides) - 1)
		c.Add(spec.Earliest(rides[j].EventMs), names[j], rides[j])
		if i%1000 == 999 { // a commit every ~1000 rides
			c.Flush(nil)
		}
		i++
	}
}

// partialsFor builds the partials of 3 ingest partitions committing every
// 500 rides over a day of rides.
func partialsFor(n int) []Partial {
	rides, names := benchRides(n)
	spec := window.Tumbling(time.Hour)
	var cs [3]Combiner
	var out []Partial
	for i, r := range rides {
		p := i % 3
		cs[p].Add(spec.Earliest(r.EventMs), names[i], r)
		if i%500 == 499 {
			out = append(out, Partial{Partition: int32(p), Watermark: r.EventMs - 3*hourMs, HasWatermark: true, Entries: cs[p].Flush(nil)})
		}
	}
	return out
}

func BenchmarkStateApply(b *testing.B) {
	partials := partialsFor(1 << 15)
	var s State
	i := 0
	entries := 0
	for b.Loop() {
		p := partials[i%len(partials)]
		s.Apply(p, 0)
		entries += len(p.Entries)
		i++
	}
	b.ReportMetric(float64(entries)/float64(i), "cells/op")
}

func BenchmarkStateClose(b *testing.B) {
	partials := partialsFor(1 << 15)
	var full State
	for _, p := range partials {
		p.Watermark = 0
		full.Apply(p, 0)
	}
	snap, _ := full.MarshalBinary()
	var s State
	for b.Loop() {
		b.StopTimer()
		_ = s.UnmarshalBinary(snap)
		wm := partials[len(partials)/2].Entries[0].Window.EndMs // closes about half
		b.StartTimer()
		s.Close(wm, 0)
	}
	b.ReportMetric(float64(full.Len()), "open-cells")
}

func BenchmarkStateEncoding(b *testing.B) {
	partials := partialsFor(1 << 12) // ~16 h of rides open
	var s State
	for _, p := range partials {
		p.Watermark = 0
		s.Apply(p, 0)
	}
	data, _ := s.MarshalBinary()
	b.Run("marshal", func(b *testing.B) {
		buf := make([]byte, 0, len(data))
		for b.Loop() {
			buf, _ = s.AppendBinary(buf[:0])
		}
		b.ReportMetric(float64(len(data)), "bytes")
		b.ReportMetric(float64(s.Len()), "cells")
	})
	b.Run("unmarshal", func(b *testing.B) {
		var t State
		for b.Loop() {
			if err := t.UnmarshalBinary(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkResultJSON(b *testing.B) {
	r := Result{Window: window.Window{StartMs: 1704114000000, EndMs: 1704117600000}, Borough: "Staten Island",
		Sums: Sums{Count: 123, PassengerSum: 150, PassengerCount: 120, DistanceHundredths: 45678, TipCents: 12345, FareCents: 234567, TotalCents: 345678}}
	buf := make([]byte, 0, 512)
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
}
