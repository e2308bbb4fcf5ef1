package windows_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/taxi-stream/taxi-stream/processors/internal/stagetest"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/processors/windows"
	"github.com/taxi-stream/taxi-stream/topology"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

const (
	t0     int64 = 1704067200000 // 2024-01-01T00:00:00
	minute int64 = 60_000
	hour   int64 = 60 * minute

	windowsTopic = "repartition"
	resultsTopic = "results"
	stateKey     = "windows-0"
)

func win(start int64) window.Window { return window.Window{StartMs: start, EndMs: start + hour} }

func sums(n int64) aggregate.Sums {
	return aggregate.Sums{Count: n, PassengerSum: 2 * n, PassengerCount: n, DistanceHundredths: 150 * n,
		TipCents: 100 * n, FareCents: 1000 * n, TotalCents: 1250 * n}
}

func add(a, b aggregate.Sums) aggregate.Sums { a.Merge(b); return a }

func partial(p int32, wm int64, hasWM bool, entries ...aggregate.Entry) []byte {
	b, err := aggregate.Partial{Partition: p, Watermark: wm, HasWatermark: hasWM, Entries: entries}.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

func entry(w window.Window, borough string, s aggregate.Sums) aggregate.Entry {
	return aggregate.Entry{Window: w, Borough: borough, Sums: s}
}

// harness runs the stage in a goka processor of topology.WindowsGraph on goka's tester.
type harness struct {
	t       *testing.T
	tt      *tester.Tester
	stage   *windows.Stage
	commits *stagetest.Committer
	logs    *stagetest.LogRecorder
	results *tester.QueueTracker
	table   goka.Table
}

func newHarness(t *testing.T, ingestPartitions int) *harness {
	return newAppHarness(t, ingestPartitions, "")
}

func newAppHarness(t *testing.T, ingestPartitions int, app string) *harness {
	t.Helper()
	h := &harness{t: t, tt: tester.New(t), commits: new(stagetest.Committer), logs: new(stagetest.LogRecorder)}
	stage, err := windows.New(windows.Config{ResultsTopic: resultsTopic, IngestPartitions: ingestPartitions, App: app, Logger: slog.New(h.logs)}, h.commits)
	if err != nil {
		t.Fatal(err)
	}
	h.stage = stage
	topo := topology.Config{App: "test", Topics: topology.Topics{
		Rides: "rides", Zones: "zones", Windows: windowsTopic, Results: resultsTopic, Late: "late", Dead: "dead",
	}}
	h.table = goka.GroupTable(topo.WindowsGroup())
	proc, err := goka.NewProcessor(nil, topology.WindowsGraph(topo, stage.Process), goka.WithTester(h.tt), goka.WithLogger(stagetest.QuietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	h.results = h.tt.NewQueueTracker(resultsTopic)
	return h
}

func (h *harness) send(p []byte) { h.tt.Consume(windowsTopic, stateKey, p) }

func (h *harness) sendFrom(app string, p []byte) {
	var opts []tester.EmitOption
	if app != "" {
		opts = append(opts, tester.WithHeaders(goka.Headers{codecs.HeaderApp: []byte(app)}))
	}
	h.tt.Consume(windowsTopic, stateKey, p, opts...)
}

// expectResults reads the results written since the last call and compares them.
func (h *harness) expectResults(what string, want ...aggregate.Result) {
	h.t.Helper()
	var got []aggregate.Result
	for {
		k, v, ok := h.results.NextRaw()
		if !ok {
			break
		}
		var r aggregate.Result
		if err := r.UnmarshalJSON(v); err != nil {
			h.t.Fatalf("%s: result %q: %v", what, v, err)
		}
		if k != r.Key() {
			h.t.Errorf("%s: result key %q, want %q", what, k, r.Key())
		}
		if string(v) != string(r.AppendJSON(nil)) {
			h.t.Errorf("%s: result value %s is not the canonical JSON", what, v)
		}
		got = append(got, r)
	}
	if len(got) != len(want) {
		h.t.Fatalf("%s: results %+v, want %+v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			h.t.Errorf("%s: result %d %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

func (h *harness) state() aggregate.State {
	h.t.Helper()
	v := h.tt.TableValue(h.table, stateKey)
	var st aggregate.State
	b, ok := v.([]byte)
	if !ok {
		h.t.Fatalf("table value %T", v)
	}
	if err := st.UnmarshalBinary(b); err != nil {
		h.t.Fatalf("stored state: %v", err)
	}
	return st
}

type counts struct{ partials, results, rides, dropped, foreign int64 }

func countersOf(s *windows.Stage) counts {
	c := &s.Counters
	return counts{c.Partials.Load(), c.ResultsEmitted.Load(), c.RidesEmitted.Load(), c.DroppedRides.Load(), c.Foreign.Load()}
}

func TestNewRejectsNoPartitions(t *testing.T) {
	for _, n := range []int{0, -1} {
		if _, err := windows.New(windows.Config{ResultsTopic: resultsTopic, IngestPartitions: n}, new(stagetest.Committer)); err == nil ||
			!strings.Contains(err.Error(), "ingest partitions must be > 0") {
			t.Errorf("IngestPartitions %d: %v", n, err)
		}
	}
}

// A window closes once, when the minimum watermark over every ingest partition
// reaches its end; partials for it after that are dropped and counted.
func TestCloseOnMinimumWatermark(t *testing.T) {
	h := newHarness(t, 2)
	s1, s2, s3, s4, s5, s6 := sums(1), sums(2), sums(3), sums(4), sums(5), sums(6)
	s4.PassengerCount, s4.PassengerSum = 0, 0 // no passenger counts at all: avg null

	h.send(partial(0, t0+hour, true, entry(win(t0), "Manhattan", s1), entry(win(t0+hour), "Queens", s2)))
	h.expectResults("partition 1 has no watermark")
	h.send(partial(1, t0+hour-1, true, entry(win(t0), "Manhattan", s3)))
	h.expectResults("partition 1 just before the end")
	h.send(partial(1, 0, false, entry(win(t0), "Bronx", s4)))
	h.expectResults("a partial without a watermark")
	if n := h.commits.N.Load(); n != 0 {
		t.Errorf("%d commit requests before any window closed", n)
	}
	st := h.state()
	if st.Len() != 3 {
		t.Errorf("stored state has %d open cells, want 3", st.Len())
	}
	if wm, ok := st.Watermark(1); !ok || wm != t0+hour-1 {
		t.Errorf("stored watermark of partition 1: %d/%v", wm, ok)
	}
	if _, ok := st.ClosedThrough(); !ok {
		// MinWatermark was defined (t0+1h−1) at the second partial: Close ran with it.
		t.Error("stored state was never closed through the minimum watermark")
	}

	h.send(partial(1, t0+hour, true))
	h.expectResults("both partitions at the end",
		aggregate.Result{Window: win(t0), Borough: "Bronx", Sums: s4},
		aggregate.Result{Window: win(t0), Borough: "Manhattan", Sums: add(s1, s3)},
	)
	if n := h.commits.N.Load(); n != 1 {
		t.Errorf("%d commit requests after a window closed, want 1", n)
	}
	if got := countersOf(h.stage); got != (counts{partials: 4, results: 2, rides: 8}) {
		t.Errorf("counters %+v", got)
	}
	if c := h.logs.Find(slog.LevelDebug, "windows closed"); len(c) != 1 || c[0]["results"].Int64() != 2 ||
		c[0]["first_start_ms"].Int64() != t0 || c[0]["min_watermark"].Int64() != t0+hour {
		t.Errorf("'windows closed' logs %v", c)
	}

	// Partition 0 runs ahead; partition 1 holds the next window open.
	h.send(partial(0, t0+3*hour, true))
	h.expectResults("partition 1 behind")
	// A late partial for the closed window is dropped and counted; the rest applies.
	h.send(partial(0, t0+3*hour, true, entry(win(t0), "Manhattan", s5), entry(win(t0+hour), "Queens", s6)))
	h.expectResults("partial for a closed window")
	if got := countersOf(h.stage).dropped; got != s5.Count {
		t.Errorf("dropped rides %d, want %d", got, s5.Count)
	}
	drops := h.logs.Find(slog.LevelError, "partial for a closed window dropped: the watermark rule was broken")
	if len(drops) != 1 || drops[0]["ingest_partition"].Int64() != 0 || drops[0]["rides"].Int64() != s5.Count {
		t.Errorf("drop logs %v", drops)
	}
	// A lower watermark from partition 0 changes nothing.
	h.send(partial(0, t0+hour, true))
	st = h.state()
	if wm, _ := st.Watermark(0); wm != t0+3*hour {
		t.Errorf("watermark of partition 0 went back to %d", wm)
	}

	h.send(partial(1, t0+2*hour, true))
	h.expectResults("second window", aggregate.Result{Window: win(t0 + hour), Borough: "Queens", Sums: add(s2, s6)})
	h.send(partial(1, t0+2*hour, true))
	h.send(partial(1, t0+2*hour+30*minute, true))
	h.expectResults("no window left")

	st = h.state()
	if closed, ok := st.ClosedThrough(); !ok || closed != t0+2*hour+30*minute {
		t.Errorf("closed through %d/%v", closed, ok)
	}
	if st.Len() != 0 {
		t.Errorf("%d cells still open", st.Len())
	}
	if got := countersOf(h.stage); got != (counts{partials: 10, results: 3, rides: 8 + 8, dropped: 5}) {
		t.Errorf("counters %+v", got)
	}
	if n := h.commits.N.Load(); n != 2 {
		t.Errorf("%d commit requests, want 2 (one per close with results)", n)
	}
}

// The avg_passenger_count of a window without passenger counts is null.
func TestResultJSONNullPassengers(t *testing.T) {
	h := newHarness(t, 1)
	s := aggregate.Sums{Count: 2, DistanceHundredths: 300, FareCents: 1000, TotalCents: 1201}
	h.send(partial(0, t0+hour, true, entry(win(t0), "Staten Island", s)))
	_, v, ok := h.results.NextRaw()
	if !ok {
		t.Fatal("no result")
	}
	want := `{"window":{"start":"2024-01-01T00:00:00","end":"2024-01-01T01:00:00","start_ms":1704067200000,"end_ms":1704070800000},` +
		`"borough":"Staten Island","trip_count":2,"avg_passenger_count":null,"total_distance":3.00,"avg_distance":1.50,` +
		`"avg_tip_amount":0.00,"total_fare":10.00,"avg_fare":5.00,"total_amount":12.01,"avg_total_amount":6.01,"input_count":2,` +
		`"sums":{"count":2,"passenger_sum":0,"passenger_count":0,"distance_hundredths":300,"tip_cents":0,"fare_cents":1000,"total_cents":1201},"revision":0,"status":"final"}`
	if string(v) != want {
		t.Errorf("result\n%s\nwant\n%s", v, want)
	}
}

// fakeCtx is a goka.Context with a table value of its own.
type fakeCtx struct {
	gokaContext
	partition int32
	offset    int64
	stored    []byte
	setValues [][]byte
	emits     []string
	failSet   bool // SetValue fails (as goka's does on a storage error)
}

type gokaContext = goka.Context

type failure struct{ err error }

func (c *fakeCtx) Topic() goka.Stream { return windowsTopic }
func (c *fakeCtx) Key() string        { return stateKey }
func (c *fakeCtx) Partition() int32   { return c.partition }
func (c *fakeCtx) Offset() int64      { return c.offset }
func (c *fakeCtx) Value() any {
	if c.stored == nil {
		return nil
	}
	return c.stored
}
func (c *fakeCtx) SetValue(v any, _ ...goka.ContextOption) {
	if c.failSet {
		c.Fail(errors.New("storage: write failed"))
	}
	c.stored = v.([]byte)
	c.setValues = append(c.setValues, c.stored)
}
func (c *fakeCtx) Emit(_ goka.Stream, key string, _ any, _ ...goka.ContextOption) {
	c.emits = append(c.emits, key)
}
func (c *fakeCtx) Fail(err error) { panic(failure{err}) }

func process(s *windows.Stage, ctx *fakeCtx, msg []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			err = f.err
		}
	}()
	s.Process(ctx, msg)
	return nil
}

func decodeState(t *testing.T, b []byte) aggregate.State {
	t.Helper()
	var st aggregate.State
	if err := st.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return st
}

func openSums(st aggregate.State) map[string]aggregate.Sums {
	out := map[string]aggregate.Sums{}
	for _, e := range st.Entries() {
		out[e.Window.String()+" "+e.Borough] = e.Sums
	}
	return out
}

func TestCorruptInputFails(t *testing.T) {
	s, err := windows.New(windows.Config{ResultsTopic: resultsTopic, IngestPartitions: 1}, new(stagetest.Committer))
	if err != nil {
		t.Fatal(err)
	}
	ctx := &fakeCtx{partition: 3, offset: 17}
	err = process(s, ctx, []byte("not a partial"))
	if err == nil || !strings.Contains(err.Error(), "windows: partial at repartition/3 offset 17") || !errors.Is(err, aggregate.ErrCorrupt) {
		t.Errorf("corrupt partial: %v", err)
	}
	ctx.stored = []byte("not a state")
	err = process(s, ctx, partial(0, t0, true))
	if err == nil || !strings.Contains(err.Error(), "windows: state of partition 3") || !errors.Is(err, aggregate.ErrCorrupt) {
		t.Errorf("corrupt state: %v", err)
	}
	if len(ctx.setValues) != 0 || len(ctx.emits) != 0 || s.Counters.Partials.Load() != 0 {
		t.Errorf("a failed callback wrote %d values, %d results, counted %d partials", len(ctx.setValues), len(ctx.emits), s.Counters.Partials.Load())
	}
}

// The state goes through ctx.SetValue and comes back through ctx.Value: the stored
// bytes, not the stage's decoded copy, are the truth.
func TestStatePersistence(t *testing.T) {
	logs := new(stagetest.LogRecorder)
	s, err := windows.New(windows.Config{ResultsTopic: resultsTopic, IngestPartitions: 2, Logger: slog.New(logs)}, new(stagetest.Committer))
	if err != nil {
		t.Fatal(err)
	}
	ctx := &fakeCtx{partition: 1}
	a, b, c, d := sums(1), sums(10), sums(100), sums(1000)
	step := func(msg []byte) aggregate.State {
		t.Helper()
		if err := process(s, ctx, msg); err != nil {
			t.Fatal(err)
		}
		return decodeState(t, ctx.stored)
	}
	loads := func() int { return len(logs.Find(slog.LevelDebug, "windows state loaded")) }

	st := step(partial(0, t0, true, entry(win(t0), "Queens", a)))
	if got := openSums(st); len(got) != 1 || got[win(t0).String()+" Queens"] != a {
		t.Fatalf("state after A: %v", got)
	}
	if wm, ok := st.Watermark(0); !ok || wm != t0 {
		t.Errorf("watermark of partition 0: %d/%v", wm, ok)
	}
	nLoads := loads()
	st = step(partial(1, t0, true, entry(win(t0), "Queens", b)))
	if got := openSums(st); got[win(t0).String()+" Queens"] != add(a, b) {
		t.Errorf("state after B: %v", got)
	}
	if loads() != nLoads {
		t.Error("the state was decoded again although the stored bytes are the cached ones")
	}

	// The table lost the value (e.g. rebuilt from a changelog without it): the stage
	// starts from the stored nothing, not from its cached copy.
	ctx.stored = nil
	st = step(partial(0, t0, true, entry(win(t0), "Queens", c)))
	if got := openSums(st); got[win(t0).String()+" Queens"] != c {
		t.Errorf("state after C on an empty table: %v, want only C", got)
	}
	if _, ok := st.Watermark(1); ok {
		t.Error("partition 1's watermark survived from the cache")
	}

	// Forget drops the cache; the stored value is decoded.
	encC := ctx.stored
	s.Forget()
	nLoads = loads()
	st = step(partial(0, t0, true, entry(win(t0), "Queens", d)))
	if got := openSums(st); got[win(t0).String()+" Queens"] != add(c, d) {
		t.Errorf("state after Forget and D: %v, want C+D", got)
	}
	if loads() != nLoads+1 {
		t.Error("the state was not decoded after Forget")
	}
	l := logs.Find(slog.LevelDebug, "windows state loaded")
	if last := l[len(l)-1]; last["open"].Int64() != 1 || last["bytes"].Int64() != int64(len(encC)) || last["partition"].Int64() != 1 {
		t.Errorf("load log %v", last)
	}
	if len(ctx.emits) != 0 {
		t.Errorf("results %v although partition 1 sent no watermark since the loss", ctx.emits)
	}
}

// A callback that fails after applying a partial (here: goka's SetValue fails on a
// storage error) must not leave that partial in the stage's cached state: the next
// callback sees the old stored value and must build on it alone.
func TestFailedCallbackLeavesCacheUntouched(t *testing.T) {
	s, err := windows.New(windows.Config{ResultsTopic: resultsTopic, IngestPartitions: 1}, new(stagetest.Committer))
	if err != nil {
		t.Fatal(err)
	}
	ctx := &fakeCtx{}
	if err := process(s, ctx, partial(0, t0, true, entry(win(t0), "Queens", sums(1)))); err != nil {
		t.Fatal(err)
	}
	ctx.failSet = true
	if err := process(s, ctx, partial(0, t0, true, entry(win(t0), "Queens", sums(10)))); err == nil {
		t.Fatal("SetValue did not fail")
	}
	ctx.failSet = false
	if err := process(s, ctx, partial(0, t0, true, entry(win(t0), "Queens", sums(100)))); err != nil {
		t.Fatal(err)
	}
	if got := openSums(decodeState(t, ctx.stored))[win(t0).String()+" Queens"]; got != sums(101) {
		t.Errorf("state %+v, want the sums of the two applied partials %+v", got, sums(101))
	}
}

// With an App, partials of another app (or without the header) are refused:
// counted, logged once per writer, never applied; results carry the app header.
func TestRefusesOtherAppsPartials(t *testing.T) {
	h := newAppHarness(t, 1, "mine")
	const refusedMsg = "refusing partial sums written by another app on this app's repartition topic; " +
		"give each app its own --windows-topic (the default, <app>-windows-repartition, is)"
	h.sendFrom("theirs", partial(0, t0+hour, true, entry(win(t0), "Queens", sums(7))))
	h.sendFrom("theirs", partial(0, t0+hour, true, entry(win(t0), "Queens", sums(7))))
	h.sendFrom("", partial(0, t0+hour, true, entry(win(t0), "Queens", sums(7))))
	h.expectResults("foreign partials")
	if v := h.tt.TableValue(h.table, stateKey); v != nil {
		t.Errorf("a refused partial was stored: %v", v)
	}
	if got := countersOf(h.stage); got != (counts{foreign: 3}) {
		t.Errorf("counters %+v, want 3 foreign and nothing applied", got)
	}
	logs := h.logs.Find(slog.LevelError, refusedMsg)
	writers := map[string]int{}
	for _, l := range logs {
		writers[l["writer_app"].String()]++
		if l["this_app"].String() != "mine" || l["topic"].String() != windowsTopic {
			t.Errorf("refusal log %v", l)
		}
	}
	if len(logs) != 2 || writers["theirs"] != 1 || writers["(no "+codecs.HeaderApp+" header)"] != 1 {
		t.Errorf("refusal logs by writer %v, want one for theirs and one for the missing header", writers)
	}

	h.sendFrom("mine", partial(0, t0+hour, true, entry(win(t0), "Queens", sums(2))))
	hd, k, v, ok := h.results.NextRawWithHeaders()
	if !ok {
		t.Fatal("no result for the app's own partial")
	}
	var r aggregate.Result
	if err := r.UnmarshalJSON(v); err != nil || r.Sums != sums(2) || k != "2024-01-01T00:00:00/Queens" {
		t.Errorf("result %q %s (%v), want only the app's own sums", k, v, err)
	}
	if got := string(hd[codecs.HeaderApp]); got != "mine" {
		t.Errorf("result header %s = %q, want mine", codecs.HeaderApp, got)
	}
	if got := countersOf(h.stage); got != (counts{partials: 1, results: 1, rides: 2, foreign: 3}) {
		t.Errorf("counters %+v", got)
	}
}

// Without an App every partial is applied, and results carry no app header.
func TestNoAppAcceptsEveryPartial(t *testing.T) {
	h := newHarness(t, 1)
	h.sendFrom("someone", partial(0, 0, false, entry(win(t0), "Queens", sums(1))))
	h.sendFrom("", partial(0, t0+hour, true, entry(win(t0), "Queens", sums(2))))
	hd, _, v, ok := h.results.NextRawWithHeaders()
	var r aggregate.Result
	if !ok || r.UnmarshalJSON(v) != nil || r.Sums != sums(3) {
		t.Fatalf("result %s, want the sums of both partials", v)
	}
	if _, ok := hd[codecs.HeaderApp]; ok {
		t.Errorf("result has an app header without an app: %q", hd)
	}
	if got := countersOf(h.stage).foreign; got != 0 {
		t.Errorf("%d refused", got)
	}
}
