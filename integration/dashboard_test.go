package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/httpapi"
	"github.com/taxi-stream/taxi-stream/processors/results"
	"github.com/taxi-stream/taxi-stream/producer/synth"
	"github.com/taxi-stream/taxi-stream/topology"
)

// chromiumPath is Debian's chromium (`make browser` installs it); $CHROMIUM overrides.
func chromiumPath(t *testing.T) string {
	p := envString("CHROMIUM", "/usr/bin/chromium")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium not found at %s (CI is set; `make browser` installs it): %v", p, err)
		}
		t.Skipf("chromium not found at %s (`make browser` installs it): %v", p, err)
	}
	return p
}

// artifactDir is $TEST_ARTIFACTS, else a directory under the OS temp dir.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "taxi-stream-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// resultsTruth is what a downstream consumer reads from the results topic
// (read_committed): key -> value JSON.
type resultsTruth struct {
	mu sync.Mutex
	m  map[string]json.RawMessage
}

func followResults(t *testing.T, topic string) *resultsTruth {
	tr := &resultsTruth{m: map[string]json.RawMessage{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- results.Follow(ctx, results.FollowConfig{Brokers: kafka.Brokers(t), Topic: topic, Sarama: eos.DefaultSaramaConfig},
			func(r results.Record, err error) {
				if err != nil {
					t.Errorf("unreadable result %s: %v", r.Key, err)
					return
				}
				tr.mu.Lock()
				tr.m[r.Key] = bytes.Clone(r.Value)
				tr.mu.Unlock()
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("results reader: %v", err)
		}
	})
	return tr
}

func (tr *resultsTruth) snapshot() map[string]json.RawMessage {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make(map[string]json.RawMessage, len(tr.m))
	for k, v := range tr.m {
		out[k] = v
	}
	return out
}

// cell is one (window, borough) of a result or open window JSON.
type cell struct {
	Window struct {
		StartMs int64 `json:"start_ms"`
	} `json:"window"`
	Borough string `json:"borough"`
}

// metricValue decodes a result JSON's metric (nil for JSON null).
func metricValue(t *testing.T, raw json.RawMessage, metric string) *float64 {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	field, ok := m[metric]
	if !ok {
		t.Fatalf("result has no %s: %s", metric, raw)
	}
	var v *float64
	if err := json.Unmarshal(field, &v); err != nil {
		t.Fatalf("%s of %s: %v", metric, raw, err)
	}
	return v
}

// pageChart is window.__dashboard.chart(): the arrays uPlot draws, by series label.
type pageChart struct {
	Metric string                `json:"metric"`
	X      []float64             `json:"x"`
	Series map[string][]*float64 `json:"series"`
}

func fmtPtr(v *float64) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprint(*v)
}

// chartMismatches compares the chart's final series with the results topic: every
// record's value is plotted at its (hour, borough), and every non-zero final point
// is a record.
func chartMismatches(t *testing.T, ch pageChart, truth map[string]json.RawMessage) []string {
	t.Helper()
	at := map[int64]int{}
	for i, x := range ch.X {
		at[int64(x)] = i
	}
	var bad []string
	seen := map[string]bool{}
	for key, raw := range truth {
		var c cell
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		seen[fmt.Sprint(c.Window.StartMs, "/", c.Borough)] = true
		want := metricValue(t, raw, ch.Metric)
		i, ok := at[c.Window.StartMs]
		series := ch.Series[c.Borough]
		switch {
		case !ok || series == nil:
			bad = append(bad, fmt.Sprintf("%s: not in the chart", key))
		case fmtPtr(series[i]) != fmtPtr(want):
			bad = append(bad, fmt.Sprintf("%s: chart %s = %s, results topic %s", key, ch.Metric, fmtPtr(series[i]), fmtPtr(want)))
		}
	}
	for label, vs := range ch.Series {
		if strings.Contains(label, "(open") {
			continue
		}
		for i, v := range vs {
			if v != nil && *v != 0 && !seen[fmt.Sprint(int64(ch.X[i]), "/", label)] {
				bad = append(bad, fmt.Sprintf("chart has %s %v at %d/%s, the results topic has no such record", ch.Metric, *v, int64(ch.X[i]), label))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// TestDashboardInChromium runs the pipeline on a real broker, the taxi-dashboard
// program and the processor's query API, and checks the page in headless Chromium:
// the chart's data equals the results topic, a window that closes later appears
// without a reload, open windows are shown as provisional with the query API's
// values, and the page reconnects and keeps updating after the dashboard restarts.
func TestDashboardInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: starts Kafka, the pipeline and Chromium")
	}
	chromium := chromiumPath(t)
	start := time.Now()
	dir := t.TempDir()
	root := moduleRoot(t)

	bin := filepath.Join(dir, "taxi-dashboard")
	build := exec.Command("go", "build", "-o", bin, "./cmd/taxi-dashboard")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build taxi-dashboard: %v\n%s", err, out)
	}

	// Input: three months of generated rides (real zones), fed one month at a time
	// without watermark markers, so the stream never ends: each month closes the
	// previous one's last open hours (data-mode watermark, docs/design.md).
	months := []string{"2025-01", "2025-02", "2025-03"}
	rows := []int64{12_000, 2_500, 2_500}
	files := make([]string, len(months))
	for i, m := range months {
		cfg := synth.DefaultConfig(rows[i])
		cfg.Seed = uint64(11 + i)
		mt, err := synth.ParseMonth(m)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Month = mt
		files[i] = filepath.Join(dir, "green_synth_"+m+".parquet")
		if _, err := synth.WriteFile(context.Background(), files[i], cfg); err != nil {
			t.Fatalf("generate %s: %v", m, err)
		}
	}

	topics := pipelineInputs(t, 3)
	app := topics.Rides + "-app"
	h := startPipelineApp(t, topics, eos.ExactlyOnce, "dash", app)
	defer h.stop()
	truth := followResults(t, topics.Results)

	// The processor's query API (read_committed view of the windows state).
	api, err := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0", Brokers: kafka.Brokers(t),
		Topology: topology.Config{Topics: topics, App: app}, InstanceID: "dash", Pipeline: h.p})
	if err != nil {
		t.Fatal(err)
	}
	apiAddr, err := api.Listen()
	if err != nil {
		t.Fatal(err)
	}
	apiURL := "http://" + apiAddr.String()
	apiCtx, stopAPI := context.WithCancel(context.Background())
	apiDone := make(chan error, 1)
	go func() { apiDone <- api.Run(apiCtx) }()
	defer func() {
		stopAPI()
		if err := <-apiDone; err != nil {
			t.Errorf("query API: %v", err)
		}
	}()

	// The dashboard, as a separate program, so that it can be restarted.
	startDashboard := func(name, addr string) (*instance, string) {
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		in := &instance{name: name, log: logf, args: []string{
			"--brokers", strings.Join(kafka.Brokers(t), ","), "--results-topic", topics.Results,
			"--query-url", apiURL, "--http-addr", addr, "--log-level", "debug"}}
		in.start(t, bin)
		re := regexp.MustCompile(`taxi-dashboard: open (http://\S+)`)
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(logf.Name())
			if m := re.FindSubmatch(b); m != nil {
				return in, string(m[1])
			}
			select {
			case <-in.done:
				t.Fatalf("%s exited: %s", name, b)
			case <-time.After(50 * time.Millisecond):
			}
		}
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("%s printed no URL: %s", name, b)
		return nil, ""
	}
	dash, pageURL := startDashboard("dashboard-1", "127.0.0.1:0")
	defer func() {
		if dash != nil {
			dash.stop(t)
		}
	}()

	sent := int64(0)
	// feed replays one month and waits until the processor has read every ride and
	// committed everything that followed from them: then every result that month
	// closes is in the topic, and the reader has them all when it holds as many
	// results as the windows stage emitted. Conditions, not quiet periods: on a
	// loaded machine a commit may take seconds.
	feed := func(i int) map[string]json.RawMessage {
		t.Helper()
		sent += int64(feedRides(t, topics.Rides, 3, files[i], feedOptions{}))
		eventually(t, 3*time.Minute, "the processor reads every ride", func() string {
			in, _ := h.p.Stages()
			if in == nil {
				return "the ingest stage has not started"
			}
			if n := in.Counters.In.Load(); n < sent {
				return fmt.Sprintf("read %d of %d rides", n, sent)
			}
			return ""
		})
		waitSettled(t, h, 3*time.Minute)
		var snap map[string]json.RawMessage
		eventually(t, 3*time.Minute, "the reader has every result", func() string {
			snap = truth.snapshot()
			if emitted := h.p.Stats().Windows.ResultsEmitted; int64(len(snap)) != emitted {
				return fmt.Sprintf("the reader has %d results, the windows stage emitted %d", len(snap), emitted)
			}
			return ""
		})
		return snap
	}

	fed1 := feed(0)
	if len(fed1) == 0 {
		t.Fatal("January closed no window")
	}
	t.Logf("January: %d rides -> %d results (%s)", sent, len(fed1), time.Since(start).Round(time.Millisecond))

	// The browser, with the flags the brief names and an empty profile.
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(filepath.Join(dir, "chromium-profile")),
		chromedp.WindowSize(1440, 1000))
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	var jsErrs []string
	var jsMu sync.Mutex
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				jsMu.Lock()
				jsErrs = append(jsErrs, m.String())
				jsMu.Unlock()
			}
		}
	}()
	browserStart := time.Now()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		if err := chromedp.Do(tctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string, into any) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		raw, err := chromedp.Run(tctx, chromedp.Evaluate[[]byte](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatalf("evaluate %s: %v: %s", expr, err, raw)
		}
	}
	waitFor := func(what, expr string) {
		t.Helper()
		run("wait until "+what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second)))
	}
	chart := func() pageChart {
		t.Helper()
		var ch pageChart
		eval(`window.__dashboard.chart()`, &ch)
		return ch
	}
	checkChart := func(truth map[string]json.RawMessage) {
		t.Helper()
		if bad := chartMismatches(t, chart(), truth); len(bad) > 0 {
			t.Fatalf("%d chart points differ from the results topic, e.g.:\n%s", len(bad), strings.Join(bad[:min(len(bad), 10)], "\n"))
		}
	}
	screenshot := func(name string) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(artifactDir(t), name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}

	// 1. History: the page opened after the stream has run gets every result.
	run("open the page", chromedp.Navigate(pageURL))
	waitFor("the first windows appear", `window.__dashboard && window.__dashboard.resultCount() > 0`)
	waitFor("the history is loaded", fmt.Sprintf(`window.__dashboard.synced && window.__dashboard.resultCount() === %d`, len(fed1)))
	t.Logf("page shows %d results %s after the browser started", len(fed1), time.Since(browserStart).Round(time.Millisecond))
	checkChart(fed1)

	// A known (hour, borough), the busiest, on every metric of the selector: the
	// chart's point equals the results topic's record.
	var busiestKey string
	var busiest float64
	for k, raw := range fed1 {
		if v := metricValue(t, raw, "trip_count"); *v > busiest {
			busiestKey, busiest = k, *v
		}
	}
	var known cell
	if err := json.Unmarshal(fed1[busiestKey], &known); err != nil {
		t.Fatal(err)
	}
	var metrics []string
	eval(`window.__dashboard.metrics`, &metrics)
	if len(metrics) != 9 {
		t.Fatalf("metric selector offers %v", metrics)
	}
	for _, m := range metrics {
		var label string
		eval(fmt.Sprintf(`(() => { const s = document.getElementById('metric'); s.value = %q; s.dispatchEvent(new Event('change')); return window.__dashboard.metric; })()`, m), &label)
		ch := chart()
		if ch.Metric != m || label != m {
			t.Fatalf("selected %s, chart shows %s", m, ch.Metric)
		}
		want := metricValue(t, fed1[busiestKey], m)
		idx := -1
		for i, x := range ch.X {
			if int64(x) == known.Window.StartMs {
				idx = i
			}
		}
		if idx < 0 || ch.Series[known.Borough] == nil || fmtPtr(ch.Series[known.Borough][idx]) != fmtPtr(want) {
			got := "missing"
			if idx >= 0 && ch.Series[known.Borough] != nil {
				got = fmtPtr(ch.Series[known.Borough][idx])
			}
			t.Errorf("%s %s: chart %s, results topic %s", busiestKey, m, got, fmtPtr(want))
		}
		if m == "avg_fare" {
			checkChart(fed1) // every point of a money metric, too
		}
	}
	eval(`(() => { const s = document.getElementById('metric'); s.value = 'trip_count'; s.dispatchEvent(new Event('change')); return 1; })()`, new(int))

	// 2. Open windows: the page marks the query API's open windows as provisional,
	// with the API's running values.
	openAPI := func() map[string]float64 {
		resp, err := http.Get(apiURL + "/api/v1/windows/open")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var o struct {
			Windows []json.RawMessage `json:"windows"`
		}
		if err := json.Unmarshal(body, &o); err != nil {
			t.Fatalf("open windows: %v: %s", err, body)
		}
		out := map[string]float64{}
		for _, w := range o.Windows {
			var c cell
			_ = json.Unmarshal(w, &c)
			out[fmt.Sprint(c.Window.StartMs, "/", c.Borough)] = *metricValue(t, w, "trip_count")
		}
		return out
	}
	pageOpen := func() map[string]float64 {
		var p struct {
			X        []float64             `json:"x"`
			Boroughs map[string][]*float64 `json:"boroughs"`
		}
		eval(`window.__dashboard.provisional('trip_count')`, &p)
		out := map[string]float64{}
		for b, vs := range p.Boroughs {
			for i, v := range vs {
				if v != nil {
					out[fmt.Sprint(int64(p.X[i]), "/", b)] = *v
				}
			}
		}
		return out
	}
	want := openAPI()
	if len(want) == 0 {
		t.Fatal("the query API shows no open window after January (the stream has no end marker)")
	}
	deadline := time.Now().Add(time.Minute)
	for got := pageOpen(); fmt.Sprint(got) != fmt.Sprint(want); got = pageOpen() {
		if time.Now().After(deadline) {
			t.Fatalf("provisional points on the page %v, query API %v", got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var provRows int
	eval(`document.querySelectorAll('#open-table tbody tr').length`, &provRows)
	if provRows != len(want) {
		t.Errorf("open windows table has %d rows, the query API %d open windows", provRows, len(want))
	}
	var counters map[string]int64
	eval(`window.__dashboard.status().counters`, &counters)
	if counters["rides_in"] != sent {
		t.Errorf("page shows rides_in %d, fed %d", counters["rides_in"], sent)
	}

	// 3. Live: February closes January's last hours; they appear without a reload.
	var loadID string
	eval(`window.__dashboard.loadId`, &loadID)
	fed2 := feed(1)
	var newKeys []string
	for k := range fed2 {
		if _, ok := fed1[k]; !ok {
			newKeys = append(newKeys, k)
		}
	}
	if len(newKeys) == 0 {
		t.Fatal("February closed no new window")
	}
	sort.Strings(newKeys)
	firstNew := newKeys[0] // a January hour that was open before
	var fn cell
	_ = json.Unmarshal(fed2[firstNew], &fn)
	if _, wasOpen := want[fmt.Sprint(fn.Window.StartMs, "/", fn.Borough)]; !wasOpen {
		t.Logf("note: %s was not among the open windows shown before", firstNew)
	}
	waitFor("the newly closed windows appear", fmt.Sprintf(`window.__dashboard.resultCount() === %d`, len(fed2)))
	checkChart(fed2)
	var loadID2 string
	var connects int
	eval(`window.__dashboard.loadId`, &loadID2)
	eval(`window.__dashboard.connects`, &connects)
	if loadID2 != loadID || connects != 1 {
		t.Fatalf("the page reloaded or reconnected (load id %s -> %s, %d connections)", loadID, loadID2, connects)
	}
	t.Logf("February: %d new results, e.g. %s = %s trips, shown live", len(newKeys), firstNew, fmtPtr(metricValue(t, fed2[firstNew], "trip_count")))
	screenshot("dashboard.png")

	// 4. Restart: the page notices, reconnects to the new server by itself, and
	// keeps updating.
	dash.stop(t)
	dash = nil
	waitFor("the page notices the server is gone", `!window.__dashboard.connected`)
	addr := strings.TrimSuffix(strings.TrimPrefix(pageURL, "http://"), "/")
	var url2 string
	dash, url2 = startDashboard("dashboard-2", addr)
	if url2 != pageURL {
		t.Fatalf("restarted dashboard at %s, want %s", url2, pageURL)
	}
	waitFor("the page reconnects", `window.__dashboard.connected && window.__dashboard.connects === 2`)
	fed3 := feed(2)
	if len(fed3) <= len(fed2) {
		t.Fatal("March closed no new window")
	}
	waitFor("new windows after the restart", fmt.Sprintf(`window.__dashboard.resultCount() === %d`, len(fed3)))
	checkChart(fed3)
	eval(`window.__dashboard.loadId`, &loadID2)
	if loadID2 != loadID {
		t.Fatal("the page was reloaded")
	}
	var connText string
	eval(`document.getElementById('conn-text').textContent`, &connText)
	if connText != "live" {
		t.Errorf("connection indicator says %q after reconnecting", connText)
	}
	screenshot("dashboard-after-restart.png")

	// 5. A revision (taxi-stream --allowed-lateness): a later record of a key with
	// "revision":1 and new totals. The page keeps the latest record of the key (the
	// chart shows the new trip count) and lists the hour under "Revised hours".
	var rev map[string]json.RawMessage
	if err := json.Unmarshal(fed3[busiestKey], &rev); err != nil {
		t.Fatal(err)
	}
	newCount := int64(busiest) + 7
	rev["trip_count"] = json.RawMessage(strconv.FormatInt(newCount, 10))
	rev["revision"], rev["status"] = json.RawMessage(`1`), json.RawMessage(`"revised"`)
	revValue, err := json.Marshal(rev)
	if err != nil {
		t.Fatal(err)
	}
	writeRecords(t, topics.Results, []rawRecord{{partition: fed3Partition(t, topics.Results, busiestKey), key: busiestKey, value: revValue}})
	waitFor("the revised hour is listed", `window.__dashboard.revised().length === 1 && document.querySelectorAll('#rev-table tbody tr').length === 1`)
	var revised []struct {
		Key       string `json:"key"`
		Revision  int64  `json:"revision"`
		TripCount int64  `json:"trip_count"`
	}
	eval(`window.__dashboard.revised()`, &revised)
	if len(revised) != 1 || revised[0].Key != busiestKey || revised[0].Revision != 1 || revised[0].TripCount != newCount {
		t.Errorf("revised() = %+v, want %s revision 1 with %d trips", revised, busiestKey, newCount)
	}
	if n := int(func() (n int) { eval(`window.__dashboard.resultCount()`, &n); return }()); n != len(fed3) {
		t.Errorf("a revision changed the number of results shown: %d, want %d", n, len(fed3))
	}
	screenshot("dashboard-revised.png")

	jsMu.Lock()
	defer jsMu.Unlock()
	if len(jsErrs) > 0 {
		t.Errorf("the page threw: %v", jsErrs)
	}
	t.Logf("%d rides, %d results; chart equal to the results topic after history, live update and restart; %s in all",
		sent, len(fed3), time.Since(start).Round(time.Millisecond))
}

// fed3Partition returns the partition of topic that holds key's records (the
// processor's hash partitioner), so that a record written by the test follows them.
func fed3Partition(t *testing.T, topic, key string) int32 {
	t.Helper()
	for _, m := range readAll(t, topic, 1, time.Minute) {
		if string(m.Key) == key {
			return m.Partition
		}
	}
	t.Fatalf("no record of %s in %s", key, topic)
	return 0
}
