package synth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
)

// parquetRow declares Schema C of SOURCES.md (green_tripdata_2025-01, parquet-cpp-arrow 16.1.0):
// the same column names, order, physical and logical types, every column optional (a pointer,
// nil = null). Schema derives the file schema from it, and files read back into it. Low-
// cardinality columns are dictionary-encoded, as arrow does; timestamps, distance, tip and total
// stay PLAIN because their dictionaries would be large. The writer does not use this struct for
// the values (see columnValues).
type parquetRow struct {
	VendorID             *int32   `parquet:"VendorID,optional,dict"`
	PickupDatetime       *int64   `parquet:"lpep_pickup_datetime,optional,timestamp(microsecond:local)"`
	DropoffDatetime      *int64   `parquet:"lpep_dropoff_datetime,optional,timestamp(microsecond:local)"`
	StoreAndFwdFlag      *string  `parquet:"store_and_fwd_flag,optional,dict"`
	RatecodeID           *int64   `parquet:"RatecodeID,optional,dict"`
	PULocationID         *int32   `parquet:"PULocationID,optional,dict"`
	DOLocationID         *int32   `parquet:"DOLocationID,optional,dict"`
	PassengerCount       *int64   `parquet:"passenger_count,optional,dict"`
	TripDistance         *float64 `parquet:"trip_distance,optional"`
	FareAmount           *float64 `parquet:"fare_amount,optional,dict"`
	Extra                *float64 `parquet:"extra,optional,dict"`
	MTATax               *float64 `parquet:"mta_tax,optional,dict"`
	TipAmount            *float64 `parquet:"tip_amount,optional"`
	TollsAmount          *float64 `parquet:"tolls_amount,optional,dict"`
	EhailFee             *float64 `parquet:"ehail_fee,optional"`
	ImprovementSurcharge *float64 `parquet:"improvement_surcharge,optional,dict"`
	TotalAmount          *float64 `parquet:"total_amount,optional"`
	PaymentType          *int64   `parquet:"payment_type,optional,dict"`
	TripType             *int64   `parquet:"trip_type,optional,dict"`
	CongestionSurcharge  *float64 `parquet:"congestion_surcharge,optional,dict"`
	CBDCongestionFee     *float64 `parquet:"cbd_congestion_fee,optional,dict"`
}

// Schema returns the Parquet schema of the generated files: parquetRow's columns in order, root
// named "schema" like arrow's, and the integer columns without logical/converted annotation.
//
// Why the unannotated integers: parquet-go annotates Go int32/int64 fields as INT(32,true) /
// INT(64,true) (converted type INT_32/INT_64), while arrow, and so TLC's files, write signed
// 32/64-bit integers as bare INT32/INT64. Readers treat both the same; the footer then matches
// the real file exactly (TestSchemaMatchesRealFile).
func Schema() *parquet.Schema {
	root := parquet.SchemaOf(parquetRow{})
	fields := root.Fields()
	plain := make([]parquet.Field, len(fields))
	for i, f := range fields {
		plain[i] = f
		switch f.Type().Kind() {
		case parquet.Int32, parquet.Int64:
			if lt := f.Type().LogicalType(); lt != nil && lt.Value != nil {
				if _, isInt := lt.Value.(*format.IntType); isInt {
					plain[i] = unannotatedField{f}
				}
			}
		}
	}
	return parquet.NewSchema("schema", groupNode{Node: root, fields: plain})
}

// groupNode is a group with the given fields in order (parquet.Group would sort them by name).
type groupNode struct {
	parquet.Node
	fields []parquet.Field
}

func (g groupNode) Fields() []parquet.Field { return g.fields }

// unannotatedField is a field whose type has no logical and no converted type annotation.
type unannotatedField struct{ parquet.Field }

func (f unannotatedField) Type() parquet.Type { return unannotatedType{f.Field.Type()} }

type unannotatedType struct{ parquet.Type }

func (unannotatedType) LogicalType() *format.LogicalType         { return nil }
func (unannotatedType) ConvertedType() *deprecated.ConvertedType { return nil }

// CreatedBy is the created_by string of the file footer, in the "<application> version
// <version>" form of the Parquet spec. It is fixed (no build hash, unlike parquet-go's default)
// so that files are byte-identical across builds; bump the version when the generated content
// changes for the same Config.
const CreatedBy = "taxi-stream-synth version 1.0.0"

// createdBy sets WriterConfig.CreatedBy verbatim (parquet.CreatedBy always appends a
// "(build ...)" part).
type createdBy string

func (c createdBy) ConfigureWriter(cfg *parquet.WriterConfig) { cfg.CreatedBy = string(c) }

// Stats describes a written file.
type Stats struct {
	Rows     int64 // rows written
	Bytes    int64 // file size
	Outliers int64 // rows with displaced timestamps
	NullRows int64 // rows of the null block
}

// WriteOption tunes WriteParquet without changing the file's content.
type WriteOption func(*writeOptions)

type writeOptions struct {
	progressEvery int64
	progress      func(rows int64)
}

// WithProgress calls fn with the number of rows written so far after about every `every` rows
// (at batch granularity) and once at the end.
func WithProgress(every int64, fn func(rows int64)) WriteOption {
	return func(o *writeOptions) { o.progressEvery, o.progress = every, fn }
}

// Column indexes in schema order (see parquetRow; TestColumnOrder checks them).
const (
	colVendorID = iota
	colPickup
	colDropoff
	colStoreAndFwd
	colRatecodeID
	colPULocationID
	colDOLocationID
	colPassengerCount
	colTripDistance
	colFareAmount
	colExtra
	colMTATax
	colTipAmount
	colTollsAmount
	colEhailFee
	colImprovement
	colTotalAmount
	colPaymentType
	colTripType
	colCongestion
	colCBD
	numColumns
)

func dollars(cents int64) parquet.Value { return parquet.DoubleValue(float64(cents) / 100) }

// columnValues appends column col of rides to vals: the value, or a null Value{} where the
// column is null, then sets every value's levels.
//
// Hot path: the file is written column by column through parquet-go's ColumnWriter.WriteRowValues
// because the row path (GenericWriter.Write of a struct with pointer fields for the optional
// columns) writes pointer fields one value at a time and was several times slower, and
// non-pointer optional fields would turn every 0 (a legitimate fare component) into null. The
// levels are set in place with SetDefinitionLevel/SetColumnIndex, which inline, unlike Level.
func columnValues(vals []parquet.Value, col int, rides []Ride, yes, no []byte) []parquet.Value {
	base := len(vals)
	switch col {
	case colVendorID:
		for i := range rides {
			vals = append(vals, parquet.Int32Value(rides[i].VendorID))
		}
	case colPickup:
		for i := range rides {
			vals = append(vals, parquet.Int64Value(rides[i].PickupMicros))
		}
	case colDropoff:
		for i := range rides {
			vals = append(vals, parquet.Int64Value(rides[i].DropoffMicros))
		}
	case colStoreAndFwd:
		for i := range rides {
			var v parquet.Value
			switch {
			case rides[i].NullBlock:
			case rides[i].StoreAndFwd:
				v = parquet.ByteArrayValue(yes)
			default:
				v = parquet.ByteArrayValue(no)
			}
			vals = append(vals, v)
		}
	case colRatecodeID:
		for i := range rides {
			vals = append(vals, nullBlockInt64(&rides[i], rides[i].RatecodeID))
		}
	case colPULocationID:
		for i := range rides {
			vals = append(vals, parquet.Int32Value(rides[i].PULocationID))
		}
	case colDOLocationID:
		for i := range rides {
			vals = append(vals, parquet.Int32Value(rides[i].DOLocationID))
		}
	case colPassengerCount:
		for i := range rides {
			vals = append(vals, nullBlockInt64(&rides[i], rides[i].PassengerCount))
		}
	case colTripDistance:
		for i := range rides {
			vals = append(vals, parquet.DoubleValue(float64(rides[i].DistanceHundredths)/100))
		}
	case colFareAmount:
		for i := range rides {
			vals = append(vals, dollars(rides[i].FareCents))
		}
	case colExtra:
		for i := range rides {
			vals = append(vals, dollars(rides[i].ExtraCents))
		}
	case colMTATax:
		for i := range rides {
			vals = append(vals, dollars(rides[i].MTATaxCents))
		}
	case colTipAmount:
		for i := range rides {
			vals = append(vals, dollars(rides[i].TipCents))
		}
	case colTollsAmount:
		for i := range rides {
			vals = append(vals, dollars(rides[i].TollsCents))
		}
	case colEhailFee:
		for range rides {
			vals = append(vals, parquet.Value{})
		}
	case colImprovement:
		for i := range rides {
			vals = append(vals, dollars(rides[i].ImprovementCents))
		}
	case colTotalAmount:
		for i := range rides {
			vals = append(vals, dollars(rides[i].TotalCents))
		}
	case colPaymentType:
		for i := range rides {
			vals = append(vals, nullBlockInt64(&rides[i], rides[i].PaymentType))
		}
	case colTripType:
		for i := range rides {
			var v parquet.Value
			if r := &rides[i]; !r.NullBlock && !r.TripTypeNull {
				v = parquet.Int64Value(r.TripType)
			}
			vals = append(vals, v)
		}
	case colCongestion:
		for i := range rides {
			vals = append(vals, nullBlockDollars(&rides[i], rides[i].CongestionCents))
		}
	case colCBD:
		for i := range rides {
			vals = append(vals, nullBlockDollars(&rides[i], rides[i].CBDCents))
		}
	}
	for i := base; i < len(vals); i++ {
		v := &vals[i]
		if !v.IsNull() {
			v.SetDefinitionLevel(1)
		}
		v.SetColumnIndex(col)
	}
	return vals
}

// nullBlockInt64 is v, or null in a null-block row.
func nullBlockInt64(r *Ride, v int64) parquet.Value {
	if r.NullBlock {
		return parquet.Value{}
	}
	return parquet.Int64Value(v)
}

// nullBlockDollars is cents as dollars, or null in a null-block row.
func nullBlockDollars(r *Ride, cents int64) parquet.Value {
	if r.NullBlock {
		return parquet.Value{}
	}
	return dollars(cents)
}

func (c Compression) codec() compress.Codec {
	switch c {
	case CompressionSnappy:
		return &snappy.Codec{}
	case CompressionNone:
		return &uncompressed.Codec{}
	default:
		return &zstd.Codec{Level: zstd.SpeedFastest}
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteParquet writes the generated rows as one Parquet file to w.
//
// Generation and encoding overlap: one goroutine generates batches, and the columns of each
// batch are encoded and compressed by up to GOMAXPROCS workers that take columns one at a time
// (parquet-go's column writers are independent until the row group is flushed, so the bytes
// do not depend on the number of workers).
func (g *Generator) WriteParquet(ctx context.Context, w io.Writer, opts ...WriteOption) (Stats, error) {
	var o writeOptions
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	cw := &countingWriter{w: w}
	pw := parquet.NewGenericWriter[any](cw,
		Schema(),
		parquet.Compression(g.cfg.Compression.codec()),
		createdBy(CreatedBy),
	)
	enc, err := newColumnEncoder(pw, runtime.GOMAXPROCS(0))
	if err != nil {
		return Stats{}, err
	}

	// Generator goroutine: copies each batch into a recycled buffer and hands it over.
	batches := make(chan []Ride, 2)
	free := make(chan []Ride, 3)
	genErr := make(chan error, 1)
	go func() {
		defer close(batches)
		genErr <- g.Generate(ctx, func(b []Ride) error {
			var buf []Ride
			select {
			case buf = <-free:
			default:
			}
			buf = append(buf[:0], b...)
			select {
			case batches <- buf:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()

	var st Stats
	var inGroup int64 // rows in the current row group
	nextProgress := o.progressEvery
	writeBatch := func(batch []Ride) error {
		for len(batch) > 0 {
			n := min(int64(len(batch)), int64(g.cfg.RowGroupRows)-inGroup)
			if err := enc.write(batch[:n], st.Rows); err != nil {
				return err
			}
			st.count(batch[:n])
			inGroup += n
			batch = batch[n:]
			if inGroup == int64(g.cfg.RowGroupRows) {
				if err := pw.Flush(); err != nil {
					return fmt.Errorf("synth: flushing the row group ending at row %d: %w", st.Rows, err)
				}
				inGroup = 0
			}
		}
		if o.progress != nil && st.Rows >= nextProgress {
			o.progress(st.Rows)
			nextProgress = st.Rows + o.progressEvery
		}
		return nil
	}
	var writeErr error
	for batch := range batches {
		if writeErr == nil {
			if writeErr = writeBatch(batch); writeErr != nil {
				cancel() // stop the generator; keep draining until it closes batches
			}
		}
		select {
		case free <- batch:
		default:
		}
	}
	if writeErr != nil {
		return st, writeErr
	}
	if err := <-genErr; err != nil {
		return st, err
	}
	if err := pw.Close(); err != nil {
		return st, fmt.Errorf("synth: closing the Parquet writer: %w", err)
	}
	st.Bytes = cw.n
	if o.progress != nil {
		o.progress(st.Rows)
	}
	return st, nil
}

// count adds a written batch to the statistics.
func (st *Stats) count(batch []Ride) {
	st.Rows += int64(len(batch))
	for i := range batch {
		if batch[i].Outlier != OutlierNone {
			st.Outliers++
		}
		if batch[i].NullBlock {
			st.NullRows++
		}
	}
}

// columnEncoder writes batches column by column with parallel workers.
type columnEncoder struct {
	columns []*parquet.ColumnWriter
	names   []string
	vals    [][]parquet.Value // one scratch slice per worker
	yes, no []byte
}

func newColumnEncoder(pw *parquet.GenericWriter[any], workers int) (*columnEncoder, error) {
	columns := pw.ColumnWriters()
	if len(columns) != numColumns {
		return nil, fmt.Errorf("synth: schema has %d columns, want %d", len(columns), numColumns)
	}
	e := &columnEncoder{
		columns: columns,
		vals:    make([][]parquet.Value, max(1, min(workers, numColumns))),
		yes:     []byte("Y"),
		no:      []byte("N"),
	}
	for _, path := range pw.Schema().Columns() {
		e.names = append(e.names, path[0])
	}
	return e, nil
}

// write encodes rides (the file's rows first..first+len-1) into every column.
func (e *columnEncoder) write(rides []Ride, first int64) error {
	var next atomic.Int32
	errs := make([]error, numColumns)
	work := func(vals *[]parquet.Value) {
		for {
			col := int(next.Add(1) - 1)
			if col >= numColumns {
				return
			}
			*vals = columnValues((*vals)[:0], col, rides, e.yes, e.no)
			if _, err := e.columns[col].WriteRowValues(*vals); err != nil {
				errs[col] = fmt.Errorf("synth: writing column %s, rows %d..%d: %w",
					e.names[col], first, first+int64(len(rides))-1, err)
			}
		}
	}
	var wg sync.WaitGroup
	for i := 1; i < len(e.vals); i++ {
		wg.Go(func() { work(&e.vals[i]) })
	}
	work(&e.vals[0])
	wg.Wait()
	return errors.Join(errs...)
}

// WriteFile generates cfg into the Parquet file path (created or truncated). On error the
// partial file is removed.
func WriteFile(ctx context.Context, path string, cfg Config, opts ...WriteOption) (Stats, error) {
	g, err := New(cfg)
	if err != nil {
		return Stats{}, err
	}
	f, err := os.Create(path)
	if err != nil {
		return Stats{}, fmt.Errorf("synth: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	st, err := g.WriteParquet(ctx, bw, opts...)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return st, fmt.Errorf("synth: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return st, fmt.Errorf("synth: closing %s: %w", path, err)
	}
	return st, nil
}
