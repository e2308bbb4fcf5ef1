// Package window assigns event times to event-time windows.
//
// A Spec describes tumbling or sliding windows exactly like Spark's
// window(col, duration, slide) on a naive (zone-less) timestamp: window starts
// are multiples of the slide since the Unix epoch of the wall clock, and a
// window covers the half-open interval [start, start+size).
//
// Times are epoch milliseconds of the wall-clock value read as if it were UTC
// (see docs/design.md, "Event time and windows").
package window

import (
	"fmt"
	"time"
)

// Window is the half-open event-time interval [StartMs, EndMs) in epoch
// milliseconds of the wall clock.
type Window struct {
	StartMs int64
	EndMs   int64
}

// Contains reports whether the event time ms lies in [StartMs, EndMs).
func (w Window) Contains(ms int64) bool { return w.StartMs <= ms && ms < w.EndMs }

// String formats the window as "[start, end)" in wall-clock time, for logs
// and test failures.
func (w Window) String() string {
	return "[" + FormatWallClock(w.StartMs) + ", " + FormatWallClock(w.EndMs) + ")"
}

// FormatWallClock formats epoch milliseconds of a wall clock as an RFC 3339
// date-time without zone, e.g. "2024-01-01T13:00:00". Fractional seconds are
// written only when they are not zero ("2024-01-01T13:00:00.5").
func FormatWallClock(ms int64) string {
	return string(AppendWallClock(nil, ms))
}

// AppendWallClock appends FormatWallClock(ms) to dst.
func AppendWallClock(dst []byte, ms int64) []byte {
	return time.UnixMilli(ms).UTC().AppendFormat(dst, "2006-01-02T15:04:05.999")
}

// Spec describes the windows of the aggregation.
//
// The default is tumbling one-hour windows, Spec{Size: time.Hour, Slide: time.Hour}.
type Spec struct {
	// Size is the window duration. Spark: window(col, windowDuration, ...).
	// It must be positive, a whole number of milliseconds and a multiple of Slide.
	Size time.Duration
	// Slide is the distance between two window starts. Spark: slideDuration.
	// Slide == Size gives tumbling windows; Slide < Size gives Size/Slide
	// overlapping windows per instant.
	Slide time.Duration
}

// Tumbling returns a Spec of tumbling (non-overlapping) windows of the given size.
func Tumbling(size time.Duration) Spec { return Spec{Size: size, Slide: size} }

// Validate reports the first bad setting of s, naming it.
func (s Spec) Validate() error {
	switch {
	case s.Size <= 0:
		return fmt.Errorf("window size %v: must be > 0", s.Size)
	case s.Size%time.Millisecond != 0:
		return fmt.Errorf("window size %v: must be a whole number of milliseconds", s.Size)
	case s.Slide <= 0:
		return fmt.Errorf("window slide %v: must be > 0", s.Slide)
	case s.Slide%time.Millisecond != 0:
		return fmt.Errorf("window slide %v: must be a whole number of milliseconds", s.Slide)
	case s.Slide > s.Size:
		return fmt.Errorf("window slide %v: must be <= window size %v", s.Slide, s.Size)
	case s.Size%s.Slide != 0:
		return fmt.Errorf("window size %v: must be a multiple of window slide %v", s.Size, s.Slide)
	}
	return nil
}

// MustSpec returns s and panics if s is invalid. For tests and constants.
func MustSpec(s Spec) Spec {
	if err := s.Validate(); err != nil {
		panic(err)
	}
	return s
}

// PerInstant is the number of windows that cover every instant: Size/Slide.
func (s Spec) PerInstant() int { return int(s.Size / s.Slide) }

// Windows appends to dst every window that covers eventMs, in ascending order
// of start, and returns the extended slice. With a valid spec it appends
// exactly PerInstant() windows; pass dst[:0] of a reused slice to avoid
// allocating on the hot path.
//
// An event exactly at a window's end belongs to the next window, not to that one.
// Results are exact for any eventMs at least Size away from the int64 limits
// (about ±292 million years).
func (s Spec) Windows(eventMs int64, dst []Window) []Window {
	slide, size := s.Slide.Milliseconds(), s.Size.Milliseconds()
	last := floorMultiple(eventMs, slide) // latest start <= eventMs
	for start := last - size + slide; start <= last; start += slide {
		dst = append(dst, Window{StartMs: start, EndMs: start + size})
	}
	return dst
}

// Earliest returns the covering window of eventMs that ends first (the one
// with the smallest start). The watermark rule judges lateness against it: a
// ride is late iff Earliest(t).EndMs <= watermark.
func (s Spec) Earliest(eventMs int64) Window {
	slide, size := s.Slide.Milliseconds(), s.Size.Milliseconds()
	start := floorMultiple(eventMs, slide) - size + slide
	return Window{StartMs: start, EndMs: start + size}
}

// Latest returns the covering window of eventMs that ends last (the one with
// the largest start).
func (s Spec) Latest(eventMs int64) Window {
	start := floorMultiple(eventMs, s.Slide.Milliseconds())
	return Window{StartMs: start, EndMs: start + s.Size.Milliseconds()}
}

// floorMultiple returns the largest multiple of m that is <= v (m > 0),
// rounding toward minus infinity for negative v as well.
func floorMultiple(v, m int64) int64 {
	r := v % m
	if r < 0 {
		r += m
	}
	return v - r
}
