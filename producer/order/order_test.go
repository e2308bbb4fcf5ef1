package order_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/order"
	"github.com/taxi-stream/taxi-stream/producer/tlc"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

// fakeSource serves trips from memory; failAt >= 0 makes Next fail once that many rows were read.
type fakeSource struct {
	name   string
	layout codecs.Layout
	trips  []codecs.Trip
	pos    int
	failAt int
	closed *int
}

func (f *fakeSource) Name() string          { return f.name }
func (f *fakeSource) Layout() codecs.Layout { return f.layout }
func (f *fakeSource) Pos() int64            { return int64(f.pos) }
func (f *fakeSource) Close() error          { *f.closed++; return nil }
func (f *fakeSource) Next(dst []codecs.Trip) (int, error) {
	if f.failAt >= 0 && f.pos >= f.failAt {
		return 0, fmt.Errorf("%s: broken at row %d", f.name, f.pos)
	}
	if f.pos >= len(f.trips) {
		return 0, io.EOF
	}
	n := copy(dst, f.trips[f.pos:])
	if f.failAt >= 0 {
		n = min(n, f.failAt-f.pos)
	}
	f.pos += n
	return n, nil
}

// fakeInputs builds files of random trips with many equal dropoff times and some nulls.
func fakeInputs(rng *rand.Rand, files, rows int, closed *int) ([]order.Input, [][]codecs.Trip) {
	var inputs []order.Input
	var all [][]codecs.Trip
	layouts := []codecs.Layout{codecs.GreenLayoutA, codecs.GreenLayoutB, codecs.GreenLayoutC}
	for fi := range files {
		l := layouts[fi%len(layouts)]
		trips := make([]codecs.Trip, rows+fi)
		for i := range trips {
			t := codecs.Trip{Layout: l, PULocationID: codecs.Int(rng.Int64N(265) + 1),
				Pickup: codecs.Int(rng.Int64N(1000)), FareAmount: codecs.Float(rng.NormFloat64()),
				StoreAndFwdFlag: codecs.String([]string{"N", "Y", "other"}[rng.IntN(3)])}
			if rng.IntN(10) > 0 {
				t.Dropoff = codecs.Int(rng.Int64N(50) - 25) // ties, negatives
			}
			if rng.IntN(3) == 0 {
				t.PassengerCount = codecs.Int(rng.Int64N(7))
			}
			trips[i] = t
		}
		all = append(all, trips)
		name := fmt.Sprintf("fake-%d", fi)
		inputs = append(inputs, order.Input{Name: name, Open: func() (tlc.Source, error) {
			return &fakeSource{name: name, layout: l, trips: trips, failAt: -1, closed: closed}, nil
		}})
	}
	return inputs, all
}

func readAll(t testing.TB, it order.Iterator, batch int) []order.Row {
	t.Helper()
	var out []order.Row
	buf := make([]order.Row, batch)
	for {
		n, err := it.Next(buf)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:n]...)
	}
}

func dropoffKey(r order.Row) (int64, bool) { return r.Trip.Dropoff.V, r.Trip.Dropoff.Valid }

// checkSortedComplete checks the total order and that every (file,row) appears once with the
// original trip.
func checkSortedComplete(t *testing.T, got []order.Row, files [][]codecs.Trip) {
	t.Helper()
	total := 0
	for _, f := range files {
		total += len(f)
	}
	if len(got) != total {
		t.Fatalf("%d rows, want %d", len(got), total)
	}
	seen := make([][]bool, len(files))
	for i := range files {
		seen[i] = make([]bool, len(files[i]))
	}
	for i, r := range got {
		if seen[r.File][r.Row] {
			t.Fatalf("row %d: (%d,%d) twice", i, r.File, r.Row)
		}
		seen[r.File][r.Row] = true
		if r.Trip != files[r.File][r.Row] {
			t.Fatalf("row %d: (%d,%d) trip changed:\n%+v\n%+v", i, r.File, r.Row, r.Trip, files[r.File][r.Row])
		}
		if i == 0 {
			continue
		}
		p := got[i-1]
		pt, pv := dropoffKey(p)
		ct, cv := dropoffKey(r)
		var ordered bool
		switch {
		case pv != cv:
			ordered = !pv // nulls first
		case pv && pt != ct:
			ordered = pt < ct
		case p.File != r.File:
			ordered = p.File < r.File
		default:
			ordered = p.Row < r.Row
		}
		if !ordered {
			t.Fatalf("rows %d,%d out of order: %+v then %+v", i-1, i, p, r)
		}
	}
}

func TestSortedSyntheticAcrossRunSizes(t *testing.T) {
	var closed int
	const files, rows = 5, 600
	total := files*rows + files*(files-1)/2
	inputs, data := fakeInputs(rand.New(rand.NewPCG(7, 8)), files, rows, &closed)
	var first []order.Row
	for _, tc := range []struct{ runRows, width int }{
		{1_000_000, 0}, {13, 3}, {100, 4}, {100, 64}, {1000, 2}, {total, 2}, {total - 1, 2},
	} {
		closed = 0
		dir := t.TempDir()
		s, err := order.Sorted(context.Background(), inputs, order.Config{MaxRunRows: tc.runRows, MaxMergeWidth: tc.width, TempDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if closed != len(inputs) {
			t.Errorf("%+v: %d sources closed, want %d", tc, closed, len(inputs))
		}
		if wantRuns := (total - 1) / tc.runRows; s.Runs() != wantRuns {
			t.Errorf("%+v: %d spilled runs, want %d", tc, s.Runs(), wantRuns)
		}
		// Tiered merging: fewer than width runs per level remain.
		w := tc.width
		if w == 0 {
			w = 64 // the default
		}
		if s.OpenRuns() > (w-1)*levels(s.Runs(), w) {
			t.Errorf("%+v: %d runs left for the final merge", tc, s.OpenRuns())
		}
		got := readAll(t, s, 333)
		checkSortedComplete(t, got, data)
		if first == nil {
			first = got
		} else {
			for i := range got {
				if got[i] != first[i] {
					t.Fatalf("%+v: row %d differs from the in-memory sort", tc, i)
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%+v: temp dir not clean after Close: %v", tc, left)
		}
	}
}

// levels is the number of merge levels for runs spilled runs of width w (at least 1).
func levels(runs, w int) int {
	l := 1
	for runs >= w {
		runs /= w
		l++
	}
	return l
}

func TestSortedCleansUpOnError(t *testing.T) {
	var closed int
	inputs, _ := fakeInputs(rand.New(rand.NewPCG(9, 10)), 3, 2000, &closed)
	// The third input fails half-way, after several runs were spilled.
	good := inputs[2]
	inputs[2] = order.Input{Name: "broken", Open: func() (tlc.Source, error) {
		src, _ := good.Open()
		src.(*fakeSource).failAt = 1000
		return src, nil
	}}
	dir := t.TempDir()
	_, err := order.Sorted(context.Background(), inputs, order.Config{MaxRunRows: 500, TempDir: dir})
	if err == nil || !errors.Is(err, err) || !contains(err.Error(), "broken at row 1000") {
		t.Fatalf("error %v, want the source's error", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temp dir not clean after error: %v", left)
	}
	if closed != 3 {
		t.Errorf("%d sources closed, want 3", closed)
	}

	inputs[2] = order.Input{Name: "unopenable", Open: func() (tlc.Source, error) { return nil, errors.New("no such file") }}
	_, err = order.Sorted(context.Background(), inputs, order.Config{MaxRunRows: 500, TempDir: dir})
	if err == nil || !contains(err.Error(), "open unopenable: no such file") {
		t.Fatalf("error %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temp dir not clean after open error: %v", left)
	}

	// A spill fails in the spill goroutine (its temp dir cannot be made): the sort stops
	// with that error at the next spill, inside the first input, which is closed.
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	closed = 0
	_, err = order.Sorted(context.Background(), inputs[:2], order.Config{MaxRunRows: 500, TempDir: notADir})
	if err == nil || !contains(err.Error(), "order: spill directory") {
		t.Fatalf("spill into a file: error %v, want the spill's error", err)
	}
	if closed != 1 {
		t.Errorf("%d sources closed after a failed spill, want 1", closed)
	}
	os.Remove(notADir)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := order.Sorted(ctx, inputs[:2], order.Config{MaxRunRows: 500, TempDir: dir}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: error %v", err)
	}
	if _, err := order.Sorted(context.Background(), nil, order.Config{MaxRunRows: -1}); err == nil {
		t.Fatal("MaxRunRows -1 accepted")
	}
	if _, err := order.Sorted(context.Background(), nil, order.Config{Key: codecs.ColFareAmount}); err == nil {
		t.Fatal("non-timestamp key accepted")
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestSortedByPickupKey(t *testing.T) {
	var closed int
	inputs, files := fakeInputs(rand.New(rand.NewPCG(11, 12)), 2, 500, &closed)
	s, err := order.Sorted(context.Background(), inputs, order.Config{MaxRunRows: 100, TempDir: t.TempDir(), Key: codecs.ColPickup})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := readAll(t, s, 64)
	if len(got) != len(files[0])+len(files[1]) {
		t.Fatalf("%d rows", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Trip.Pickup.V > got[i].Trip.Pickup.V {
			t.Fatalf("rows %d,%d not in pickup order", i-1, i)
		}
	}
}

func TestInFileOrder(t *testing.T) {
	var closed int
	inputs, files := fakeInputs(rand.New(rand.NewPCG(13, 14)), 3, 100, &closed)
	it := order.InFileOrder(context.Background(), inputs)
	got := readAll(t, it, 37)
	i := 0
	for fi, f := range files {
		for ri, tr := range f {
			if got[i].File != fi || got[i].Row != int64(ri) || got[i].Trip != tr {
				t.Fatalf("row %d: %+v, want file %d row %d", i, got[i], fi, ri)
			}
			i++
		}
	}
	if i != len(got) || closed != 3 {
		t.Fatalf("%d rows, want %d; %d closed", len(got), i, closed)
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := it.Next(make([]order.Row, 1)); err == nil {
		t.Fatal("Next after Close succeeded")
	}
}

func realInputs(t testing.TB) []order.Input {
	var in []order.Input
	for _, f := range tlctest.ParquetFiles {
		in = append(in, order.FileInput(tlctest.Path(t, f.Name)))
	}
	return append(in, order.FileInput(tlctest.Path(t, tlctest.CSVFile)))
}

func TestSortedRealFiles(t *testing.T) {
	inputs := realInputs(t)
	var files [][]codecs.Trip
	for _, in := range inputs {
		src, err := in.Open()
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, tlctest.ReadAll(t, src))
		src.Close()
	}
	total := 0
	for _, f := range files {
		total += len(f)
	}
	if total != 83130+68211+56551+48326+35612 {
		t.Fatalf("real files: %d rows", total)
	}
	var first []order.Row
	for _, runRows := range []int{1000, 1_000_000} {
		dir := t.TempDir()
		s, err := order.Sorted(context.Background(), inputs, order.Config{MaxRunRows: runRows, TempDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, s, 4096)
		checkSortedComplete(t, got, files)
		t.Logf("MaxRunRows %d: %d runs spilled", runRows, s.Runs())
		if first == nil {
			first = got
		} else {
			for i := range got {
				if got[i] != first[i] {
					t.Fatalf("MaxRunRows %d: row %d differs", runRows, i)
				}
			}
		}
		s.Close()
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("temp dir not clean: %v", left)
		}
	}
}

func BenchmarkSortedRealFiles(b *testing.B) {
	inputs := realInputs(b)
	for _, runRows := range []int{1 << 14, 1 << 20} {
		b.Run(fmt.Sprintf("MaxRunRows=%d", runRows), func(b *testing.B) {
			dir := b.TempDir()
			buf := make([]order.Row, 4096)
			rows := 0
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				s, err := order.Sorted(context.Background(), inputs, order.Config{MaxRunRows: runRows, TempDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				for {
					n, err := s.Next(buf)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					rows += n
				}
				s.Close()
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func TestSortedOneRowRuns(t *testing.T) {
	var closed int
	inputs, data := fakeInputs(rand.New(rand.NewPCG(15, 16)), 2, 40, &closed)
	s, err := order.Sorted(context.Background(), inputs, order.Config{MaxRunRows: 1, MaxMergeWidth: 2, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Runs() != 80 || s.OpenRuns() > 7 {
		t.Errorf("Runs %d (want 80), OpenRuns %d (want <= 7)", s.Runs(), s.OpenRuns())
	}
	checkSortedComplete(t, readAll(t, s, 5), data)
}
