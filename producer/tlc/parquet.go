package tlc

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/taxi-stream/taxi-stream/codecs"
)

// RequiredColumns are the columns a trip file must have: the ones the processor aggregates.
// Every other known column is optional and simply absent from the messages when missing.
var RequiredColumns = []codecs.Column{
	codecs.ColPickup, codecs.ColDropoff, codecs.ColPULocationID, codecs.ColTripDistance,
	codecs.ColFareAmount, codecs.ColTipAmount, codecs.ColTotalAmount,
}

// Source yields the trips of one file in file order.
type Source interface {
	// Name is the file's base name (used in message keys and errors).
	Name() string
	// Layout is the layout shared by all trips of the file.
	Layout() codecs.Layout
	// Next fills dst with the next trips and returns how many. The trips' row indices are
	// Pos()-n .. Pos()-1 after the call. At the end it returns 0, io.EOF.
	Next(dst []codecs.Trip) (int, error)
	// Pos is the number of rows returned so far, i.e. the row index of the next trip.
	Pos() int64
	Close() error
}

// Reader reads a TLC Parquet file. It is not safe for concurrent use.
type Reader struct {
	name    string
	file    *parquet.File
	layout  codecs.Layout
	cols    []columnReader
	ignored []string

	rowGroup    int   // current row group
	rowGroupEnd int64 // first row index after the current row group
	pos         int64 // rows returned
	numRows     int64
}

// valueKind is how a column's Parquet values become Trip values.
type valueKind uint8

const (
	kindTimestamp   valueKind = iota + 1 // INT64 TIMESTAMP -> ms (divisor in tsDiv)
	kindCodeInt                          // INT32/INT64 -> NullInt
	kindCodeFloat                        // DOUBLE/FLOAT with integral values -> NullInt
	kindAmountFloat                      // DOUBLE/FLOAT -> NullFloat
	kindAmountInt                        // INT32/INT64 -> NullFloat
	kindString                           // BYTE_ARRAY -> NullString
	kindNull                             // NULL logical type: always null
)

type columnReader struct {
	col    codecs.Column
	name   string
	leaf   int // leaf column index in the file
	kind   valueKind
	phys   parquet.Kind
	tsDiv  int64 // units per millisecond for timestamps
	values parquet.ColumnChunkValueReader
	buf    []parquet.Value
}

// batchValues is how many parquet.Values one column reads at a time.
const batchValues = 1024

// OpenParquet opens the TLC Parquet file name (used in errors and as Name()) of size bytes
// read through r. It checks the schema: a flavor (lpep_ or tpep_ timestamps), all
// RequiredColumns, and a usable type for every known column; unknown columns are ignored
// (Ignored lists them). The caller keeps r open until Close.
func OpenParquet(name string, r io.ReaderAt, size int64) (rd *Reader, err error) {
	defer func() {
		if p := recover(); p != nil { // parquet-go can panic on corrupt footers
			rd, err = nil, fmt.Errorf("tlc: %s: corrupt parquet file: %v", name, p)
		}
	}()
	if size == 0 {
		return nil, fmt.Errorf("tlc: %s: empty file (0 bytes), want a parquet file", name)
	}
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true),
		parquet.ReadBufferSize(1<<20))
	if err != nil {
		return nil, fmt.Errorf("tlc: %s: not a readable parquet file: %w", name, err)
	}
	rd = &Reader{name: name, file: f, numRows: f.NumRows()}
	if err := rd.bindColumns(); err != nil {
		return nil, err
	}
	var total int64
	for _, rg := range f.RowGroups() {
		total += rg.NumRows()
	}
	if total != rd.numRows {
		return nil, fmt.Errorf("tlc: %s: corrupt parquet file: row groups hold %d rows, footer says %d", name, total, rd.numRows)
	}
	return rd, nil
}

func (r *Reader) bindColumns() error {
	byCol := make(map[codecs.Column]*parquet.Column)
	flavorSet := false
	for _, c := range r.file.Root().Columns() {
		col, flavor, implies, ok := codecs.LookupColumn(c.Name())
		if !ok {
			r.ignored = append(r.ignored, c.Name())
			continue
		}
		if implies {
			if flavorSet && flavor != r.layout.Flavor {
				return fmt.Errorf("tlc: %s: column %s: mixes lpep_ and tpep_ timestamp columns", r.name, c.Name())
			}
			flavorSet, r.layout.Flavor = true, flavor
		}
		if _, dup := byCol[col]; dup {
			return fmt.Errorf("tlc: %s: column %s: duplicate column", r.name, c.Name())
		}
		byCol[col] = c
		if col == codecs.ColAirportFee && c.Name() == "Airport_fee" {
			r.layout.AirportFeeCapital = true
		}
	}
	for _, col := range RequiredColumns {
		if byCol[col] == nil {
			return fmt.Errorf("tlc: %s: missing required column %s", r.name, r.layout.Name(col))
		}
	}
	for _, col := range codecs.ColumnOrder(r.layout.Flavor) {
		c := byCol[col]
		if c == nil {
			continue
		}
		cr, err := newColumnReader(col, c)
		if err != nil {
			return fmt.Errorf("tlc: %s: column %s: %w", r.name, c.Name(), err)
		}
		r.layout.Present = r.layout.Present.With(col)
		if cr.kind == kindCodeFloat {
			r.layout.Double = r.layout.Double.With(col)
		}
		r.cols = append(r.cols, cr)
	}
	return nil
}

func newColumnReader(col codecs.Column, c *parquet.Column) (columnReader, error) {
	cr := columnReader{col: col, name: c.Name(), leaf: c.Index()}
	if !c.Leaf() || c.Repeated() {
		return cr, errors.New("incompatible type: want a flat optional or required value")
	}
	typ := c.Type()
	cr.phys = typ.Kind()
	lt := typ.LogicalType()
	if lt != nil {
		if _, ok := lt.Value.(*format.NullType); ok {
			cr.kind = kindNull
			return cr, nil
		}
	}
	phys := typ.Kind()
	isInt := phys == parquet.Int32 || phys == parquet.Int64
	isFloat := phys == parquet.Double || phys == parquet.Float
	switch col.Type() {
	case codecs.TypeTimestamp:
		div, ok := timestampDivisor(typ)
		if !ok || phys != parquet.Int64 {
			return cr, fmt.Errorf("incompatible type %s: want INT64 TIMESTAMP", typ)
		}
		cr.kind, cr.tsDiv = kindTimestamp, div
	case codecs.TypeCode:
		switch {
		case isInt:
			cr.kind = kindCodeInt
		case isFloat:
			cr.kind = kindCodeFloat
		default:
			return cr, fmt.Errorf("incompatible type %s: want INT32, INT64 or DOUBLE", typ)
		}
	case codecs.TypeAmount:
		switch {
		case isFloat:
			cr.kind = kindAmountFloat
		case isInt && (lt == nil || lt.Value == nil || isIntLogical(lt)):
			cr.kind = kindAmountInt
		default:
			return cr, fmt.Errorf("incompatible type %s: want DOUBLE", typ)
		}
	case codecs.TypeString:
		if phys != parquet.ByteArray {
			return cr, fmt.Errorf("incompatible type %s: want BYTE_ARRAY STRING", typ)
		}
		cr.kind = kindString
	}
	return cr, nil
}

func isIntLogical(lt *format.LogicalType) bool {
	_, ok := lt.Value.(*format.IntType)
	return ok
}

// timestampDivisor returns how many stored units make one millisecond.
func timestampDivisor(typ parquet.Type) (int64, bool) {
	if lt := typ.LogicalType(); lt != nil {
		if ts, ok := lt.Value.(*format.TimestampType); ok {
			switch ts.Unit.Value.(type) {
			case *format.MilliSeconds:
				return 1, true
			case *format.MicroSeconds:
				return 1000, true
			case *format.NanoSeconds:
				return 1000_000, true
			}
			return 0, false
		}
	}
	if ct := typ.ConvertedType(); ct != nil {
		switch *ct {
		case deprecated.TimestampMillis:
			return 1, true
		case deprecated.TimestampMicros:
			return 1000, true
		}
	}
	return 0, false
}

// Name returns the file name given to OpenParquet.
func (r *Reader) Name() string { return r.name }

// Layout returns the layout of the file's trips.
func (r *Reader) Layout() codecs.Layout { return r.layout }

// NumRows returns the number of rows in the file.
func (r *Reader) NumRows() int64 { return r.numRows }

// Pos returns the number of rows returned so far.
func (r *Reader) Pos() int64 { return r.pos }

// Ignored lists the file's top-level columns that are not TLC trip columns.
func (r *Reader) Ignored() []string { return r.ignored }

// Next fills dst with the next trips in file order (at most len(dst), never across a row
// group) and returns how many; 0, io.EOF at the end. Errors name the file, column and row.
func (r *Reader) Next(dst []codecs.Trip) (n int, err error) {
	defer func() {
		if p := recover(); p != nil { // parquet-go can panic on corrupt pages
			n, err = 0, fmt.Errorf("tlc: %s: row %d: corrupt parquet data: %v", r.name, r.pos, p)
		}
	}()
	if len(dst) == 0 {
		return 0, nil
	}
	for r.pos >= r.rowGroupEnd {
		if r.rowGroup >= len(r.file.RowGroups()) {
			return 0, io.EOF
		}
		r.openRowGroup()
	}
	n = int(min(int64(len(dst)), r.rowGroupEnd-r.pos))
	batch := dst[:n]
	for i := range batch {
		batch[i] = codecs.Trip{Layout: r.layout}
	}
	for i := range r.cols {
		if err := r.cols[i].fill(batch, r.pos); err != nil {
			return 0, fmt.Errorf("tlc: %s: column %s: %w", r.name, r.cols[i].name, err)
		}
	}
	r.pos += int64(n)
	return n, nil
}

func (r *Reader) openRowGroup() {
	rg := r.file.RowGroups()[r.rowGroup]
	r.rowGroup++
	r.rowGroupEnd += rg.NumRows()
	chunks := rg.ColumnChunks()
	for i := range r.cols {
		c := &r.cols[i]
		if c.values != nil {
			c.values.Close()
		}
		c.values = parquet.NewColumnChunkValueReader(chunks[c.leaf])
		if c.buf == nil {
			c.buf = make([]parquet.Value, batchValues)
		}
	}
}

// fill reads len(batch) values of the column into batch (whose first row is row). Values are
// converted right after each read: parquet-go may release a page's memory (byte arrays) when
// the next read moves to another page.
func (c *columnReader) fill(batch []codecs.Trip, row int64) error {
	if c.kind == kindNull {
		// The NULL logical type has no values worth reading; the Trip fields are already null.
		// The chunk is still read so that a corrupt chunk is reported.
		return c.skip(len(batch), row)
	}
	for off := 0; off < len(batch); {
		want := min(len(batch)-off, len(c.buf))
		got, err := c.values.ReadValues(c.buf[:want])
		if got == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return fmt.Errorf("row %d: column chunk ends early (corrupt file)", row+int64(off))
			}
			return fmt.Errorf("row %d: %w", row+int64(off), err)
		}
		if err := c.convert(batch[off:off+got], c.buf[:got], row+int64(off)); err != nil {
			return err
		}
		off += got
	}
	return nil
}

func (c *columnReader) skip(n int, row int64) error {
	for off := 0; off < n; {
		got, err := c.values.ReadValues(c.buf[:min(n-off, len(c.buf))])
		if got == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return fmt.Errorf("row %d: column chunk ends early (corrupt file)", row+int64(off))
			}
			return fmt.Errorf("row %d: %w", row+int64(off), err)
		}
		for _, v := range c.buf[:got] {
			if !v.IsNull() {
				return fmt.Errorf("row %d: value in a column of the NULL logical type", row+int64(off))
			}
		}
		off += got
	}
	return nil
}

// convert writes values into trips (same length). It is the per-value inner loop: one switch per
// column per batch, then a tight loop.
func (c *columnReader) convert(trips []codecs.Trip, values []parquet.Value, row int64) error {
	switch c.kind {
	case kindTimestamp:
		for i, v := range values {
			if !v.IsNull() {
				*trips[i].IntField(c.col) = codecs.Int(floorDiv(v.Int64(), c.tsDiv))
			}
		}
	case kindCodeInt:
		for i, v := range values {
			if !v.IsNull() {
				*trips[i].IntField(c.col) = codecs.Int(intOf(v))
			}
		}
	case kindCodeFloat:
		for i, v := range values {
			if v.IsNull() {
				continue
			}
			f := floatOf(v)
			if math.IsNaN(f) {
				continue // pandas' null
			}
			if f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
				return fmt.Errorf("row %d: value %v is not an integer code", row+int64(i), f)
			}
			*trips[i].IntField(c.col) = codecs.Int(int64(f))
		}
	case kindAmountFloat:
		for i, v := range values {
			if !v.IsNull() {
				if f := floatOf(v); !math.IsNaN(f) && !math.IsInf(f, 0) {
					*trips[i].FloatField(c.col) = codecs.Float(f)
				}
			}
		}
	case kindAmountInt:
		for i, v := range values {
			if !v.IsNull() {
				*trips[i].FloatField(c.col) = codecs.Float(float64(intOf(v)))
			}
		}
	case kindString:
		for i, v := range values {
			if !v.IsNull() {
				trips[i].StoreAndFwdFlag = codecs.String(internFlag(v.ByteArray()))
			}
		}
	}
	return nil
}

func intOf(v parquet.Value) int64 {
	if v.Kind() == parquet.Int32 {
		return int64(v.Int32())
	}
	return v.Int64()
}

func floatOf(v parquet.Value) float64 {
	if v.Kind() == parquet.Float {
		return float64(v.Float())
	}
	return v.Double()
}

// floorDiv divides rounding toward negative infinity (timestamps before 1970 floor too).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// internFlag returns the store_and_fwd_flag as a string without allocating for the only values
// TLC uses.
func internFlag(b []byte) string {
	switch string(b) {
	case "N":
		return "N"
	case "Y":
		return "Y"
	}
	return string(b)
}

// Close releases the column readers. It does not close the io.ReaderAt.
func (r *Reader) Close() error {
	var errs []error
	for i := range r.cols {
		if r.cols[i].values != nil {
			errs = append(errs, r.cols[i].values.Close())
			r.cols[i].values = nil
		}
	}
	return errors.Join(errs...)
}
