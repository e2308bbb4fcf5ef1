package window

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// ms parses a wall-clock time "2006-01-02 15:04:05" as UTC epoch milliseconds.
func ms(t *testing.T, s string) int64 {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04:05.999", s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v.UnixMilli()
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		wantErr string // substring; "" means valid
	}{
		{"tumbling hour", Spec{Size: time.Hour, Slide: time.Hour}, ""},
		{"sliding 1h/15m", Spec{Size: time.Hour, Slide: 15 * time.Minute}, ""},
		{"sliding 10s/1ms", Spec{Size: 10 * time.Second, Slide: time.Millisecond}, ""},
		{"zero size", Spec{Size: 0, Slide: time.Minute}, "window size 0s: must be > 0"},
		{"negative size", Spec{Size: -time.Hour, Slide: time.Minute}, "window size -1h0m0s: must be > 0"},
		{"zero slide", Spec{Size: time.Hour}, "window slide 0s: must be > 0"},
		{"negative slide", Spec{Size: time.Hour, Slide: -time.Minute}, "window slide -1m0s: must be > 0"},
		{"slide > size", Spec{Size: time.Minute, Slide: time.Hour}, "window slide 1h0m0s: must be <= window size 1m0s"},
		{"size not multiple", Spec{Size: time.Hour, Slide: 25 * time.Minute}, "window size 1h0m0s: must be a multiple of window slide 25m0s"},
		{"sub-ms size", Spec{Size: time.Hour + time.Microsecond, Slide: time.Hour + time.Microsecond}, "window size 1h0m0.000001s: must be a whole number of milliseconds"},
		{"sub-ms slide", Spec{Size: time.Hour, Slide: 1500 * time.Microsecond}, "window slide 1.5ms: must be a whole number of milliseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestWindows(t *testing.T) {
	hour := Tumbling(time.Hour)
	sliding := Spec{Size: time.Hour, Slide: 15 * time.Minute}
	tests := []struct {
		name  string
		spec  Spec
		event string
		want  [][2]string // [start, end) wall clock
	}{
		{"tumbling inside", hour, "2024-01-01 13:05:00", [][2]string{{"2024-01-01 13:00:00", "2024-01-01 14:00:00"}}},
		{"tumbling at start", hour, "2024-01-01 13:00:00", [][2]string{{"2024-01-01 13:00:00", "2024-01-01 14:00:00"}}},
		{"tumbling last ms", hour, "2024-01-01 13:59:59.999", [][2]string{{"2024-01-01 13:00:00", "2024-01-01 14:00:00"}}},
		{"tumbling at end belongs to next", hour, "2024-01-01 14:00:00", [][2]string{{"2024-01-01 14:00:00", "2024-01-01 15:00:00"}}},
		{"tumbling midnight month end", hour, "2024-02-01 00:00:00", [][2]string{{"2024-02-01 00:00:00", "2024-02-01 01:00:00"}}},
		{"tumbling epoch", hour, "1970-01-01 00:00:00", [][2]string{{"1970-01-01 00:00:00", "1970-01-01 01:00:00"}}},
		{"tumbling negative", hour, "1969-12-31 23:30:00", [][2]string{{"1969-12-31 23:00:00", "1970-01-01 00:00:00"}}},
		{"tumbling negative 1ms", hour, "1969-12-31 23:59:59.999", [][2]string{{"1969-12-31 23:00:00", "1970-01-01 00:00:00"}}},
		{"tumbling negative on boundary", hour, "1969-12-31 23:00:00", [][2]string{{"1969-12-31 23:00:00", "1970-01-01 00:00:00"}}},
		{"tumbling far past 1909", hour, "1909-06-01 10:20:00", [][2]string{{"1909-06-01 10:00:00", "1909-06-01 11:00:00"}}},
		{"tumbling day", Tumbling(24 * time.Hour), "2009-01-01 21:58:56", [][2]string{{"2009-01-01 00:00:00", "2009-01-02 00:00:00"}}},
		{"sliding inside", sliding, "2024-01-01 13:05:00", [][2]string{
			{"2024-01-01 12:15:00", "2024-01-01 13:15:00"},
			{"2024-01-01 12:30:00", "2024-01-01 13:30:00"},
			{"2024-01-01 12:45:00", "2024-01-01 13:45:00"},
			{"2024-01-01 13:00:00", "2024-01-01 14:00:00"},
		}},
		{"sliding on slide boundary", sliding, "2024-01-01 13:15:00", [][2]string{
			{"2024-01-01 12:30:00", "2024-01-01 13:30:00"},
			{"2024-01-01 12:45:00", "2024-01-01 13:45:00"},
			{"2024-01-01 13:00:00", "2024-01-01 14:00:00"},
			{"2024-01-01 13:15:00", "2024-01-01 14:15:00"},
		}},
		{"sliding negative", sliding, "1969-12-31 23:50:00", [][2]string{
			{"1969-12-31 23:00:00", "1970-01-01 00:00:00"},
			{"1969-12-31 23:15:00", "1970-01-01 00:15:00"},
			{"1969-12-31 23:30:00", "1970-01-01 00:30:00"},
			{"1969-12-31 23:45:00", "1970-01-01 00:45:00"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := ms(t, tt.event)
			var want []Window
			for _, w := range tt.want {
				want = append(want, Window{StartMs: ms(t, w[0]), EndMs: ms(t, w[1])})
			}
			got := tt.spec.Windows(ev, nil)
			if !slices.Equal(got, want) {
				t.Fatalf("Windows(%s) = %v, want %v", tt.event, got, want)
			}
			for _, w := range got {
				if !w.Contains(ev) {
					t.Errorf("window %v does not contain %s", w, tt.event)
				}
			}
			if e := tt.spec.Earliest(ev); e != want[0] {
				t.Errorf("Earliest(%s) = %v, want %v", tt.event, e, want[0])
			}
			if l := tt.spec.Latest(ev); l != want[len(want)-1] {
				t.Errorf("Latest(%s) = %v, want %v", tt.event, l, want[len(want)-1])
			}
		})
	}
}

// TestWindowsCoverExactly checks, over a range of instants around the epoch,
// that Windows returns exactly the windows with start ≡ 0 mod slide that
// contain the instant (the definition), for several specs.
func TestWindowsCoverExactly(t *testing.T) {
	specs := []Spec{
		Tumbling(7 * time.Millisecond),
		{Size: 12 * time.Millisecond, Slide: 4 * time.Millisecond},
		{Size: 5 * time.Millisecond, Slide: time.Millisecond},
	}
	for _, s := range specs {
		size, slide := s.Size.Milliseconds(), s.Slide.Milliseconds()
		for ev := int64(-50); ev <= 50; ev++ {
			var want []Window
			for start := -100 * slide; start <= 100*slide; start += slide {
				if start <= ev && ev < start+size {
					want = append(want, Window{StartMs: start, EndMs: start + size})
				}
			}
			got := s.Windows(ev, nil)
			if !slices.Equal(got, want) {
				t.Fatalf("%+v.Windows(%d) = %v, want %v", s, ev, got, want)
			}
			if len(got) != s.PerInstant() {
				t.Fatalf("%+v.Windows(%d) returned %d windows, want PerInstant() = %d", s, ev, len(got), s.PerInstant())
			}
		}
	}
}

func TestWindowsAppendsToDst(t *testing.T) {
	s := Spec{Size: time.Hour, Slide: 30 * time.Minute}
	dst := make([]Window, 1, 8)
	dst[0] = Window{StartMs: -1, EndMs: -1}
	got := s.Windows(0, dst)
	want := []Window{{-1, -1}, {-1800000, 1800000}, {0, 3600000}}
	if !slices.Equal(got, want) {
		t.Fatalf("Windows(0, dst) = %v, want %v", got, want)
	}
}

func TestFormatWallClock(t *testing.T) {
	tests := []struct {
		ms   int64
		want string
	}{
		{1704114000000, "2024-01-01T13:00:00"},
		{1704114300500, "2024-01-01T13:05:00.5"},
		{0, "1970-01-01T00:00:00"},
		{-3600000, "1969-12-31T23:00:00"},
	}
	for _, tt := range tests {
		if got := FormatWallClock(tt.ms); got != tt.want {
			t.Errorf("FormatWallClock(%d) = %q, want %q", tt.ms, got, tt.want)
		}
	}
}

func TestMustSpecPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustSpec of an invalid spec did not panic")
		}
	}()
	MustSpec(Spec{Size: time.Hour})
}

func BenchmarkWindows(b *testing.B) {
	for _, s := range []Spec{Tumbling(time.Hour), {Size: time.Hour, Slide: 15 * time.Minute}} {
		b.Run(s.Size.String()+"/"+s.Slide.String(), func(b *testing.B) {
			dst := make([]Window, 0, s.PerInstant())
			ev := int64(1704114300000)
			for b.Loop() {
				dst = s.Windows(ev, dst[:0])
				ev += 1013
			}
		})
	}
}
