package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/processors/window"
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
