package replay

import (
	"math"
	"time"
)

// maxPacingGap is the largest event-time step Speedup pacing waits for; a larger jump of the
// event-time clock (a gap in the data, a file of another month) is skipped, not slept.
const maxPacingGap = int64(6 * time.Hour / time.Millisecond)

// pacer computes when the next row may be sent. Rate pacing spaces rows evenly from the
// first paced row on (cumulatively, so short sleeps that overshoot are caught up); Speedup
// pacing maps the event-time clock to wall time: after the clock first appears at (w0, e0),
// a row at clock e goes at w0 + (e - e0) / speedup.
type pacer struct {
	rate, speedup float64

	started bool
	start   time.Time
	n       int64 // rows paced so far (rate)

	anchored   bool
	anchorWall time.Time
	anchorMs   int64
	clock      int64 // largest clock value seen
}

func newPacer(rate, speedup float64) *pacer { return &pacer{rate: rate, speedup: speedup} }

func (p *pacer) enabled() bool { return p.rate > 0 || p.speedup > 0 }

// next returns the time at which the next row may be sent (the zero time: now). clockMs is
// the event-time clock after the row; ok=false while there is none.
func (p *pacer) next(now time.Time, clockMs int64, ok bool) time.Time {
	switch {
	case p.rate > 0:
		if !p.started {
			p.started, p.start = true, now
		}
		at := p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
		p.n++
		return at
	case p.speedup > 0:
		if !ok {
			return time.Time{}
		}
		if !p.anchored {
			p.anchored, p.anchorWall, p.anchorMs, p.clock = true, now, clockMs, clockMs
			return time.Time{}
		}
		if clockMs <= p.clock {
			clockMs = p.clock
		} else if clockMs-p.clock > maxPacingGap {
			// Skip the gap: re-anchor so that this row is due now, plus whatever the
			// replay is already behind or ahead.
			due := p.at(p.clock)
			p.anchorWall, p.anchorMs = due, clockMs
		}
		p.clock = clockMs
		return p.at(clockMs)
	}
	return time.Time{}
}

func (p *pacer) at(clockMs int64) time.Time {
	d := float64(clockMs-p.anchorMs) / p.speedup * float64(time.Millisecond)
	if d > math.MaxInt64/2 {
		d = math.MaxInt64 / 2
	}
	return p.anchorWall.Add(time.Duration(d))
}
