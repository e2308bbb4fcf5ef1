package replay

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/order"
	"github.com/taxi-stream/taxi-stream/producer/replay/kafkaio"
)

// entry is one message of a chunk: a ride (its row) or a marker.
type entry struct {
	seq    int64
	marker bool
	m      codecs.Marker
	row    order.Row
}

// chunk is a run of consecutive messages of one partition, in send order.
type chunk struct {
	entries []entry
	born    time.Time // when its first entry was added (for Linger)
}

// counters are updated by the senders and read by progress reporting.
type counters struct {
	rows    atomic.Int64 // rides acknowledged
	markers atomic.Int64 // marker records acknowledged (one per partition and position)
	bytes   atomic.Int64 // uncompressed key+value+header bytes acknowledged
	batches atomic.Int64 // record batches (produce requests)
	retries atomic.Int64 // batches resent through broker faults
}

// sender owns one partition: it encodes the partition's chunks and produces them one after
// the other (so at most one record batch of the partition is in flight). After the first
// error it sends nothing more: the partition stays a prefix of its sequence.
type sender struct {
	part     int
	in       chan *chunk
	free     chan *chunk
	producer *kafkaio.Producer
	names    []string
	counts   *counters
	fail     func(error)
	failed   *atomic.Bool

	rs   kafkaio.Records
	done chan struct{}
}

func (s *sender) run(ctx context.Context) {
	defer close(s.done)
	for c := range s.in {
		if !s.failed.Load() {
			s.send(ctx, c)
		}
		c.entries = c.entries[:0]
		select {
		case s.free <- c:
		default:
		}
	}
}

func (s *sender) send(ctx context.Context, c *chunk) {
	s.rs.Reset()
	rides := 0
	for i := range c.entries {
		e := &c.entries[i]
		if e.marker {
			s.encodeMarker(e)
		} else {
			s.encodeRide(e)
			rides++
		}
	}
	res, err := s.producer.Produce(ctx, s.part, &s.rs)
	// Count what the broker acknowledged, also when a later batch of the chunk failed: the
	// chunk's records go in order, so the first res.Records entries are written.
	ackRides := rides
	if err != nil {
		ackRides = 0
		for i := range res.Records {
			if !c.entries[i].marker {
				ackRides++
			}
		}
	}
	s.counts.rows.Add(int64(ackRides))
	s.counts.markers.Add(int64(res.Records - ackRides))
	s.counts.bytes.Add(res.Bytes)
	s.counts.batches.Add(int64(res.Batches))
	s.counts.retries.Add(int64(res.Retries))
	if err != nil {
		s.fail(err)
	}
}

// encodeRide appends the ride message (docs/design.md "Ride message"): key <file>:<row>,
// value the trip's JSON, headers ts-source, ts-row, ts-seq.
func (s *sender) encodeRide(e *entry) {
	rs := &s.rs
	name := s.names[e.row.File]
	rs.Begin()
	rs.Buf = appendKey(rs.Buf, name, e.row.Row)
	rs.EndKey()
	rs.Buf = codecs.AppendTripJSON(rs.Buf, &e.row.Trip)
	rs.EndValue()
	rs.Buf = append(rs.Buf, name...)
	rs.EndHeader(codecs.HeaderSource)
	rs.Buf = strconv.AppendInt(rs.Buf, e.row.Row, 10)
	rs.EndHeader(codecs.HeaderRow)
	rs.Buf = strconv.AppendInt(rs.Buf, e.seq, 10)
	rs.EndHeader(codecs.HeaderSeq)
	rs.End()
}

// encodeMarker appends a watermark marker (docs/design.md "Watermark markers").
func (s *sender) encodeMarker(e *entry) {
	rs := &s.rs
	rs.Begin()
	rs.Buf = append(rs.Buf, codecs.MarkerKey...)
	rs.EndKey()
	rs.Buf = codecs.AppendMarkerJSON(rs.Buf, e.m)
	rs.EndValue()
	rs.Buf = append(rs.Buf, codecs.KindWatermark...)
	rs.EndHeader(codecs.HeaderKind)
	rs.Buf = strconv.AppendInt(rs.Buf, e.seq, 10)
	rs.EndHeader(codecs.HeaderSeq)
	rs.End()
}

// dispatcher collects entries into per-partition chunks and hands full (or lingering)
// chunks to the senders.
type dispatcher struct {
	senders   []*sender
	pending   []*chunk
	chunkRows int
	linger    time.Duration
	wg        sync.WaitGroup
	pendingN  int // entries in pending chunks
}

func newDispatcher(ctx context.Context, senders []*sender, chunkRows, queueDepth int, linger time.Duration) *dispatcher {
	d := &dispatcher{senders: senders, pending: make([]*chunk, len(senders)), chunkRows: chunkRows, linger: linger}
	for _, s := range senders {
		s.in = make(chan *chunk, queueDepth)
		s.free = make(chan *chunk, queueDepth+2)
		s.done = make(chan struct{})
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			s.run(ctx)
		}()
	}
	return d
}

func (d *dispatcher) chunkFor(p int, now time.Time) *chunk {
	c := d.pending[p]
	if c == nil {
		select {
		case c = <-d.senders[p].free:
		default:
			c = &chunk{entries: make([]entry, 0, d.chunkRows)}
		}
		c.born = now
		d.pending[p] = c
	}
	return c
}

// ride queues a ride for partition p.
func (d *dispatcher) ride(p int, seq int64, r *order.Row, now time.Time) {
	c := d.chunkFor(p, now)
	c.entries = append(c.entries, entry{seq: seq, row: *r})
	d.pendingN++
	if len(c.entries) >= d.chunkRows {
		d.flush(p)
	}
}

// marker queues a marker for partition p.
func (d *dispatcher) marker(p int, seq int64, m codecs.Marker, now time.Time) {
	c := d.chunkFor(p, now)
	c.entries = append(c.entries, entry{seq: seq, marker: true, m: m})
	d.pendingN++
	if len(c.entries) >= d.chunkRows {
		d.flush(p)
	}
}

// flush hands partition p's pending chunk to its sender (blocking while its queue is full).
func (d *dispatcher) flush(p int) {
	c := d.pending[p]
	if c == nil || len(c.entries) == 0 {
		return
	}
	d.pending[p] = nil
	d.pendingN -= len(c.entries)
	d.senders[p].in <- c
}

// flushOld flushes the chunks older than Linger.
func (d *dispatcher) flushOld(now time.Time) {
	if d.pendingN == 0 {
		return
	}
	for p, c := range d.pending {
		if c != nil && now.Sub(c.born) >= d.linger {
			d.flush(p)
		}
	}
}

// close flushes everything and waits until the senders are done.
func (d *dispatcher) close() {
	for p := range d.pending {
		d.flush(p)
	}
	for _, s := range d.senders {
		close(s.in)
	}
	d.wg.Wait()
}
