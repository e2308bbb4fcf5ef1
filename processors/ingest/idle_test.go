package ingest_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/ingest"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
)

// fakeProgress is the runtime's view of the input partitions, set by the test.
type fakeProgress struct {
	mu     sync.Mutex
	pos    map[int32]eos.Position
	logEnd map[int32]int64 // missing: LogEnd fails (a broker that cannot be reached)
	asked  int
}

func (f *fakeProgress) Position(_ string, p int32) (eos.Position, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pos, ok := f.pos[p]
	return pos, ok
}

func (f *fakeProgress) LogEnd(_ string, p int32, _ time.Duration) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	end, ok := f.logEnd[p]
	if !ok {
		return -1, errors.New("no answer")
	}
	return end, nil
}

// at sets partition p's position and log end to next (caught up).
func (f *fakeProgress) at(p int32, next int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pos[p] = eos.Position{Next: next, HighWaterMark: next, Delivered: next > 0}
	f.logEnd[p] = next
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }
func newIdleProgress() *fakeProgress {
	return &fakeProgress{pos: map[int32]eos.Position{}, logEnd: map[int32]int64{}}
}
func wmOf(msgs []sent, p int32) (int64, bool) { return lastWatermark(msgs, p) }

func lastWatermark(msgs []sent, p int32) (int64, bool) {
	var wm int64
	found := false
	for _, m := range msgs {
		if m.partial.Partition == p && m.partial.HasWatermark {
			wm, found = m.partial.Watermark, true
		}
	}
	return wm, found
}

// idleHarness: data mode with watermark = latest event (N = 1, no delay), 30 s
// idle timeout, partitions 0 and 1 assigned.
func idleHarness(t *testing.T, closeOnIdle bool) (*harness, *fakeProgress, *fakeClock) {
	t.Helper()
	cfg := baseConfig()
	cfg.Watermark = watermark.Config{Delay: 0, Quantile: 0.5, Window: 1}
	prog, clock := newIdleProgress(), &fakeClock{now: time.Unix(1_800_000_000, 0)}
	cfg.IdleTimeout, cfg.CloseOnIdle, cfg.Progress, cfg.Now = 30*time.Second, closeOnIdle, prog, clock.Now
	h := newHarness(t, cfg)
	if err := h.stage.Hooks().Assigned(context.Background(), map[string][]int32{ridesTopic: {0, 1}}, nil); err != nil {
		t.Fatal(err)
	}
	prog.at(0, 0)
	prog.at(1, 0)
	return h, prog, clock
}

// A quiet, caught-up partition stops holding the watermark back: it takes the
// lowest watermark of the others, then runs on with the wall clock; a ride it
// delivers later is judged against that watermark; it is active again once its
// offset moves. The raised watermark is in the committed metadata.
func TestIdlePartitionFollowsTheOthers(t *testing.T) {
	h, prog, clock := idleHarness(t, false)
	h.part.Store(0)
	h.ride("a", ride{event: t0 + 10*hour + 30*minute, pu: 1}) // partition 0: 10:30
	prog.at(0, 1)
	h.part.Store(1)
	h.ride("b", ride{event: t0 + 12*hour + 30*minute, pu: 1}) // partition 1: 12:30
	prog.at(1, 1)
	h.flush() // both active: the clock of their last activity starts

	// 29 s later partition 1 delivered again, partition 0 nothing: not idle yet.
	clock.advance(29 * time.Second)
	h.ride("c", ride{event: t0 + 12*hour + 40*minute, pu: 1}) // partition 1: 12:40
	prog.at(1, 2)
	msgs, _ := h.flush()
	if wm, ok := wmOf(msgs, 0); ok {
		t.Fatalf("partition 0 raised to %d before the idle timeout", wm)
	}
	if n := h.stage.Counters.Idle.Load(); n != 0 {
		t.Fatalf("%d idle partitions before the timeout", n)
	}

	// 30 s after its last delivery: idle, raised to partition 1's watermark.
	clock.advance(time.Second)
	prog.at(1, 3) // partition 1 keeps going
	msgs, meta := h.flush()
	if wm, ok := wmOf(msgs, 0); !ok || wm != t0+12*hour+40*minute {
		t.Fatalf("idle partition 0 sent watermark %d (%v), want partition 1's 12:40", wm, ok)
	}
	if n := h.stage.Counters.Idle.Load(); n != 1 {
		t.Fatalf("%d idle partitions, want 1", n)
	}
	tr := decodeMeta(t, h.cfg.Watermark, meta[eos.TopicPartition{Topic: ridesTopic, Partition: 0}])
	if wm, _ := tr.Watermark(); wm != t0+12*hour+40*minute {
		t.Errorf("committed watermark of partition 0 is %d, want the raised 12:40", wm)
	}

	// While idle it runs on with the wall clock, a window at a time: nothing moves
	// (nothing to commit) until the clock reaches the next window end, 13:00.
	for range 3 {
		clock.advance(6 * time.Minute)
		prog.at(1, 3)
		msgs, meta = h.flush()
		if wm, ok := wmOf(msgs, 0); ok && wm != t0+12*hour+40*minute {
			t.Fatalf("idle partition 0 moved to %d before the clock reached the window end", wm)
		}
		tr := decodeMeta(t, h.cfg.Watermark, meta[eos.TopicPartition{Topic: ridesTopic, Partition: 0}])
		if wm, _ := tr.Watermark(); wm != t0+12*hour+40*minute {
			t.Fatalf("committed watermark of partition 0 moved to %d between window ends", wm)
		}
	}
	clock.advance(2*time.Minute + 30*time.Second) // 20:30 of wall clock since 12:40
	prog.at(1, 3)
	msgs, _ = h.flush()
	if wm, ok := wmOf(msgs, 0); !ok || wm != t0+13*hour {
		t.Fatalf("idle partition 0 after 20.5 min: watermark %d (%v), want the window end 13:00", wm, ok)
	}
	// The half minute past 13:00 is kept: the next end is an hour of clock later.
	clock.advance(59*time.Minute + 29*time.Second)
	msgs, _ = h.flush()
	if wm, ok := wmOf(msgs, 0); ok && wm != t0+13*hour {
		t.Fatalf("idle partition 0 moved to %d before 14:00", wm)
	}
	clock.advance(time.Second)
	msgs, _ = h.flush()
	if wm, ok := wmOf(msgs, 0); !ok || wm != t0+14*hour {
		t.Fatalf("idle partition 0: watermark %d (%v), want 14:00 after an hour of clock", wm, ok)
	}

	// Partition 1 has been quiet for over an hour too.
	if n := h.stage.Counters.Idle.Load(); n != 2 {
		t.Fatalf("%d idle partitions, want both", n)
	}

	// A ride partition 0 delivers now for the 11:00 window is late; 14:10 is on time.
	h.part.Store(0)
	h.ride("old", ride{event: t0 + 11*hour + 30*minute, pu: 1})
	h.ride("new", ride{event: t0 + 14*hour + 10*minute, pu: 1})
	if hd, k, _ := next(t, h.late, "late"); k != "old" || hdr(hd, codecs.HeaderLateWatermark) != strconv.FormatInt(t0+14*hour, 10) {
		t.Errorf("late %q headers %q; want old against the idle watermark", k, hd)
	}
	expectEmpty(t, h.late, "late")
	prog.at(0, 3)
	clock.advance(time.Second)
	h.flush()
	if n := h.stage.Counters.Idle.Load(); n != 1 {
		t.Errorf("%d idle partitions after partition 0 delivered again, want 1 (partition 1)", n)
	}
}

// Not idle while the log has records past the position (the consumer is behind, or
// its high watermark is stale) or the broker does not answer.
func TestIdleNeedsTheLogEnd(t *testing.T) {
	h, prog, clock := idleHarness(t, false)
	h.part.Store(0)
	h.ride("a", ride{event: t0 + 10*hour, pu: 1})
	prog.at(0, 1)
	h.part.Store(1)
	h.ride("b", ride{event: t0 + 12*hour, pu: 1})
	prog.at(1, 1)
	h.flush()
	clock.advance(31 * time.Second)
	prog.mu.Lock()
	prog.logEnd[0] = 5 // records appended the consumer has not fetched
	delete(prog.logEnd, 1)
	prog.mu.Unlock()
	msgs, _ := h.flush()
	if len(msgs) != 0 || h.stage.Counters.Idle.Load() != 0 {
		t.Fatalf("idle although the log end is ahead or unknown: %d partials, %d idle", len(msgs), h.stage.Counters.Idle.Load())
	}
	asked := prog.asked
	h.flush() // within a second of the failed checks: not asked again
	if prog.asked != asked {
		t.Errorf("log end asked again at once (%d -> %d)", asked, prog.asked)
	}
}

// Partitions in marker mode follow the producer's markers only.
func TestIdleIgnoresMarkerMode(t *testing.T) {
	h, prog, clock := idleHarness(t, true)
	h.part.Store(0)
	h.marker(t0+10*hour, false)
	prog.at(0, 1)
	h.part.Store(1)
	h.ride("b", ride{event: t0 + 12*hour, pu: 1})
	prog.at(1, 1)
	h.flush()
	clock.advance(time.Minute)
	msgs, _ := h.flush()
	if wm, ok := wmOf(msgs, 0); ok {
		t.Errorf("marker-mode partition 0 raised to %d", wm)
	}
	if _, ok := wmOf(msgs, 1); !ok {
		t.Errorf("data-mode partition 1 not raised with close on idle")
	}
}

// Close on idle: every window holding a ride seen closes once all partitions are
// idle, an empty partition included.
func TestCloseOnIdle(t *testing.T) {
	h, prog, clock := idleHarness(t, true)
	h.part.Store(0)
	h.ride("a", ride{event: t0 + 10*hour + 30*minute, pu: 1})
	h.ride("b", ride{event: t0 + 13*hour + 20*minute, pu: 1}) // latest: window [13:00, 14:00)
	h.ride("c", ride{event: t0 + 9*hour, pu: 1})
	prog.at(0, 3)
	h.flush()
	clock.advance(30 * time.Second)
	msgs, _ := h.flush()
	for _, p := range []int32{0, 1} {
		if wm, ok := wmOf(msgs, p); !ok || wm != t0+14*hour {
			t.Errorf("partition %d watermark %d (%v) after close on idle, want 14:00", p, wm, ok)
		}
	}
	if n := h.stage.Counters.Idle.Load(); n != 2 {
		t.Errorf("%d idle partitions, want 2", n)
	}
}

func TestNewRejectsBadIdleConfig(t *testing.T) {
	for name, mod := range map[string]func(*ingest.Config){
		"close on idle without timeout": func(c *ingest.Config) { c.CloseOnIdle = true },
		"idle without progress":         func(c *ingest.Config) { c.IdleTimeout = time.Second },
		"negative lateness":             func(c *ingest.Config) { c.AllowedLateness = -time.Second },
		"lateness below a millisecond":  func(c *ingest.Config) { c.AllowedLateness = time.Microsecond },
	} {
		cfg := baseConfig()
		mod(&cfg)
		if _, err := ingest.New(cfg, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// With allowed lateness a ride for a window closed less than that long ago is
// counted; an older one is late with its own reason.
func TestAllowedLateness(t *testing.T) {
	cfg := baseConfig()
	cfg.AllowedLateness = 2 * time.Hour
	h := newHarness(t, cfg)
	h.marker(t0+5*hour+10*minute, false)                          // watermark 5:00 (10 min delay)
	h.ride("recent", ride{event: t0 + 3*hour + 30*minute, pu: 1}) // window ends 4:00 > 5:00 − 2h
	h.ride("old", ride{event: t0 + 2*hour + 30*minute, pu: 1})    // window ends 3:00 <= 3:00
	hd, k, _ := next(t, h.late, "late")
	if k != "old" || hdr(hd, codecs.HeaderLateReason) != codecs.LateBeyondAllowedLateness {
		t.Errorf("late %q reason %q; want old, %q", k, hdr(hd, codecs.HeaderLateReason), codecs.LateBeyondAllowedLateness)
	}
	expectEmpty(t, h.late, "late")
	msgs, _ := h.flush()
	if got := sumsOf(msgs); got[cellKey{win(t0+3*hour, hour), "Manhattan"}].Count != 1 {
		t.Errorf("sums %v; want the recent ride in the closed 3:00 window", got)
	}
}
