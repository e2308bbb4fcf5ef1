package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/processors/httpapi/metricstest"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

// fakeInstance is a pipeline as the server sees it.
type fakeInstance struct {
	stats    pipeline.Stats
	health   []pipeline.StageHealth
	stopping bool
	stages   []stageState
	marks    map[int32]watermark.Mark
	tables   []tablePartition
}

func (f *fakeInstance) Stats() pipeline.Stats                   { return f.stats }
func (f *fakeInstance) Health() []pipeline.StageHealth          { return f.health }
func (f *fakeInstance) Stopping() bool                          { return f.stopping }
func (f *fakeInstance) Stages() []stageState                    { return f.stages }
func (f *fakeInstance) Watermarks() map[int32]watermark.Mark    { return f.marks }
func (f *fakeInstance) Owned() []ownedPartition                 { return nil }
func (f *fakeInstance) Tables(context.Context) []tablePartition { return f.tables }

func runningStages() []stageState {
	return []stageState{{Name: "ingest", Started: true, Recovered: true}, {Name: "windows", Started: true, Recovered: true}}
}

// fakeView serves encoded states as the goka view would.
type fakeView struct {
	recovered bool
	values    [][]byte
	ingest    int
}

func (f *fakeView) Recovered() bool { return f.recovered }
func (f *fakeView) Snapshot() (snapshot, error) {
	if !f.recovered {
		return snapshot{}, errNotRecovered
	}
	return mergeStates(f.values, f.ingest)
}

var testNow = time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC) // 08:00 in New York (EDT)

func testServer(t *testing.T, inst instance, view stateReader) *Server {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", Brokers: []string{"127.0.0.1:1"}, InstanceID: "node-1", RecentResults: 5}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: cfg, log: slog.New(slog.DiscardHandler), inst: inst, view: view,
		results: newRecentResults(cfg.RecentResults), now: func() time.Time { return testNow }}
	s.lag = newLagReader(cfg.Brokers, s.kafkaConfig, time.Second)
	s.init()
	return s
}

func get(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthz(t *testing.T) {
	inst := &fakeInstance{stages: runningStages(), health: []pipeline.StageHealth{{Name: "ingest", Running: true, RunningSince: testNow.Add(-time.Hour)}, {Name: "windows", Running: true}}}
	s := testServer(t, inst, &fakeView{recovered: true})
	if code, body := get(t, s, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthy: %d %q", code, body)
	}
	// Five failures in a row and the current run younger than a minute: stuck.
	inst.health[1] = pipeline.StageHealth{Name: "windows", Running: true, RunningSince: testNow.Add(-10 * time.Second),
		Restarts: 7, ConsecutiveFailures: pipeline.StuckAfter, LastError: "eos: commit transaction: broker gone", LastFailure: testNow.Add(-10 * time.Second)}
	code, body := get(t, s, "/healthz")
	if code != 503 || !strings.Contains(body, "stage windows is stuck in a restart loop: 5 failures in a row") || !strings.Contains(body, "broker gone") {
		t.Errorf("stuck stage: %d %q", code, body)
	}
	// The same record after a minute of running: recovered.
	inst.health[1].RunningSince = testNow.Add(-2 * time.Minute)
	if code, body := get(t, s, "/healthz"); code != 200 {
		t.Errorf("stage running for 2 min after its failures: %d %q", code, body)
	}
	// Fewer failures than StuckAfter are not a loop.
	inst.health[1].RunningSince, inst.health[1].ConsecutiveFailures = testNow, pipeline.StuckAfter-1
	if code, _ := get(t, s, "/healthz"); code != 200 {
		t.Errorf("%d failures: %d, want 200", pipeline.StuckAfter-1, code)
	}
	// A query-only server is live.
	if code, _ := get(t, testServer(t, nil, &fakeView{}), "/healthz"); code != 200 {
		t.Errorf("query-only server: %d", code)
	}
}

func TestReadyz(t *testing.T) {
	inst := &fakeInstance{stages: []stageState{{Name: "ingest"}, {Name: "windows"}}}
	view := &fakeView{}
	s := testServer(t, inst, view)
	steps := []struct {
		change func()
		code   int
		want   []string
	}{
		{func() {}, 503, []string{"stage ingest not started", "stage windows not started", "query view"}},
		{func() {
			inst.stages = []stageState{{Name: "ingest", Started: true}, {Name: "windows", Started: true, Recovered: true}}
		},
			503, []string{"stage ingest is recovering its state"}},
		{func() { inst.stages = runningStages() }, 503, []string{"query view of the windows state is still recovering"}},
		{func() { view.recovered = true }, 200, []string{"ready"}},
		{func() { inst.stopping = true }, 503, []string{"shutting down"}},
	}
	for i, st := range steps {
		st.change()
		code, body := get(t, s, "/readyz")
		if code != st.code {
			t.Errorf("step %d: %d %q, want %d", i, code, body, st.code)
		}
		for _, w := range st.want {
			if !strings.Contains(body, w) {
				t.Errorf("step %d: %q does not say %q", i, body, w)
			}
		}
	}
	// A query-only server is ready once its view is.
	if code, _ := get(t, testServer(t, nil, &fakeView{recovered: true}), "/readyz"); code != 200 {
		t.Errorf("query-only server with a recovered view: %d", code)
	}
}

const hour = int64(time.Hour / time.Millisecond)

var t0 = time.Date(2024, 1, 1, 13, 0, 0, 0, time.UTC).UnixMilli()

func cell(start int64, borough string, rides ...aggregate.Ride) aggregate.Entry {
	e := aggregate.Entry{Window: window.Window{StartMs: start, EndMs: start + hour}, Borough: borough}
	for _, r := range rides {
		e.Sums.Add(r)
	}
	return e
}

func encodeState(t *testing.T, partials ...aggregate.Partial) []byte {
	t.Helper()
	var st aggregate.State
	for _, p := range partials {
		st.Apply(p, 0)
	}
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenWindows(t *testing.T) {
	r1 := aggregate.Ride{PassengerCount: 1, HasPassengerCount: true, DistanceHundredths: 150, TipCents: 200, FareCents: 1000, TotalCents: 1450}
	r2 := aggregate.Ride{DistanceHundredths: 225, FareCents: 1250, TotalCents: 1580}
	// Two windows partitions, two ingest partitions; every partition has both
	// ingest partitions' watermarks (the ingest stage sends them everywhere), one of
	// them more recent than the other.
	p0 := encodeState(t,
		aggregate.Partial{Partition: 0, Watermark: t0 + 10*60_000, HasWatermark: true, Entries: []aggregate.Entry{cell(t0, "Queens", r1, r2), cell(t0, "Bronx", r2)}},
		aggregate.Partial{Partition: 1, Watermark: t0 + 5*60_000, HasWatermark: true},
	)
	p1 := encodeState(t,
		aggregate.Partial{Partition: 0, Watermark: t0 + 12*60_000, HasWatermark: true, Entries: []aggregate.Entry{cell(t0+hour, "EWR", r1)}},
		aggregate.Partial{Partition: 1, Watermark: t0 + 4*60_000, HasWatermark: true},
	)
	view := &fakeView{recovered: true, values: [][]byte{p1, nil, p0}, ingest: 2}
	s := testServer(t, &fakeInstance{stages: runningStages()}, view)
	code, body := get(t, s, "/api/v1/windows/open")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var got struct {
		AsOfMs      int64            `json:"as_of_ms"`
		WatermarkMs *int64           `json:"watermark_ms"`
		Final       bool             `json:"final"`
		Windows     []map[string]any `json:"windows"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.AsOfMs != testNow.UnixMilli() {
		t.Errorf("as_of_ms %d", got.AsOfMs)
	}
	// min over ingest partitions of (max over windows partitions): min(12, 5) min.
	if got.WatermarkMs == nil || *got.WatermarkMs != t0+5*60_000 || got.Final {
		t.Errorf("watermark_ms %v final %v, want %d", got.WatermarkMs, got.Final, t0+5*60_000)
	}
	var keys []string
	for _, w := range got.Windows {
		keys = append(keys, fmt.Sprintf("%v/%v/%v/%v", w["window"].(map[string]any)["start"], w["borough"], w["trip_count"], w["provisional"]))
	}
	want := "2024-01-01T13:00:00/Bronx/1/true 2024-01-01T13:00:00/Queens/2/true 2024-01-01T14:00:00/EWR/1/true"
	if strings.Join(keys, " ") != want {
		t.Errorf("windows %v, want %s", keys, want)
	}
	q := got.Windows[1]
	if q["total_fare"] != 22.5 || q["avg_distance"] != 1.88 || q["avg_passenger_count"] != 1.0 {
		t.Errorf("Queens sums: %v", q)
	}
	// The entries are the result JSON plus "provisional": they parse as results.
	raw, _ := json.Marshal(got.Windows[1])
	var res aggregate.Result
	if err := res.UnmarshalJSON(raw); err != nil || res.Sums.Count != 2 || res.Sums.FareCents != 2250 {
		t.Errorf("open window as a result: %+v %v", res, err)
	}
	if _, body := get(t, s, "/api/v1/windows/open?borough=EWR"); strings.Count(body, `"borough"`) != 1 || !strings.Contains(body, `"EWR"`) {
		t.Errorf("borough filter: %s", body)
	}

	// Every partition's final marker: no watermark, final.
	view.values = [][]byte{encodeState(t,
		aggregate.Partial{Partition: 0, Watermark: watermark.Closed, HasWatermark: true},
		aggregate.Partial{Partition: 1, Watermark: watermark.Closed, HasWatermark: true})}
	_, body = get(t, s, "/api/v1/windows/open")
	if !strings.Contains(body, `"watermark_ms":null,"final":true,"windows":[]`) {
		t.Errorf("after the final markers: %s", body)
	}
	// A partition without a watermark: null, not final.
	view.values = [][]byte{encodeState(t, aggregate.Partial{Partition: 0, Watermark: t0, HasWatermark: true})}
	if _, body = get(t, s, "/api/v1/windows/open"); !strings.Contains(body, `"watermark_ms":null,"final":false`) {
		t.Errorf("one partition without a watermark: %s", body)
	}
	view.recovered = false
	if code, body := get(t, s, "/api/v1/windows/open"); code != 503 || !strings.Contains(body, "recovering") {
		t.Errorf("not recovered: %d %s", code, body)
	}
	view.recovered, view.values = true, [][]byte{[]byte("garbage")}
	if code, _ := get(t, s, "/api/v1/windows/open"); code != 500 {
		t.Errorf("corrupt state: %d, want 500", code)
	}
}

func result(start int64, borough string, count int64) aggregate.Result {
	return aggregate.Result{Window: window.Window{StartMs: start, EndMs: start + hour}, Borough: borough,
		Sums: aggregate.Sums{Count: count, FareCents: 100 * count, TotalCents: 150 * count}}
}

func TestRecentResults(t *testing.T) {
	s := testServer(t, nil, &fakeView{recovered: true}) // keeps 5
	add := func(r aggregate.Result) { s.results.Add(r.Key(), r, r.AppendJSON(nil)) }
	// Arrival order mixes partitions: the set kept depends only on the keys.
	for _, i := range []int64{3, 0, 5, 1, 6, 2, 4} {
		add(result(t0+i*hour, "Queens", i+1))
	}
	add(result(t0+6*hour, "Bronx", 1))
	add(result(t0+6*hour, "Queens", 7)) // the same key again: replaced, not repeated
	add(result(t0, "Bronx", 1))         // older than everything kept: dropped
	code, body := get(t, s, "/api/v1/results")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var got struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, raw := range got.Results {
		var r aggregate.Result
		if err := r.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, fmt.Sprintf("%s=%d", r.Key(), r.Sums.Count))
	}
	want := []string{"2024-01-01T16:00:00/Queens=4", "2024-01-01T17:00:00/Queens=5", "2024-01-01T18:00:00/Queens=6",
		"2024-01-01T19:00:00/Bronx=1", "2024-01-01T19:00:00/Queens=7"}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("results %v\nwant %v", keys, want)
	}
	if _, body := get(t, s, "/api/v1/results?limit=2"); strings.Count(body, `"borough"`) != 2 || !strings.Contains(body, "19:00:00") || strings.Contains(body, "17:00:00") {
		t.Errorf("limit=2 must give the latest two: %s", body)
	}
	if _, body := get(t, s, "/api/v1/results?limit=10&borough=Bronx"); strings.Count(body, `"borough"`) != 1 {
		t.Errorf("borough filter: %s", body)
	}
	for _, bad := range []string{"0", "-1", "x"} {
		if code, body := get(t, s, "/api/v1/results?limit="+bad); code != 400 || !strings.Contains(body, "limit") {
			t.Errorf("limit=%s: %d %s", bad, code, body)
		}
	}
	if kept, added := s.results.Len(); kept != 5 || added != 10 {
		t.Errorf("kept %d added %d", kept, added)
	}
}

func TestStatus(t *testing.T) {
	wm := time.Date(2024, 7, 1, 7, 0, 0, 0, time.UTC).UnixMilli() // NY wall clock 07:00; now 08:00 there
	view := &fakeView{recovered: true, ingest: 3, values: [][]byte{encodeState(t,
		aggregate.Partial{Partition: 0, Watermark: wm, HasWatermark: true},
		aggregate.Partial{Partition: 2, Watermark: watermark.Closed, HasWatermark: true})}}
	inst := &fakeInstance{stages: runningStages(), stats: pipeline.Stats{
		Ingest:  pipeline.IngestCounts{In: 10, OnTime: 7, Late: 2, Dead: 1, Markers: 4},
		Windows: pipeline.WindowsCounts{ResultsEmitted: 3, RidesEmitted: 7},
	}}
	s := testServer(t, inst, view)
	code, body := get(t, s, "/api/v1/status")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	want := `{"instance":"node-1","as_of_ms":1719835200000,` +
		`"watermarks":[{"partition":0,"watermark_ms":1719817200000,"event_time_lag_ms":3600000,"final":false},` +
		`{"partition":1,"watermark_ms":null,"event_time_lag_ms":null,"final":false},` +
		`{"partition":2,"watermark_ms":null,"event_time_lag_ms":null,"final":true}],` +
		`"counters":{"rides_in":10,"counted":7,"late":2,"dead":1,"windows_closed":3},` +
		`"consumer_lag":[],"ready":true,"not_ready":[],"errors":[]}` + "\n"
	if body != want {
		t.Errorf("status\n got %s\nwant %s", body, want)
	}
}

// scrape parses /metrics into "name{label=value,...}" -> value.
func scrape(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	code, body := get(t, s, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	return parseMetrics(t, strings.NewReader(body))
}

func parseMetrics(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	out, err := metricstest.Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMetrics(t *testing.T) {
	wm := time.Date(2024, 7, 1, 7, 30, 0, 0, time.UTC).UnixMilli()
	inst := &fakeInstance{
		stages: []stageState{{Name: "ingest", Started: true, Recovered: true}, {Name: "windows", Started: true}},
		health: []pipeline.StageHealth{{Name: "ingest"}, {Name: "windows", Restarts: 2}},
		stats: pipeline.Stats{
			Ingest:         pipeline.IngestCounts{In: 100, OnTime: 90, Late: 6, Dead: 4, Markers: 12},
			Windows:        pipeline.WindowsCounts{Partials: 30, ResultsEmitted: 8, RidesEmitted: 80},
			IngestCommits:  pipeline.CommitCounts{Commits: 40, Time: 2 * time.Second, Paused: 1500 * time.Millisecond, Longest: 300 * time.Millisecond},
			WindowsCommits: pipeline.CommitCounts{Commits: 20, Aborts: 1, Time: time.Second, Longest: 100 * time.Millisecond},
		},
		marks: map[int32]watermark.Mark{0: {Ms: wm, OK: true}, 1: {Ms: watermark.Closed, OK: true}, 2: {}},
		tables: []tablePartition{
			{Partition: 0, Active: true, Recovered: true, Bytes: 120, OpenCells: 3, HasState: true},
			{Partition: 1, Active: false, RestoreRemaining: 42},
		},
	}
	s := testServer(t, inst, &fakeView{recovered: true})
	s.results.Add("k", result(t0, "Queens", 1), []byte("{}"))
	got := scrape(t, s)
	want := map[string]float64{
		"taxi_stream_rides_in_total":                                            100,
		"taxi_stream_rides_counted_total":                                       90,
		"taxi_stream_rides_late_total":                                          6,
		"taxi_stream_dead_letters_total":                                        4,
		"taxi_stream_watermark_markers_total":                                   12,
		"taxi_stream_partials_applied_total":                                    30,
		"taxi_stream_windows_closed_total":                                      8,
		"taxi_stream_rides_closed_total":                                        80,
		"taxi_stream_rides_dropped_total":                                       0,
		"taxi_stream_commits_total{stage=ingest}":                               40,
		"taxi_stream_commits_total{stage=windows}":                              20,
		"taxi_stream_transactions_aborted_total{stage=ingest}":                  0,
		"taxi_stream_transactions_aborted_total{stage=windows}":                 1,
		"taxi_stream_commit_duration_seconds_count{stage=ingest}":               40,
		"taxi_stream_commit_duration_seconds_sum{stage=ingest}":                 2,
		"taxi_stream_commit_duration_max_seconds{stage=windows}":                0.1,
		"taxi_stream_commit_paused_seconds_total{stage=ingest}":                 1.5,
		"taxi_stream_stage_restarts_total{stage=windows}":                       2,
		"taxi_stream_stage_up{stage=ingest}":                                    1,
		"taxi_stream_stage_up{stage=windows}":                                   0,
		"taxi_stream_ready":                                                     0,
		"taxi_stream_query_view_recovered":                                      1,
		"taxi_stream_watermark_seconds{partition=0}":                            float64(wm) / 1000,
		"taxi_stream_event_time_lag_seconds{partition=0}":                       1800,
		"taxi_stream_event_time_lag_seconds{partition=1}":                       0,
		"taxi_stream_state_bytes{partition=0}":                                  120,
		"taxi_stream_state_open_cells{partition=0}":                             3,
		"taxi_stream_state_recovered{mode=active,partition=0}":                  1,
		"taxi_stream_state_recovered{mode=standby,partition=1}":                 0,
		"taxi_stream_state_restore_remaining_records{mode=standby,partition=1}": 42,
		"taxi_stream_recent_results":                                            1,
		"taxi_stream_scrape_errors{part=consumer_lag}":                          0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if v := got["taxi_stream_watermark_seconds{partition=1}"]; !math.IsInf(v, 1) {
		t.Errorf("watermark after the final marker = %v, want +Inf", v)
	}
	if _, ok := got["taxi_stream_watermark_seconds{partition=2}"]; ok {
		t.Error("a partition without a watermark has no watermark metric")
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	// A query-only server has no pipeline metrics.
	q := scrape(t, testServer(t, nil, &fakeView{}))
	if _, ok := q["taxi_stream_rides_in_total"]; ok || q["taxi_stream_query_view_recovered"] != 0 {
		t.Errorf("query-only metrics: %v", q)
	}
}

func TestListenReportsTheBoundAddress(t *testing.T) {
	s := testServer(t, nil, &fakeView{})
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	if strings.HasSuffix(addr.String(), ":0") {
		t.Errorf("bound address %s", addr)
	}
	// The same port cannot be bound twice: a second server fails at Listen.
	other := testServer(t, nil, &fakeView{})
	other.cfg.Addr = addr.String()
	if _, err := other.Listen(); err == nil || !strings.Contains(err.Error(), "--http-addr") {
		t.Errorf("second listen on %s: %v", addr, err)
	}
}

func TestRunServesAndStops(t *testing.T) {
	s := testServer(t, nil, &fakeView{recovered: true})
	// No Kafka here: the background workers just wait for ctx.
	s.runView = func(ctx context.Context) { <-ctx.Done() }
	s.runResults = func(ctx context.Context) { <-ctx.Done() }
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	resp, err := http.Get("http://" + addr.String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ready\n" {
		t.Errorf("/readyz over TCP: %d %q", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get("http://" + addr.String() + "/readyz"); err == nil {
		t.Error("still serving after Run returned")
	}
}

func TestUnlessDoneDoesNotWaitForABlockedCall(t *testing.T) {
	unblock := make(chan struct{})
	released := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err := unlessDone(ctx, func() (int, error) { <-unblock; return 42, nil }, func(v int) { released <- v })
	if err != context.Canceled || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
	close(unblock) // the late result is released, not lost
	select {
	case v := <-released:
		if v != 42 {
			t.Errorf("released %d", v)
		}
	case <-time.After(5 * time.Second):
		t.Error("late result not released")
	}
	v, err := unlessDone(context.Background(), func() (int, error) { return 7, nil }, nil)
	if v != 7 || err != nil {
		t.Errorf("%d %v", v, err)
	}
}
