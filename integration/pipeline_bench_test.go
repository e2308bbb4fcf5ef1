package integration

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/producer/synth"
)

// BenchmarkPipelineBacklog measures the processor alone: BENCH_ROWS (default 2M)
// generated rides in dropoff order with markers wait in a 3-partition topic on the
// real broker; one instance (exactly-once) processes them until every ride is in a
// result. It reports rides/s, changelog records written per ride and the Go
// memory high-water mark of the test process during processing.
//
//	go test -run '^$' -bench BenchmarkPipelineBacklog -benchtime 1x ./integration/
func BenchmarkPipelineBacklog(b *testing.B) {
	rows := envInt("BENCH_ROWS", 2_000_000)
	dir := b.TempDir()
	file := filepath.Join(dir, "bench.parquet")
	cfg := synth.DefaultConfig(int64(rows))
	cfg.OutlierRate = 0
	if _, err := synth.WriteFile(context.Background(), file, cfg); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		runBacklog(b, file)
	}
}

func runBacklog(b *testing.B, file string) {
	topics := pipelineInputs(b, 3)
	feedStart := time.Now()
	n := feedRides(b, topics.Rides, 3, file, feedOptions{markers: true})
	b.Logf("fed %d rides in %s", n, time.Since(feedStart).Round(time.Millisecond))

	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if v := ms.Sys - ms.HeapReleased; v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	if path := os.Getenv("BENCH_GOROUTINES"); path != "" {
		go func() {
			time.Sleep(10 * time.Second)
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("goroutine").WriteTo(f, 1)
				f.Close()
			}
		}()
	}
	h := startPipelineApp(b, topics, eos.ExactlyOnce, "bench", topics.Rides+"-app")
	for {
		in, win := h.p.Stages()
		if in != nil && win != nil && win.Counters.RidesEmitted.Load()+in.Counters.Late.Load()+in.Counters.Dead.Load() >= int64(n) {
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatal("not done after 10 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	for name, rt := range map[string]*eos.Runtime{"ingest": first(h.p.Runtimes()), "windows": second(h.p.Runtimes())} {
		total, longest := rt.CommitTime()
		b.Logf("%s: %d commits, %s committing (%.0f%% of the run), longest %s, avg %s", name, rt.Commits(), total.Round(time.Millisecond),
			100*total.Seconds()/elapsed.Seconds(), longest.Round(time.Millisecond), (total / time.Duration(max(1, rt.Commits()))).Round(time.Microsecond))
	}
	close(stop)
	h.stop()

	changelog := string(goka.GroupTable(h.p.Config().WindowsGroup()))
	records := topicRecords(b, changelog)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "rides/s")
	b.ReportMetric(float64(records)/float64(n), "changelog-records/ride")
	b.ReportMetric(float64(peak.Load())/(1<<20), "go-mem-peak-MiB")
	b.Logf("%d rides in %s: %.0f rides/s; changelog %s: %d records incl. transaction markers (%.5f per ride)",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), changelog, records, float64(records)/float64(n))
}

// topicRecords counts the offsets of a topic (records incl. transaction markers).
func topicRecords(b *testing.B, topic string) int64 {
	client, err := sarama.NewClient(kafka.Brokers(b), kafkatest.SaramaConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, p := range parts {
		newest, _ := client.GetOffset(topic, p, sarama.OffsetNewest)
		oldest, _ := client.GetOffset(topic, p, sarama.OffsetOldest)
		total += newest - oldest
	}
	return total
}

func first[A, B any](a A, _ B) A  { return a }
func second[A, B any](_ A, b B) B { return b }
