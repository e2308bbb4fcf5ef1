package replay

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress reports the replay's advance: a live bar on a terminal, else a log line every
// LogEvery. Rows count acknowledged rides plus rides skipped on resume, out of all rides.
type progress struct {
	counts  *counters
	skipped *atomic.Int64
	total   int64
	start   time.Time
	log     *slog.Logger
	bar     *progressbar.ProgressBar
	barW    io.Writer
	every   time.Duration
	stop    chan struct{}
	done    chan struct{}
}

func startProgress(cfg Config, counts *counters, skipped *atomic.Int64, total int64) *progress {
	p := &progress{counts: counts, skipped: skipped, total: total, start: time.Now(), log: cfg.Logger,
		every: cfg.LogEvery, stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.ProgressBar != nil {
		p.bar, p.barW = newBar(cfg.ProgressBar, total), cfg.ProgressBar
		p.every = 200 * time.Millisecond
	}
	if p.every <= 0 {
		close(p.done)
		return p
	}
	go p.loop()
	return p
}

func newBar(w io.Writer, total int64) *progressbar.ProgressBar {
	if total <= 0 {
		total = -1 // unknown: a spinner
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("replay"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowDescriptionAtLineEnd(),
	)
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.report()
			return
		case <-t.C:
			p.report()
		}
	}
}

func (p *progress) rows() int64 { return p.counts.rows.Load() + p.skipped.Load() }

func (p *progress) report() {
	rows := p.rows()
	if p.bar != nil {
		p.bar.Describe(humanBytes(p.counts.bytes.Load()))
		_ = p.bar.Set64(rows)
		return
	}
	el := time.Since(p.start)
	rate := float64(p.counts.rows.Load()) / max(el.Seconds(), 1e-9)
	attrs := []any{"rows", rows, "of", p.total, "rows_per_s", int64(rate),
		"bytes", p.counts.bytes.Load(), "markers", p.counts.markers.Load(), "elapsed", el.Round(time.Second)}
	if left := p.total - rows; p.total > 0 && rate > 0 && left > 0 {
		attrs = append(attrs, "eta", (time.Duration(float64(left)/rate) * time.Second).Round(time.Second))
	}
	p.log.Info("replay progress", attrs...)
}

// close stops the reporting after a last update.
func (p *progress) close() {
	select {
	case <-p.done:
	default:
		close(p.stop)
		<-p.done
	}
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.barW)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
