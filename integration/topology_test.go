package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

// TestSlidingWindowsEqualBatchOracle: with --window 1h --slide 30m (Spark's
// window(col, "1 hour", "30 minutes")) every ride counts in both windows that cover
// it; the results equal an independent batch computation to the cent.
func TestSlidingWindowsEqualBatchOracle(t *testing.T) {
	data := sharedData(t)
	const name = "green_tripdata_2024-01.parquet"
	path := filepath.Join(data, name)
	rides := readParquetRides(t, path)
	want := oracleWindows(t, rides, readBoroughs(t, filepath.Join(data, "taxi_zone_lookup.csv")), time.Hour, 30*time.Minute)

	topics := pipelineInputs(t, 3)
	if n := feedRides(t, topics.Rides, 3, path, feedOptions{markers: true}); n != len(rides) {
		t.Fatalf("fed %d rides, the oracle read %d", n, len(rides))
	}
	h := startPipelineApp(t, topics, eos.ExactlyOnce, "i1", topics.Rides+"-app", func(o *pipeline.Options) {
		o.Topology.Window = window.Spec{Size: time.Hour, Slide: 30 * time.Minute}
	})
	defer h.stop()

	got := map[string][]byte{}
	for _, m := range readAll(t, topics.Results, len(want), 3*time.Minute) {
		if _, dup := got[string(m.Key)]; dup {
			t.Errorf("result %s written more than once", m.Key)
		}
		got[string(m.Key)] = m.Value
	}
	var inWindows int64
	for key, c := range want {
		v, ok := got[key]
		if !ok {
			t.Errorf("no result for %s (oracle: %d rides)", key, c.count)
			continue
		}
		checkResultAgainstOracle(t, key, v, c)
		inWindows += c.count
		var r aggregate.Result
		if err := json.Unmarshal(v, &r); err != nil {
			t.Fatalf("result %s: %v", key, err)
		}
		if r.Window.EndMs-r.Window.StartMs != time.Hour.Milliseconds() {
			t.Errorf("result %s: window %d .. %d, want one hour", key, r.Window.StartMs, r.Window.EndMs)
		}
	}
	for key := range got {
		if want[key] == nil {
			t.Errorf("result %s is not in the oracle", key)
		}
	}
	if inWindows != 2*int64(len(rides)) {
		t.Errorf("the windows hold %d ride counts, want every ride twice (%d)", inWindows, 2*len(rides))
	}
	t.Logf("%s, 1h windows sliding by 30m: %d results equal to the oracle", name, len(want))
}

// TestZoneUpdateIsPickedUpWithoutRestart: a change to the zones topic reaches the
// running processor's lookup: rides of later windows count under the new borough,
// and no ride is lost or counted twice while the update propagates.
func TestZoneUpdateIsPickedUpWithoutRestart(t *testing.T) {
	topics := testTopics(t)
	admin := kafka.Admin(t)
	createTopic(t, admin, topics.Rides, 3, nil)
	createTopic(t, admin, topics.Zones, 1, map[string]string{"cleanup.policy": "compact"})
	writeRecords(t, topics.Zones, []rawRecord{
		{0, "7", []byte(`{"LocationID":7,"Borough":"Queens","Zone":"Astoria","service_zone":"Boro Zone"}`), nil},
	})
	h := startPipelineApp(t, topics, eos.ExactlyOnce, "i1", topics.Rides+"-app")
	defer h.stop()

	marker := func(part int32, wm int64) rawRecord {
		return rawRecord{part, codecs.MarkerKey, codecs.AppendMarkerJSON(nil, codecs.Marker{Type: "watermark", WatermarkMs: wm}),
			map[string]string{codecs.HeaderKind: codecs.KindWatermark}}
	}
	base := time.Date(2024, 1, 1, 13, 0, 0, 0, time.UTC)
	// closeHour writes two rides from zone 7 into the hour, then markers that move
	// every partition's watermark past the hour's end (+ the 10 minute delay), and
	// returns the hour's result key prefix.
	rides := 0
	closeHour := func(hour int) int64 {
		start := base.Add(time.Duration(hour) * time.Hour)
		at := func(d time.Duration) string { return start.Add(d).Format("2006-01-02 15:04:05") }
		recs := []rawRecord{
			{0, fmt.Sprintf("h%d-a", hour), rideJSON(at(5*time.Minute), 7, "1", "1.5", "10.00", "2.00", "14.5"), nil},
			{1, fmt.Sprintf("h%d-b", hour), rideJSON(at(40*time.Minute), 7, "2", "2.5", "12.00", "1.00", "15.5"), nil},
		}
		rides += 2
		for part := int32(0); part < 3; part++ {
			recs = append(recs, marker(part, start.Add(time.Hour+10*time.Minute).UnixMilli()))
		}
		writeRecords(t, topics.Rides, recs)
		return start.UnixMilli()
	}
	waitResult := func(hour int64) (borough string, count int64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			for _, m := range readAll(t, topics.Results, 0, time.Second) {
				var r aggregate.Result
				if err := json.Unmarshal(m.Value, &r); err != nil {
					t.Fatalf("result %s: %v", m.Key, err)
				}
				if r.Window.StartMs == hour {
					return r.Borough, r.Sums.Count
				}
			}
		}
		t.Fatalf("no result for the hour starting %s", time.UnixMilli(hour).UTC())
		return "", 0
	}

	first := closeHour(0)
	if b, n := waitResult(first); b != "Queens" || n != 2 {
		t.Fatalf("first hour: %s %d, want Queens 2", b, n)
	}
	writeRecords(t, topics.Zones, []rawRecord{
		{0, "7", []byte(`{"LocationID":7,"Borough":"Brooklyn","Zone":"Astoria (renamed)","service_zone":"Boro Zone"}`), nil},
	})
	updated := time.Now()
	counted := int64(2)
	for hour := 1; ; hour++ {
		key := closeHour(hour)
		b, n := waitResult(key)
		counted += n
		if b == "Brooklyn" {
			t.Logf("the zone update was used %s after it was written (hour %d)", time.Since(updated).Round(time.Millisecond), hour)
			break
		}
		if b != "Queens" {
			t.Fatalf("hour starting %s counted under %q", time.UnixMilli(key).UTC(), b)
		}
		if hour == 20 {
			t.Fatalf("the zone update was not picked up after %d windows (%s)", hour, time.Since(updated).Round(time.Millisecond))
		}
	}
	if counted != int64(rides) {
		t.Errorf("results count %v rides, %d were written", counted, rides)
	}
}

// TestCleanRestartKeepsLocalState: after a clean stop (SIGTERM: final commit, CLEAN
// marker) a restart with the same state directory recovers nothing from the
// changelog; without the marker (a crash) it rebuilds the state from the whole
// changelog. Both restarts end with the same results.
func TestCleanRestartKeepsLocalState(t *testing.T) {
	data := sharedData(t)
	path := filepath.Join(data, "green_tripdata_2024-01.parquet")
	want := oracle(t, readParquetRides(t, path), readBoroughs(t, filepath.Join(data, "taxi_zone_lookup.csv")))
	topics := pipelineInputs(t, 3)
	n := feedRides(t, topics.Rides, 3, path, feedOptions{markers: true})
	stateDir := t.TempDir()
	app := topics.Rides + "-app"
	withDir := func(o *pipeline.Options) { o.StateDir = stateDir }

	// recovered returns how many changelog records the windows stage read to recover.
	recovered := func(p *pipeline.Pipeline) (records uint) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			_, win := p.Processors()
			if win != nil {
				stats := win.Stats()
				done := len(stats.Group) > 0
				records = 0
				for _, ps := range stats.Group {
					if ps.TableStats == nil || ps.TableStats.Status < goka.PartitionRunning {
						done = false
						continue
					}
					records += ps.TableStats.Input.Count
				}
				if done {
					return records
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("the windows stage did not recover within 3 minutes")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	first := startPipelineApp(t, topics, eos.ExactlyOnce, "i1", app, withDir)
	// Every window closes (the feed ends with final markers): wait for all of them,
	// however slow the machine, then for the ingest stage to have read every ride.
	results := sortedRecords(t, topics.Results, len(want))
	if len(results) != len(want) {
		t.Fatalf("the first run wrote %d results, the oracle has %d", len(results), len(want))
	}
	in, _ := first.p.Stages()
	eventually(t, 3*time.Minute, "the ingest stage reads every ride", func() string {
		if got := in.Counters.In.Load(); got != int64(n) {
			return fmt.Sprintf("read %d rides, %d were fed", got, n)
		}
		return ""
	})
	first.stop() // clean: commits, writes the CLEAN marker
	changelog := topicRecords(t, string(goka.GroupTable(goka.Group(app+"-windows"))))
	if changelog == 0 {
		t.Fatal("the windows changelog is empty")
	}

	second := startPipelineApp(t, topics, eos.ExactlyOnce, "i1", app, withDir)
	if got := recovered(second.p); got != 0 {
		t.Errorf("after a clean stop the restart read %d changelog records, want 0 (the local state is kept)", got)
	}
	second.stop()

	// A crash leaves no CLEAN marker: the state is rebuilt from the changelog.
	if err := os.Remove(filepath.Join(stateDir, app+"-windows", "CLEAN")); err != nil {
		t.Fatal(err)
	}
	third := startPipelineApp(t, topics, eos.ExactlyOnce, "i1", app, withDir)
	if got := recovered(third.p); got == 0 {
		t.Errorf("without the CLEAN marker the restart read no changelog records; want the state rebuilt (changelog: %d offsets)", changelog)
	} else {
		t.Logf("clean restart: 0 changelog records read; after a crash: %d records read (changelog %d offsets incl. transaction markers)", got, changelog)
	}
	third.stop()
	// The restarts wrote no result again and none differently.
	if again := sortedRecords(t, topics.Results, len(results)); !equalLines(again, results) {
		t.Errorf("results topic after the restarts (%d records) differs from before (%d): %s", len(again), len(results), firstDiff(again, results))
	}
}
