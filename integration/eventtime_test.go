package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/topology"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

// Event time without the producer's help (docs/design.md "Idle partitions and
// finished streams", "Allowed lateness and revisions").

// testIdleTimeout is the idle timeout of these tests (taxi-stream's default is 30s).
const testIdleTimeout = 2 * time.Second

const fortyFiveDays = 45 * 24 * time.Hour

// writeLikeTheOriginalProducer writes every row of a TLC file the way the original
// tutorial's producer does: pandas' JSON of each row in file order, no key (so no
// key hash: the partitions take turns, as kafka-python spreads null-keyed records),
// no headers and no watermark markers. The JSON comes from the replay producer
// (pandas-compatible, docs/design.md) through a one-partition staging topic, which
// keeps the file order. Row i goes to partition i % partitions at offset
// i / partitions.
func writeLikeTheOriginalProducer(t testing.TB, topic string, partitions int32, path string) int {
	t.Helper()
	staging := kafka.Topic(t, kafkatest.Partitions(1))
	n := feedRides(t, staging, 1, path, feedOptions{fileOrder: true})
	rows := readAll(t, staging, n, 3*time.Minute)
	if len(rows) != n {
		t.Fatalf("staging topic holds %d rows, want %d", len(rows), n)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Offset < rows[j].Offset })
	cfg := kafkatest.SaramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(kafka.Brokers(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, 0, 5000)
	flush := func() {
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("write %s: %v", topic, err)
		}
		msgs = msgs[:0]
	}
	for i, m := range rows {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(i) % partitions, Value: sarama.ByteEncoder(m.Value)})
		if len(msgs) == cap(msgs) {
			flush()
		}
	}
	flush()
	return n
}

// latestRevisions checks that every key's revisions arrived once each, in order
// 0, 1, 2, ... (exactly-once, read_committed; a borough that first appears in a
// window after it closed starts at revision 1), and returns each key's latest
// record and the number of revisions after the finals.
func latestRevisions(t testing.TB, results []*sarama.ConsumerMessage) (map[string]*sarama.ConsumerMessage, int) {
	t.Helper()
	type keyed struct {
		Revision int64  `json:"revision"`
		Status   string `json:"status"`
	}
	latest := map[string]*sarama.ConsumerMessage{}
	next := map[string]int64{}
	revisions := 0
	for _, m := range results {
		var v keyed
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Fatalf("result %s: %v", m.Key, err)
		}
		key := string(m.Key)
		want, seen := next[key]
		switch {
		case !seen && v.Revision > 1:
			t.Errorf("result %s: first record is revision %d (gap)", key, v.Revision)
		case seen && v.Revision != want:
			t.Errorf("result %s: revision %d after revision %d (duplicate or gap)", key, v.Revision, want-1)
		}
		if want := map[bool]string{true: "final", false: "revised"}[v.Revision == 0]; v.Status != want {
			t.Errorf("result %s revision %d: status %q, want %q", key, v.Revision, v.Status, want)
		}
		next[key] = v.Revision + 1
		if v.Revision > 0 {
			revisions++
		}
		if old := latest[key]; old == nil || m.Partition == old.Partition && m.Offset > old.Offset || v.Revision > 0 {
			latest[key] = m
		}
	}
	return latest, revisions
}

// lateRows returns the file rows (i = offset*partitions + partition) of the late
// topic's rides, and the late topic's reasons.
func lateRows(t testing.TB, late []*sarama.ConsumerMessage, partitions int32) (map[int]bool, map[string]int) {
	t.Helper()
	rows, reasons := map[int]bool{}, map[string]int{}
	for _, m := range late {
		h := map[string]string{}
		for _, rh := range m.Headers {
			h[string(rh.Key)] = string(rh.Value)
		}
		p, err1 := strconv.Atoi(h[codecs.HeaderInputPartition])
		off, err2 := strconv.ParseInt(h[codecs.HeaderInputOffset], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("late record without input position: %q", h)
		}
		rows[int(off)*int(partitions)+p] = true
		reasons[h[codecs.HeaderLateReason]]++
	}
	return rows, reasons
}

// eventTimeApp is one app of the test on the shared input.
type eventTimeApp struct {
	name     string
	lateness time.Duration
	topics   topology.Topics
	h        *pipelineHandle
}

// The proof on the real files: each shared month, written like the original
// producer (file order, no markers, null keys), read by two apps at once, both with
// --close-on-idle: one with --allowed-lateness 45d, one with 0.
//   - 45d: the null blocks that arrive weeks late are counted as revisions; the
//     latest revision of every key equals the batch oracle over every ride that is
//     not in the late topic, and the late topic holds only rides whose window ended
//     more than 45 days before the watermark that judged them (the files' far
//     outliers); each key's revisions arrive once each, in order.
//   - 0: today's behaviour, the late fraction per month (reported).
//
// In both, once the input is finished the partitions go idle and close every
// window: nothing waits for a marker, and results + late = the input.
func TestOriginalProducerFileOrderClosesOnIdleWithExactRevisions(t *testing.T) {
	t.Parallel() // see TestMain
	data := sharedData(t)
	boroughs := readBoroughs(t, filepath.Join(data, "taxi_zone_lookup.csv"))
	files := []string{"green_tripdata_2020-12.parquet", "green_tripdata_2023-01.parquet",
		"green_tripdata_2024-01.parquet", "green_tripdata_2025-01.parquet"}
	var report []string
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(data, name)
			rides := readParquetRides(t, path)
			const partitions = 3
			inputs := pipelineInputs(t, partitions)
			n := writeLikeTheOriginalProducer(t, inputs.Rides, partitions, path)
			if n != len(rides) {
				t.Fatalf("wrote %d rides, the oracle read %d", n, len(rides))
			}
			var apps []*eventTimeApp
			for _, lateness := range []time.Duration{fortyFiveDays, 0} {
				topics := inputs
				suffix := map[bool]string{true: "l45d", false: "l0"}[lateness > 0]
				topics.Results, topics.Late, topics.Dead = inputs.Results+"-"+suffix, inputs.Late+"-"+suffix, inputs.Dead+"-"+suffix
				topics.Windows = inputs.Windows + "-" + suffix // each app its own repartition topic
				app := &eventTimeApp{name: inputs.Rides + "-" + suffix, lateness: lateness, topics: topics}
				app.h = startPipelineApp(t, topics, eos.ExactlyOnce, "i1", app.name, func(o *pipeline.Options) {
					o.Topology.AllowedLateness = lateness
					o.Topology.IdleTimeout = testIdleTimeout
					o.Topology.CloseOnIdle = true
				})
				defer app.h.stop()
				apps = append(apps, app)
			}
			for _, app := range apps {
				waitAccountedFor(t, app.h.p, n, 5*time.Minute)
			}
			for _, app := range apps {
				in, win := app.h.p.Stages()
				lateN, deadN := int(in.Counters.Late.Load()), int(in.Counters.Dead.Load())
				late := readAll(t, app.topics.Late, lateN, time.Minute)
				if dead := readAll(t, app.topics.Dead, deadN, 10*time.Second); len(dead) != 0 {
					t.Errorf("%s: %d dead-letter records from a real file", app.name, len(dead))
				}
				rows, reasons := lateRows(t, late, partitions)
				var kept []oracleRide
				for i, r := range rides {
					if !rows[i] {
						kept = append(kept, r)
					}
				}
				want := oracle(t, kept, boroughs)
				results := readAll(t, app.topics.Results, len(want), 2*time.Minute)
				latest, revisions := latestRevisions(t, results)
				var final []*sarama.ConsumerMessage
				var inResults int64
				for _, m := range latest {
					final = append(final, m)
					var v struct {
						TripCount int64 `json:"trip_count"`
					}
					_ = json.Unmarshal(m.Value, &v)
					inResults += v.TripCount
				}
				checkResultsEqualOracle(t, final, want)
				if got := inResults + int64(len(late)); got != int64(n) {
					t.Errorf("%s: conservation: %d in results + %d late = %d, want %d", app.name, inResults, len(late), got, n)
				}
				_ = win
				stateBytes := changelogStateBytes(t, app.name)
				line := fmt.Sprintf("%s allowed lateness %-9s: %5d rides, late %5d (%5.2f%%) %v, results %d keys + %d revisions, windows state %d bytes (changelog, latest value per partition)",
					name, app.lateness, n, len(late), 100*float64(len(late))/float64(n), reasons, len(want), revisions, stateBytes)
				t.Log(line)
				report = append(report, line)
				if app.lateness > 0 {
					checkLateBeyond(t, late, app.lateness)
				}
			}
		})
	}
	sort.Strings(report)
	t.Logf("original producer, file order, close on idle:\n%s", strings.Join(report, "\n"))
}

// waitAccountedFor waits until every ride written is in a result, late or dead.
func waitAccountedFor(t testing.TB, p *pipeline.Pipeline, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var counted, late, dead int64
	for time.Now().Before(deadline) {
		if in, win := p.Stages(); in != nil && win != nil {
			counted, late, dead = win.Counters.RidesEmitted.Load(), in.Counters.Late.Load(), in.Counters.Dead.Load()
			if counted+late+dead == int64(n) {
				return
			}
			if counted+late+dead > int64(n) {
				t.Fatalf("%d counted + %d late + %d dead > %d rides written", counted, late, dead, n)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("after %s: %d counted + %d late + %d dead of %d rides", timeout, counted, late, dead, n)
}

// checkLateBeyond checks the rule on each late ride's headers: its window ended at
// least lateness before the watermark that judged it.
func checkLateBeyond(t testing.TB, late []*sarama.ConsumerMessage, lateness time.Duration) {
	t.Helper()
	for _, m := range late {
		h := map[string]string{}
		for _, rh := range m.Headers {
			h[string(rh.Key)] = string(rh.Value)
		}
		wm, _ := strconv.ParseInt(h[codecs.HeaderLateWatermark], 10, 64)
		end, _ := strconv.ParseInt(h[codecs.HeaderLateWindowEnd], 10, 64)
		if end > wm-lateness.Milliseconds() {
			t.Errorf("late ride %s: window end %d within %s of watermark %d", m.Value, end, lateness, wm)
		}
		if h[codecs.HeaderLateReason] != codecs.LateBeyondAllowedLateness {
			t.Errorf("late ride reason %q, want %q", h[codecs.HeaderLateReason], codecs.LateBeyondAllowedLateness)
		}
	}
}

// The same proof with the replay producer in --order file (markers on, so the
// windows close by its markers): with --allowed-lateness 45d the weeks-late null
// blocks are revisions, and the latest revisions equal the oracle of every ride not
// in the late topic.
func TestReplayFileOrderWithAllowedLateness(t *testing.T) {
	data := sharedData(t)
	boroughs := readBoroughs(t, filepath.Join(data, "taxi_zone_lookup.csv"))
	var report []string
	for _, name := range []string{"green_tripdata_2020-12.parquet", "green_tripdata_2025-01.parquet"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(data, name)
			rides := readParquetRides(t, path)
			topics := pipelineInputs(t, 3)
			n := feedRides(t, topics.Rides, 3, path, feedOptions{fileOrder: true, markers: true})
			h := startPipelineApp(t, topics, eos.ExactlyOnce, "i1", topics.Rides+"-app", func(o *pipeline.Options) {
				o.Topology.AllowedLateness = fortyFiveDays
			})
			defer h.stop()
			waitAccountedFor(t, h.p, n, 5*time.Minute)
			in, win := h.p.Stages()
			late := readAll(t, topics.Late, int(in.Counters.Late.Load()), time.Minute)
			checkLateBeyond(t, late, fortyFiveDays)
			// The replay producer keys rides "<file>:<row>": the late rows by key.
			lateKeys := map[string]bool{}
			for _, m := range late {
				lateKeys[string(m.Key)] = true
			}
			var kept []oracleRide
			for i, r := range rides {
				if !lateKeys[filepath.Base(path)+":"+strconv.Itoa(i)] {
					kept = append(kept, r)
				}
			}
			want := oracle(t, kept, boroughs)
			latest, revisions := latestRevisions(t, readAll(t, topics.Results, len(want), 2*time.Minute))
			var final []*sarama.ConsumerMessage
			for _, m := range latest {
				final = append(final, m)
			}
			checkResultsEqualOracle(t, final, want)
			_ = win
			line := fmt.Sprintf("%s: %d rides, late %d, %d keys + %d revisions, windows state %d bytes after the final marker",
				name, n, len(late), len(want), revisions, changelogStateBytes(t, topics.Rides+"-app"))
			t.Log(line)
			report = append(report, line)
		})
	}
	t.Logf("replay producer, file order, allowed lateness 45d:\n%s", strings.Join(report, "\n"))
}

// A live feed on a topic with more partitions than it uses: partition 3 gets no
// ride at all, and partition 2 pauses half-way. Without idle detection no window
// would ever close (partition 3 has no watermark). With it, windows close while the
// feed runs; after partition 2 pauses, the windows the others allow close within
// the idle timeout + one check interval (+ a commit); after the whole feed stops,
// event time runs on with the wall clock and every ride ends in a result.
func TestIdlePartitionsOfALiveFeed(t *testing.T) {
	const partitions = 4 // 0..2 get rides, 3 none
	topics := pipelineInputs(t, partitions)
	const windowSize = 2 * time.Second
	h := startPipelineApp(t, topics, eos.ExactlyOnce, "i1", topics.Rides+"-app", func(o *pipeline.Options) {
		o.Topology.Window = window.Tumbling(windowSize)
		o.Topology.Watermark = watermark.Config{Delay: time.Second, Quantile: 0.05, Window: 32}
		o.Topology.IdleTimeout = testIdleTimeout
	})
	defer h.stop()
	in, win := h.p.Stages()

	var sent int
	perWindow := map[int64]int{}
	send := func(parts []int32) int64 {
		var recs []rawRecord
		now := time.Now().UnixMilli()
		for _, p := range parts {
			recs = append(recs, rawRecord{partition: p, key: "k", value: fmt.Appendf(nil,
				`{"VendorID":2,"lpep_pickup_datetime":%d,"lpep_dropoff_datetime":%d,"PULocationID":1,"DOLocationID":1,"passenger_count":1,"trip_distance":1.0,"fare_amount":5.0,"tip_amount":0.0,"total_amount":6.0}`,
				now-60_000, now)})
			perWindow[now-now%windowSize.Milliseconds()]++
			sent++
		}
		writeRecords(t, topics.Rides, recs)
		return now
	}
	tick := 50 * time.Millisecond
	// Phase 1: partitions 0..2 for 8 s. Windows must close although partition 3 is empty.
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(tick) {
		send([]int32{0, 1, 2})
	}
	closedInPhase1 := win.Counters.ResultsEmitted.Load()
	// Phase 2: partition 2 pauses; 0 and 1 go on for 10 s.
	idleBefore := in.Counters.Idle.Load() // partition 3
	pausedAt := time.Now()
	lastOfTwo := time.Now().UnixMilli()
	var idleAfterPause, firstCloseAfterPause time.Duration
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(tick) {
		send([]int32{0, 1})
		if idleAfterPause == 0 && in.Counters.Idle.Load() > idleBefore {
			idleAfterPause = time.Since(pausedAt)
		}
		if firstCloseAfterPause == 0 && closedBeyond(win, lastOfTwo) {
			firstCloseAfterPause = time.Since(pausedAt)
		}
	}
	// Phase 3: everything stops; wall-clock time closes the rest.
	stoppedAt := time.Now()
	waitAccountedFor(t, h.p, sent, time.Minute)
	allIdle := time.Since(stoppedAt)
	if closedInPhase1 == 0 {
		t.Errorf("no window closed while partition %d had no ride at all", partitions-1)
	}
	if idleBefore != 1 {
		t.Errorf("%d idle partitions while partitions 0..2 were busy, want 1 (the empty partition 3)", idleBefore)
	}
	if idleAfterPause == 0 || firstCloseAfterPause == 0 {
		t.Errorf("partition 2 paused: found idle after %s, the watermark passed its last ride after %s (0: not within 10 s; idle timeout %s)",
			idleAfterPause, firstCloseAfterPause, testIdleTimeout)
	}
	if late := in.Counters.Late.Load(); late != 0 {
		t.Errorf("%d rides late in a live feed", late)
	}
	// Every window's result holds exactly the rides sent in it.
	results := readAll(t, topics.Results, len(perWindow), time.Minute)
	got := map[int64]int{}
	for _, m := range results {
		var v struct {
			Window struct {
				StartMs int64 `json:"start_ms"`
			} `json:"window"`
			TripCount int `json:"trip_count"`
		}
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Fatal(err)
		}
		got[v.Window.StartMs] += v.TripCount
	}
	if fmt.Sprint(got) != fmt.Sprint(perWindow) {
		t.Errorf("rides per window %v, sent %v", got, perWindow)
	}
	t.Logf("live feed, %d rides in %d windows of %s: %d results while partition 3 was empty; partition 2 paused: found idle %s after its last write (idle timeout %s + commit interval 100ms), the minimum watermark passed its last ride %s after it; after the whole feed stopped, every ride was in a result %s later",
		sent, len(perWindow), windowSize, closedInPhase1, idleAfterPause.Round(time.Millisecond), testIdleTimeout, firstCloseAfterPause.Round(time.Millisecond), allIdle.Round(time.Millisecond))
}

// closedBeyond reports whether the windows stage has emitted (closed) a window
// ending after ms: its minimum watermark passed ms.
func closedBeyond(win interface{ Watermarks() map[int32]int64 }, ms int64) bool {
	wms := win.Watermarks()
	if len(wms) < 4 {
		return false
	}
	for _, wm := range wms {
		if wm <= ms {
			return false
		}
	}
	return true
}

// changelogStateBytes reads an app's windows state changelog (read_committed) and
// sums the sizes of each partition's latest value: the state the app keeps.
func changelogStateBytes(t testing.TB, app string) int {
	t.Helper()
	latest := map[string]int{}
	for _, m := range readAll(t, topology.ChangelogTopic(app), 1, time.Minute) {
		latest[string(m.Key)] = len(m.Value)
	}
	total := 0
	for _, n := range latest {
		total += n
	}
	return total
}
