package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
	"github.com/taxi-stream/taxi-stream/integration/testio"
)

// TestVendoredChartLibraryMatchesLockfile: the chart library served by the page is
// exactly the version package-lock.json pins (run `make web-vendor` after changing it).
func TestVendoredChartLibraryMatchesLockfile(t *testing.T) {
	var lock struct {
		Packages map[string]struct {
			Version   string `json:"version"`
			Integrity string `json:"integrity"`
			License   string `json:"license"`
		} `json:"packages"`
	}
	readJSON(t, "web/package-lock.json", &lock)
	locked, ok := lock.Packages["node_modules/uplot"]
	if !ok || locked.Version == "" || locked.Integrity == "" {
		t.Fatalf("package-lock.json pins no uplot version with an integrity hash: %+v", locked)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	readJSON(t, "web/package.json", &pkg)
	if pkg.Dependencies["uplot"] != locked.Version {
		t.Errorf("package.json wants uplot %q, the lock file has %s: pin the exact version", pkg.Dependencies["uplot"], locked.Version)
	}

	js, err := web.ReadFile("web/vendor/uPlot.iife.min.js")
	if err != nil {
		t.Fatal(err)
	}
	banner := regexp.MustCompile(`^/\*! https://github.com/leeoniya/uPlot \(v([0-9.]+)\) \*/`).FindSubmatch(js)
	if banner == nil {
		t.Fatalf("vendor/uPlot.iife.min.js has no uPlot version banner: %.80q", js)
	}
	if got := string(banner[1]); got != locked.Version {
		t.Errorf("vendored uPlot is v%s, package-lock.json pins %s: run make web-vendor", got, locked.Version)
	}
	css, err := web.ReadFile("web/vendor/uPlot.min.css")
	if err != nil || !strings.Contains(string(css), ".uplot") {
		t.Errorf("vendor/uPlot.min.css missing or not uPlot's stylesheet (err %v)", err)
	}
	lic, err := web.ReadFile("web/vendor/uPlot.LICENSE")
	if err != nil || !strings.Contains(string(lic), "MIT License") || locked.License != "MIT" {
		t.Errorf("vendor/uPlot.LICENSE missing or not the MIT license the lock file names (%q, err %v)", locked.License, err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func newTestServer(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(Config{Brokers: []string{"127.0.0.1:1"}, ResultsTopic: "results"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs
}

func TestServesThePageAndItsAssets(t *testing.T) {
	_, hs := newTestServer(t)
	for path, want := range map[string]string{
		"/":                          "text/html",
		"/app.js":                    "text/javascript",
		"/style.css":                 "text/css",
		"/vendor/uPlot.iife.min.js":  "text/javascript",
		"/vendor/uPlot.min.css":      "text/css",
		"/api/results":               "application/json",
		"/healthz":                   "text/plain",
		"/vendor/../../dashboard.go": "", // must not escape the embedded tree
	} {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want == "" {
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), "package dashboard") {
				t.Errorf("%s served Go source", path)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) {
			t.Errorf("GET %s: %s %q, want 200 %s", path, resp.Status, resp.Header.Get("Content-Type"), want)
		}
	}
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct{ id, event, data string }

type sseReader struct {
	resp *http.Response
	sc   *bufio.Scanner
	ch   chan sseEvent
}

func openEvents(t *testing.T, url, lastEventID string) *sseReader {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/events", nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	r := &sseReader{resp: resp, sc: bufio.NewScanner(resp.Body), ch: make(chan sseEvent, 100)}
	r.sc.Buffer(nil, 16<<20)
	go func() {
		defer close(r.ch)
		var ev sseEvent
		for r.sc.Scan() {
			line := r.sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					r.ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return r
}

// next returns the next event of the given kind, skipping others.
func (r *sseReader) next(t *testing.T, kind string) sseEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-r.ch:
			if !ok {
				t.Fatalf("stream ended waiting for %q", kind)
			}
			if ev.event == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event within 5s", kind)
		}
	}
}

func resultKeys(t *testing.T, ev sseEvent) []string {
	t.Helper()
	var es []entry
	if err := json.Unmarshal([]byte(ev.data), &es); err != nil {
		t.Fatalf("results event: %v: %s", err, ev.data)
	}
	var keys []string
	for _, e := range es {
		var v struct {
			Borough string `json:"borough"`
		}
		if err := json.Unmarshal(e.Value, &v); err != nil || v.Borough == "" {
			t.Fatalf("result value is not the result JSON: %s", e.Value)
		}
		keys = append(keys, e.Key)
	}
	return keys
}

func resultJSON(start int, borough string, trips int) []byte {
	return fmt.Appendf(nil, `{"window":{"start_ms":%d,"end_ms":%d},"borough":%q,"trip_count":%d}`, start, start+3600000, borough, trips)
}

// TestEventsSendHistoryThenLiveAndResume: a new connection gets every result held,
// then new ones as they come; a reconnect with this server's Last-Event-ID gets only
// what it missed; one with another server's id (a restart) gets everything again.
func TestEventsSendHistoryThenLiveAndResume(t *testing.T) {
	s, hs := newTestServer(t)
	for i := range historyBatch + 3 { // more than one event's worth
		if !s.hub.addResult(fmt.Sprintf("h%04d/Queens", i), resultJSON(i*3600000, "Queens", i)) {
			t.Fatal("new result dropped")
		}
	}
	if s.hub.addResult("h0000/Queens", resultJSON(0, "Queens", 0)) {
		t.Fatal("an identical re-read result (reader restarted from the oldest offset) was kept twice")
	}
	s.hub.setStatus([]byte(`{"as_of_ms":1}`))

	r := openEvents(t, hs.URL, "")
	var hello struct {
		Epoch        string `json:"epoch"`
		ResultsTopic string `json:"results_topic"`
	}
	if err := json.Unmarshal([]byte(r.next(t, "hello").data), &hello); err != nil || hello.Epoch != s.epoch || hello.ResultsTopic != "results" {
		t.Fatalf("hello %+v, %v", hello, err)
	}
	first := r.next(t, "results")
	second := r.next(t, "results")
	keys := append(resultKeys(t, first), resultKeys(t, second)...)
	if len(keys) != historyBatch+3 || keys[0] != "h0000/Queens" || keys[len(keys)-1] != fmt.Sprintf("h%04d/Queens", historyBatch+2) {
		t.Fatalf("history: %d keys, first %q", len(keys), keys[0])
	}
	if want := fmt.Sprintf("%s-%d", s.epoch, historyBatch+3); second.id != want {
		t.Fatalf("event id %q, want %q", second.id, want)
	}
	r.next(t, "synced")
	if st := r.next(t, "status"); st.data != `{"as_of_ms":1}` {
		t.Fatalf("status %s", st.data)
	}

	// Live: a new result and a new status reach the open stream.
	s.hub.addResult("live/Bronx", resultJSON(99*3600000, "Bronx", 7))
	if got := resultKeys(t, r.next(t, "results")); len(got) != 1 || got[0] != "live/Bronx" {
		t.Fatalf("live results %v", got)
	}
	s.hub.setStatus([]byte(`{"as_of_ms":2}`))
	if st := r.next(t, "status"); st.data != `{"as_of_ms":2}` {
		t.Fatalf("status %s", st.data)
	}

	// Reconnect with this server's id: only what came after.
	s.hub.addResult("later/Brooklyn", resultJSON(100*3600000, "Brooklyn", 1))
	r2 := openEvents(t, hs.URL, fmt.Sprintf("%s-%d", s.epoch, historyBatch+4))
	if got := resultKeys(t, r2.next(t, "results")); len(got) != 1 || got[0] != "later/Brooklyn" {
		t.Fatalf("resumed results %v", got)
	}
	// Another server's id (this one restarted): everything again.
	r3 := openEvents(t, hs.URL, "otherepoch-3")
	if got := resultKeys(t, r3.next(t, "results")); len(got) != historyBatch || got[0] != "h0000/Queens" {
		t.Fatalf("after restart: %d keys from %q, want the whole history", len(got), got[0])
	}
}

// TestPollMergesInstances: counters are summed over instances, watermarks and open
// windows come from one instance, consumer lag is the union, and an unreachable
// instance is reported, not fatal.
func TestPollMergesInstances(t *testing.T) {
	api := func(instance string, rides int, lagPart int32, wm string) *httptest.Server {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `{"instance":%q,"watermarks":[{"partition":1,"watermark_ms":%s,"event_time_lag_ms":5},{"partition":0,"watermark_ms":%s,"event_time_lag_ms":null}],
				"counters":{"rides_in":%d,"counted":%d,"late":1,"dead":0,"windows_closed":2},
				"consumer_lag":[{"group":"app-ingest","topic":"rides","partition":%d,"lag":%d}],"ready":true}`, instance, wm, wm, rides, rides-1, lagPart, 10*lagPart)
		})
		mux.HandleFunc("GET /api/v1/windows/open", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `{"as_of_ms":1,"watermark_ms":%s,"windows":[{"window":{"start_ms":0,"end_ms":3600000},"borough":"Queens","trip_count":3,"provisional":true}]}`, wm)
		})
		hs := httptest.NewServer(mux)
		t.Cleanup(hs.Close)
		return hs
	}
	a, b := api("a", 100, 0, "1000"), api("b", 50, 1, "2000")
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "stage restarting", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)

	q := &querier{urls: []string{down.URL, a.URL, b.URL + "/"}, client: http.DefaultClient}
	st := q.poll(context.Background())
	if !st.HaveQuery {
		t.Fatal("no instance counted as answering")
	}
	if st.Counters["rides_in"] != 150 || st.Counters["counted"] != 148 || st.Counters["late"] != 2 || st.Counters["windows_closed"] != 4 {
		t.Errorf("counters %v, want the sums", st.Counters)
	}
	if st.WatermarkMs == nil || *st.WatermarkMs != 1000 || len(st.OpenWindows) != 1 {
		t.Errorf("watermark %v, %d open windows: want instance a's", st.WatermarkMs, len(st.OpenWindows))
	}
	if len(st.Watermarks) != 2 || st.Watermarks[0].Partition != 0 || *st.Watermarks[1].WatermarkMs != 1000 || st.Watermarks[0].EventTimeLagMs != nil {
		t.Errorf("watermarks %+v", st.Watermarks)
	}
	if len(st.ConsumerLag) != 2 || st.ConsumerLag[1].Lag != 10 {
		t.Errorf("consumer lag %+v", st.ConsumerLag)
	}
	if len(st.Instances) != 3 || st.Instances[0].Up || !strings.Contains(st.Instances[0].Error, "503") || !st.Instances[1].Up || st.Instances[2].Instance != "b" {
		t.Errorf("instances %+v", st.Instances)
	}
}

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"[::]:8090":      "http://localhost:8090/",
		"0.0.0.0:8090":   "http://localhost:8090/",
		"127.0.0.1:4000": "http://127.0.0.1:4000/",
	} {
		if got := URL(addr(in)); got != want {
			t.Errorf("URL(%s) = %s, want %s", in, got, want)
		}
	}
}

type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }

// closedPort returns 127.0.0.1:<port> where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestBrokerUnreachableIsReported: with nothing listening at the broker address the
// status (/api/status, the page's status events) and the log say "broker
// unreachable", and the status keeps saying it across the reader's retries.
func TestBrokerUnreachableIsReported(t *testing.T) {
	var logs syncBuffer
	broker := closedPort(t)
	s, err := New(Config{Brokers: []string{broker}, ResultsTopic: "results", PollInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = s.Run(ctx) }()
	defer func() { cancel(); <-ran }()

	status := func() Status {
		t.Helper()
		resp, err := http.Get(hs.URL + "/api/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	deadline := time.Now().Add(20 * time.Second)
	st := status()
	for st.Results.Error == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		st = status()
	}
	if !strings.HasPrefix(st.Results.Error, "broker unreachable") || !st.Results.BrokerUnreachable || !strings.Contains(st.Results.Error, broker) {
		t.Fatalf("status results %+v, want an error starting with broker unreachable and naming %s", st.Results, broker)
	}
	// The reader retries after 0.5 s, 0.75 s, ...: the status must not go blank meanwhile.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if st := status(); !strings.HasPrefix(st.Results.Error, "broker unreachable") {
			t.Fatalf("during a retry the status said %q", st.Results.Error)
		}
	}
	cancel()
	<-ran
	out := logs.String()
	if !strings.Contains(out, `level=WARN msg="broker unreachable; retrying"`) || !strings.Contains(out, "connection refused") {
		t.Errorf("log does not say broker unreachable with the cause:\n%s", out)
	}
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1 (repeats at debug level):\n%s", n, out)
	}
}

// TestFollowErrorClearsOnlyWhenResolved: a "broker unreachable" error is cleared
// when a broker answers; another error only once the reader has run for a while
// and no newer error came.
func TestFollowErrorClearsOnlyWhenResolved(t *testing.T) {
	s, _ := newTestServer(t)
	s.setFollowErr(errors.New("topic results does not exist"))
	gen := s.clearUnreachable()
	if st := s.status(context.Background()); st.Results.Error == "" {
		t.Fatal("a broker answering cleared a topic error")
	}
	s.setFollowErr(errors.New("topic results does not exist")) // the reader failed again
	s.clearFollowErr(gen)                                      // a late timer of the earlier run
	if st := s.status(context.Background()); st.Results.Error == "" {
		t.Fatal("an earlier run's timer cleared a newer error")
	}
	s.clearFollowErr(s.clearUnreachable())
	if st := s.status(context.Background()); st.Results.Error != "" {
		t.Fatalf("error %q not cleared after the reader ran", st.Results.Error)
	}
	s.setFollowErr(cli.ExplainUnreachable(fmt.Errorf("connect: %w", sarama.ErrOutOfBrokers)))
	if st := s.status(context.Background()); !st.Results.BrokerUnreachable {
		t.Fatalf("status %+v, want broker_unreachable", st.Results)
	}
	s.clearUnreachable()
	if st := s.status(context.Background()); st.Results.Error != "" || st.Results.BrokerUnreachable {
		t.Fatalf("status %+v after a broker answered", st.Results)
	}
}

// syncBuffer is a bytes.Buffer for a logger used from several goroutines.
type syncBuffer = testio.Buffer
