package replay

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/integration/testio"
	"github.com/taxi-stream/taxi-stream/producer/order"
)

type syncBuffer = testio.Buffer

func TestProgressLogLines(t *testing.T) {
	var out syncBuffer
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&out, nil))
	cfg.LogEvery = 5 * time.Millisecond
	var c counters
	var skipped atomic.Int64
	p := startProgress(cfg, &c, &skipped, 1000)
	c.rows.Add(300)
	skipped.Add(100)
	c.bytes.Add(12345)
	c.markers.Add(6)
	time.Sleep(30 * time.Millisecond)
	p.close()
	s := out.String()
	for _, want := range []string{"replay progress", "rows=400", "of=1000", "bytes=12345", "markers=6", "rows_per_s="} {
		if !strings.Contains(s, want) {
			t.Errorf("log lacks %q:\n%s", want, s)
		}
	}
}

func TestProgressBar(t *testing.T) {
	var out syncBuffer
	cfg := testConfig()
	cfg.ProgressBar = &out
	var c counters
	var skipped atomic.Int64
	p := startProgress(cfg, &c, &skipped, 2000)
	c.rows.Add(2000)
	c.bytes.Add(3 << 20)
	time.Sleep(250 * time.Millisecond)
	p.close()
	s := out.String()
	for _, want := range []string{"2000/2000", "rows", "3.0 MiB"} {
		if !strings.Contains(s, want) {
			t.Errorf("bar lacks %q: %q", want, s)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536 << 10: "1.5 MiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPrefetchKeepsOrder(t *testing.T) {
	rows := testRows(10_000)
	pf := prefetch(&sliceIterator{rows: rows}, 333, 2)
	defer pf.close()
	var got []order.Row
	for {
		b, err := pf.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	if len(got) != len(rows) {
		t.Fatalf("%d rows, want %d", len(got), len(rows))
	}
	if _, err := pf.next(); !errors.Is(err, io.EOF) {
		t.Errorf("next after the end: %v, want io.EOF again", err)
	}
	for i := range rows {
		if got[i].File != rows[i].File || got[i].Row != rows[i].Row || got[i].Trip != rows[i].Trip {
			t.Fatalf("row %d differs", i)
		}
	}
}

func TestPrefetchStopsEarly(t *testing.T) {
	pf := prefetch(&sliceIterator{rows: testRows(100_000)}, 100, 2)
	if _, err := pf.next(); err != nil {
		t.Fatal(err)
	}
	pf.close() // must not hang while the reader is blocked on a full queue
}
