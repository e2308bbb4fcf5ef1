package aggregate

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

// Entry is the sums of one (window, borough).
type Entry struct {
	Window  window.Window
	Borough string
	Sums    Sums
}

// compareEntries orders by window start, window end, then borough.
func compareEntries(a, b Entry) int {
	return cmp.Or(
		cmp.Compare(a.Window.StartMs, b.Window.StartMs),
		cmp.Compare(a.Window.EndMs, b.Window.EndMs),
		strings.Compare(a.Borough, b.Borough),
	)
}

type cell struct {
	w       window.Window
	borough string
}

// Combiner is the ingest stage's in-memory partial aggregate of one input
// partition between two commits: it keeps one Sums per (window, borough) so
// the repartition topic and the windows stage's changelog see one record per
// cell per commit, not one per ride. The zero value is ready to use.
type Combiner struct {
	cells map[cell]*Sums
}

// Add adds an on-time ride to the window w of its pickup borough. Call it
// once per window that covers the ride (window.Spec.Windows).
func (c *Combiner) Add(w window.Window, borough string, r Ride) {
	if c.cells == nil {
		c.cells = make(map[cell]*Sums)
	}
	k := cell{w, borough}
	s := c.cells[k]
	if s == nil {
		s = new(Sums)
		c.cells[k] = s
	}
	s.Add(r)
}

// Len is the number of (window, borough) cells held.
func (c *Combiner) Len() int { return len(c.cells) }

// Flush appends the cells to dst sorted by window start, end and borough,
// empties the combiner and returns dst.
func (c *Combiner) Flush(dst []Entry) []Entry {
	n := len(dst)
	for k, s := range c.cells {
		dst = append(dst, Entry{Window: k.w, Borough: k.borough, Sums: *s})
	}
	slices.SortFunc(dst[n:], compareEntries)
	clear(c.cells)
	return dst
}

// Partial is what one ingest partition sends to the windows stage at a
// commit: its sums since the previous commit and its watermark at the commit.
type Partial struct {
	Partition    int32 // ingest (input) partition
	Watermark    int64 // the partition's watermark, if HasWatermark
	HasWatermark bool
	Entries      []Entry
}

// State is the windows stage's state for one of its partitions: the open
// windows' exact sums per borough, the closed windows kept for revisions (while
// the watermark is within the allowed lateness of their end), and the latest
// watermark of every ingest partition. The zero value is empty and ready to use.
type State struct {
	open       map[cell]*slot
	watermarks map[int32]int64
	// closedMs is the highest watermark Close was called with: every window
	// ending at or before it has been emitted.
	closedMs  int64
	hasClosed bool
}

// slot is one (window, borough) cell's sums and, once the window has closed, how
// many revisions of its result were emitted after the final one.
type slot struct {
	sums     Sums
	revision int64
}

// closed reports whether a window has been emitted (it ends at or before closedMs).
func (s *State) closed(w window.Window) bool { return s.hasClosed && w.EndMs <= s.closedMs }

// Apply merges a partial into the state: first its sums, then its watermark
// (so a partial that carries both a window's last rides and the watermark
// that closes it is counted in full). The watermark of a partition never
// decreases.
//
// Sums for a window that was closed but is still kept (its end is within
// lateness of the watermark it closed at, see Close) are merged, and the cell's
// result is returned as a revision (Revision ≥ 1; a borough new to the window
// starts at 1), sorted like Close's results. Sums for a window that left the
// state are not applied; Apply returns how many rides they held. That cannot
// happen when the ingest stage follows the watermark rule with the same
// lateness, so a non-zero value is worth a metric and a log line.
func (s *State) Apply(p Partial, lateness int64) Applied {
	var a Applied
	for _, e := range p.Entries {
		closed := s.closed(e.Window)
		if closed && !(e.Window.EndMs > subSat(s.closedMs, lateness)) {
			a.DroppedRides += e.Sums.Count
			continue
		}
		if s.open == nil {
			s.open = make(map[cell]*slot)
		}
		k := cell{e.Window, e.Borough}
		sl := s.open[k]
		if sl != nil {
			sl.sums.Merge(e.Sums)
		} else {
			sl = &slot{sums: e.Sums}
			s.open[k] = sl
		}
		if closed {
			sl.revision++
			a.Revised = append(a.Revised, Result{Window: e.Window, Borough: e.Borough, Sums: sl.sums, Revision: sl.revision})
			a.RevisedRides += e.Sums.Count
		}
	}
	if p.HasWatermark {
		if s.watermarks == nil {
			s.watermarks = make(map[int32]int64)
		}
		if old, ok := s.watermarks[p.Partition]; !ok || p.Watermark > old {
			s.watermarks[p.Partition] = p.Watermark
		}
	}
	sortResults(a.Revised)
	return a
}

// Applied is what Apply did besides merging.
type Applied struct {
	// Revised are the new results of closed windows that the partial changed.
	Revised []Result
	// RevisedRides is how many of the partial's rides went into them.
	RevisedRides int64
	// DroppedRides is how many rides were for windows that had left the state.
	DroppedRides int64
}

// MinWatermark is the stage watermark over ingest partitions 0..partitions−1:
// their minimum, with ok false while any of them has sent no watermark.
func (s *State) MinWatermark(partitions int) (ms int64, ok bool) {
	if partitions <= 0 {
		return 0, false
	}
	marks := make([]watermark.Mark, partitions)
	for p := range marks {
		marks[p].Ms, marks[p].OK = s.watermarks[int32(p)]
	}
	return watermark.Min(marks)
}

// Watermark returns the latest watermark received from an ingest partition.
func (s *State) Watermark(partition int32) (ms int64, ok bool) {
	ms, ok = s.watermarks[partition]
	return ms, ok
}

// Watermarks returns the latest watermark of every ingest partition that sent one.
func (s *State) Watermarks() map[int32]int64 { return maps.Clone(s.watermarks) }

// Close emits every window that ends at or before minWatermark and was not
// emitted yet: one final result (Revision 0) per (window, borough), sorted by
// window start, end and borough (nil if none). Closed windows stay in the state
// for revisions until minWatermark passes their end + lateness (0: they leave at
// once); later Apply calls drop sums for windows that left.
func (s *State) Close(minWatermark, lateness int64) []Result {
	prevClosed, hadClosed := s.closedMs, s.hasClosed
	if !s.hasClosed || minWatermark > s.closedMs {
		s.closedMs, s.hasClosed = minWatermark, true
	}
	var out []Result
	for k, sl := range s.open {
		if k.w.EndMs > minWatermark {
			continue
		}
		if !hadClosed || k.w.EndMs > prevClosed {
			out = append(out, Result{Window: k.w, Borough: k.borough, Sums: sl.sums})
		}
		if k.w.EndMs <= subSat(s.closedMs, lateness) {
			delete(s.open, k)
		}
	}
	sortResults(out)
	return out
}

func sortResults(rs []Result) {
	slices.SortFunc(rs, func(a, b Result) int {
		return compareEntries(Entry{Window: a.Window, Borough: a.Borough}, Entry{Window: b.Window, Borough: b.Borough})
	})
}

// subSat returns a−b for b >= 0, saturating at math.MinInt64.
func subSat(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}

// Len is the number of (window, borough) cells held: open, and closed but kept
// for revisions.
func (s *State) Len() int { return len(s.open) }

// Entries returns the cells held (Len) sorted by window start, end and borough.
func (s *State) Entries() []Entry {
	out := make([]Entry, 0, len(s.open))
	for k, sl := range s.open {
		out = append(out, Entry{Window: k.w, Borough: k.borough, Sums: sl.sums})
	}
	slices.SortFunc(out, compareEntries)
	return out
}

// OpenEntries returns the cells of windows not closed yet (Entries without the
// closed windows kept for revisions), sorted like Entries.
func (s *State) OpenEntries() []Entry {
	out := s.Entries()
	return slices.DeleteFunc(out, func(e Entry) bool { return s.closed(e.Window) })
}

// revisions returns the revision of each cell in Entries order, and whether any
// cell is a closed window kept for revisions.
func (s *State) revisions(entries []Entry) (revs []int64, kept bool) {
	revs = make([]int64, len(entries))
	for i, e := range entries {
		revs[i] = s.open[cell{e.Window, e.Borough}].revision
		if s.closed(e.Window) {
			kept = true
		}
	}
	return revs, kept
}

// ClosedThrough returns the highest watermark Close was called with; ok is
// false before the first Close.
func (s *State) ClosedThrough() (ms int64, ok bool) { return s.closedMs, s.hasClosed }

// partitions returns the ingest partitions with a watermark, ascending.
func (s *State) partitions() []int32 {
	return slices.Sorted(maps.Keys(s.watermarks))
}
