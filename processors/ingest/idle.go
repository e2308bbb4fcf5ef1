package ingest

import (
	"math"
	"slices"
	"time"

	"github.com/taxi-stream/taxi-stream/topology/watermark"
)

// Idle partitions (docs/design.md "Idle partitions and finished streams").
//
// A partition in data mode (it never saw a producer marker) is idle when it is
// caught up and its offset has not moved for Config.IdleTimeout. From then on, at
// every commit (flush), the stage raises the partition's watermark so that it no
// longer holds the minimum back:
//
//   - to the lowest watermark of the other ingest partitions this process knows
//     (its own partitions and the windows stage's state, which holds every ingest
//     partition's latest watermark): the windows then close as the busy partitions
//     allow, and a ride the idle partition delivers later is judged against a
//     watermark no higher than the one that closed those windows;
//   - and, while it stays idle, by the wall-clock time that passed, a whole window
//     slide at a time: when every partition is idle, event time keeps running (a
//     live feed that pauses), and the watermark moves when it reaches the next
//     window end. Window ends are the only values that close anything, so a step
//     closes what a smooth clock would, and an idle pipeline commits (and writes
//     its changelog) once per slide instead of at every commit interval;
//   - with CloseOnIdle, past the last window of the latest ride it has seen and to
//     the highest watermark of the others: once all partitions are idle, every
//     window holding a ride closes (a finite replay without markers).
//
// The raised watermark is part of the tracker, so it is committed as the
// partition's offset metadata, in the same transaction as the partials that carry
// it to the windows stage (the runtime commits a changed metadata even when the
// offset did not move). An idle decision therefore changes results only through
// that committed state: a crash and replay from the commit reproduce the same
// decisions for every ride that follows. Which moment a partition is found idle
// depends on the wall clock, so two runs of a live feed may differ in which rides
// are late; two replays of the same committed history do not.
//
// Partitions in marker mode are left to the producer's markers: it writes them to
// every partition, so none is starved, and the markers say exactly what is
// complete.

// logEndTimeout bounds the broker round trip that confirms a partition is caught up.
const logEndTimeout = 2 * time.Second

// recheckAfter spaces the confirmations of a partition the broker did not answer for.
const recheckAfter = time.Second

// detectIdle runs at each flush, with every callback paused and s.mu held.
func (s *Stage) detectIdle() {
	now := s.cfg.Now()
	known := s.knownWatermarks()
	for _, p := range slices.Sorted(mapsKeys(s.parts)) {
		st := s.parts[p]
		pos, ok := s.cfg.Progress.Position(s.cfg.RidesTopic, p)
		if !ok {
			continue
		}
		if st.lastActive.IsZero() || pos.Next != st.lastNext {
			if st.idle {
				st.idle = false
				s.Counters.Idle.Add(-1)
				s.cfg.Logger.Info("ingest partition active again", "partition", p, "offset", pos.Next)
			}
			st.lastNext, st.lastActive = pos.Next, now
			continue
		}
		if st.tracker.Mode() != watermark.ModeData {
			continue
		}
		if !st.idle {
			quiet := now.Sub(st.lastActive)
			if quiet < s.cfg.IdleTimeout || now.Before(st.nextCheck) {
				continue
			}
			// Caught up: nothing fetched and not processed, and (asked now, since the
			// consumer's own high watermark is stale while it cannot fetch) nothing
			// in the log past the position. One record of slack: a transaction's
			// commit marker takes an offset that is never delivered.
			if pos.HighWaterMark >= 0 && pos.HighWaterMark-pos.Next > 1 {
				continue
			}
			end, err := s.cfg.Progress.LogEnd(s.cfg.RidesTopic, p, logEndTimeout)
			if err != nil || end-pos.Next > 1 {
				st.nextCheck = now.Add(recheckAfter)
				if err != nil {
					s.cfg.Logger.Debug("cannot confirm that a quiet partition is caught up", "partition", p, "err", err)
				}
				continue
			}
			st.idle, st.wallSet = true, false
			s.Counters.Idle.Add(1)
			wm, has := st.tracker.Watermark()
			s.cfg.Logger.Info("ingest partition idle: it no longer holds the watermark back",
				"partition", p, "offset", pos.Next, "quiet_for", quiet.Round(time.Millisecond),
				"watermark", wm, "has_watermark", has, "close_on_idle", s.cfg.CloseOnIdle)
		}
		target, ok := s.idleTarget(p, st, known, now)
		if ok && st.tracker.Raise(target) {
			s.Counters.IdleAdvances.Add(1)
			known[p] = target
		}
		if wm, ok := st.tracker.Watermark(); ok && wm != st.wallAt {
			// Raised by the others: the clock runs on from here.
			st.wallFrom, st.wallAt, st.wallSet = now, wm, true
		}
	}
}

// idleTarget is the watermark an idle partition is raised to (see the top of the file).
func (s *Stage) idleTarget(p int32, st *partitionState, known map[int32]int64, now time.Time) (int64, bool) {
	var target int64
	has := false
	lift := func(v int64) {
		if !has || v > target {
			target, has = v, true
		}
	}
	wallStep, wallRest := int64(0), int64(0)
	if wm, ok := st.tracker.Watermark(); ok {
		if !st.wallSet || wm != st.wallAt {
			// Idle from now, or raised by the others: the clock (re)starts here.
			st.wallFrom, st.wallAt, st.wallSet = now, wm, true
		}
		run := addSat(st.wallAt, now.Sub(st.wallFrom).Milliseconds())
		slide := s.cfg.Window.Slide.Milliseconds()
		if step := run - mod(run, slide); step > wm {
			lift(step)
			wallStep, wallRest = step, run-step
		}
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	others := false
	for q, wm := range known {
		if q == p || wm == watermark.Closed {
			continue
		}
		lo, hi, others = min(lo, wm), max(hi, wm), true
	}
	if s.cfg.CloseOnIdle {
		if others {
			lift(hi)
		}
		if maxEvent, ok := st.tracker.Max(); ok {
			ws := s.cfg.Window.Windows(maxEvent, st.windows[:0])
			for _, w := range ws {
				lift(w.EndMs)
			}
			st.windows = ws
		}
	} else if others {
		lift(lo)
	}
	if has && wallStep != 0 && target == wallStep {
		// The clock's step is the raise: it runs on from there, keeping the part
		// of the slide it has already run.
		st.wallAt, st.wallFrom = wallStep, now.Add(-time.Duration(wallRest)*time.Millisecond)
	}
	return target, has
}

// mod returns v modulo m (m > 0) in [0, m), for negative v as well.
func mod(v, m int64) int64 {
	r := v % m
	if r < 0 {
		r += m
	}
	return r
}

// knownWatermarks merges the windows stage's view of every ingest partition with
// this stage's own trackers (newer for its own partitions).
func (s *Stage) knownWatermarks() map[int32]int64 {
	out := map[int32]int64{}
	if s.cfg.OtherWatermarks != nil {
		for p, wm := range s.cfg.OtherWatermarks() {
			out[p] = wm
		}
	}
	for p, st := range s.parts {
		if wm, ok := st.tracker.Watermark(); ok {
			out[p] = wm
		} else {
			delete(out, p) // the stage's own state is the truth for its partitions
		}
	}
	return out
}

// addSat returns a+b for b >= 0, saturating below watermark.Closed.
func addSat(a, b int64) int64 {
	if a > watermark.Closed-1-b {
		return watermark.Closed - 1
	}
	return a + b
}
