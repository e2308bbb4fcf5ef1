package watermark_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

var update = flag.Bool("update", false, "rewrite the real-file figures in README.md")

// realFiles are the green Parquet files with the facts from
// shared/data/SOURCES.md that this evaluation relies on.
var realFiles = []struct {
	name      string
	rows      int
	nullStart int // first row of the null passenger_count block
}{
	{"green_tripdata_2020-12.parquet", 83130, 46292},
	{"green_tripdata_2023-01.parquet", 68211, 63887},
	{"green_tripdata_2024-01.parquet", 56551, 53136},
	{"green_tripdata_2025-01.parquet", 48326, 46490},
}

// dataDir finds ../shared/data next to the module root, or skips (fails
// under CI) when it is missing.
func dataDir(t *testing.T) string { return tlctest.DataDir(t) }

// readColumn calls fn for every value of the named top-level column in file order.
func readColumn(path, column string, fn func(v parquet.Value)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return fmt.Errorf("open parquet %s: %w", path, err)
	}
	leaf, ok := pf.Schema().Lookup(column)
	if !ok {
		return fmt.Errorf("%s: no column %q", path, column)
	}
	buf := make([]parquet.Value, 1024)
	for g, rg := range pf.RowGroups() {
		r := parquet.NewColumnChunkValueReader(rg.ColumnChunks()[leaf.ColumnIndex])
		for {
			n, err := r.ReadValues(buf)
			for _, v := range buf[:n] {
				fn(v)
			}
			if err != nil {
				r.Close()
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("%s: column %s, row group %d: %w", path, column, g, err)
			}
		}
	}
	return nil
}

// tripFile is what the evaluation needs from one file, in file order.
type tripFile struct {
	dropoffMs     []int64
	nullPassenger []bool
	localOutlier  []bool // dropoff > 2 h from the median of the ±50 rows around it
}

func loadTripFile(t *testing.T, path string) tripFile {
	t.Helper()
	var tf tripFile
	err := readColumn(path, "lpep_dropoff_datetime", func(v parquet.Value) {
		if v.IsNull() {
			t.Fatalf("%s: null lpep_dropoff_datetime at row %d", path, len(tf.dropoffMs))
		}
		us := v.Int64() // TIMESTAMP(MICROS, isAdjustedToUTC=false)
		tf.dropoffMs = append(tf.dropoffMs, floorDiv(us, 1000))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := readColumn(path, "passenger_count", func(v parquet.Value) {
		tf.nullPassenger = append(tf.nullPassenger, v.IsNull())
	}); err != nil {
		t.Fatal(err)
	}
	n := len(tf.dropoffMs)
	tf.localOutlier = make([]bool, n)
	around := make([]int64, 0, 101)
	for i := range n {
		around = append(around[:0], tf.dropoffMs[max(0, i-50):min(n, i+51)]...)
		slices.Sort(around)
		med := around[len(around)/2]
		d := tf.dropoffMs[i] - med
		tf.localOutlier[i] = d > 2*hourMs || d < -2*hourMs
	}
	return tf
}

const hourMs = int64(time.Hour / time.Millisecond)

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// partitionOf is the partition of row i of file name among n partitions,
// keyed "<file>:<row>" as docs/design.md says and hashed like the
// FNV-1a "Hash" partitioners of sarama and kafka-go.
func partitionOf(name string, row, n int) int {
	if n == 1 {
		return 0
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%s:%d", name, row)
	p := int32(h.Sum32()) % int32(n)
	if p < 0 {
		p = -p
	}
	return int(p)
}

// outcome is one simulated replay of one file.
type outcome struct {
	rows, nullRows                  int
	lateNaive, lateRobust, lateMain int // lateMain: robust late outside the null block
	lateMarkers                     int
	// lag is, at every main-block row once every partition has a watermark,
	// the event-time frontier (running max of dropoffs that are not local
	// outliers, over all partitions) minus the stage watermark (min over
	// partitions): how far behind the data window results are emitted.
	lag     []int64
	firstWM int // row index at which every partition had a watermark
}

func pct(n, d int) string { return fmt.Sprintf("%.2f %%", 100*float64(n)/float64(d)) }

// simulate replays tf in file order over parts partitions and judges every
// ride with "late iff its hour window's end <= the partition watermark at
// arrival", for the naive rule, the robust estimator, and producer markers.
func simulate(name string, tf tripFile, nullStart, parts int, cfg watermark.Config) outcome {
	spec := window.Tumbling(time.Hour)
	o := outcome{rows: len(tf.dropoffMs), nullRows: len(tf.dropoffMs) - nullStart, firstWM: -1}
	trackers := make([]*watermark.Tracker, parts)
	marks := make([]watermark.Mark, parts)
	frontier := int64(-1 << 62)
	for p := range trackers {
		trackers[p] = watermark.MustNew(cfg)
	}
	// Marker mode: the producer runs the estimator with no delay over the
	// global send order and writes a marker after every 1000 rows; every
	// partition then holds marker − delay. The decision does not depend on
	// the number of partitions.
	producer := watermark.MustNew(watermark.Config{Quantile: cfg.Quantile, Window: cfg.Window})
	markerWM, markerOK := int64(0), false
	for i, ev := range tf.dropoffMs {
		p := partitionOf(name, i, parts)
		tr := trackers[p]
		end := spec.Earliest(ev).EndMs
		if wm, ok := tr.Naive(); ok && end <= wm {
			o.lateNaive++
		}
		wm, ok := tr.Watermark()
		if ok && end <= wm {
			o.lateRobust++
			if i < nullStart {
				o.lateMain++
			}
		}
		if markerOK && end <= markerWM-cfg.Delay.Milliseconds() {
			o.lateMarkers++
		}
		if !tf.localOutlier[i] {
			frontier = max(frontier, ev)
		}
		tr.ObserveEvent(ev)
		producer.ObserveEvent(ev)
		if (i+1)%1000 == 0 {
			markerWM, markerOK = producer.Watermark()
		}
		marks[p].Ms, marks[p].OK = tr.Watermark()
		stage, ok := watermark.Min(marks)
		if ok && o.firstWM < 0 {
			o.firstWM = i
		}
		if ok && i < nullStart {
			o.lag = append(o.lag, frontier-stage)
		}
	}
	slices.Sort(o.lag)
	return o
}

func quantileDur(sorted []int64, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return (time.Duration(sorted[int(q*float64(len(sorted)-1))]) * time.Millisecond).Round(time.Minute)
}

func fmtDur(d time.Duration) string {
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	if h == 0 {
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dh%02dm", h, m)
}

// TestRealFileOrder replays the real files in file order and measures the
// late fraction of the naive rule and of the robust estimator, and how far
// the robust watermark lags behind the event-time frontier. It checks the
// project's acceptance rule and keeps README.md's tables in sync (-short
// skips the tuning grid):
//
//	go test ./topology/watermark -run TestRealFileOrder -v [-update]
func TestRealFileOrder(t *testing.T) {
	dir := dataDir(t)
	files := make([]tripFile, len(realFiles))
	for i, f := range realFiles {
		tf := loadTripFile(t, filepath.Join(dir, f.name))
		if len(tf.dropoffMs) != f.rows || len(tf.nullPassenger) != f.rows {
			t.Fatalf("%s: read %d dropoffs and %d passenger counts, SOURCES.md says %d rows", f.name, len(tf.dropoffMs), len(tf.nullPassenger), f.rows)
		}
		// The null block is exactly the rows from nullStart on.
		for r, isNull := range tf.nullPassenger {
			if isNull != (r >= f.nullStart) {
				t.Fatalf("%s: row %d null passenger_count = %v, but the null block starts at %d", f.name, r, isNull, f.nullStart)
			}
		}
		files[i] = tf
	}

	var main, tuning bytes.Buffer
	fmt.Fprintln(&main, "| file | partitions | rows | null block | late, naive | late, robust | late, robust, main block only | late, markers | first watermark at row | lag median | lag p99 |")
	fmt.Fprintln(&main, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	def := watermark.DefaultConfig()
	for i, f := range realFiles {
		for _, parts := range []int{1, 3} {
			o := simulate(f.name, files[i], f.nullStart, parts, def)
			fmt.Fprintf(&main, "| %s | %d | %d | %d (%s) | %s | %s | %s | %s | %d | %s | %s |\n",
				strings.TrimSuffix(strings.TrimPrefix(f.name, "green_tripdata_"), ".parquet"), parts, o.rows,
				o.nullRows, pct(o.nullRows, o.rows), pct(o.lateNaive, o.rows), pct(o.lateRobust, o.rows),
				pct(o.lateMain, f.nullStart), pct(o.lateMarkers, o.rows), o.firstWM,
				fmtDur(quantileDur(o.lag, 0.5)), fmtDur(quantileDur(o.lag, 0.99)))
			// Acceptance: robust late fraction <= null-block fraction + 5 points.
			if late, limit := float64(o.lateRobust)/float64(o.rows), float64(o.nullRows)/float64(o.rows)+0.05; late > limit {
				t.Errorf("%s, %d partitions: robust rule marks %.2f %% late, more than null block + 5 points = %.2f %%", f.name, parts, 100*late, 100*limit)
			}
			if late, limit := float64(o.lateMarkers)/float64(o.rows), float64(o.nullRows)/float64(o.rows)+0.05; late > limit {
				t.Errorf("%s: marker rule marks %.2f %% late, more than null block + 5 points = %.2f %%", f.name, 100*late, 100*limit)
			}
			if f.name == "green_tripdata_2025-01.parquet" && parts == 1 && float64(o.lateNaive) <= 0.9*float64(o.rows) {
				t.Errorf("%s: naive rule marks %s late, SOURCES.md says > 90 %%", f.name, pct(o.lateNaive, o.rows))
			}
		}
	}

	t.Logf("default config %+v:\n%s", def, main.String())
	if testing.Short() {
		syncReadme(t, map[string]string{"realfile-default": main.String()})
		return
	}
	fmt.Fprint(&tuning, "| N | q |")
	for _, f := range realFiles {
		fmt.Fprintf(&tuning, " %s 1p | %s 3p |", f.name[15:22], f.name[15:22])
	}
	fmt.Fprint(&tuning, "\n| ---: | ---: |"+strings.Repeat(" ---: |", 2*len(realFiles))+"\n")
	for _, n := range []int{64, 128, 256, 512, 1024} {
		for _, q := range []float64{0.01, 0.05, 0.1} {
			cfg := watermark.Config{Delay: watermark.DefaultDelay, Quantile: q, Window: n}
			fmt.Fprintf(&tuning, "| %d | %v |", n, q)
			for i, f := range realFiles {
				for _, parts := range []int{1, 3} {
					o := simulate(f.name, files[i], f.nullStart, parts, cfg)
					fmt.Fprintf(&tuning, " %s / %s |", pct(o.lateMain, f.nullStart), fmtDur(quantileDur(o.lag, 0.5)))
				}
			}
			fmt.Fprintln(&tuning)
		}
	}
	t.Logf("tuning (late fraction of main-block rows / median lag):\n%s", tuning.String())
	syncReadme(t, map[string]string{"realfile-default": main.String(), "realfile-tuning": tuning.String()})
}

// syncReadme replaces (with -update) or checks the text between
// "<!-- BEGIN name -->" and "<!-- END name -->" in README.md.
func syncReadme(t *testing.T, sections map[string]string) {
	t.Helper()
	old, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(old)
	for name, text := range sections {
		begin, end := "<!-- BEGIN "+name+" -->\n", "<!-- END "+name+" -->"
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("README.md: markers for section %q missing", name)
		}
		doc = doc[:i+len(begin)] + text + doc[j:]
	}
	if doc == string(old) {
		return
	}
	if *update {
		if err := os.WriteFile("README.md", []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md figures are out of date; run go test ./topology/watermark -run TestRealFileOrder -update")
}
