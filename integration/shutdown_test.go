package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/goleak"

	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/httpapi"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/producer/synth"
	"github.com/taxi-stream/taxi-stream/topology"
)

// stopBound is how long a graceful stop may take: the pipeline commits its last
// work, closes its state and leaves the groups within it.
const stopBound = 30 * time.Second

// leakGrace is how long goroutines get to end after a stop has returned: a client's
// background goroutines may notice their closed connections a little later.
// (goleak v1.3.0, the latest release, retries for about 0.4 s; its retry options are
// not released yet.)
const leakGrace = 5 * time.Second

// verifyNoLeaks fails t when a goroutine other than those in before (a
// goleak.IgnoreCurrent taken before the code under test started) is still running
// leakGrace after the call. No goroutine is ignored by name: process-wide ones of
// dependencies (e.g. go-metrics' meter arbiter, which Sarama's first client starts)
// are already running when a test takes its snapshot, after creating its topics.
// goleak names only a leaked goroutine's creator; to see where that one came
// from, run the test with GODEBUG=tracebackancestors=5 and dump
// runtime.Stack(buf, true) on failure.
func verifyNoLeaks(t *testing.T, before goleak.Option) {
	t.Helper()
	http.DefaultClient.CloseIdleConnections() // the test's own keep-alive connections
	deadline := time.Now().Add(leakGrace)
	for {
		err := goleak.Find(before)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("goroutines still running %s after the stop: %v", leakGrace, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPipelineShutdownLeavesNoGoroutines runs a whole instance in the process (both
// stages and the HTTP server beside them, as taxi-stream runs them), feeds it rides
// and, once results are readable and while rides keep arriving, stops it the way
// SIGTERM does (its context ends). Run must return nil within stopBound, having
// committed the input offsets of every ride it read, the windows state must be
// marked clean, and every goroutine the instance started must have ended.
func TestPipelineShutdownLeavesNoGoroutines(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rides.parquet")
	gen := synth.DefaultConfig(5_000) // January 2025
	gen.Seed = 6
	if _, err := synth.WriteFile(context.Background(), file, gen); err != nil {
		t.Fatalf("generate: %v", err)
	}
	for _, mode := range []eos.Mode{eos.ExactlyOnce, eos.AtLeastOnce} {
		t.Run(string(mode), func(t *testing.T) { checkShutdownLeavesNoGoroutines(t, mode, file) })
	}
}

func checkShutdownLeavesNoGoroutines(t *testing.T, mode eos.Mode, file string) {
	const partitions = 2
	topics := pipelineInputs(t, partitions)
	app := topics.Rides + "-app"
	stateDir := t.TempDir()
	admin := kafka.Admin(t)
	// The backlog is written before the snapshot: the check covers the instance,
	// not the replay producer.
	backlog := feedRides(t, topics.Rides, partitions, file, feedOptions{})

	http.DefaultClient.CloseIdleConnections()
	before := goleak.IgnoreCurrent()

	instance := "leak-" + string(mode)
	p, cancel, done := startPipelineWithApp(t, topics, mode, instance, app,
		func(o *pipeline.Options) { o.StateDir = stateDir })
	running := true
	defer func() { // a failed check still stops the instance
		if running {
			cancel()
			<-done
		}
	}()
	// As cmd/taxi-stream runs it: the server outlives the pipeline.
	srv := startHTTPServer(t, httpapi.Config{Topology: topology.Config{Topics: topics, App: app},
		InstanceID: instance, Pipeline: p})
	defer srv.stop()

	var results resultsBody
	eventually(t, 3*time.Minute, "results readable", func() string {
		if srv.getJSON(t, "/api/v1/results?limit=10", &results); len(results.Results) == 0 {
			return "no results yet"
		}
		return ""
	})
	// Rides keep arriving until the instance has stopped: it stops with work in flight.
	live := writeLiveRides(t, topics.Rides, partitions, gen2025Feb)
	defer live.stop()
	eventually(t, 3*time.Minute, "live rides read", func() string {
		if in := p.Stats().Ingest.In; in < int64(backlog)+200 {
			return fmt.Sprintf("%d rides read, %d in the backlog", in, backlog)
		}
		return ""
	})

	atCancel, writtenAtCancel := p.Stats(), int64(backlog)+live.sofar.Load()
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		running = false
		if err != nil {
			t.Fatalf("pipeline stopped with %v, want nil", err)
		}
	case <-time.After(stopBound):
		t.Fatalf("pipeline did not stop within %s", stopBound)
	}
	stopped := time.Since(start)
	written := live.stop()
	srv.stop()
	final := p.Stats()
	t.Logf("%s: stopped in %s (bound %s); at the stop %d rides read (~%d written), %d results emitted; in the end %d read, %d written; %d+%d commits (ingest+windows), %d+%d during the stop",
		mode, stopped.Round(time.Millisecond), stopBound, atCancel.Ingest.In, writtenAtCancel, atCancel.Windows.ResultsEmitted,
		final.Ingest.In, backlog+written, final.IngestCommits.Commits, final.WindowsCommits.Commits,
		final.IngestCommits.Commits-atCancel.IngestCommits.Commits, final.WindowsCommits.Commits-atCancel.WindowsCommits.Commits)

	// The last commit covers every ride read: the committed offsets (the rides
	// topic holds rides only, no control records) add up to the rides read.
	group := string(p.Config().IngestGroup())
	var parts []int32
	for part := range int32(partitions) {
		parts = append(parts, part)
	}
	offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topics.Rides: parts})
	if err != nil {
		t.Fatalf("committed offsets of %s: %v", group, err)
	}
	var committed int64
	for _, part := range parts {
		if b := offsets.GetBlock(topics.Rides, part); b != nil && b.Offset > 0 {
			committed += b.Offset
		}
	}
	if read := final.Ingest.In + final.Ingest.Markers; committed != read {
		t.Errorf("%s committed offsets up to %d rides, it read %d", group, committed, read)
	}

	// pipeline.cleanMarker: written only when the last generation ended in a commit.
	marker := filepath.Join(stateDir, string(p.Config().WindowsGroup()), "CLEAN")
	if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
		t.Errorf("no clean-stop marker %s after a graceful stop", marker)
	} else if err != nil {
		t.Error(err)
	}

	verifyNoLeaks(t, before)
}

// gen2025Feb follows the synthetic backlog (January 2025).
var gen2025Feb = time.Date(2025, time.February, 1, 0, 0, 0, 0, time.UTC)

// liveWriter writes rides until stopped.
type liveWriter struct {
	quit    chan struct{}
	done    chan int
	stopped bool
	written int
	sofar   atomic.Int64 // rides written so far
}

// writeLiveRides writes 20 rides every 20 ms, round robin over the partitions, with
// dropoff times from `from` a minute apart (the data-driven watermark keeps closing
// hours), until stop, which returns how many were written.
func writeLiveRides(t *testing.T, topic string, partitions int32, from time.Time) *liveWriter {
	t.Helper()
	cfg := kafkatest.SaramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(kafka.Brokers(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := &liveWriter{quit: make(chan struct{}), done: make(chan int, 1)}
	quit := w.quit
	go func() {
		n := 0
		defer func() { prod.Close(); w.done <- n }() // closed when stop returns
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			msgs := make([]*sarama.ProducerMessage, 20)
			for i := range msgs {
				dropoff := from.Add(time.Duration(n+i) * time.Minute).Format(time.DateTime)
				msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: int32(n+i) % partitions,
					Key:   sarama.StringEncoder(fmt.Sprint("live-", n+i)),
					Value: sarama.ByteEncoder(rideJSON(dropoff, (n+i)%263+1, "1", "2.5", "12.00", "2.00", "16.30"))}
			}
			if err := prod.SendMessages(msgs); err != nil {
				t.Errorf("write live rides: %v", err)
				return
			}
			n += len(msgs)
			w.sofar.Store(int64(n))
		}
	}()
	return w
}

func (w *liveWriter) stop() int {
	if !w.stopped {
		w.stopped = true
		close(w.quit)
		w.written = <-w.done
	}
	return w.written
}
