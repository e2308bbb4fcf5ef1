package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/processors/ingest"
	"github.com/taxi-stream/taxi-stream/processors/windows"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

func newStages(t *testing.T) (*ingest.Stage, *windows.Stage) {
	t.Helper()
	in, err := ingest.New(ingest.Config{Zones: ingest.StaticZones{}, WindowsPartitions: 1, Window: window.Tumbling(time.Hour), Watermark: watermark.DefaultConfig()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	win, err := windows.New(windows.Config{IngestPartitions: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return in, win
}

// A restarted stage starts with fresh counters: Stats carries the replaced
// stage's totals, so the instance's counters never go down.
func TestStatsCarryOverStageRestarts(t *testing.T) {
	p := &Pipeline{}
	in1, win1 := newStages(t)
	p.setIngest(in1, nil, nil)
	p.setWindows(win1, nil, nil)
	in1.Counters.In.Add(10)
	in1.Counters.Late.Add(2)
	win1.Counters.ResultsEmitted.Add(3)
	if s := p.Stats(); s.Ingest.In != 10 || s.Ingest.Late != 2 || s.Windows.ResultsEmitted != 3 {
		t.Fatalf("first generation: %+v", s)
	}
	in2, win2 := newStages(t)
	p.setIngest(in2, nil, nil)
	p.setWindows(win2, nil, nil)
	in2.Counters.In.Add(5)
	win2.Counters.ResultsEmitted.Add(1)
	s := p.Stats()
	if s.Ingest.In != 15 || s.Ingest.Late != 2 || s.Windows.ResultsEmitted != 4 {
		t.Errorf("after a restart: %+v, want in 15, late 2, results 4", s)
	}
}

func TestSuperviseRecordsFailures(t *testing.T) {
	p := &Pipeline{opts: Options{Logger: slog.New(slog.DiscardHandler)}}
	ctx, cancel := context.WithCancel(context.Background())
	runs := 0
	done := make(chan error, 1)
	go func() {
		done <- p.supervise(ctx, &p.health[1], func(context.Context) error {
			runs++
			if runs == 3 {
				cancel()
				return nil
			}
			return errors.New("broker gone")
		})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("supervise did not stop")
	}
	h := p.Health()[1]
	if h.Name != StageWindows || h.Restarts != 2 || h.ConsecutiveFailures != 2 || h.LastError != "broker gone" || h.Running || h.Stuck(time.Now()) {
		t.Errorf("health after 2 failures %+v", h)
	}
	// More quick failures (supervise's back-off makes them slow to reach here).
	for range StuckAfter - 2 {
		p.health[1].started(time.Now())
		p.health[1].failed(errors.New("broker gone"), false)
	}
	h = p.Health()[1]
	now := time.Now()
	if !h.Stuck(now) {
		t.Error("not running after StuckAfter failures: stuck")
	}
	h.Running, h.RunningSince = true, now.Add(-30*time.Second)
	if !h.Stuck(now) {
		t.Error("running for 30 s after StuckAfter quick failures: still stuck")
	}
	h.RunningSince = now.Add(-2 * time.Minute)
	if h.Stuck(now) {
		t.Error("running for 2 min: not stuck")
	}
	// A failure after a run of over a minute starts a new count.
	p.health[1].failed(errors.New("later"), true)
	if h := p.Health()[1]; h.ConsecutiveFailures != 1 || h.Restarts != StuckAfter+1 || h.Stuck(time.Now()) {
		t.Errorf("after a long run: %+v", h)
	}
	if p.Health()[0].Restarts != 0 {
		t.Error("the other stage has no failures")
	}
}
