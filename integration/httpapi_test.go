package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/httpapi"
	"github.com/taxi-stream/taxi-stream/processors/httpapi/metricstest"
	"github.com/taxi-stream/taxi-stream/producer/synth"
	"github.com/taxi-stream/taxi-stream/topology"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
)

// httpServer is an httpapi server running in the test process.
type httpServer struct {
	base string
	stop func()
}

func startHTTPServer(t *testing.T, cfg httpapi.Config) *httpServer {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	cfg.Brokers = kafka.Brokers(t)
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("http", cfg.InstanceID)
	srv, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	return &httpServer{base: "http://" + addr.String(), stop: func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("http server %s: %v", cfg.InstanceID, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("http server %s did not stop", cfg.InstanceID)
		}
	}}
}

func (h *httpServer) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(h.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, body
}

func (h *httpServer) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	code, body := h.get(t, path)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// metrics scrapes /metrics into "name{label=value,...}" (labels sorted) -> value.
func (h *httpServer) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	code, body := h.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	out, err := metricstest.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return out
}

// eventually polls cond every 200 ms until it returns "" or timeout; it fails
// the test with the last reason.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		reason := cond()
		if reason == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, timeout, reason)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type openWindowsBody struct {
	AsOfMs      int64             `json:"as_of_ms"`
	WatermarkMs *int64            `json:"watermark_ms"`
	Final       bool              `json:"final"`
	Windows     []json.RawMessage `json:"windows"`
}

type resultsBody struct {
	Results []json.RawMessage `json:"results"`
}

// cellKey returns a result JSON's key "<window start>/<borough>", its trip count
// and whether it is provisional.
func cellKey(t *testing.T, raw []byte) (string, int64, bool) {
	t.Helper()
	var v struct {
		Window      struct{ Start string }
		Borough     string
		TripCount   int64 `json:"trip_count"`
		Provisional bool
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return v.Window.Start + "/" + v.Borough, v.TripCount, v.Provisional
}

// TestHTTPAPIOnTheRealBroker runs a pipeline with its HTTP server and a second,
// query-only server on synthetic rides (real zones): readiness goes 503 -> 200,
// the metrics equal the pipeline's counters, the open windows and final results
// served from the committed state equal a batch computation over the rides fed,
// and both servers answer the same.
func TestHTTPAPIOnTheRealBroker(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rides.parquet")
	gen := synth.DefaultConfig(2000)
	gen.Seed = 11
	if _, err := synth.WriteFile(context.Background(), file, gen); err != nil {
		t.Fatalf("generate: %v", err)
	}
	want := oracle(t, readParquetRides(t, file), readBoroughs(t, filepath.Join(sharedData(t), "taxi_zone_lookup.csv")))

	const partitions = 3
	topics := pipelineInputs(t, partitions)
	app := topics.Rides + "-app"
	p, cancelPipeline, pipelineDone := startPipelineWithApp(t, topics, eos.ExactlyOnce, "i1", app)
	pipelineStopped := false
	stopPipeline := func() {
		if !pipelineStopped {
			pipelineStopped = true
			cancelPipeline()
			if err := <-pipelineDone; err != nil {
				t.Errorf("pipeline: %v", err)
			}
		}
	}
	defer stopPipeline()
	a := startHTTPServer(t, httpapi.Config{Topology: topology.Config{Topics: topics, App: app}, InstanceID: "i1",
		Pipeline: p, RecentResults: 10_000, LagCacheTTL: 500 * time.Millisecond})
	defer a.stop()

	// Not ready before the stages have recovered their state.
	if code, body := a.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz right after start: %d %s, want 503", code, body)
	} else {
		t.Logf("/readyz at start: %s", strings.TrimSpace(string(body)))
	}
	if code, _ := a.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz at start: %d", code)
	}
	start := time.Now()
	eventually(t, 60*time.Second, "/readyz 200", func() string {
		if code, body := a.get(t, "/readyz"); code != 200 {
			return string(body)
		}
		return ""
	})
	t.Logf("ready after %s", time.Since(start).Round(time.Millisecond))

	// Rides without markers: the data-driven watermark closes the early windows;
	// the last hours stay open.
	n := feedRides(t, topics.Rides, partitions, file, feedOptions{})
	eventually(t, 60*time.Second, "every ride read", func() string {
		if got := a.metrics(t)["taxi_stream_rides_in_total"]; got != float64(n) {
			return fmt.Sprintf("rides_in_total %v, fed %d", got, n)
		}
		return ""
	})

	// The committed state (view) and the results topic together hold every ride.
	var open openWindowsBody
	var closed resultsBody
	eventually(t, 30*time.Second, "open windows + results cover the rides", func() string {
		a.getJSON(t, "/api/v1/windows/open", &open)
		a.getJSON(t, "/api/v1/results?limit=10000", &closed)
		var sum int64
		for _, raw := range append(append([]json.RawMessage{}, open.Windows...), closed.Results...) {
			_, c, _ := cellKey(t, raw)
			sum += c
		}
		if sum != int64(n) {
			return fmt.Sprintf("%d open cells + %d results hold %d rides, fed %d", len(open.Windows), len(closed.Results), sum, n)
		}
		return ""
	})
	if len(open.Windows) == 0 || len(closed.Results) == 0 {
		t.Fatalf("%d open windows, %d results: want both (the data watermark closes early hours only)", len(open.Windows), len(closed.Results))
	}
	seen := map[string]bool{}
	for _, raw := range open.Windows {
		key, _, provisional := cellKey(t, raw)
		if !provisional {
			t.Errorf("open window %s is not marked provisional", key)
		}
		if want[key] == nil {
			t.Errorf("open window %s is not in the batch computation", key)
			continue
		}
		checkResultAgainstOracle(t, key, raw, want[key])
		seen[key] = true
	}
	for _, raw := range closed.Results {
		key, _, provisional := cellKey(t, raw)
		if provisional || seen[key] {
			t.Errorf("result %s: provisional %v, also open %v", key, provisional, seen[key])
		}
		if want[key] == nil {
			t.Errorf("result %s is not in the batch computation", key)
			continue
		}
		checkResultAgainstOracle(t, key, raw, want[key])
		seen[key] = true
	}
	if len(seen) != len(want) {
		t.Errorf("%d cells served, the batch computation has %d", len(seen), len(want))
	}
	t.Logf("%d rides fed: %d open (window, borough) cells, %d final results", n, len(open.Windows), len(closed.Results))

	// Metrics equal the pipeline's counters and the served state.
	var status struct {
		Instance   string
		Watermarks []struct {
			Partition      int32
			WatermarkMs    *int64 `json:"watermark_ms"`
			EventTimeLagMs *int64 `json:"event_time_lag_ms"`
		}
		Counters    map[string]int64
		ConsumerLag []struct {
			Group, Topic string
			Partition    int32
			Lag          int64
		} `json:"consumer_lag"`
		Ready bool
	}
	eventually(t, 20*time.Second, "metrics settle", func() string {
		m := a.metrics(t)
		st := p.Stats()
		var results int64
		for _, raw := range closed.Results {
			_, c, _ := cellKey(t, raw)
			results += c
		}
		checks := []struct {
			name string
			want float64
		}{
			{"taxi_stream_rides_in_total", float64(n)},
			{"taxi_stream_rides_counted_total", float64(n)},
			{"taxi_stream_rides_late_total", 0},
			{"taxi_stream_dead_letters_total", 0},
			{"taxi_stream_windows_closed_total", float64(len(closed.Results))},
			{"taxi_stream_rides_closed_total", float64(results)},
			{"taxi_stream_rides_dropped_total", 0},
			{"taxi_stream_partials_applied_total", float64(st.Windows.Partials)},
			{"taxi_stream_commits_total{stage=ingest}", float64(st.IngestCommits.Commits)},
			{"taxi_stream_transactions_aborted_total{stage=windows}", 0},
			{"taxi_stream_stage_restarts_total{stage=ingest}", 0},
			{"taxi_stream_stage_up{stage=windows}", 1},
			{"taxi_stream_ready", 1},
			{"taxi_stream_query_view_recovered", 1},
			{"taxi_stream_scrape_errors{part=consumer_lag}", 0},
		}
		var bad []string
		for _, c := range checks {
			if got, ok := m[c.name]; !ok || got != c.want {
				bad = append(bad, fmt.Sprintf("%s=%v (present %v) want %v", c.name, got, ok, c.want))
			}
		}
		if st.Ingest.In != int64(n) || st.Windows.ResultsEmitted != int64(len(closed.Results)) {
			bad = append(bad, fmt.Sprintf("pipeline stats %+v", st))
		}
		var cells float64
		for q := range partitions {
			cells += m[fmt.Sprintf("taxi_stream_state_open_cells{partition=%d}", q)]
			if m[fmt.Sprintf("taxi_stream_state_recovered{mode=active,partition=%d}", q)] != 1 {
				bad = append(bad, fmt.Sprintf("windows partition %d not recovered", q))
			}
			lag := fmt.Sprintf("taxi_stream_consumer_lag{group=%s-ingest,partition=%d,topic=%s}", app, q, topics.Rides)
			if got, ok := m[lag]; !ok || got != 0 {
				bad = append(bad, fmt.Sprintf("%s=%v (present %v) want 0", lag, got, ok))
			}
			if _, ok := m[fmt.Sprintf("taxi_stream_watermark_seconds{partition=%d}", q)]; !ok {
				bad = append(bad, fmt.Sprintf("no watermark for ingest partition %d", q))
			}
		}
		if int(cells) != len(open.Windows) {
			bad = append(bad, fmt.Sprintf("state_open_cells sum %v, %d open windows served", cells, len(open.Windows)))
		}
		if m["taxi_stream_commit_duration_seconds_count{stage=windows}"] == 0 {
			bad = append(bad, "no windows commit counted")
		}
		a.getJSON(t, "/api/v1/status", &status)
		if status.Counters["rides_in"] != int64(n) || status.Counters["windows_closed"] != int64(len(closed.Results)) ||
			len(status.Watermarks) != partitions || len(status.ConsumerLag) != 2*partitions || !status.Ready {
			bad = append(bad, fmt.Sprintf("status %+v", status))
		}
		return strings.Join(bad, "; ")
	})
	// The open windows' watermark is the minimum of the partitions' watermarks.
	minWM := int64(watermark.Closed)
	for _, w := range status.Watermarks {
		if w.WatermarkMs == nil || w.EventTimeLagMs == nil {
			t.Fatalf("partition %d has no watermark in /api/v1/status", w.Partition)
		}
		minWM = min(minWM, *w.WatermarkMs)
	}
	if open.WatermarkMs == nil || *open.WatermarkMs != minWM {
		t.Errorf("open windows watermark %v, min of the partitions' %d", open.WatermarkMs, minWM)
	}

	// From any instance: a query-only server (no stage) answers the same.
	b := startHTTPServer(t, httpapi.Config{Topology: topology.Config{Topics: topics, App: app}, InstanceID: "query-only", RecentResults: 10_000})
	defer b.stop()
	eventually(t, 30*time.Second, "query-only server ready", func() string {
		if code, body := b.get(t, "/readyz"); code != 200 {
			return string(body)
		}
		return ""
	})
	var bOpen openWindowsBody
	b.getJSON(t, "/api/v1/windows/open", &bOpen)
	bOpen.AsOfMs = open.AsOfMs
	if x, y := mustJSON(t, bOpen), mustJSON(t, open); x != y {
		t.Errorf("open windows differ between the instances:\nquery-only %.300s\npipeline   %.300s", x, y)
	}
	if m := b.metrics(t); m["taxi_stream_query_view_recovered"] != 1 {
		t.Errorf("query-only server view not recovered in metrics")
	} else if _, ok := m["taxi_stream_rides_in_total"]; ok {
		t.Errorf("a query-only server reports pipeline counters")
	}

	// The final markers close every window: all results appear, nothing stays open.
	var finals []rawRecord
	for part := int32(0); part < partitions; part++ {
		finals = append(finals, rawRecord{part, codecs.MarkerKey,
			codecs.AppendMarkerJSON(nil, codecs.Marker{Type: "watermark", WatermarkMs: time.Now().UnixMilli(), Final: true}),
			map[string]string{codecs.HeaderKind: codecs.KindWatermark}})
	}
	writeRecords(t, topics.Rides, finals)
	var aResults, bResults resultsBody
	for _, srv := range []*httpServer{a, b} {
		eventually(t, 30*time.Second, "all results served", func() string {
			srv.getJSON(t, "/api/v1/windows/open", &open)
			srv.getJSON(t, "/api/v1/results?limit=10000", &closed)
			if len(open.Windows) != 0 || !open.Final || len(closed.Results) != len(want) {
				return fmt.Sprintf("%d open, final %v, %d of %d results", len(open.Windows), open.Final, len(closed.Results), len(want))
			}
			return ""
		})
		if srv == a {
			aResults = closed
		} else {
			bResults = closed
		}
	}
	for _, raw := range aResults.Results {
		key, _, _ := cellKey(t, raw)
		checkResultAgainstOracle(t, key, raw, want[key])
	}
	if mustJSON(t, aResults) != mustJSON(t, bResults) {
		t.Error("results differ between the instances")
	}
	if code, body := a.get(t, "/api/v1/results?limit=3"); code != 200 || strings.Count(string(body), `"borough"`) != 3 {
		t.Errorf("limit=3: %d %s", code, body)
	}

	// A stopping pipeline is not ready (the server outlives it, as taxi-stream runs it).
	cancelPipeline()
	eventually(t, 5*time.Second, "/readyz 503 while stopping", func() string {
		if code, body := a.get(t, "/readyz"); code != 503 || !strings.Contains(string(body), "shutting down") {
			return fmt.Sprintf("%d %s", code, body)
		}
		return ""
	})
	stopPipeline()
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHTTPAPIServerLeavesNoGoroutines starts and stops a query-only server (view,
// results reader, consumer lag) on the real broker: every goroutine it started
// ends (goka's View does not close its own Kafka clients; the server does).
// verifyNoLeaks (shutdown_test.go) checks with goleak.
func TestHTTPAPIServerLeavesNoGoroutines(t *testing.T) {
	topics := testTopics(t)
	app := topics.Rides + "-app"
	admin := kafka.Admin(t)
	createTopic(t, admin, topics.Rides, 2, nil)
	tcfg := topology.Config{Topics: topics, App: app, IngestPartitions: 2}.WithDefaults()
	if err := topology.EnsureTopics(admin, topology.ProcessorTopics(tcfg), -1); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	before := goleak.IgnoreCurrent()
	s := startHTTPServer(t, httpapi.Config{Topology: topology.Config{Topics: topics, App: app}, InstanceID: "leak-check"})
	eventually(t, 30*time.Second, "ready", func() string {
		if code, body := s.get(t, "/readyz"); code != 200 {
			return string(body)
		}
		return ""
	})
	var open openWindowsBody
	s.getJSON(t, "/api/v1/windows/open", &open)
	if len(open.Windows) != 0 || open.WatermarkMs != nil {
		t.Errorf("empty state: %+v", open)
	}
	s.stop()
	verifyNoLeaks(t, before)
}
