package tlc

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/taxi-stream/taxi-stream/codecs"
)

// CSVReader reads a TLC trip CSV: a header line of column names, one trip per line (CRLF or
// LF), empty fields for nulls, timestamps as "YYYY-MM-DD HH:MM:SS" (wall clock), numbers as
// written by TLC (".01", "8", "0.3"). Integer codes are written as integers in these files, so
// the layout marks no column DOUBLE: codes become JSON integers. It is not safe for concurrent
// use.
type CSVReader struct {
	name    string
	csv     *csv.Reader
	closer  io.Closer // the gzip reader, if any
	layout  codecs.Layout
	fields  []codecs.Column // per CSV field: its column, or ignoredField
	ignored []string
	pos     int64
	done    bool
}

const ignoredField codecs.Column = codecs.NumColumns

// OpenCSV reads the header of a TLC CSV from r (gzip-compressed input is detected by its
// magic bytes) and checks it like OpenParquet checks a schema. name is used in errors.
func OpenCSV(name string, r io.Reader) (*CSVReader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	cr := &CSVReader{name: name}
	var in io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("tlc: %s: bad gzip header: %w", name, err)
		}
		in, cr.closer = gz, gz
	}
	cr.csv = csv.NewReader(in)
	cr.csv.ReuseRecord = true
	cr.csv.FieldsPerRecord = -1 // checked in Next with a message that names the line
	header, err := cr.csv.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("tlc: %s: empty CSV, want a header line", name)
	}
	if err != nil {
		return nil, fmt.Errorf("tlc: %s: header: %w", name, err)
	}
	if err := cr.bindHeader(header); err != nil {
		return nil, err
	}
	return cr, nil
}

func (r *CSVReader) bindHeader(header []string) error {
	flavorSet := false
	r.fields = make([]codecs.Column, len(header))
	for i, h := range header {
		h = strings.TrimPrefix(h, "\ufeff")
		col, flavor, implies, ok := codecs.LookupColumn(h)
		if !ok {
			r.fields[i] = ignoredField
			r.ignored = append(r.ignored, h)
			continue
		}
		if implies {
			if flavorSet && flavor != r.layout.Flavor {
				return fmt.Errorf("tlc: %s: column %s: mixes lpep_ and tpep_ timestamp columns", r.name, h)
			}
			flavorSet, r.layout.Flavor = true, flavor
		}
		if r.layout.Present.Has(col) {
			return fmt.Errorf("tlc: %s: column %s: duplicate column", r.name, h)
		}
		if col == codecs.ColAirportFee && h == "Airport_fee" {
			r.layout.AirportFeeCapital = true
		}
		r.layout.Present = r.layout.Present.With(col)
		r.fields[i] = col
	}
	for _, col := range RequiredColumns {
		if !r.layout.Present.Has(col) {
			return fmt.Errorf("tlc: %s: missing required column %s", r.name, r.layout.Name(col))
		}
	}
	return nil
}

// Name returns the name given to OpenCSV.
func (r *CSVReader) Name() string { return r.name }

// Layout returns the layout of the file's trips.
func (r *CSVReader) Layout() codecs.Layout { return r.layout }

// Pos returns the number of rows returned so far.
func (r *CSVReader) Pos() int64 { return r.pos }

// Ignored lists the header's names that are not TLC trip columns.
func (r *CSVReader) Ignored() []string { return r.ignored }

// Next fills dst with the next trips; 0, io.EOF at the end. Errors name the file, line and
// column.
func (r *CSVReader) Next(dst []codecs.Trip) (int, error) {
	n := 0
	for n < len(dst) && !r.done {
		rec, err := r.csv.Read()
		if errors.Is(err, io.EOF) {
			r.done = true
			break
		}
		if err != nil {
			return 0, fmt.Errorf("tlc: %s: %w", r.name, err) // csv.ParseError names the line
		}
		line, _ := r.csv.FieldPos(0)
		if len(rec) != len(r.fields) {
			return 0, fmt.Errorf("tlc: %s: line %d: %d fields, want %d", r.name, line, len(rec), len(r.fields))
		}
		t := &dst[n]
		*t = codecs.Trip{Layout: r.layout}
		for i, s := range rec {
			col := r.fields[i]
			if col == ignoredField || s == "" {
				continue
			}
			if err := setCSVField(t, col, s); err != nil {
				return 0, fmt.Errorf("tlc: %s: line %d: column %s: %q: %w", r.name, line, r.layout.Name(col), s, err)
			}
		}
		n++
	}
	r.pos += int64(n)
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func setCSVField(t *codecs.Trip, col codecs.Column, s string) error {
	switch col.Type() {
	case codecs.TypeString:
		t.StoreAndFwdFlag = codecs.String(internFlag([]byte(s)))
	case codecs.TypeTimestamp:
		ms, ok := parseWallClock(s)
		if !ok {
			return errors.New("bad timestamp, want YYYY-MM-DD HH:MM:SS")
		}
		*t.IntField(col) = codecs.Int(ms)
	case codecs.TypeCode:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
				return errors.New("not an integer code")
			}
			v = int64(f)
		}
		*t.IntField(col) = codecs.Int(v)
	case codecs.TypeAmount:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return errors.New("not a finite number")
		}
		*t.FloatField(col) = codecs.Float(f)
	}
	return nil
}

// parseWallClock parses "YYYY-MM-DD HH:MM:SS" (optionally with a fraction of a second, which
// is floored to ms) as UTC epoch milliseconds.
func parseWallClock(s string) (int64, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	num := func(a, b int) (int64, bool) {
		var v int64
		for i := a; i < b; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int64(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 7)
	d, ok3 := num(8, 10)
	h, ok4 := num(11, 13)
	mi, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || sec > 59 {
		return 0, false
	}
	var ms int64
	if len(s) > 19 {
		if s[19] != '.' || len(s) == 20 {
			return 0, false
		}
		frac := s[20:]
		for i := 0; i < len(frac); i++ {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			if i < 3 {
				ms = ms*10 + int64(c-'0')
			}
		}
		for i := len(frac); i < 3; i++ {
			ms *= 10
		}
	}
	days := daysFromCivil(y, mo, d)
	return ((days*24+h)*60+mi)*60_000 + sec*1000 + ms, true
}

func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian date (Howard
// Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// Close closes the gzip reader, if any. It does not close the underlying reader.
func (r *CSVReader) Close() error {
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}
