// Package windows is the second stage of the topology. Its input is the ingest
// stage's partial sums and watermarks (the repartition topic); its state, one value
// per partition in a goka group table (LevelDB + compacted changelog), holds the open
// windows' exact sums and the latest watermark of every ingest partition. When the
// minimum of those watermarks passes a window's end, the window's results (one per
// borough) go to the results topic and the window leaves the state.
package windows

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/aggregate"
)

// Config configures the stage.
type Config struct {
	ResultsTopic goka.Stream
	// IngestPartitions is the partition count of the rides topic: a window closes
	// only when every one of them has passed its end.
	IngestPartitions int
	// App is the processor app (taxi-stream --app). When set, a partial whose
	// codecs.HeaderApp names another app (or none) is refused: counted, logged once
	// per app, and not applied. Its results carry the header too.
	App string
	// AllowedLateness keeps a closed window in the state until the watermark passes
	// its end + AllowedLateness; sums that arrive for it meanwhile update it and emit
	// a revision of its result (the ingest stage uses the same value to decide which
	// rides are late). 0: a window leaves the state when it closes.
	AllowedLateness time.Duration
	Logger          *slog.Logger
}

// Counters are the stage's running totals.
type Counters struct {
	Partials       atomic.Int64 // partial messages applied
	ResultsEmitted atomic.Int64 // final (window, borough) results written (revisions not included)
	RidesEmitted   atomic.Int64 // rides covered by the results written (a revision adds only its new rides)
	Revisions      atomic.Int64 // revised results written (allowed lateness)
	DroppedRides   atomic.Int64 // rides in partials for already closed windows (must stay 0)
	Foreign        atomic.Int64 // partials written by another app, refused (must stay 0)
}

// Stage is the windows stage of one instance.
type Stage struct {
	cfg       Config
	committer interface{ RequestCommit() }
	Counters  Counters

	mu      sync.Mutex
	cache   map[int32]*cached // decoded state per partition
	foreign map[string]bool   // apps whose partials were refused (logged once each)

	resultHeaders goka.Headers
}

type cached struct {
	encoded []byte
	state   aggregate.State
}

// New creates the stage.
func New(cfg Config, committer interface{ RequestCommit() }) (*Stage, error) {
	if cfg.IngestPartitions <= 0 {
		return nil, fmt.Errorf("windows: ingest partitions must be > 0, not %d", cfg.IngestPartitions)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Stage{cfg: cfg, committer: committer, cache: map[int32]*cached{}, foreign: map[string]bool{}}
	if cfg.App != "" {
		s.resultHeaders = goka.Headers{codecs.HeaderApp: []byte(cfg.App)}
	}
	return s, nil
}

// refuse reports whether the message was written by another app's ingest stage;
// such a partial is counted and logged, never applied.
func (s *Stage) refuse(ctx goka.Context) bool {
	if s.cfg.App == "" {
		return false
	}
	writer := string(ctx.Headers()[codecs.HeaderApp])
	if writer == s.cfg.App {
		return false
	}
	s.Counters.Foreign.Add(1)
	s.mu.Lock()
	seen := s.foreign[writer]
	s.foreign[writer] = true
	s.mu.Unlock()
	if !seen {
		name := writer
		if name == "" {
			name = "(no " + codecs.HeaderApp + " header)"
		}
		s.cfg.Logger.Error("refusing partial sums written by another app on this app's repartition topic; give each app its own --windows-topic (the default, <app>-windows-repartition, is)",
			"this_app", s.cfg.App, "writer_app", name, "topic", ctx.Topic(), "partition", ctx.Partition(), "offset", ctx.Offset())
	}
	return true
}

// Process is the goka callback for the repartition topic.
func (s *Stage) Process(ctx goka.Context, msg any) {
	if s.refuse(ctx) {
		return
	}
	raw, _ := msg.([]byte)
	var partial aggregate.Partial
	if err := partial.UnmarshalBinary(raw); err != nil {
		// Only the ingest stage writes this topic: a bad record is a bug, not input.
		ctx.Fail(fmt.Errorf("windows: partial at %s/%d offset %d: %w", ctx.Topic(), ctx.Partition(), ctx.Offset(), err))
		return
	}
	st, err := s.load(ctx)
	if err != nil {
		ctx.Fail(err)
		return
	}
	s.Counters.Partials.Add(1)
	lateness := s.cfg.AllowedLateness.Milliseconds()
	applied := st.Apply(partial, lateness)
	if dropped := applied.DroppedRides; dropped > 0 {
		s.Counters.DroppedRides.Add(dropped)
		s.cfg.Logger.Error("partial for a closed window dropped: the watermark rule was broken",
			"ingest_partition", partial.Partition, "rides", dropped)
	}
	for _, r := range applied.Revised {
		ctx.Emit(s.cfg.ResultsTopic, r.Key(), r.AppendJSON(nil), goka.WithCtxEmitHeaders(s.resultHeaders))
		s.Counters.Revisions.Add(1)
	}
	s.Counters.RidesEmitted.Add(applied.RevisedRides)
	if len(applied.Revised) > 0 {
		s.committer.RequestCommit()
	}
	if min, ok := st.MinWatermark(s.cfg.IngestPartitions); ok {
		results := st.Close(min, lateness)
		for _, r := range results {
			ctx.Emit(s.cfg.ResultsTopic, r.Key(), r.AppendJSON(nil), goka.WithCtxEmitHeaders(s.resultHeaders))
			s.Counters.ResultsEmitted.Add(1)
			s.Counters.RidesEmitted.Add(r.Sums.Count)
		}
		if len(results) > 0 {
			s.cfg.Logger.Debug("windows closed", "partition", ctx.Partition(), "offset", ctx.Offset(),
				"results", len(results), "first_start_ms", results[0].Window.StartMs, "min_watermark", min)
			s.committer.RequestCommit() // make them readable now
		}
	}
	encoded, err := st.MarshalBinary()
	if err != nil {
		ctx.Fail(fmt.Errorf("windows: encode state: %w", err))
		return
	}
	ctx.SetValue(encoded)
	s.mu.Lock()
	s.cache[ctx.Partition()] = &cached{encoded: encoded, state: *st}
	s.mu.Unlock()
}

// load returns the partition's state; the decoded copy is reused while the stored
// bytes are the ones it was made from. A reused copy leaves the cache (its maps are
// about to change): Process puts it back only once the new state is stored, so a
// callback that fails half-way cannot leave changed sums behind the old bytes.
func (s *Stage) load(ctx goka.Context) (*aggregate.State, error) {
	stored, _ := ctx.Value().([]byte)
	s.mu.Lock()
	c := s.cache[ctx.Partition()]
	delete(s.cache, ctx.Partition())
	s.mu.Unlock()
	if c != nil && bytes.Equal(c.encoded, stored) {
		return &c.state, nil
	}
	st := new(aggregate.State)
	if len(stored) > 0 {
		if err := st.UnmarshalBinary(stored); err != nil {
			return nil, fmt.Errorf("windows: state of partition %d: %w", ctx.Partition(), err)
		}
	}
	closed, _ := st.ClosedThrough()
	s.cfg.Logger.Debug("windows state loaded", "partition", ctx.Partition(), "offset", ctx.Offset(), "open", st.Len(), "closed_through", closed, "bytes", len(stored))
	return st, nil
}

// Watermarks returns the latest watermark of every ingest partition as the
// windows states this instance holds know them (the highest over its partitions).
func (s *Stage) Watermarks() map[int32]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int32]int64{}
	for _, c := range s.cache {
		for p, wm := range c.state.Watermarks() {
			if old, ok := out[p]; !ok || wm > old {
				out[p] = wm
			}
		}
	}
	return out
}

// StateSize returns the cells (open, and closed but kept for revisions) and the
// encoded bytes of the windows states this instance holds.
func (s *Stage) StateSize() (cells, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cache {
		cells += c.state.Len()
		bytes += len(c.encoded)
	}
	return cells, bytes
}

// Forget drops the decoded states (on revocation).
func (s *Stage) Forget() {
	s.mu.Lock()
	s.cache = map[int32]*cached{}
	s.mu.Unlock()
}
