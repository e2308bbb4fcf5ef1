package order

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/taxi-stream/taxi-stream/codecs"
)

// Sorted reads all inputs now, spilling sorted runs as needed, and returns an iterator over all
// rows ordered by (Key time, file index, row index). See the package doc for the memory bound.
// On error every temp file is already removed.
func Sorted(ctx context.Context, inputs []Input, cfg Config) (*Sorter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Sorter{cfg: cfg, ctx: ctx}
	if err := s.build(inputs); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Sorter is the Iterator of Sorted. It is not safe for concurrent use.
type Sorter struct {
	cfg     Config
	ctx     context.Context
	dir     string // spill directory, created on the first spill
	layouts []codecs.Layout

	// The current run while building; the last run (never spilled) while merging.
	rows []Row
	keys []runKey

	// Spilled runs, a stack whose levels never increase towards the top (see cascade).
	runs    []*spillRun
	spilled int // runs written at level 0
	final   merger
	closed  bool

	// A full run is sorted and written by a goroutine of its own while the inputs go on
	// being read into the other buffer (the decoding and the spilling each take about half
	// of the sort phase's CPU). While spilling is set, that goroutine owns runs, spilled, dir
	// and spillKeys; it returns the emptied buffer as spare. At most one spill is in flight.
	spilling  chan error
	spare     []Row
	spillKeys []runKey
}

var _ Iterator = (*Sorter)(nil)

// runKey sorts a run without moving its (large) rows.
type runKey struct {
	key sortKey
	idx int32
}

func (s *Sorter) build(inputs []Input) error {
	s.rows = make([]Row, 0, min(s.cfg.MaxRunRows, 1<<16))
	buf := make([]codecs.Trip, readBatch)
	for fi, in := range inputs {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		src, err := in.Open()
		if err != nil {
			return fmt.Errorf("order: open %s: %w", in.Name, err)
		}
		// The spill goroutine's merges read layouts.
		if err := s.waitSpill(); err != nil {
			src.Close()
			return err
		}
		s.layouts = append(s.layouts, src.Layout())
		if err := s.readSource(fi, src, buf); err != nil {
			src.Close()
			return err
		}
		if err := src.Close(); err != nil {
			return fmt.Errorf("order: close %s: %w", in.Name, err)
		}
	}
	if err := s.waitSpill(); err != nil {
		return err
	}
	s.spare = nil
	s.sortRun()
	// The final merge: the in-memory last run plus every spilled run.
	cursors := []*cursor{{}}
	for _, r := range s.runs {
		if err := r.rewind(s.cfg.RunBufferSize); err != nil {
			return err
		}
		cursors = append(cursors, &cursor{spill: r})
	}
	return s.final.init(s, cursors)
}

func (s *Sorter) readSource(fi int, src interface {
	Next([]codecs.Trip) (int, error)
	Pos() int64
}, buf []codecs.Trip) error {
	for {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		first := src.Pos()
		n, err := src.Next(buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for i := range n {
			// Spill lazily, only when another row arrives: the last run always stays in memory,
			// and inputs of at most MaxRunRows rows never touch the disk.
			if len(s.rows) == s.cfg.MaxRunRows {
				if err := s.spill(); err != nil {
					return err
				}
			}
			s.rows = append(s.rows, Row{File: fi, Row: first + int64(i), Trip: buf[i]})
		}
	}
}

// sortRun orders the current run's keys.
func (s *Sorter) sortRun() {
	s.keys = sortKeys(s.keys[:0], s.rows, s.cfg.Key)
}

// sortKeys appends the keys of rows to keys and sorts them.
func sortKeys(keys []runKey, rows []Row, col codecs.Column) []runKey {
	for i := range rows {
		keys = append(keys, runKey{key: keyOf(&rows[i], col), idx: int32(i)})
	}
	slices.SortFunc(keys, func(a, b runKey) int { return a.key.compare(b.key) })
	return keys
}

// spill hands the current (full) run to a spill goroutine and continues with an empty
// buffer: the spare one, once the previous spill has returned it.
func (s *Sorter) spill() error {
	if err := s.waitSpill(); err != nil {
		return err
	}
	rows := s.rows
	s.rows = s.spare
	if s.rows == nil {
		s.rows = make([]Row, 0, cap(rows))
	}
	s.spare = nil
	done := make(chan error, 1)
	s.spilling = done
	go func() {
		err := s.spillRun(rows)
		clear(rows) // drop string references
		s.spare = rows[:0]
		done <- err
	}()
	return nil
}

// waitSpill waits for the spill in flight, if any, and returns its error.
func (s *Sorter) waitSpill() error {
	if s.spilling == nil {
		return nil
	}
	err := <-s.spilling
	s.spilling = nil
	return err
}

// spillRun writes rows, sorted, to a new temp file (the spill goroutine).
func (s *Sorter) spillRun(rows []Row) error {
	s.spillKeys = sortKeys(s.spillKeys[:0], rows, s.cfg.Key)
	run, err := s.writeRun(0, func(write func(*Row) error) error {
		for _, k := range s.spillKeys {
			if err := write(&rows[k.idx]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.spilled++
	s.runs = append(s.runs, run)
	return s.cascade()
}

// cascade keeps the number of spilled runs, and so of open files and read buffers in the final
// merge, below about MaxMergeWidth × levels: whenever the top MaxMergeWidth runs share a level,
// they are merged into one run of the next level (a tiered merge: every row is rewritten once
// per level, log_width(runs) times in all).
func (s *Sorter) cascade() error {
	w := s.cfg.MaxMergeWidth
	for len(s.runs) >= w {
		top := s.runs[len(s.runs)-w:]
		level := top[0].level
		for _, r := range top {
			if r.level != level {
				return nil
			}
		}
		merged, err := s.mergeRuns(top, level+1)
		if err != nil {
			return err
		}
		s.runs = append(s.runs[:len(s.runs)-w], merged)
	}
	return nil
}

// mergeRuns merges runs into one new run and closes (so frees) the inputs.
func (s *Sorter) mergeRuns(runs []*spillRun, level int) (*spillRun, error) {
	cursors := make([]*cursor, len(runs))
	for i, r := range runs {
		if err := r.rewind(s.cfg.RunBufferSize); err != nil {
			return nil, err
		}
		cursors[i] = &cursor{spill: r}
	}
	var m merger
	if err := m.init(s, cursors); err != nil {
		return nil, err
	}
	merged, err := s.writeRun(level, func(write func(*Row) error) error {
		var row Row
		for {
			ok, err := m.next(&row)
			if err != nil || !ok {
				return err
			}
			if err := write(&row); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, r := range runs {
		errs = append(errs, r.close())
	}
	return merged, errors.Join(errs...)
}

// writeRun creates a spill file and fills it with the rows that fill passes to write.
func (s *Sorter) writeRun(level int, fill func(write func(*Row) error) error) (*spillRun, error) {
	if s.dir == "" {
		dir, err := os.MkdirTemp(s.cfg.TempDir, "taxi-order-*")
		if err != nil {
			return nil, fmt.Errorf("order: spill directory: %w", err)
		}
		s.dir = dir
	}
	f, err := os.CreateTemp(s.dir, "run-*.bin")
	if err != nil {
		return nil, fmt.Errorf("order: spill run: %w", err)
	}
	// Unlink at once where the OS allows it: the data lives until the file is closed, and a
	// crash leaves nothing behind. (Where it fails, Close removes the directory.)
	_ = os.Remove(f.Name())
	run := &spillRun{f: f, level: level}
	w := bufio.NewWriterSize(f, s.cfg.RunBufferSize)
	var rec []byte
	err = fill(func(r *Row) error {
		rec = appendRecord(rec[:0], r)
		_, err := w.Write(rec)
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("order: write run %s: %w", f.Name(), err)
	}
	return run, nil
}

// Next returns the next rows in (time, file, row) order.
func (s *Sorter) Next(dst []Row) (int, error) {
	if s.closed {
		return 0, errors.New("order: Next after Close")
	}
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(dst) {
		ok, err := s.final.next(&dst[n])
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		n++
	}
	if n == 0 && len(dst) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Runs returns how many runs were spilled to disk before intermediate merges (0 when
// everything fit in memory).
func (s *Sorter) Runs() int { return s.spilled }

// OpenRuns returns how many spilled runs the final merge reads (at most about MaxMergeWidth per
// level).
func (s *Sorter) OpenRuns() int { return len(s.runs) }

// Close closes and removes the spilled runs. It is safe to call more than once.
func (s *Sorter) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	// A spill in flight owns the runs; its error is already reported or moot.
	_ = s.waitSpill()
	var errs []error
	for _, r := range s.runs {
		errs = append(errs, r.close())
	}
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	s.rows, s.keys, s.runs, s.final, s.spare, s.spillKeys = nil, nil, nil, merger{}, nil, nil
	return errors.Join(errs...)
}

// cursor is one sorted run being merged: a spilled run, or (spill == nil) the in-memory run.
type cursor struct {
	k     sortKey
	row   Row
	spill *spillRun
	mem   int // next index into Sorter.keys for the in-memory run
}

// merger is a k-way merge of sorted cursors through a min-heap on their keys.
type merger struct {
	s    *Sorter
	heap []*cursor
}

func (m *merger) init(s *Sorter, cursors []*cursor) error {
	m.s = s
	for _, c := range cursors {
		ok, err := m.advance(c)
		if err != nil {
			return err
		}
		if ok {
			m.heap = append(m.heap, c)
		}
	}
	for i := len(m.heap)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return nil
}

// advance moves c to its run's next row and reports false at the run's end.
func (m *merger) advance(c *cursor) (bool, error) {
	if c.spill != nil {
		ok, err := c.spill.read(m.s.layouts, &c.row)
		if !ok || err != nil {
			return false, err
		}
	} else {
		if c.mem >= len(m.s.keys) {
			return false, nil
		}
		c.row = m.s.rows[m.s.keys[c.mem].idx]
		c.mem++
	}
	c.k = keyOf(&c.row, m.s.cfg.Key)
	return true, nil
}

// next copies the smallest row into dst; false when all cursors are exhausted.
func (m *merger) next(dst *Row) (bool, error) {
	if len(m.heap) == 0 {
		return false, nil
	}
	top := m.heap[0]
	*dst = top.row
	ok, err := m.advance(top)
	if err != nil {
		return false, err
	}
	if !ok {
		last := len(m.heap) - 1
		m.heap[0] = m.heap[last]
		m.heap = m.heap[:last]
	}
	if len(m.heap) > 0 {
		m.down(0)
	}
	return true, nil
}

// down restores the heap property below i.
func (m *merger) down(i int) {
	h := m.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && h[r].k.less(h[l].k) {
			c = r
		}
		if !h[c].k.less(h[i].k) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// spillRun is a run written to a temp file.
type spillRun struct {
	f     *os.File
	level int
	r     *bufio.Reader
	buf   []byte
}

func (r *spillRun) rewind(bufSize int) error {
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("order: rewind run %s: %w", r.f.Name(), err)
	}
	r.r = bufio.NewReaderSize(r.f, bufSize)
	return nil
}

func (r *spillRun) close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f, r.r, r.buf = nil, nil, nil
	return err
}

// read decodes the next record into row; false at the end of the run.
func (r *spillRun) read(layouts []codecs.Layout, row *Row) (bool, error) {
	n, err := binary.ReadUvarint(r.r)
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("order: read run %s: %w", r.f.Name(), err)
	}
	if uint64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		return false, fmt.Errorf("order: read run %s: %w", r.f.Name(), err)
	}
	if err := decodeRecord(r.buf, layouts, row); err != nil {
		return false, fmt.Errorf("order: read run %s: %w", r.f.Name(), err)
	}
	return true, nil
}
