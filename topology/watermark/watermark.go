// Package watermark tracks the event-time watermark of one input partition,
// following the rule in docs/design.md ("Watermark rule").
//
// In data mode (no marker seen yet) the watermark is a robust estimate from
// the partition's own events: the q-quantile of the event times of the last N
// events, minus the delay. Up to ⌈q·N⌉−1 far-past and N−⌈q·N⌉ far-future
// outliers among the last N events do not move the quantile, which is why
// this rule survives the TLC files' +24 h and 2009 rows while the naive
// "max seen − delay" does not (README.md has the measurements). Events not
// yet seen count as minus infinity, so the first watermark appears once the
// window holds N−⌈q·N⌉+1 events (the 122nd with the defaults), and
// far-future events at the very start cannot push it ahead either.
//
// In marker mode (after the first marker) only markers move the watermark:
// watermark_ms − delay, and a final marker closes everything (Closed).
//
// The watermark never decreases. A Tracker is not safe for concurrent use;
// the processor owns one per input partition.
package watermark

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Closed is the watermark after a final marker: it is at or past the end of
// every window, so every window closes and every later event is late.
const Closed int64 = math.MaxInt64

// Defaults of Config.
const (
	DefaultDelay    = 10 * time.Minute
	DefaultQuantile = 0.05
	DefaultWindow   = 128
	// MaxWindow bounds Config.Window; it keeps the O(N) update cheap and
	// snapshots small.
	MaxWindow = 1 << 16
)

// Config configures a Tracker. Start from DefaultConfig.
type Config struct {
	// Delay is subtracted from the estimate and from marker watermarks (not
	// from final markers). Default 10m. Spark: withWatermark(col, "10 minutes").
	// Must be >= 0 and a whole number of milliseconds. The replay producer
	// uses 0: it sends the bare estimate and the processor subtracts its own.
	Delay time.Duration
	// Quantile is q in (0, 1): the data-mode estimate is the q-quantile of
	// the last Window event times (nearest rank: the ⌈q·N⌉-th smallest).
	// Default 0.05. Up to ⌈q·N⌉−1 far-past and N−⌈q·N⌉ far-future outliers
	// in the window do not move it; a larger q lags less but tolerates fewer
	// rows from the past. No Spark equivalent (Spark uses max − delay).
	Quantile float64
	// Window is N, how many of the latest event times the estimate looks at.
	// Default 128, at most MaxWindow. The watermark lags the data by about
	// the time N events of one partition span (README.md: 128 keeps the
	// real files' main-block late fraction under 0.7 % with half the lag
	// of 256).
	Window int
}

// DefaultConfig returns the defaults: 10 minutes delay, q = 0.05, N = 128.
func DefaultConfig() Config {
	return Config{Delay: DefaultDelay, Quantile: DefaultQuantile, Window: DefaultWindow}
}

// Validate reports the first bad setting of c, naming it.
func (c Config) Validate() error {
	switch {
	case c.Delay < 0:
		return fmt.Errorf("watermark delay %v: must be >= 0", c.Delay)
	case c.Delay%time.Millisecond != 0:
		return fmt.Errorf("watermark delay %v: must be a whole number of milliseconds", c.Delay)
	case !(c.Quantile > 0 && c.Quantile < 1): // also rejects NaN
		return fmt.Errorf("watermark quantile %v: must be > 0 and < 1", c.Quantile)
	case c.Window < 1 || c.Window > MaxWindow:
		return fmt.Errorf("watermark window %d: must be between 1 and %d", c.Window, MaxWindow)
	}
	return nil
}

// rank returns the 0-based index of the q-quantile in a sorted full window of n
// values (nearest rank, ⌈q·n⌉-th smallest).
func rank(q float64, n int) int {
	k := int(math.Ceil(q*float64(n))) - 1
	return min(max(k, 0), n-1)
}

// Mode tells what moves a Tracker's watermark.
type Mode uint8

const (
	// ModeData: no marker seen yet; the watermark follows the event times.
	ModeData Mode = iota
	// ModeMarker: a marker was seen; only markers move the watermark.
	ModeMarker
	// ModeFinal: a final marker was seen; the watermark is Closed.
	ModeFinal
)

func (m Mode) String() string {
	switch m {
	case ModeData:
		return "data"
	case ModeMarker:
		return "marker"
	case ModeFinal:
		return "final"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Tracker is the watermark state of one input partition.
type Tracker struct {
	cfg     Config
	delayMs int64
	rank    int // index of the quantile in a full sorted window

	// Data mode only (nil afterwards): the last cfg.Window event times in
	// arrival order and the same values sorted. ring is used as a circular
	// buffer once full; head is the index of the oldest value.
	ring   []int64
	head   int
	sorted []int64

	mode   Mode
	wm     int64
	hasWM  bool
	max    int64 // largest event time seen, for the naive comparison
	hasMax bool
}

// New returns a Tracker with no watermark, in data mode.
func New(cfg Config) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Tracker{
		cfg:     cfg,
		delayMs: cfg.Delay.Milliseconds(),
		rank:    rank(cfg.Quantile, cfg.Window),
		ring:    make([]int64, 0, cfg.Window),
		sorted:  make([]int64, 0, cfg.Window),
	}, nil
}

// MustNew is New that panics on an invalid config. For tests and constants.
func MustNew(cfg Config) *Tracker {
	t, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return t
}

// Config returns the tracker's configuration.
func (t *Tracker) Config() Config { return t.cfg }

// Mode returns what currently moves the watermark.
func (t *Tracker) Mode() Mode { return t.mode }

// Watermark returns the current watermark in epoch ms of the wall clock.
// ok is false while there is none (data mode before enough events); such a
// partition holds every window open (see Min).
func (t *Tracker) Watermark() (ms int64, ok bool) { return t.wm, t.hasWM }

// Naive returns max event time seen − delay, the rule of Spark's
// withWatermark, kept only for comparison metrics. ok is false before the
// first event. It never moves the watermark.
func (t *Tracker) Naive() (ms int64, ok bool) {
	return subSat(t.max, t.delayMs), t.hasMax
}

// ObserveEvent records the event time of one event read from the partition,
// after the event has been judged against the current watermark.
//
// Hot path: in data mode it costs two binary searches and one memmove of at
// most N int64 values (see BenchmarkObserveEvent).
func (t *Tracker) ObserveEvent(ms int64) {
	if !t.hasMax || ms > t.max {
		t.max, t.hasMax = ms, true
	}
	if t.mode != ModeData {
		return
	}
	n := t.cfg.Window
	if len(t.ring) < n {
		t.ring = append(t.ring, ms)
		i, _ := slices.BinarySearch(t.sorted, ms)
		t.sorted = slices.Insert(t.sorted, i, ms)
	} else {
		old := t.ring[t.head]
		t.ring[t.head] = ms
		if t.head++; t.head == n {
			t.head = 0
		}
		replaceSorted(t.sorted, old, ms)
	}
	// Slots not filled yet count as −∞: the quantile is a real value once
	// more than N−rank−1 events are in the window.
	if i := t.rank - (n - len(t.sorted)); i >= 0 {
		t.raise(subSat(t.sorted[i], t.delayMs))
	}
}

// replaceSorted replaces one occurrence of old in the sorted slice s by v,
// keeping s sorted, with one memmove of the values between the two positions.
func replaceSorted(s []int64, old, v int64) {
	i, _ := slices.BinarySearch(s, old) // s[i] == old
	// j = upper bound of v in s (with old still in it).
	j, found := slices.BinarySearch(s, v)
	for found && j < len(s) && s[j] == v {
		j++
	}
	if j > i {
		copy(s[i:j-1], s[i+1:j])
		s[j-1] = v
	} else {
		copy(s[j+1:i+1], s[j:i])
		s[j] = v
	}
}

// ObserveMarker records a watermark marker from the producer. The first
// marker switches the tracker to marker mode for good: from then on only
// markers move the watermark, to watermark_ms − delay. A final marker sets it
// to Closed. The watermark never decreases, so a marker below the current
// watermark (or any marker after a final one) changes nothing.
func (t *Tracker) ObserveMarker(watermarkMs int64, final bool) {
	if t.mode == ModeData {
		t.mode = ModeMarker
		t.ring, t.sorted, t.head = nil, nil, 0 // no longer needed
	}
	if t.mode == ModeFinal {
		return
	}
	if final {
		t.mode = ModeFinal
		t.wm, t.hasWM = Closed, true
		return
	}
	t.raise(subSat(watermarkMs, t.delayMs))
}

// Max returns the largest event time observed; ok is false before the first.
func (t *Tracker) Max() (ms int64, ok bool) { return t.max, t.hasMax }

// Raise lifts the watermark to at least ms without observing an event (an idle
// partition's watermark, docs/design.md "Idle partitions"). It keeps the mode, and
// like every change it never lowers the watermark; it reports whether it moved.
// After a final marker it changes nothing.
func (t *Tracker) Raise(ms int64) bool {
	if t.mode == ModeFinal || (t.hasWM && ms <= t.wm) {
		return false
	}
	t.raise(ms)
	return true
}

func (t *Tracker) raise(ms int64) {
	if !t.hasWM || ms > t.wm {
		t.wm, t.hasWM = ms, true
	}
}

// subSat returns a−b for b >= 0, saturating at math.MinInt64.
func subSat(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}

// Mark is one partition's watermark as seen by a downstream stage.
type Mark struct {
	Ms int64
	OK bool // false: the partition has no watermark yet
}

// Min returns the watermark of a stage fed by several partitions: the
// minimum over marks. ok is false if marks is empty or any partition has no
// watermark yet, because such a partition holds every window open.
func Min(marks []Mark) (ms int64, ok bool) {
	if len(marks) == 0 {
		return 0, false
	}
	ms = math.MaxInt64
	for _, m := range marks {
		if !m.OK {
			return 0, false
		}
		ms = min(ms, m.Ms)
	}
	return ms, true
}

// ErrCorruptSnapshot is wrapped by every UnmarshalBinary error about the
// snapshot bytes themselves.
var ErrCorruptSnapshot = errors.New("corrupt watermark snapshot")
