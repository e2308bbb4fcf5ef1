package replay

import (
	"math"
	"strconv"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/order"
	"github.com/taxi-stream/taxi-stream/producer/replay/kafkaio"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
)

// NoWatermark is the watermark_ms of a marker sent while the estimator has no watermark yet
// (before the first ~122 rows, always for the first marker): the smallest int64, so the
// processor's watermark stays below every window.
const NoWatermark int64 = math.MinInt64

// sequencer assigns send positions (ts-seq) to rows and markers, decides where markers go
// and what they say. It depends only on the rows it is given, in order, and its config, so
// a resumed replay regenerates exactly the same sequence.
//
// Positions count rows and markers together: marker, rows 1..every, marker, ... final marker.
// A marker's after_seq is its own position - 1 (-1 for the first); its rows field counts the
// rows before it.
type sequencer struct {
	markers   bool
	every     int64
	eventTime codecs.Column
	tracker   *watermark.Tracker

	seq        int64 // next position
	rows       int64 // rows sequenced
	maxEvent   int64
	hasEvent   bool
	sinceMark  int64
	partitions int
	names      []string // base name per file index
	key        []byte   // scratch
}

func newSequencer(cfg Config, names []string, partitions int) *sequencer {
	return &sequencer{
		markers:    !cfg.NoMarkers,
		every:      int64(cfg.MarkerEvery),
		eventTime:  cfg.EventTime,
		tracker:    watermark.MustNew(cfg.Watermark),
		partitions: partitions,
		names:      names,
	}
}

// item is one message of the sequence.
type item struct {
	seq    int64
	marker bool
	m      codecs.Marker // marker only
	part   int           // ride only: its partition
	key    []byte        // ride only: scratch, valid until the next call
}

// start returns the marker before the first row (ok=false when markers are off).
func (s *sequencer) start() (item, bool) { return s.marker(false) }

// row sequences r and returns its item; then markerDue tells whether a marker follows.
func (s *sequencer) row(r *order.Row) item {
	s.key = appendKey(s.key[:0], s.names[r.File], r.Row)
	it := item{seq: s.seq, part: kafkaio.Partition(s.key, s.partitions), key: s.key}
	s.seq++
	s.rows++
	s.sinceMark++
	if v := r.Trip.IntField(s.eventTime); v.Valid {
		s.tracker.ObserveEvent(v.V)
		if !s.hasEvent || v.V > s.maxEvent {
			s.maxEvent, s.hasEvent = v.V, true
		}
	}
	return it
}

// periodic returns the marker due after the last row, if any.
func (s *sequencer) periodic() (item, bool) {
	if !s.markers || s.sinceMark < s.every {
		return item{}, false
	}
	return s.marker(false)
}

// final returns the final marker.
func (s *sequencer) final() (item, bool) { return s.marker(true) }

func (s *sequencer) marker(final bool) (item, bool) {
	if !s.markers {
		return item{}, false
	}
	m := codecs.Marker{Type: codecs.KindWatermark, Final: final, AfterSeq: s.seq - 1, Rows: s.rows, WatermarkMs: NoWatermark}
	if final {
		if s.hasEvent && s.maxEvent < math.MaxInt64 {
			m.WatermarkMs = s.maxEvent + 1
		}
	} else if wm, ok := s.tracker.Watermark(); ok {
		m.WatermarkMs = wm
	}
	it := item{seq: s.seq, marker: true, m: m}
	s.seq++
	s.sinceMark = 0
	return it, true
}

// clock returns the event-time clock used by Speedup pacing: the current watermark estimate.
func (s *sequencer) clock() (int64, bool) { return s.tracker.Watermark() }

// appendKey appends the ride key "<name>:<row>".
func appendKey(dst []byte, name string, row int64) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, row, 10)
}

// markerCount returns how many markers a replay of rows rows sends (per partition).
func markerCount(cfg Config, rows int64) int64 {
	if cfg.NoMarkers {
		return 0
	}
	return 2 + rows/int64(cfg.MarkerEvery)
}
