package ingest_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/processors/internal/stagetest"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/ingest"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

func restore(tr *watermark.Tracker, b64 string) error {
	snap, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil {
		return err
	}
	return tr.UnmarshalBinary(snap)
}

func win(start, size int64) window.Window { return window.Window{StartMs: start, EndMs: start + size} }

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		edit func(*ingest.Config)
		want string
	}{
		{"window", func(c *ingest.Config) { c.Window = window.Spec{Size: time.Hour, Slide: 2 * time.Hour} }, "window slide"},
		{"watermark", func(c *ingest.Config) { c.Watermark.Quantile = 1 }, "watermark quantile"},
		{"zones", func(c *ingest.Config) { c.Zones = nil }, "no zone table"},
		{"windows partitions", func(c *ingest.Config) { c.WindowsPartitions = 0 }, "windows partitions must be > 0, not 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig()
			c.edit(&cfg)
			s, err := ingest.New(cfg, new(stagetest.Committer))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, %v; want an error containing %q", s, err, c.want)
			}
		})
	}
	if _, err := ingest.New(baseConfig(), new(stagetest.Committer)); err != nil {
		t.Fatalf("valid config (no logger): %v", err)
	}
}

// Decode -> borough join -> partial sums, with exact sums per (window, borough) and
// every flushed partial keyed for the windows partition that owns its windows.
func TestJoinAndPartialSums(t *testing.T) {
	logs := new(stagetest.LogRecorder)
	cfg := baseConfig()
	cfg.Logger = slog.New(logs)
	h := newHarness(t, cfg)

	h.ride("a", ride{event: t0 + 10*minute, pu: 1, pass: "1", dist: "1.98", fare: "12.8", tip: "3.61", total: "21.66"})
	h.ride("b", ride{event: t0 + 50*minute, pu: 1, pass: "null", dist: "0.50", fare: "5.00", tip: "0", total: "6.30"})
	h.ride("c", ride{event: t0 + hour + 5*minute, pu: 3, pass: "2", dist: "10", fare: "40.00", tip: "8.00", total: "55.55"})
	h.ride("d", ride{event: t0 + 2*hour + 1, pu: 99, pass: "0", dist: "0", fare: "-3.00", tip: "0", total: "-3.50"})
	// Malformed zone records and a zone with an empty borough count as Unknown.
	h.ride("e", ride{event: t0 + 2*hour + 2, pu: 2, pass: "1", dist: "1.00", fare: "1.00", tip: "0.10", total: "1.10"})
	h.ride("f", ride{event: t0 + 2*hour + 3, pu: 2, pass: "3", dist: "2.00", fare: "2.00", tip: "0.20", total: "2.20"})
	h.ride("g", ride{event: t0 + 2*hour + 4, pu: 4, pass: "1", dist: "3.00", fare: "3.00", tip: "0.30", total: "3.30"})
	h.ride("h", ride{event: t0 + 2*hour + 5, pu: 5, pass: "1", dist: "4.00", fare: "4.00", tip: "0.40", total: "4.40"})
	// A LocationID past the precomputed key table.
	h.ride("i", ride{event: t0 + 59*minute, pu: 600, pass: "4", dist: "7.25", fare: "20.00", tip: "0", total: "23.00"})

	msgs, meta := h.flush()
	want := map[cellKey]aggregate.Sums{
		{win(t0, hour), "Manhattan"}:                  {Count: 2, PassengerSum: 1, PassengerCount: 1, DistanceHundredths: 248, TipCents: 361, FareCents: 1780, TotalCents: 2796},
		{win(t0, hour), "Bronx"}:                      {Count: 1, PassengerSum: 4, PassengerCount: 1, DistanceHundredths: 725, TipCents: 0, FareCents: 2000, TotalCents: 2300},
		{win(t0+hour, hour), "Queens"}:                {Count: 1, PassengerSum: 2, PassengerCount: 1, DistanceHundredths: 1000, TipCents: 800, FareCents: 4000, TotalCents: 5555},
		{win(t0+2*hour, hour), ingest.UnknownBorough}: {Count: 5, PassengerSum: 6, PassengerCount: 5, DistanceHundredths: 1000, TipCents: 100, FareCents: 700, TotalCents: 750},
	}
	got := sumsOf(msgs)
	if len(got) != len(want) {
		t.Errorf("cells %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%v %s: sums %+v, want %+v", k.w, k.borough, got[k], w)
		}
	}

	// One message per windows partition that has entries (no watermark yet), each
	// to the windows topic, keyed for its partition, holding only its windows.
	keys := ingest.PartitionKeys(3)
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3 (one per windows partition with entries)", len(msgs))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if m.topic != windowsTopic {
			t.Errorf("sent to %q, want %q", m.topic, windowsTopic)
		}
		if len(m.headers) != 0 {
			t.Errorf("partial with headers %v although the stage has no app", m.headers)
		}
		if m.partial.Partition != 0 || m.partial.HasWatermark {
			t.Errorf("partial of partition %d with watermark %v, want partition 0 without one", m.partial.Partition, m.partial.HasWatermark)
		}
		seen[m.key] = true
		for _, e := range m.partial.Entries {
			q := ingest.WindowPartition(e.Window, cfg.Window, 3)
			if m.key != keys[q] {
				t.Errorf("window %v (windows partition %d) sent with key %q, want %q", e.Window, q, m.key, keys[q])
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("keys %v, want the 3 partition keys", seen)
	}
	// Consecutive windows go to consecutive partitions.
	q0 := ingest.WindowPartition(win(t0, hour), cfg.Window, 3)
	if q1 := ingest.WindowPartition(win(t0+hour, hour), cfg.Window, 3); q1 != (q0+1)%3 {
		t.Errorf("windows partitions of consecutive windows: %d, %d", q0, q1)
	}

	if len(meta) != 1 || meta[eos.TopicPartition{Topic: ridesTopic, Partition: 0}] == "" {
		t.Errorf("metadata %v, want one entry for %s/0", meta, ridesTopic)
	}

	// The malformed record of zone 2 is logged once (the decision is cached), the
	// record of zone 4 once; missing zone 99 and the empty borough of zone 5 are not
	// malformed.
	warns := logs.Find(slog.LevelWarn, "malformed zone record; its rides count as Unknown")
	ids := map[int64]int{}
	for _, w := range warns {
		ids[w["location_id"].Int64()]++
	}
	if len(warns) != 2 || ids[2] != 1 || ids[4] != 1 {
		t.Errorf("malformed-zone warnings for %v, want zones 2 and 4 once each", ids)
	}

	checkCounters(t, h.stage, counts{in: 9, onTime: 9})
	expectEmpty(t, h.late, "late")
	expectEmpty(t, h.dead, "dead-letter")

	// Nothing new and no watermark: the next flush sends nothing.
	if msgs, _ := h.flush(); len(msgs) != 0 {
		t.Errorf("empty flush sent %d messages", len(msgs))
	}
}

func TestEventTimeField(t *testing.T) {
	cfg := baseConfig()
	cfg.EventTimeField = "lpep_pickup_datetime"
	h := newHarness(t, cfg)
	h.ride("a", ride{pickup: t0 + 59*minute, event: t0 + hour + 5*minute, pu: 1, fare: "1.00", total: "1.00"})
	msgs, _ := h.flush()
	got := sumsOf(msgs)
	if s := got[cellKey{win(t0, hour), "Manhattan"}]; s.Count != 1 || len(got) != 1 {
		t.Fatalf("cells %v, want the ride in the pickup hour [t0, t0+1h)", got)
	}
}

// Input that is not a ride, and markers that cannot be read, go to the dead-letter
// topic unchanged, with the reason and where they came from.
func TestDeadLetters(t *testing.T) {
	h := newHarness(t, baseConfig())
	h.part.Store(2)
	good := ride{event: t0 + 30*minute, pu: 1, fare: "10.00", total: "12.00"}
	markerHeaders := goka.Headers{codecs.HeaderKind: []byte(codecs.KindWatermark)}
	inputs := []struct {
		key     string
		value   []byte
		headers goka.Headers
		reason  string // "" for a ride that is not dead; a trailing '*' matches a prefix
	}{
		{"k0", []byte(`{"PULocationID":`), nil, codecs.ReasonNotJSON},
		{"k1", nil, nil, codecs.ReasonEmpty},
		{"k2", []byte(`[1,2]`), nil, codecs.ReasonNotObject},
		{"k3", []byte(strings.Replace(string(good.JSON()), `,"total_amount":12.00`, "", 1)), nil, "missing field total_amount"},
		{"k4", ride{event: t0, pu: 1, dist: "-1.00"}.JSON(), nil, "negative trip_distance"},
		{"k5", good.JSON(), nil, ""},
		{codecs.MarkerKey, []byte(`nope`), markerHeaders, "bad watermark marker: watermark marker: invalid character*"},
		{codecs.MarkerKey, []byte(`{"type":"other","watermark_ms":1}`), markerHeaders, `bad watermark marker: watermark marker: type "other", want "watermark"`},
		{codecs.MarkerKey, nil, markerHeaders, "bad watermark marker: *"},
		// The kind header, not the key, tells a marker from a ride.
		{codecs.MarkerKey, codecs.AppendMarkerJSON(nil, codecs.Marker{Type: codecs.KindWatermark, WatermarkMs: t0 + 5*hour}), nil, "missing field lpep_dropoff_datetime"},
		{"any key", codecs.AppendMarkerJSON(nil, codecs.Marker{Type: codecs.KindWatermark, WatermarkMs: t0 + 10*minute}), markerHeaders, ""},
	}
	offsets := make([]int64, len(inputs))
	for i, in := range inputs {
		offsets[i] = h.consume(in.key, in.value, in.headers)
	}
	for i, in := range inputs {
		if in.reason == "" {
			continue
		}
		hd, key, value := next(t, h.dead, "dead-letter")
		if key != in.key || string(value) != string(in.value) {
			t.Errorf("input %d: dead letter %q %q, want the input %q %q", i, key, value, in.key, in.value)
		}
		reason := hdr(hd, codecs.HeaderDeadReason)
		if p, ok := strings.CutSuffix(in.reason, "*"); ok {
			if !strings.HasPrefix(reason, p) {
				t.Errorf("input %d: reason %q, want prefix %q", i, reason, p)
			}
		} else if reason != in.reason {
			t.Errorf("input %d: reason %q, want %q", i, reason, in.reason)
		}
		checkInputHeaders(t, hd, 2, offsets[i])
		if _, ok := hd[codecs.HeaderLateWatermark]; ok {
			t.Errorf("input %d: dead letter has a late header", i)
		}
	}
	expectEmpty(t, h.dead, "dead-letter")
	expectEmpty(t, h.late, "late")

	// Bad markers are dead letters but neither rides nor markers.
	checkCounters(t, h.stage, counts{in: 10, onTime: 1, dead: 9, markers: 1})

	// Only the good ride is in the sums; only the good marker moved the watermark.
	msgs, _ := h.flush()
	if got := sumsOf(msgs); len(got) != 1 || got[cellKey{win(t0, hour), "Manhattan"}].Count != 1 {
		t.Errorf("sums %v, want only the good ride", got)
	}
	for _, m := range msgs {
		if !m.partial.HasWatermark || m.partial.Watermark != t0 || m.partial.Partition != 2 {
			t.Errorf("partial %+v: want partition 2 with watermark t0 (the good marker's)", m.partial)
		}
	}
}

// The watermark rule with tumbling windows and markers: a ride whose window ended at
// or before the watermark goes whole to the late topic.
func TestWatermarkRuleMarkers(t *testing.T) {
	h := newHarness(t, baseConfig())   // delay 10 min
	h.marker(t0+hour+10*minute, false) // watermark t0+1h
	offA := h.ride("a", ride{event: t0 + 30*minute, pu: 1, fare: "9.99", total: "9.99"})
	offB := h.ride("b", ride{event: t0 + hour - 1, pu: 3, fare: "1.00", total: "1.00"})
	h.ride("c", ride{event: t0 + hour, pu: 1, pass: "2", dist: "1.00", fare: "5.00", tip: "1.00", total: "7.00"})
	h.ride("d", ride{event: t0 + hour + 30*minute, pu: 99, pass: "null", dist: "2.50", fare: "6.00", tip: "0", total: "8.00"})

	for _, want := range []struct {
		key string
		off int64
		end int64
		raw []byte
	}{
		{"a", offA, t0 + hour, ride{event: t0 + 30*minute, pu: 1, fare: "9.99", total: "9.99"}.JSON()},
		{"b", offB, t0 + hour, ride{event: t0 + hour - 1, pu: 3, fare: "1.00", total: "1.00"}.JSON()},
	} {
		hd, key, value := next(t, h.late, "late")
		if key != want.key || string(value) != string(want.raw) {
			t.Errorf("late record %q %q, want %q %q", key, value, want.key, want.raw)
		}
		if got := hdr(hd, codecs.HeaderLateWatermark); got != strconv.FormatInt(t0+hour, 10) {
			t.Errorf("late %s: watermark header %q, want %d", key, got, t0+hour)
		}
		if got := hdr(hd, codecs.HeaderLateWindowEnd); got != strconv.FormatInt(want.end, 10) {
			t.Errorf("late %s: window end header %q, want %d", key, got, want.end)
		}
		if _, ok := hd[codecs.HeaderDeadReason]; ok {
			t.Errorf("late %s has a dead-letter reason", key)
		}
		checkInputHeaders(t, hd, 0, want.off)
	}
	expectEmpty(t, h.late, "late")
	expectEmpty(t, h.dead, "dead-letter")
	checkCounters(t, h.stage, counts{in: 4, onTime: 2, late: 2, markers: 1})

	msgs, meta := h.flush()
	got := sumsOf(msgs)
	want := map[cellKey]aggregate.Sums{
		{win(t0+hour, hour), "Manhattan"}:           {Count: 1, PassengerSum: 2, PassengerCount: 1, DistanceHundredths: 100, TipCents: 100, FareCents: 500, TotalCents: 700},
		{win(t0+hour, hour), ingest.UnknownBorough}: {Count: 1, DistanceHundredths: 250, FareCents: 600, TotalCents: 800},
	}
	if len(got) != len(want) || got[cellKey{win(t0+hour, hour), "Manhattan"}] != want[cellKey{win(t0+hour, hour), "Manhattan"}] ||
		got[cellKey{win(t0+hour, hour), ingest.UnknownBorough}] != want[cellKey{win(t0+hour, hour), ingest.UnknownBorough}] {
		t.Errorf("sums %v, want %v (late rides left out)", got, want)
	}
	// The watermark is new: every windows partition hears of it, with the
	// partition's key, the one with the window also gets its sums.
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	keys := ingest.PartitionKeys(3)
	for q, m := range msgs {
		if m.key != keys[q] {
			t.Errorf("message %d: key %q, want %q", q, m.key, keys[q])
		}
		if !m.partial.HasWatermark || m.partial.Watermark != t0+hour {
			t.Errorf("message %d: watermark %d/%v, want %d", q, m.partial.Watermark, m.partial.HasWatermark, t0+hour)
		}
	}
	tr := decodeMeta(t, h.cfg.Watermark, meta[eos.TopicPartition{Topic: ridesTopic, Partition: 0}])
	if wm, ok := tr.Watermark(); !ok || wm != t0+hour || tr.Mode() != watermark.ModeMarker {
		t.Errorf("committed tracker: watermark %d/%v mode %v, want %d in marker mode", wm, ok, tr.Mode(), t0+hour)
	}
	if wms := h.stage.Watermarks(); wms[0] != (watermark.Mark{Ms: t0 + hour, OK: true}) || len(wms) != 1 {
		t.Errorf("Watermarks() = %v", wms)
	}

	// A lower marker does not move the watermark back: nothing to send.
	h.marker(t0+20*minute, false)
	if msgs, _ := h.flush(); len(msgs) != 0 {
		t.Errorf("flush after a lower marker sent %d messages", len(msgs))
	}
	// A ride of the same hour is still late, one of the next hour is not.
	h.ride("e", ride{event: t0 + 59*minute, pu: 1})
	h.ride("f", ride{event: t0 + 2*hour + 1, pu: 1, fare: "2.00", total: "2.00"})
	if _, k, _ := next(t, h.late, "late"); k != "e" {
		t.Errorf("late record %q, want e", k)
	}
	msgs, _ = h.flush()
	if len(msgs) != 1 || len(msgs[0].partial.Entries) != 1 || msgs[0].partial.Entries[0].Window != win(t0+2*hour, hour) ||
		msgs[0].key != keys[ingest.WindowPartition(win(t0+2*hour, hour), h.cfg.Window, 3)] {
		t.Errorf("flush after ride f: %+v, want one message with its window for the window's partition", msgs)
	}

	// A higher marker advances the watermark.
	h.marker(t0+3*hour+10*minute, false)
	h.ride("g", ride{event: t0 + 2*hour + 59*minute, pu: 1})
	if hd, k, _ := next(t, h.late, "late"); k != "g" || hdr(hd, codecs.HeaderLateWatermark) != strconv.FormatInt(t0+3*hour, 10) ||
		hdr(hd, codecs.HeaderLateWindowEnd) != strconv.FormatInt(t0+3*hour, 10) {
		t.Errorf("late record %q headers %q", k, hd)
	}

	// A final marker closes everything: any ride is late, with the Closed watermark.
	h.marker(0, true)
	h.ride("z", ride{event: codecs.MaxTimestampMs - hour, pu: 1})
	hd, k, _ := next(t, h.late, "late")
	if k != "z" || hdr(hd, codecs.HeaderLateWatermark) != strconv.FormatInt(math.MaxInt64, 10) {
		t.Errorf("late record after final marker: %q headers %q", k, hd)
	}
	msgs, meta = h.flush()
	for _, m := range msgs {
		if m.partial.Watermark != watermark.Closed || len(m.partial.Entries) != 0 {
			t.Errorf("partial after the final marker: %+v", m.partial)
		}
	}
	if len(msgs) != 3 {
		t.Errorf("%d messages after the final marker, want 3", len(msgs))
	}
	if tr := decodeMeta(t, h.cfg.Watermark, meta[eos.TopicPartition{Topic: ridesTopic, Partition: 0}]); tr.Mode() != watermark.ModeFinal {
		t.Errorf("committed mode %v, want final", tr.Mode())
	}
	checkCounters(t, h.stage, counts{in: 8, onTime: 3, late: 5, markers: 4})
}

// With sliding windows a ride is judged by its earliest window: late rides go whole
// to the late topic (no window of them is counted), on-time rides count in every
// window that covers them.
func TestWatermarkRuleSliding(t *testing.T) {
	cfg := baseConfig()
	cfg.Window = window.Spec{Size: 2 * time.Hour, Slide: time.Hour}
	cfg.Watermark.Delay = 0
	h := newHarness(t, cfg)
	h.marker(t0+hour, false)
	h.ride("e", ride{event: t0 + hour + 30*minute, pu: 1, pass: "1", dist: "1.00", fare: "3.00", tip: "0.50", total: "4.00"})
	h.ride("f", ride{event: t0 + 59*minute, pu: 1, fare: "100.00", total: "100.00"})

	hd, k, _ := next(t, h.late, "late")
	if k != "f" || hdr(hd, codecs.HeaderLateWindowEnd) != strconv.FormatInt(t0+hour, 10) {
		t.Errorf("late %q headers %q, want f with window end t0+1h", k, hd)
	}
	expectEmpty(t, h.late, "late")
	msgs, _ := h.flush()
	e := aggregate.Sums{Count: 1, PassengerSum: 1, PassengerCount: 1, DistanceHundredths: 100, TipCents: 50, FareCents: 300, TotalCents: 400}
	got := sumsOf(msgs)
	if len(got) != 2 || got[cellKey{win(t0, 2*hour), "Manhattan"}] != e || got[cellKey{win(t0+hour, 2*hour), "Manhattan"}] != e {
		t.Errorf("sums %v, want ride e in [t0, t0+2h) and [t0+1h, t0+3h) only", got)
	}
	for _, m := range msgs {
		for _, en := range m.partial.Entries {
			if m.key != ingest.PartitionKeys(3)[ingest.WindowPartition(en.Window, cfg.Window, 3)] {
				t.Errorf("window %v sent with key %q", en.Window, m.key)
			}
		}
	}
	checkCounters(t, h.stage, counts{in: 2, onTime: 1, late: 1, markers: 1})
}

// In data mode (no markers) the watermark follows the rides' event times.
func TestWatermarkRuleDataMode(t *testing.T) {
	cfg := baseConfig()
	cfg.Watermark = watermark.Config{Delay: 0, Quantile: 0.5, Window: 1} // watermark = latest event
	var passed []int64
	cfg.WatermarkPassed = func(p int32, wm int64) { passed = append(passed, wm) }
	h := newHarness(t, cfg)
	h.ride("a", ride{event: t0 + hour + 5*minute, pu: 1})
	h.ride("b", ride{event: t0 + 10*minute, pu: 1})
	h.ride("c", ride{event: t0 + hour + 6*minute, pu: 1})
	h.ride("d", ride{event: t0 + 20*minute, pu: 1})
	for _, want := range []struct {
		key string
		wm  int64
	}{{"b", t0 + hour + 5*minute}, {"d", t0 + hour + 6*minute}} {
		if hd, k, _ := next(t, h.late, "late"); k != want.key || hdr(hd, codecs.HeaderLateWatermark) != strconv.FormatInt(want.wm, 10) {
			t.Errorf("late %q headers %q, want %s with watermark %d", k, hd, want.key, want.wm)
		}
	}
	expectEmpty(t, h.late, "late")
	checkCounters(t, h.stage, counts{in: 4, onTime: 2, late: 2})
	if len(passed) != 1 || passed[0] != t0+hour+5*minute {
		t.Errorf("WatermarkPassed calls %v, want one with t0+1h05", passed)
	}
	if h.commits.N.Load() == 0 {
		t.Error("no commit requested although a watermark appeared")
	}
	// The tracker saw every ride, the late one too: the committed snapshot is that of
	// a tracker fed the four event times in order.
	ref := watermark.MustNew(cfg.Watermark)
	for _, ev := range []int64{t0 + hour + 5*minute, t0 + 10*minute, t0 + hour + 6*minute, t0 + 20*minute} {
		ref.ObserveEvent(ev)
	}
	snap, _ := ref.MarshalBinary()
	_, meta := h.flush()
	if got, want := meta[eos.TopicPartition{Topic: ridesTopic, Partition: 0}], "wm1:"+base64.RawStdEncoding.EncodeToString(snap); got != want {
		t.Errorf("committed tracker %q, want %q", got, want)
	}
}

// RequestCommit is asked while the watermark is ahead of the last flushed one by a
// slide boundary; WatermarkPassed is called when the watermark passes one.
func TestRequestCommitAndWatermarkPassed(t *testing.T) {
	type call struct {
		p  int32
		wm int64
	}
	var calls []call
	cfg := baseConfig()
	cfg.Watermark.Delay = 0
	cfg.WatermarkPassed = func(p int32, wm int64) { calls = append(calls, call{p, wm}) }
	h := newHarness(t, cfg)
	h.part.Store(1)
	step := func(what string, do func(), wantCommits int64, wantCalls ...call) {
		t.Helper()
		before, nCalls := h.commits.N.Load(), len(calls)
		do()
		if got := h.commits.N.Load() - before; got != wantCommits {
			t.Errorf("%s: %d commit requests, want %d", what, got, wantCommits)
		}
		got := calls[nCalls:]
		if len(got) != len(wantCalls) {
			t.Errorf("%s: WatermarkPassed calls %v, want %v", what, got, wantCalls)
			return
		}
		for i := range got {
			if got[i] != wantCalls[i] {
				t.Errorf("%s: WatermarkPassed calls %v, want %v", what, got, wantCalls)
			}
		}
	}
	flush := func() { h.flush() }
	step("ride without a watermark", func() { h.ride("a", ride{event: t0 + 5*minute, pu: 1}) }, 0)
	step("first watermark", func() { h.marker(t0+10*minute, false) }, 1, call{1, t0 + 10*minute})
	step("watermark not flushed yet", func() { h.marker(t0+20*minute, false) }, 1)
	step("on-time ride, watermark not flushed", func() { h.ride("b", ride{event: t0 + 30*minute, pu: 1}) }, 1)
	step("flush", flush, 0)
	step("marker in the same hour", func() { h.marker(t0+50*minute, false) }, 0)
	step("on-time ride", func() { h.ride("c", ride{event: t0 + hour + minute, pu: 1}) }, 0)
	step("marker at the window end", func() { h.marker(t0+hour, false) }, 1, call{1, t0 + hour})
	step("late ride", func() { h.ride("d", ride{event: t0 + minute, pu: 1}) }, 0)
	step("marker past it, not flushed", func() { h.marker(t0+hour+5*minute, false) }, 1)
	step("flush", flush, 0)
	step("marker two hours on", func() { h.marker(t0+3*hour, false) }, 1, call{1, t0 + 3*hour})
	step("flush", flush, 0)
	step("final marker", func() { h.marker(0, true) }, 1, call{1, watermark.Closed})
	step("flush", flush, 0)
	step("after the final marker", func() { h.marker(t0+5*hour, false) }, 0)
	checkCounters(t, h.stage, counts{in: 4, onTime: 3, late: 1, markers: 8})
}

// The metadata returned by Flush restores an identical tracker through Assigned:
// the same watermark, the same snapshot, and the same decisions afterwards.
func TestMetadataRoundTrip(t *testing.T) {
	cfg := baseConfig()
	cfg.Watermark = watermark.Config{Delay: 10 * time.Minute, Quantile: 0.25, Window: 8}
	a := newHarness(t, cfg)
	// Shuffled event times over five hours; the data-mode estimate needs 7 of them.
	events := func(seed int64, n int) []int64 {
		out := make([]int64, n)
		x := seed
		for i := range out {
			x = (x*1103515245 + 12345) % 2147483648
			out[i] = t0 + int64(i)*12*minute + (x%90-45)*minute
		}
		return out
	}
	first, second := events(7, 20), events(11, 30)
	for i := range second {
		second[i] += 3 * hour
	}
	for i, ev := range first {
		a.ride("r"+strconv.Itoa(i), ride{event: ev, pu: 1 + 2*(i%2), pass: "1", dist: "1.00", fare: "10.00", tip: "1.00", total: "12.00"})
	}
	_, meta := a.flush()
	md := meta[eos.TopicPartition{Topic: ridesTopic, Partition: 0}]
	trA := decodeMeta(t, cfg.Watermark, md)
	wmA, ok := trA.Watermark()
	if !ok || trA.Mode() != watermark.ModeData {
		t.Fatalf("tracker after %d rides: watermark %v, mode %v; want a data-mode watermark", len(first), ok, trA.Mode())
	}
	// Drain a's late records of the first part.
	for {
		if _, _, _, ok := a.late.NextRawWithHeaders(); !ok {
			break
		}
	}

	b := newHarness(t, cfg)
	claims := map[string][]int32{ridesTopic: {0, 3}}
	metaIn := map[eos.TopicPartition]string{
		{Topic: ridesTopic, Partition: 0}: md,
		{Topic: "other", Partition: 3}:    "garbage of another topic",
	}
	if err := b.stage.Hooks().Assigned(context.Background(), claims, metaIn); err != nil {
		t.Fatal(err)
	}
	wms := b.stage.Watermarks()
	if len(wms) != 2 || wms[0].OK || wms[3].OK {
		t.Errorf("Watermarks after Assigned: %v, want partitions 0 and 3, nothing sent yet", wms)
	}
	msgs, metaB := b.flush()
	if metaB[eos.TopicPartition{Topic: ridesTopic, Partition: 0}] != md {
		t.Errorf("restored tracker's snapshot differs:\n%s\n%s", metaB[eos.TopicPartition{Topic: ridesTopic, Partition: 0}], md)
	}
	if tr := decodeMeta(t, cfg.Watermark, metaB[eos.TopicPartition{Topic: ridesTopic, Partition: 3}]); func() bool { _, ok := tr.Watermark(); return ok }() {
		t.Error("partition 3 without metadata has a watermark")
	}
	// The restored watermark is sent to every windows partition (partition 3 has none).
	if len(msgs) != 3 {
		t.Errorf("%d messages after restore, want 3", len(msgs))
	}
	for _, m := range msgs {
		if m.partial.Partition != 0 || m.partial.Watermark != wmA || !m.partial.HasWatermark || len(m.partial.Entries) != 0 {
			t.Errorf("partial after restore %+v, want partition 0's watermark %d", m.partial, wmA)
		}
	}

	// The same rides give the same decisions on a (continuing) and b (restored).
	ca0 := countersOf(a.stage)
	for i, ev := range second {
		r := ride{event: ev, pu: 1 + 2*(i%3), pass: "2", dist: "0.50", fare: "5.00", tip: "0", total: "6.00"}
		if i%5 == 0 {
			r.event = ev - 3*hour // some far behind: late on both
		}
		a.ride("s"+strconv.Itoa(i), r)
		b.ride("s"+strconv.Itoa(i), r)
	}
	var lateA, lateB []string
	for {
		_, k, _, ok := a.late.NextRawWithHeaders()
		if !ok {
			break
		}
		lateA = append(lateA, k)
	}
	for {
		_, k, _, ok := b.late.NextRawWithHeaders()
		if !ok {
			break
		}
		lateB = append(lateB, k)
	}
	if strings.Join(lateA, ",") != strings.Join(lateB, ",") || len(lateA) == 0 {
		t.Errorf("late rides differ (or none):\n a %v\n b %v", lateA, lateB)
	}
	msgsA, metaA2 := a.flush()
	msgsB, metaB2 := b.flush()
	if metaA2[eos.TopicPartition{Topic: ridesTopic, Partition: 0}] != metaB2[eos.TopicPartition{Topic: ridesTopic, Partition: 0}] {
		t.Error("trackers differ after the same rides")
	}
	sa, sb := sumsOf(msgsA), sumsOf(msgsB)
	if len(sa) == 0 || len(sa) != len(sb) {
		t.Errorf("sums differ: %v vs %v", sa, sb)
	}
	for k, v := range sa {
		if sb[k] != v {
			t.Errorf("%v %s: %+v vs %+v", k.w, k.borough, v, sb[k])
		}
	}
	ca, cb := countersOf(a.stage), countersOf(b.stage)
	if cb.late != int64(len(lateB)) || cb.onTime != int64(len(second)-len(lateB)) ||
		ca.late-ca0.late != cb.late || ca.onTime-ca0.onTime != cb.onTime {
		t.Errorf("counters a %+v b %+v, late %d", ca, cb, len(lateB))
	}
}

func TestAssignedRejectsBadMetadata(t *testing.T) {
	good := func() string {
		tr := watermark.MustNew(watermark.DefaultConfig())
		tr.ObserveMarker(t0, false)
		b, _ := tr.MarshalBinary()
		return "wm1:" + base64.RawStdEncoding.EncodeToString(b)
	}()
	cases := []struct {
		md   string
		want string
		is   error
	}{
		{"wm2:" + good[4:], "unknown metadata format", nil},
		{"wm", "unknown metadata format", nil},
		{"wm1:!!!", "illegal base64", nil},
		{"wm1:" + base64.RawStdEncoding.EncodeToString([]byte{1, 0, 0, 0, 0, 0, 0}), "corrupt watermark snapshot", watermark.ErrCorruptSnapshot},
	}
	for _, c := range cases {
		s, err := ingest.New(baseConfig(), new(stagetest.Committer))
		if err != nil {
			t.Fatal(err)
		}
		err = s.Hooks().Assigned(context.Background(), map[string][]int32{ridesTopic: {0, 5}},
			map[eos.TopicPartition]string{{Topic: ridesTopic, Partition: 0}: good, {Topic: ridesTopic, Partition: 5}: c.md})
		if err == nil || !strings.Contains(err.Error(), "partition 5") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("metadata %q: %v, want an error about partition 5 containing %q", c.md, err, c.want)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("metadata %q: %v does not wrap %v", c.md, err, c.is)
		}
	}
}

// Revoked drops every partition's state: buffered sums and trackers.
func TestRevokedDropsState(t *testing.T) {
	h := newHarness(t, baseConfig())
	h.marker(t0+2*hour, false)
	h.ride("a", ride{event: t0 + 3*hour, pu: 1})
	if wms := h.stage.Watermarks(); len(wms) != 1 {
		t.Fatalf("Watermarks() = %v before Revoked", wms)
	}
	h.stage.Hooks().Revoked()
	msgs, meta := h.flush()
	if len(msgs) != 0 || len(meta) != 0 {
		t.Errorf("flush after Revoked: %d messages, metadata %v; want nothing", len(msgs), meta)
	}
	if wms := h.stage.Watermarks(); len(wms) != 0 {
		t.Errorf("Watermarks() after Revoked = %v", wms)
	}
	// A partition that comes back unassigned starts afresh: no watermark, so this
	// ride of an old hour is on time.
	h.ride("b", ride{event: t0, pu: 1})
	expectEmpty(t, h.late, "late")
	msgs, _ = h.flush()
	if got := sumsOf(msgs); len(got) != 1 || got[cellKey{win(t0, hour), "Manhattan"}].Count != 1 {
		t.Errorf("sums after Revoked %v, want only ride b", got)
	}
}

// Several input partitions: one partial per (input partition, windows partition),
// in input partition order, and metadata per input partition.
func TestFlushSeveralPartitions(t *testing.T) {
	h := newHarness(t, baseConfig())
	for _, p := range []int32{4, 1} {
		h.part.Store(p)
		h.ride("a", ride{event: t0 + 5*minute, pu: 1, fare: strconv.Itoa(int(p)) + ".00"})
	}
	h.part.Store(7)
	h.marker(t0+hour+10*minute, false)
	msgs, meta := h.flush()
	var order []int32
	for _, m := range msgs {
		order = append(order, m.partial.Partition)
		if m.partial.Partition != 7 && (len(m.partial.Entries) != 1 || m.partial.Entries[0].Sums.FareCents != int64(m.partial.Partition)*100) {
			t.Errorf("partial of partition %d: %+v", m.partial.Partition, m.partial.Entries)
		}
	}
	if want := []int32{1, 4, 7, 7, 7}; !slices.Equal(order, want) {
		t.Errorf("partials of partitions %v, want %v", order, want)
	}
	if len(meta) != 3 {
		t.Errorf("metadata %v, want partitions 1, 4, 7", meta)
	}
	wms := h.stage.Watermarks()
	if wms[7] != (watermark.Mark{Ms: t0 + hour, OK: true}) || wms[1].OK || wms[4].OK {
		t.Errorf("Watermarks() = %v", wms)
	}
}

func TestPartitionKeys(t *testing.T) {
	for n := 1; n <= 24; n++ {
		keys := ingest.PartitionKeys(n)
		if len(keys) != n {
			t.Fatalf("n=%d: %d keys", n, len(keys))
		}
		seen := map[string]bool{}
		for q, k := range keys {
			if seen[k] {
				t.Errorf("n=%d: duplicate key %q", n, k)
			}
			seen[k] = true
			if got := ingest.KeyPartition(k, n); got != q {
				t.Errorf("n=%d: KeyPartition(%q) = %d, want %d", n, k, got, q)
			}
			// The producer's partitioner (the eos runtime's and goka's) agrees.
			part := sarama.NewCustomHashPartitioner(goka.DefaultHasher())("t")
			got, err := part.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(k)}, int32(n))
			if err != nil || int(got) != q {
				t.Errorf("n=%d: sarama partitions %q to %d (%v), want %d", n, k, got, err, q)
			}
		}
	}
}

func TestWindowPartition(t *testing.T) {
	spec := window.Spec{Size: 2 * time.Hour, Slide: 30 * time.Minute}
	slide := 30 * minute
	// A start that is not a multiple of the slide falls in the slot below it.
	if q := ingest.WindowPartition(window.Window{StartMs: -1, EndMs: 2*hour - 1}, spec, 4); q != 3 {
		t.Errorf("start -1: partition %d, want 3 (slot -1)", q)
	}
	if q := ingest.WindowPartition(window.Window{StartMs: slide + 1, EndMs: 2*hour + slide + 1}, spec, 4); q != 1 {
		t.Errorf("start slide+1: partition %d, want 1", q)
	}
	for _, n := range []int{1, 4, 7} {
		for i := int64(-20); i < 20; i++ {
			w := win(i*slide, 2*hour)
			q := ingest.WindowPartition(w, spec, n)
			want := int(((i % int64(n)) + int64(n)) % int64(n))
			if q != want {
				t.Errorf("n=%d start %d: partition %d, want %d", n, w.StartMs, q, want)
			}
		}
	}
}

// A fake goka.Context for what goka's tester cannot do: a failing zone table.
type fakeCtx struct {
	gokaContext
	emits int
}

func (c *fakeCtx) Topic() goka.Stream                                   { return ridesTopic }
func (c *fakeCtx) Key() string                                          { return "k" }
func (c *fakeCtx) Partition() int32                                     { return 0 }
func (c *fakeCtx) Offset() int64                                        { return 42 }
func (c *fakeCtx) Headers() goka.Headers                                { return nil }
func (c *fakeCtx) Fail(err error)                                       { panic(failure{err}) }
func (c *fakeCtx) Emit(goka.Stream, string, any, ...goka.ContextOption) { c.emits++ }

type failure struct{ err error }

type brokenZones struct{}

func (brokenZones) Get(string) ([]byte, error) { return nil, errors.New("leveldb: closed") }

// A storage error of the zone table fails the callback (goka's Fail panics) instead
// of counting the ride as Unknown.
func TestZoneLookupErrorFails(t *testing.T) {
	cfg := baseConfig()
	cfg.Zones = brokenZones{}
	s, err := ingest.New(cfg, new(stagetest.Committer))
	if err != nil {
		t.Fatal(err)
	}
	ctx := new(fakeCtx)
	func() {
		defer func() {
			f, ok := recover().(failure)
			if !ok {
				t.Fatal("the callback did not fail")
			}
			if want := "ingest: zone lookup of 7: leveldb: closed"; f.err.Error() != want {
				t.Errorf("failure %q, want %q", f.err, want)
			}
		}()
		s.Process(ctx, ride{event: t0, pu: 7}.JSON())
	}()
	if ctx.emits != 0 {
		t.Errorf("%d emits", ctx.emits)
	}
	msgs, _ := flushStage(t, s)
	if len(msgs) != 0 {
		t.Errorf("the failed ride was counted: %+v", msgs)
	}
}

// With an App, partials, late and dead-letter records carry it in codecs.HeaderApp.
func TestAppHeaders(t *testing.T) {
	cfg := baseConfig()
	cfg.App = "mine"
	h := newHarness(t, cfg)
	h.marker(t0+hour+10*minute, false)
	offDead := h.consume("x", []byte("nope"), nil)
	offLate := h.ride("late", ride{event: t0, pu: 1})
	h.ride("ok", ride{event: t0 + hour, pu: 1})
	hd, _, _ := next(t, h.dead, "dead-letter")
	checkInputHeadersApp(t, hd, 0, offDead, "mine")
	hd, _, _ = next(t, h.late, "late")
	checkInputHeadersApp(t, hd, 0, offLate, "mine")
	msgs, _ := h.flush()
	if len(msgs) != 3 {
		t.Fatalf("%d partials, want 3", len(msgs))
	}
	for _, m := range msgs {
		if len(m.headers) != 1 || string(m.headers[0].Key) != codecs.HeaderApp || string(m.headers[0].Value) != "mine" {
			t.Errorf("partial headers %q, want %s: mine", m.headers, codecs.HeaderApp)
		}
	}
}

// versionedZones is a zone table that counts its changes and its lookups.
type versionedZones struct {
	mu      sync.Mutex
	zones   ingest.StaticZones
	version atomic.Uint64
	gets    map[string]int
}

func (z *versionedZones) Get(id string) ([]byte, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.gets[id]++
	return z.zones[id], nil
}

func (z *versionedZones) Version() uint64 { return z.version.Load() }

func (z *versionedZones) set(id string, raw []byte) {
	z.mu.Lock()
	z.zones[id] = raw
	z.mu.Unlock()
	z.version.Add(1)
}

func (z *versionedZones) lookups(id string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.gets[id]
}

// With a VersionedZoneTable a LocationID is looked up once per version of the table:
// a changed zone counts from the next ride on.
func TestVersionedZonesCacheBoroughs(t *testing.T) {
	zones := &versionedZones{zones: testZones(), gets: map[string]int{}}
	cfg := baseConfig()
	cfg.Zones = zones
	h := newHarness(t, cfg)
	for i := range 5 {
		h.ride(fmt.Sprintf("a%d", i), ride{event: t0 + 10*minute, pu: 1, pass: "1", dist: "1.00", fare: "1.00", tip: "0", total: "1.00"})
	}
	h.ride("big", ride{event: t0 + 10*minute, pu: 600, pass: "1", dist: "1.00", fare: "1.00", tip: "0", total: "1.00"})
	h.ride("big2", ride{event: t0 + 10*minute, pu: 600, pass: "1", dist: "1.00", fare: "1.00", tip: "0", total: "1.00"})
	if n := zones.lookups("1"); n != 1 {
		t.Errorf("zone 1 looked up %d times for 5 rides, want once", n)
	}
	if n := zones.lookups("600"); n != 2 {
		t.Errorf("zone 600 (beyond the cache) looked up %d times for 2 rides, want 2", n)
	}
	zones.set("1", zoneJSON(1, "Brooklyn"))
	for i := range 3 {
		h.ride(fmt.Sprintf("b%d", i), ride{event: t0 + 20*minute, pu: 1, pass: "1", dist: "1.00", fare: "1.00", tip: "0", total: "1.00"})
	}
	if n := zones.lookups("1"); n != 2 {
		t.Errorf("zone 1 looked up %d times in all, want twice (once per version)", n)
	}
	msgs, _ := h.flush()
	got := sumsOf(msgs)
	if c := got[cellKey{win(t0, hour), "Manhattan"}].Count; c != 5 {
		t.Errorf("Manhattan rides %d, want the 5 before the change", c)
	}
	if c := got[cellKey{win(t0, hour), "Brooklyn"}].Count; c != 3 {
		t.Errorf("Brooklyn rides %d, want the 3 after the change", c)
	}
	if c := got[cellKey{win(t0, hour), "Bronx"}].Count; c != 2 {
		t.Errorf("Bronx rides %d, want 2", c)
	}
}
