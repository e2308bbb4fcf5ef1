package replaytest

import (
	"context"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/producer/replay"
	"github.com/taxi-stream/taxi-stream/producer/synth"
)

// BenchmarkReplay replays a synthetic 2M-row Parquet file (producer/synth, TLC-like row
// order, zstd pages) to the test broker with acks=all, zstd level 1, 3 partitions, in both
// orders. It reports:
//
//	send-rows/s  rows over the send phase (first send to last acknowledgement)
//	rows/s       rows over the whole run (inputs, sort, send)
//	peak-heap-MB the largest Go heap (runtime/metrics, sampled every 10 ms)
//
// The machine's process RSS is measured with /usr/bin/time -v on the binary instead
// (docs/benchmarks.md). TAXI_BENCH_ROWS overrides the row count.
//
//	go test ./integration -run '^$' -bench BenchmarkReplay -benchtime 1x
func BenchmarkReplay(b *testing.B) {
	rows := int64(2_000_000)
	if s := os.Getenv("TAXI_BENCH_ROWS"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		rows = n
	}
	file := filepath.Join(b.TempDir(), "synth.parquet")
	cfg := synth.DefaultConfig(rows)
	cfg.Order = synth.OrderTLC
	if _, err := synth.WriteFile(context.Background(), file, cfg); err != nil {
		b.Fatal(err)
	}
	brokers := kafka.Brokers(b)
	for _, order := range []replay.Order{replay.OrderEventTime, replay.OrderFile} {
		b.Run(string(order), func(b *testing.B) {
			var send, total time.Duration
			var peak uint64
			for b.Loop() {
				topic := kafkatest.UniqueName(b, "bench")
				stop := samplePeakHeap(&peak)
				sum, err := replay.Run(context.Background(), replay.Config{
					Inputs: []string{file}, Brokers: brokers, Topic: topic, Order: order, LogEvery: -1,
				})
				stop()
				if err != nil {
					b.Fatal(err)
				}
				if sum.Rows != rows {
					b.Fatalf("%d rows sent, want %d", sum.Rows, rows)
				}
				send += sum.SendElapsed
				total += sum.Elapsed
				b.StopTimer()
				_, _ = replay.Cleanup(context.Background(), brokers, []string{topic}, 0)
				b.StartTimer()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/send.Seconds(), "send-rows/s")
			b.ReportMetric(float64(rows)*float64(b.N)/total.Seconds(), "rows/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// samplePeakHeap records the largest heap size until stop is called.
func samplePeakHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64() + s[1].Value.Uint64(); v > *peak {
				*peak = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
