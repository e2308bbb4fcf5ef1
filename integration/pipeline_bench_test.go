package integration

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/processors/results"
	"github.com/taxi-stream/taxi-stream/producer/replay"
	"github.com/taxi-stream/taxi-stream/producer/synth"
)

// BenchmarkPipelineBacklog measures the processor alone: BENCH_ROWS (default 2M)
// generated rides in dropoff order with markers wait in a 3-partition topic on the
// real broker; one instance (exactly-once) processes them until every ride is in a
// result. It reports rides/s, changelog records written per ride and the Go
// memory high-water mark of the test process during processing.
// BENCH_CPUPROFILE=file profiles the processing (not the feeding). BENCH_RATE=r
// streams the rides at r rides/s while the processor runs (close delay without a
// backlog; rides/s is then the feed rate).
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
	// BENCH_GUARANTEE=at_least_once measures the same without transactions.
	mode, err := eos.ParseMode(envString("BENCH_GUARANTEE", string(eos.ExactlyOnce)))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		runBacklog(b, file, rows, mode)
	}
}

// BenchmarkExactlyOnceVsAtLeastOnce runs the backlog benchmark in both modes,
// alternating, BENCH_ROUNDS times (default 2) on the same broker, and reports the
// exactly-once throughput as a share of the at-least-once one per round. The first
// round also warms the broker's JVM up (a fresh broker is slower for its first
// seconds, and more so on the transaction paths).
//
//	BENCH_ROWS=1000000 go test -run '^$' -bench BenchmarkExactlyOnceVsAtLeastOnce -benchtime 1x ./integration/
func BenchmarkExactlyOnceVsAtLeastOnce(b *testing.B) {
	rows := envInt("BENCH_ROWS", 1_000_000)
	rounds := envInt("BENCH_ROUNDS", 2)
	file := filepath.Join(b.TempDir(), "bench.parquet")
	cfg := synth.DefaultConfig(int64(rows))
	cfg.OutlierRate = 0
	if _, err := synth.WriteFile(context.Background(), file, cfg); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		var last float64
		for r := 1; r <= rounds; r++ {
			alos := runBacklog(b, file, rows, eos.AtLeastOnce)
			exactly := runBacklog(b, file, rows, eos.ExactlyOnce)
			last = exactly / alos
			b.Logf("round %d: at_least_once %.0f rides/s, exactly_once %.0f rides/s: %.0f %%", r, alos, exactly, 100*last)
		}
		b.ReportMetric(100*last, "eos-%-of-alos")
	}
}

// runBacklog processes one backlog (or live feed) and returns rides/s.
func runBacklog(b *testing.B, file string, rows int, mode eos.Mode) float64 {
	topics := pipelineInputs(b, 3)
	// BENCH_RATE=rides/s streams the rides while the processor runs (a live feed:
	// the close delay without a backlog) instead of feeding them all first.
	rate := envInt("BENCH_RATE", 0)
	n := rows
	if rate == 0 {
		feedStart := time.Now()
		n = feedRides(b, topics.Rides, 3, file, feedOptions{markers: true})
		b.Logf("fed %d rides in %s", n, time.Since(feedStart).Round(time.Millisecond))
	}

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
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" { // the processing only, not the feeding
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if path := os.Getenv("BENCH_GOROUTINES"); path != "" {
		go func() {
			time.Sleep(10 * time.Second)
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("goroutine").WriteTo(f, 1)
				f.Close()
			}
		}()
	}
	closes := newCloseClock(3)
	h := startPipelineApp(b, topics, mode, "bench", topics.Rides+"-app", func(o *pipeline.Options) {
		o.WatermarkPassed = closes.passed
	})
	feedErr := make(chan error, 1)
	if rate > 0 {
		go func() {
			_, err := replay.Run(context.Background(), replay.Config{
				Inputs: []string{file}, Brokers: kafka.Brokers(b), Topic: topics.Rides, Partitions: 3,
				Rate: float64(rate), TempDir: b.TempDir(), LogEvery: -1,
			})
			feedErr <- err
		}()
	}
	followCtx, stopFollow := context.WithCancel(context.Background())
	defer stopFollow()
	readable := map[int64]time.Time{} // window end -> first result of it readable
	var readableMu sync.Mutex
	go func() {
		_ = results.Follow(followCtx, results.FollowConfig{Brokers: kafka.Brokers(b), Topic: topics.Results, Sarama: kafkatest.SaramaConfig},
			func(r results.Record, err error) {
				if err != nil {
					return
				}
				now := time.Now()
				readableMu.Lock()
				if _, ok := readable[r.Result.Window.EndMs]; !ok {
					readable[r.Result.Window.EndMs] = now
				}
				readableMu.Unlock()
			})
	}()
	for {
		in, win := h.p.Stages()
		if in != nil && win != nil && win.Counters.RidesEmitted.Load()+in.Counters.Late.Load()+in.Counters.Dead.Load() >= int64(n) {
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatal("not done after 10 minutes")
		}
		select {
		case err := <-feedErr:
			if err != nil {
				b.Fatalf("feed: %v", err)
			}
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	for name, rt := range map[string]*eos.Runtime{"ingest": first(h.p.Runtimes()), "windows": second(h.p.Runtimes())} {
		paused, longest, total := rt.CommitTime()
		n := time.Duration(max(1, rt.Commits()))
		b.Logf("%s: %d commits, avg %s; processing paused %s (%.0f%% of the run), longest pause %s, avg pause %s", name, rt.Commits(),
			(total / n).Round(time.Microsecond), paused.Round(time.Millisecond), 100*paused.Seconds()/elapsed.Seconds(),
			longest.Round(time.Millisecond), (paused / n).Round(time.Microsecond))
	}
	close(stop)
	h.stop()
	time.Sleep(500 * time.Millisecond) // let the follower see the last results
	stopFollow()
	readableMu.Lock()
	delays := closes.delays(readable)
	readableMu.Unlock()
	if len(delays) > 0 {
		p50, p99, worst := percentile(delays, 0.50), percentile(delays, 0.99), delays[len(delays)-1]
		b.ReportMetric(float64(p50.Microseconds())/1000, "close-p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "close-p99-ms")
		b.Logf("close delay over %d windows (watermark passes the window end in every partition -> result readable read_committed): p50 %s, p99 %s, max %s",
			len(delays), p50.Round(time.Millisecond), p99.Round(time.Millisecond), worst.Round(time.Millisecond))
	}

	changelog := string(goka.GroupTable(h.p.Config().WindowsGroup()))
	records := topicRecords(b, changelog)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "rides/s")
	b.ReportMetric(float64(records)/float64(n), "changelog-records/ride")
	b.ReportMetric(float64(peak.Load())/(1<<20), "go-mem-peak-MiB")
	b.Logf("%s: %d rides in %s: %.0f rides/s; changelog %s: %d records incl. transaction markers (%.5f per ride)",
		mode, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), changelog, records, float64(records)/float64(n))
	return float64(n) / elapsed.Seconds()
}

// topicRecords counts the offsets of a topic (records incl. transaction markers).
func topicRecords(b testing.TB, topic string) int64 {
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

// closeClock records each ingest partition's watermark timeline (reported when it
// passes window ends), to find when a window could close: the moment the last
// partition's watermark reached its end.
type closeClock struct {
	partitions int
	mu         sync.Mutex
	timeline   map[int32][]wmAt
}

type wmAt struct {
	wm int64
	at time.Time
}

func newCloseClock(partitions int) *closeClock {
	return &closeClock{partitions: partitions, timeline: map[int32][]wmAt{}}
}

// passed is the pipeline's WatermarkPassed hook.
func (c *closeClock) passed(p int32, wm int64) {
	now := time.Now()
	c.mu.Lock()
	c.timeline[p] = append(c.timeline[p], wmAt{wm, now})
	c.mu.Unlock()
}

// closedAt returns when every partition's watermark had reached end.
func (c *closeClock) closedAt(end int64) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timeline) < c.partitions {
		return time.Time{}, false
	}
	var last time.Time
	for _, tl := range c.timeline {
		i := sort.Search(len(tl), func(i int) bool { return tl[i].wm >= end })
		if i == len(tl) {
			return time.Time{}, false
		}
		if tl[i].at.After(last) {
			last = tl[i].at
		}
	}
	return last, true
}

// delays returns, sorted, for each window end with a readable result the time from
// closing to readable.
func (c *closeClock) delays(readable map[int64]time.Time) []time.Duration {
	var out []time.Duration
	for end, at := range readable {
		if closed, ok := c.closedAt(end); ok {
			out = append(out, max(0, at.Sub(closed)))
		}
	}
	slices.Sort(out)
	return out
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func first[A, B any](a A, _ B) A  { return a }
func second[A, B any](_ A, b B) B { return b }
