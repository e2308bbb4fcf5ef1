package aggregate

import (
	"cmp"
	"maps"
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
// windows' exact sums per borough and the latest watermark of every ingest
// partition. The zero value is empty and ready to use.
type State struct {
	open       map[cell]*Sums
	watermarks map[int32]int64
	// closedMs is the highest watermark Close was called with: every window
	// ending at or before it has been emitted.
	closedMs  int64
	hasClosed bool
}

// Apply merges a partial into the state: first its sums, then its watermark
// (so a partial that carries both a window's last rides and the watermark
// that closes it is counted in full). The watermark of a partition never
// decreases.
//
// Sums for a window that was already closed are not applied (that window's
// result has been emitted); Apply returns how many rides they held. This
// cannot happen when the ingest stage follows the watermark rule, so a
// non-zero value is worth a metric and a log line.
func (s *State) Apply(p Partial) (droppedRides int64) {
	for _, e := range p.Entries {
		if s.hasClosed && e.Window.EndMs <= s.closedMs {
			droppedRides += e.Sums.Count
			continue
		}
		if s.open == nil {
			s.open = make(map[cell]*Sums)
		}
		k := cell{e.Window, e.Borough}
		if sums := s.open[k]; sums != nil {
			sums.Merge(e.Sums)
		} else {
			v := e.Sums
			s.open[k] = &v
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
	return droppedRides
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

// Close removes every window that ends at or before minWatermark and returns
// one result per (window, borough) of them, sorted by window start, end and
// borough (nil if none). Later Apply calls drop sums for those windows.
func (s *State) Close(minWatermark int64) []Result {
	if !s.hasClosed || minWatermark > s.closedMs {
		s.closedMs, s.hasClosed = minWatermark, true
	}
	var out []Result
	for k, sums := range s.open {
		if k.w.EndMs <= minWatermark {
			out = append(out, Result{Window: k.w, Borough: k.borough, Sums: *sums})
			delete(s.open, k)
		}
	}
	slices.SortFunc(out, func(a, b Result) int {
		return compareEntries(Entry(a), Entry(b))
	})
	return out
}

// Len is the number of open (window, borough) cells.
func (s *State) Len() int { return len(s.open) }

// Entries returns the open cells sorted by window start, end and borough.
func (s *State) Entries() []Entry {
	out := make([]Entry, 0, len(s.open))
	for k, sums := range s.open {
		out = append(out, Entry{Window: k.w, Borough: k.borough, Sums: *sums})
	}
	slices.SortFunc(out, compareEntries)
	return out
}

// ClosedThrough returns the highest watermark Close was called with; ok is
// false before the first Close.
func (s *State) ClosedThrough() (ms int64, ok bool) { return s.closedMs, s.hasClosed }

// partitions returns the ingest partitions with a watermark, ascending.
func (s *State) partitions() []int32 {
	return slices.Sorted(maps.Keys(s.watermarks))
}
