package watermark

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/codecs"
)

const minute = int64(time.Minute / time.Millisecond)

// small is a config whose numbers are easy to follow: N = 10, q = 0.2, so the
// estimate is the 2nd smallest of the last 10 and exists from the 9th event
// (with 8 of the 10 slots filled, the 2nd smallest of 10 would be a −∞ slot).
var small = Config{Delay: time.Minute, Quantile: 0.2, Window: 10}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"default", DefaultConfig(), ""},
		{"zero delay", Config{Delay: 0, Quantile: 0.5, Window: 1}, ""},
		{"max window", Config{Quantile: 0.5, Window: MaxWindow}, ""},
		{"negative delay", Config{Delay: -time.Second, Quantile: 0.05, Window: 256}, "watermark delay -1s: must be >= 0"},
		{"sub-ms delay", Config{Delay: time.Microsecond, Quantile: 0.05, Window: 256}, "watermark delay 1µs: must be a whole number of milliseconds"},
		{"zero quantile", Config{Quantile: 0, Window: 256}, "watermark quantile 0: must be > 0 and < 1"},
		{"quantile one", Config{Quantile: 1, Window: 256}, "watermark quantile 1: must be > 0 and < 1"},
		{"NaN quantile", Config{Quantile: math.NaN(), Window: 256}, "watermark quantile NaN"},
		{"zero window", Config{Quantile: 0.05}, "watermark window 0: must be between 1 and 65536"},
		{"huge window", Config{Quantile: 0.05, Window: MaxWindow + 1}, "watermark window 65537"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestRank(t *testing.T) {
	tests := []struct {
		q    float64
		n    int
		want int
	}{
		{0.05, 256, 12}, // ⌈12.8⌉ = 13th smallest
		{0.05, 64, 3},
		{0.05, 1024, 51},
		{0.01, 256, 2},
		{0.1, 256, 25},
		{0.2, 10, 1},
		{0.5, 1, 0},
		{0.001, 10, 0},
		{0.999, 10, 9},
	}
	for _, tt := range tests {
		if got := rank(tt.q, tt.n); got != tt.want {
			t.Errorf("rank(%v, %d) = %d, want %d", tt.q, tt.n, got, tt.want)
		}
	}
}

// step is one input to a Tracker in a rule table: an event, or a marker.
type step struct {
	event  int64
	marker bool
	final  bool
	// after the step:
	wantWM int64
	wantOK bool
}

func ev(ms, wantWM int64, wantOK bool) step { return step{event: ms, wantWM: wantWM, wantOK: wantOK} }
func mk(ms int64, final bool, wantWM int64) step {
	return step{event: ms, marker: true, final: final, wantWM: wantWM, wantOK: true}
}

func TestRule(t *testing.T) {
	m := minute
	far := 1000 * 24 * 60 * m // 1000 days
	// warm returns the 9 events 1..9 minutes. The 10th slot is still −∞, so
	// the 2nd smallest is 1m and the watermark 1m − delay (1m) = 0.
	warm := func() []step {
		var s []step
		for i := int64(1); i <= 8; i++ {
			s = append(s, ev(i*m, 0, false))
		}
		return append(s, ev(9*m, 0, true))
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"no watermark before the window is nearly full", []step{
			ev(5*m, 0, false), ev(6*m, 0, false),
		}},
		{"warm-up then quantile minus delay", warm()},
		{"full window slides", append(warm(),
			ev(10*m, 1*m, true), // window 1..10: 2nd smallest 2m
			ev(11*m, 2*m, true), // window 2..11: 3m − 1m
			ev(12*m, 3*m, true),
		)},
		{"never decreases when events go back", append(warm(),
			ev(10*m, 1*m, true),
			ev(11*m, 2*m, true),
			ev(0, 2*m, true), ev(0, 2*m, true), ev(0, 2*m, true), // 0s in the window pull the quantile down
		)},
		{"one far-past outlier does not hold it back", append(warm(),
			ev(-far, 0, true),   // window 1..9, -far: 2nd smallest 1m
			ev(11*m, 1*m, true), // window 2..9, -far, 11: 2m
			ev(12*m, 2*m, true),
		)},
		{"far-future outliers (up to N−rank−1 = 8) do not push it ahead", append(warm(),
			ev(far, 1*m, true), ev(far, 2*m, true), ev(far, 3*m, true), ev(far, 4*m, true),
			ev(far, 5*m, true), ev(far, 6*m, true), ev(far, 7*m, true), // window 8, 9, 7×far: 9m − 1m
			ev(far, 8*m, true), // window 9, 9×far: 2nd smallest is far
			ev(far, far-m, true),
		)},
		{"far-future outliers at the start do not create a watermark ahead", []step{
			ev(far, 0, false), ev(far, 0, false),
			ev(1*m, 0, false), ev(2*m, 0, false), ev(3*m, 0, false), ev(4*m, 0, false),
			ev(5*m, 0, false), ev(6*m, 0, false),
			ev(7*m, 0, true), // 2nd smallest of 2×far, 1..7 and one −∞ slot: 1m, − 1m delay
		}},
		{"marker switches mode: events no longer move it", append(warm(),
			mk(30*m, false, 29*m),
			ev(100*m, 29*m, true), ev(200*m, 29*m, true), ev(300*m, 29*m, true),
			mk(40*m, false, 39*m),
		)},
		{"marker below the data watermark keeps it", append(warm(),
			ev(10*m, 1*m, true), ev(11*m, 2*m, true),
			mk(2*m, false, 2*m), // 2m − 1m = 1m < 2m
			mk(3*m, false, 2*m),
			mk(4*m, false, 3*m),
		)},
		{"marker before any event", []step{
			mk(10*m, false, 9*m),
			ev(5*m, 9*m, true),
			mk(8*m, false, 9*m), // lower marker: no change
		}},
		{"minimal marker switches mode without moving", []step{
			mk(math.MinInt64, false, math.MinInt64),
			mk(math.MinInt64+5, false, math.MinInt64), // saturates
			mk(3*m, false, 2*m),
		}},
		{"final marker closes everything, delay not subtracted", append(warm(),
			mk(30*m, false, 29*m),
			mk(31*m, true, Closed),
			mk(40*m, false, Closed),
			mk(50*m, true, Closed),
			ev(far, Closed, true),
		)},
		{"final marker in data mode", []step{
			ev(1*m, 0, false),
			mk(2*m, true, Closed),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := MustNew(small)
			for i, s := range tt.steps {
				if s.marker {
					tr.ObserveMarker(s.event, s.final)
				} else {
					tr.ObserveEvent(s.event)
				}
				gotWM, gotOK := tr.Watermark()
				if gotOK != s.wantOK || (gotOK && gotWM != s.wantWM) {
					t.Fatalf("step %d (%+v): Watermark() = %d, %v; want %d, %v", i, s, gotWM, gotOK, s.wantWM, s.wantOK)
				}
			}
		})
	}
}

func TestNaive(t *testing.T) {
	tr := MustNew(DefaultConfig())
	if _, ok := tr.Naive(); ok {
		t.Fatal("Naive() ok before any event")
	}
	for _, e := range []int64{100 * minute, 50 * minute, 300 * minute, 200 * minute} {
		tr.ObserveEvent(e)
	}
	if got, ok := tr.Naive(); !ok || got != 290*minute {
		t.Fatalf("Naive() = %d, %v; want %d, true", got, ok, 290*minute)
	}
	tr.ObserveMarker(10*minute, false) // naive keeps following events in marker mode
	tr.ObserveEvent(400 * minute)
	if got, _ := tr.Naive(); got != 390*minute {
		t.Fatalf("Naive() in marker mode = %d, want %d", got, 390*minute)
	}
	if got, _ := tr.Watermark(); got != 0 {
		t.Fatalf("Watermark() = %d, want 0", got)
	}
	tr = MustNew(DefaultConfig())
	tr.ObserveEvent(math.MinInt64 + 1)
	if got, _ := tr.Naive(); got != math.MinInt64 {
		t.Fatalf("Naive() near MinInt64 = %d, want saturation at MinInt64", got)
	}
}

// reference computes the data-mode watermark after every event the slow
// way: sort a copy of the last N values each time.
func reference(cfg Config, events []int64) (wms []int64, oks []bool) {
	k := rank(cfg.Quantile, cfg.Window)
	var wm int64
	var ok bool
	for i := range events {
		last := slices.Clone(events[max(0, i+1-cfg.Window) : i+1])
		slices.Sort(last)
		pad := cfg.Window - len(last)
		if k >= pad {
			v := last[k-pad] - cfg.Delay.Milliseconds()
			if !ok || v > wm {
				wm, ok = v, true
			}
		}
		wms, oks = append(wms, wm), append(oks, ok)
	}
	return wms, oks
}

func TestMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, cfg := range []Config{
		small,
		{Delay: 0, Quantile: 0.5, Window: 1},
		{Delay: 0, Quantile: 0.5, Window: 2},
		{Delay: 10 * time.Minute, Quantile: 0.05, Window: 256},
		{Delay: 0, Quantile: 0.9, Window: 33},
	} {
		for _, spread := range []int64{3, 1000, 1 << 40} { // 3: many duplicates
			events := make([]int64, 3000)
			base := int64(0)
			for i := range events {
				base += rng.Int64N(spread/3 + 1)
				events[i] = base + rng.Int64N(spread) - spread/2
			}
			wantWM, wantOK := reference(cfg, events)
			tr := MustNew(cfg)
			for i, e := range events {
				tr.ObserveEvent(e)
				wm, ok := tr.Watermark()
				if ok != wantOK[i] || wm != wantWM[i] {
					t.Fatalf("cfg %+v spread %d event %d: Watermark() = %d, %v; want %d, %v", cfg, spread, i, wm, ok, wantWM[i], wantOK[i])
				}
				if !slices.IsSorted(tr.sorted) {
					t.Fatalf("cfg %+v event %d: sorted window not sorted: %v", cfg, i, tr.sorted)
				}
			}
		}
	}
}

func TestMin(t *testing.T) {
	tests := []struct {
		name   string
		marks  []Mark
		want   int64
		wantOK bool
	}{
		{"none", nil, 0, false},
		{"one", []Mark{{5, true}}, 5, true},
		{"min of three", []Mark{{5, true}, {-3, true}, {Closed, true}}, -3, true},
		{"all closed", []Mark{{Closed, true}, {Closed, true}}, Closed, true},
		{"one partition without watermark holds everything", []Mark{{5, true}, {0, false}, {Closed, true}}, 0, false},
	}
	for _, tt := range tests {
		got, ok := Min(tt.marks)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("%s: Min() = %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}

// feed returns a tracker after a random but reproducible history.
func feed(cfg Config, seed uint64, events int, markers bool) *Tracker {
	rng := rand.New(rand.NewPCG(seed, seed))
	tr := MustNew(cfg)
	t0 := int64(1735689600000) // 2025-01-01
	for i := range events {
		e := t0 + int64(i)*7000 + rng.Int64N(3600)*1000
		if rng.IntN(50) == 0 {
			e += 24 * 3600 * 1000 // +24 h outlier, whole seconds like the TLC data
		}
		tr.ObserveEvent(e)
		if markers && i > events/2 && i%100 == 0 {
			tr.ObserveMarker(e, false)
		}
	}
	return tr
}

func sameState(t *testing.T, got, want *Tracker) {
	t.Helper()
	gw, gok := got.Watermark()
	ww, wok := want.Watermark()
	gn, gnok := got.Naive()
	wn, wnok := want.Naive()
	if gw != ww || gok != wok || gn != wn || gnok != wnok || got.Mode() != want.Mode() {
		t.Fatalf("state differs: got wm %d,%v naive %d,%v mode %v; want wm %d,%v naive %d,%v mode %v",
			gw, gok, gn, gnok, got.Mode(), ww, wok, wn, wnok, want.Mode())
	}
	if !slices.Equal(got.window(), want.window()) {
		t.Fatalf("window differs:\n got %v\nwant %v", got.window(), want.window())
	}
}

// window returns the ring oldest first.
func (t *Tracker) window() []int64 {
	var w []int64
	for i := range t.ring {
		w = append(w, t.ring[(t.head+i)%len(t.ring)])
	}
	return w
}

func TestSnapshotRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	cases := map[string]*Tracker{
		"empty":       MustNew(cfg),
		"warming up":  feed(cfg, 1, 100, false),
		"full window": feed(cfg, 2, 5000, false),
		"marker mode": feed(cfg, 3, 5000, true),
	}
	final := feed(cfg, 4, 300, true)
	final.ObserveMarker(0, true)
	cases["final"] = final
	extreme := MustNew(Config{Quantile: 0.5, Window: 4})
	for _, e := range []int64{math.MinInt64, math.MaxInt64, 0, math.MinInt64 + 1, -1} {
		extreme.ObserveEvent(e)
	}
	cases["int64 limits"] = extreme
	zeros := MustNew(Config{Quantile: 0.5, Window: 4})
	zeros.ObserveEvent(0)
	zeros.ObserveEvent(math.MinInt64)
	cases["zero and MinInt64"] = zeros

	for name, tr := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := tr.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got := MustNew(tr.Config())
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary(%x): %v", b, err)
			}
			sameState(t, got, tr)
			b2, _ := got.MarshalBinary()
			if string(b2) != string(b) {
				t.Fatalf("re-encoding differs:\n%x\n%x", b, b2)
			}
			// The restored tracker behaves exactly like the original.
			rng := rand.New(rand.NewPCG(9, 9))
			for range 1000 {
				e := int64(1735689600000) + rng.Int64N(1e9)
				tr.ObserveEvent(e)
				got.ObserveEvent(e)
			}
			sameState(t, got, tr)
		})
	}
}

func TestSnapshotSize(t *testing.T) {
	for _, n := range []int{128, 256} {
		tr := feed(Config{Quantile: 0.05, Window: n}, 5, 10000, false)
		b, _ := tr.MarshalBinary()
		t.Logf("snapshot of a full N=%d window of TLC-like times (7 s apart, 1 h shuffle, 2%% +24 h): %d bytes", n, len(b))
		if len(b) > 3*n {
			t.Fatalf("N=%d: snapshot is %d bytes, want under 3 bytes per value", n, len(b))
		}
	}
}

func TestSnapshotShrinkWindow(t *testing.T) {
	tr := feed(Config{Quantile: 0.05, Window: 256}, 6, 1000, false)
	b, _ := tr.MarshalBinary()
	got := MustNew(Config{Quantile: 0.05, Window: 64})
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if w, want := got.window(), tr.window()[256-64:]; !slices.Equal(w, want) {
		t.Fatalf("restored window %v, want the newest 64 %v", w, want)
	}
	if !slices.IsSorted(got.sorted) || len(got.sorted) != 64 {
		t.Fatalf("sorted window not rebuilt: %v", got.sorted)
	}
}

// withCRC replaces the checksum of a snapshot body.
func withCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(slices.Clone(body), codecs.CRC32C(body))
}

func TestSnapshotCorruptRejected(t *testing.T) {
	tr := feed(DefaultConfig(), 7, 2000, false)
	good, _ := tr.MarshalBinary()
	check := func(t *testing.T, name string, data []byte) {
		t.Helper()
		got := feed(DefaultConfig(), 8, 10, false)
		before, _ := got.MarshalBinary()
		err := got.UnmarshalBinary(data)
		if !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("%s: UnmarshalBinary = %v, want ErrCorruptSnapshot", name, err)
		}
		if after, _ := got.MarshalBinary(); string(after) != string(before) {
			t.Fatalf("%s: a rejected snapshot changed the tracker", name)
		}
	}
	t.Run("every single bit flip", func(t *testing.T) {
		for i := range good {
			for bit := range 8 {
				b := slices.Clone(good)
				b[i] ^= 1 << bit
				check(t, "flip", b)
			}
		}
	})
	t.Run("every truncation", func(t *testing.T) {
		for n := range len(good) {
			check(t, "truncated", good[:n])
		}
	})
	body := good[:len(good)-4]
	semantic := map[string][]byte{
		"version 2":                     withCRC(append([]byte{2}, body[1:]...)),
		"unknown flag":                  withCRC(append([]byte{1, body[1] | 0x80}, body[2:]...)),
		"mode 3":                        withCRC(append([]byte{1, body[1] | modeMask}, body[2:]...)),
		"trailing byte":                 withCRC(append(slices.Clone(body), 0)),
		"ring too long":                 withCRC([]byte{1, flagMax, 2, 200, 1}),
		"zero unit":                     withCRC([]byte{1, flagMax, 2, 1, 0, 2}),
		"unit overflow":                 withCRC([]byte{1, flagMax, 2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 2}),
		"value overflow":                withCRC(append([]byte{1, flagMax, 0, 1, 10}, binary.AppendVarint(nil, math.MaxInt64/5)...)),
		"ring without max":              withCRC([]byte{1, 0, 1, 1, 2}),
		"ring above max":                withCRC([]byte{1, flagMax, 2, 1, 1, 4}),
		"marker mode with ring":         withCRC([]byte{1, flagWM | flagMax | byte(ModeMarker)<<modeBits, 2, 2, 1, 1, 2}),
		"marker mode without watermark": withCRC([]byte{1, byte(ModeMarker) << modeBits, 0}),
		"final mode not closed":         withCRC([]byte{1, flagWM | byte(ModeFinal)<<modeBits, 2, 0}),
		"empty":                         nil,
	}
	for name, b := range semantic {
		t.Run(name, func(t *testing.T) { check(t, name, b) })
	}
	t.Run("zero Tracker", func(t *testing.T) {
		var z Tracker
		if err := z.UnmarshalBinary(good); err == nil {
			t.Fatal("UnmarshalBinary on a zero Tracker succeeded")
		}
	})
}

func BenchmarkObserveEvent(b *testing.B) {
	// TLC-like event times: rides ~7 s apart, shuffled within an hour.
	rng := rand.New(rand.NewPCG(1, 1))
	events := make([]int64, 1<<16)
	for i := range events {
		events[i] = int64(1735689600000) + int64(i)*7000 + rng.Int64N(3600)*1000
	}
	for _, n := range []int{64, 128, 256, 1024} {
		b.Run("N="+strconv.Itoa(n), func(b *testing.B) {
			tr := MustNew(Config{Delay: DefaultDelay, Quantile: DefaultQuantile, Window: n})
			var sink int64
			i := 0
			for b.Loop() {
				tr.ObserveEvent(events[i&(len(events)-1)])
				wm, _ := tr.Watermark()
				sink += wm
				i++
			}
			_ = sink
		})
	}
	b.Run("marker mode", func(b *testing.B) {
		tr := MustNew(DefaultConfig())
		tr.ObserveMarker(0, false)
		i := 0
		for b.Loop() {
			tr.ObserveEvent(events[i&(len(events)-1)])
			tr.Watermark()
			i++
		}
	})
	// The alternative this design avoids: sort the last N values per event.
	b.Run("sort per event N=256", func(b *testing.B) {
		buf := make([]int64, 256)
		i := 0
		for b.Loop() {
			j := i & (len(events) - 1)
			copy(buf, events[max(0, j-255):j+1])
			slices.Sort(buf)
			i++
		}
	})
}

func BenchmarkSnapshot(b *testing.B) {
	tr := feed(DefaultConfig(), 5, 10000, false)
	data, _ := tr.MarshalBinary()
	b.Run("marshal", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = tr.AppendBinary(buf[:0])
		}
		b.ReportMetric(float64(len(data)), "bytes")
	})
	b.Run("unmarshal", func(b *testing.B) {
		got := MustNew(DefaultConfig())
		for b.Loop() {
			if err := got.UnmarshalBinary(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
