// Package order replays the rows of many TLC files in a chosen order through one iterator:
//
//   - InFileOrder: file after file, each in its own row order (no sort, no temp files);
//   - Sorted: by event time (the dropoff time by default), ties broken by file index, then row
//     index, so the order is total and deterministic: it depends only on the inputs, never on
//     MaxRunRows or timing.
//
// Sorted is an external merge sort with bounded memory. It reads the inputs in batches into a
// run of at most MaxRunRows rows, sorts the run by a small key array and spills it to a temp file
// in a compact binary encoding (see encode.go), then k-way merges the spilled runs with a heap.
// The last run stays in memory and takes part in the merge directly, so inputs that fit in one
// run are never written to disk.
//
// A full run is sorted and spilled by a goroutine of its own while the next run is read, so
// the decoding and the spilling use two cores.
//
// Memory bound: two runs, about 2 × MaxRunRows × (sizeof(Row) + 32 bytes of sort key), that is
// roughly MaxRunRows × 850 bytes (the default, 1<<18 rows, is about 225 MB), plus k × (RunBufferSize +
// one Row) while merging k runs, plus the caller's batch. k is bounded by tiered intermediate
// merges: whenever MaxMergeWidth runs of one level exist they are merged into one run of the
// next level, so k <= MaxMergeWidth × levels (levels = log_MaxMergeWidth of the run count; 2
// for anything up to 4096 runs) and each row is rewritten once per level. Temp files are unlinked as soon as
// they are created (on systems that allow it) and their directory is removed on Close and on
// every error, so nothing is left behind even if the process dies.
package order

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/tlc"
)

// Row is one trip with its origin: the index of its file in the inputs and its row index in
// that file.
type Row struct {
	File int
	Row  int64
	Trip codecs.Trip
}

// Iterator yields rows in replay order.
type Iterator interface {
	// Next fills dst with the next rows and returns how many; 0, io.EOF at the end.
	Next(dst []Row) (int, error)
	// Close releases files and removes temp files. It is safe to call more than once.
	Close() error
}

// Input is one file to replay. Open is called once, when the file's turn comes (InFileOrder)
// or while runs are built (Sorted); the Source is closed when it has been read.
type Input struct {
	Name string
	Open func() (tlc.Source, error)
}

// FileInput is the Input of a local file opened with tlc.OpenFile.
func FileInput(path string) Input {
	return Input{Name: path, Open: func() (tlc.Source, error) { return tlc.OpenFile(path) }}
}

// readBatch is how many rows are read from a source at a time.
const readBatch = 4096

// InFileOrder returns the rows of the inputs file after file, each file in its own order.
func InFileOrder(ctx context.Context, inputs []Input) Iterator {
	return &fileOrder{ctx: ctx, inputs: inputs}
}

type fileOrder struct {
	ctx    context.Context
	inputs []Input
	next   int // index of the next input to open
	cur    tlc.Source
	file   int
	buf    []codecs.Trip
	closed bool
}

func (it *fileOrder) Next(dst []Row) (int, error) {
	if it.closed {
		return 0, errors.New("order: Next after Close")
	}
	if len(dst) == 0 {
		return 0, nil
	}
	for {
		if err := it.ctx.Err(); err != nil {
			return 0, err
		}
		if it.cur == nil {
			if it.next >= len(it.inputs) {
				return 0, io.EOF
			}
			in := it.inputs[it.next]
			src, err := in.Open()
			if err != nil {
				return 0, fmt.Errorf("order: open %s: %w", in.Name, err)
			}
			it.cur, it.file = src, it.next
			it.next++
		}
		if cap(it.buf) < len(dst) {
			it.buf = make([]codecs.Trip, len(dst))
		}
		first := it.cur.Pos()
		n, err := it.cur.Next(it.buf[:len(dst)])
		if errors.Is(err, io.EOF) {
			err = it.cur.Close()
			it.cur = nil
			if err != nil {
				return 0, fmt.Errorf("order: close %s: %w", it.inputs[it.file].Name, err)
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		for i := range n {
			dst[i] = Row{File: it.file, Row: first + int64(i), Trip: it.buf[i]}
		}
		return n, nil
	}
}

func (it *fileOrder) Close() error {
	it.closed = true
	if it.cur != nil {
		err := it.cur.Close()
		it.cur = nil
		return err
	}
	return nil
}

// Config configures Sorted.
type Config struct {
	// MaxRunRows is the most rows held in memory at once while sorting. Default 1<<18.
	MaxRunRows int
	// TempDir is where the spill directory is created. Default os.TempDir().
	TempDir string
	// RunBufferSize is the read buffer of each spilled run while merging. Default 64 KiB.
	RunBufferSize int
	// MaxMergeWidth is how many spilled runs of one level are merged into one run of the next
	// level while reading the inputs, which bounds open files and merge buffers. Default 64,
	// minimum 2.
	MaxMergeWidth int
	// Key is the timestamp column to sort by. Default (zero value ColVendorID is not a
	// timestamp) codecs.ColDropoff. Rows whose key is null sort first.
	Key codecs.Column
}

func (c Config) withDefaults() (Config, error) {
	if c.MaxRunRows == 0 {
		c.MaxRunRows = 1 << 18
	}
	if c.MaxRunRows < 1 {
		return c, fmt.Errorf("order: MaxRunRows %d, want > 0", c.MaxRunRows)
	}
	if c.RunBufferSize == 0 {
		c.RunBufferSize = 64 << 10
	}
	if c.RunBufferSize < 4096 {
		return c, fmt.Errorf("order: RunBufferSize %d, want >= 4096", c.RunBufferSize)
	}
	if c.MaxMergeWidth == 0 {
		c.MaxMergeWidth = 64
	}
	if c.MaxMergeWidth < 2 {
		return c, fmt.Errorf("order: MaxMergeWidth %d, want >= 2", c.MaxMergeWidth)
	}
	if c.Key == 0 {
		c.Key = codecs.ColDropoff
	}
	if c.Key.Type() != codecs.TypeTimestamp {
		return c, fmt.Errorf("order: sort key column %d is not a timestamp", c.Key)
	}
	return c, nil
}

// sortKey is what rows are ordered by. Comparing it gives the total order of Sorted.
type sortKey struct {
	time int64
	file int32
	row  int64
}

func keyOf(r *Row, col codecs.Column) sortKey {
	v := r.Trip.IntField(col)
	t := int64(math.MinInt64)
	if v.Valid {
		t = v.V
	}
	return sortKey{time: t, file: int32(r.File), row: r.Row}
}

func (a sortKey) less(b sortKey) bool {
	if a.time != b.time {
		return a.time < b.time
	}
	if a.file != b.file {
		return a.file < b.file
	}
	return a.row < b.row
}

func (a sortKey) compare(b sortKey) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}
