package pipeline

import (
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/ingest"
	"github.com/taxi-stream/taxi-stream/processors/windows"
	"github.com/taxi-stream/taxi-stream/topology"
)

// Stage names, as Health reports them.
const (
	StageIngest  = "ingest"
	StageWindows = "windows"
)

// IngestCounts are the ingest stage's counters (ingest.Counters).
type IngestCounts struct {
	In, OnTime, Late, Dead, Markers int64
	// IdleAdvances counts raises of idle partitions' watermarks (--idle-timeout).
	IdleAdvances int64
}

// WindowsCounts are the windows stage's counters (windows.Counters).
type WindowsCounts struct {
	Partials, ResultsEmitted, RidesEmitted, DroppedRides, ForeignPartials int64
	// Revisions counts revised results (--allowed-lateness).
	Revisions int64
}

// CommitCounts describe one stage's commits (eos.Runtime).
type CommitCounts struct {
	Commits, Aborts int64
	// Fenced counts departed instances whose open transactions were aborted.
	Fenced  int64
	Time    time.Duration // total time commits took (their round trips overlap processing)
	Paused  time.Duration // total time processing was paused for commits
	Longest time.Duration // the longest pause
}

// Stats are an instance's counters since it started: a stage that fails is rebuilt
// with fresh counters, so the totals of the replaced stages are carried over and
// the sums never go down. Work redone after a failure (from the last commit) is
// counted again, as in Kafka Streams' process-total metrics.
type Stats struct {
	Ingest  IngestCounts
	Windows WindowsCounts
	// IdlePartitions is how many of this instance's ingest partitions are idle now.
	IdlePartitions int64
	IngestCommits  CommitCounts
	WindowsCommits CommitCounts
}

// Stats returns the counters since the instance started.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.carried
	addIngest(&s.Ingest, p.ingest)
	if p.ingest != nil {
		s.IdlePartitions = p.ingest.Counters.Idle.Load()
	}
	addWindows(&s.Windows, p.windows)
	addCommits(&s.IngestCommits, p.ingestRT)
	addCommits(&s.WindowsCommits, p.windowsRT)
	return s
}

func addIngest(c *IngestCounts, st *ingest.Stage) {
	if st == nil {
		return
	}
	c.In += st.Counters.In.Load()
	c.OnTime += st.Counters.OnTime.Load()
	c.Late += st.Counters.Late.Load()
	c.Dead += st.Counters.Dead.Load()
	c.Markers += st.Counters.Markers.Load()
	c.IdleAdvances += st.Counters.IdleAdvances.Load()
}

func addWindows(c *WindowsCounts, st *windows.Stage) {
	if st == nil {
		return
	}
	c.Partials += st.Counters.Partials.Load()
	c.ResultsEmitted += st.Counters.ResultsEmitted.Load()
	c.RidesEmitted += st.Counters.RidesEmitted.Load()
	c.DroppedRides += st.Counters.DroppedRides.Load()
	c.ForeignPartials += st.Counters.Foreign.Load()
	c.Revisions += st.Counters.Revisions.Load()
}

func addCommits(c *CommitCounts, rt *eos.Runtime) {
	if rt == nil {
		return
	}
	c.Commits += rt.Commits()
	c.Aborts += rt.Aborts()
	c.Fenced += rt.Fenced()
	paused, longestPause, total := rt.CommitTime()
	c.Time += total
	c.Paused += paused
	c.Longest = max(c.Longest, longestPause)
}

// setIngest installs a new generation of the ingest stage; the replaced one has
// stopped, its counters move to the carried totals.
func (p *Pipeline) setIngest(stage *ingest.Stage, rt *eos.Runtime, proc *goka.Processor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	addIngest(&p.carried.Ingest, p.ingest)
	addCommits(&p.carried.IngestCommits, p.ingestRT)
	p.ingest, p.ingestRT, p.ingestProc = stage, rt, proc
}

// setWindows is setIngest for the windows stage.
func (p *Pipeline) setWindows(stage *windows.Stage, rt *eos.Runtime, proc *goka.Processor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	addWindows(&p.carried.Windows, p.windows)
	addCommits(&p.carried.WindowsCommits, p.windowsRT)
	p.windows, p.windowsRT, p.windowsProc = stage, rt, proc
}

func (p *Pipeline) setConfig(cfg topology.Config) {
	p.cfg = cfg
	p.mu.Lock()
	p.topo = &cfg
	p.mu.Unlock()
}

// Topology returns the topology in force, with the partition counts read from
// Kafka; ok is false until Run has read them. Safe to call at any time.
func (p *Pipeline) Topology() (cfg topology.Config, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.topo == nil {
		return topology.Config{}, false
	}
	return *p.topo, true
}

// Processors returns the stages' current goka processors (nil before a stage's
// first start). Use them read-only: Recovered, Stats, Get.
func (p *Pipeline) Processors() (ingest, windows *goka.Processor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ingestProc, p.windowsProc
}

// StuckAfter is how many failures in a row, none after a run of a minute or more,
// make a stage count as stuck in a restart loop (Health).
const StuckAfter = 5

// StageHealth is one stage's run record.
type StageHealth struct {
	Name string // StageIngest or StageWindows
	// Running: the stage's current generation is running (since RunningSince).
	Running      bool
	RunningSince time.Time
	// Restarts counts the stage's failures (each one is followed by a restart).
	Restarts int64
	// ConsecutiveFailures counts the failures since the last run that lasted a
	// minute or more.
	ConsecutiveFailures int
	LastError           string
	LastFailure         time.Time
}

// Stuck reports whether the stage is in a restart loop: at least StuckAfter
// failures in a row and its current run (if any) younger than a minute.
func (h StageHealth) Stuck(now time.Time) bool {
	if h.ConsecutiveFailures < StuckAfter {
		return false
	}
	return !h.Running || now.Sub(h.RunningSince) < time.Minute
}

// Health returns the run record of both stages, ingest first.
func (p *Pipeline) Health() []StageHealth {
	out := make([]StageHealth, len(p.health))
	for i := range p.health {
		out[i] = p.health[i].snapshot()
		out[i].Name = [...]string{StageIngest, StageWindows}[i]
	}
	return out
}

// Stopping reports whether Run's context has ended: the instance is committing
// its last work and shutting down.
func (p *Pipeline) Stopping() bool { return p.stopping.Load() }

// stageHealth is the mutable record behind StageHealth.
type stageHealth struct {
	mu sync.Mutex
	h  StageHealth
}

func (s *stageHealth) started(at time.Time) {
	s.mu.Lock()
	s.h.Running, s.h.RunningSince = true, at
	s.mu.Unlock()
}

func (s *stageHealth) stopped() {
	s.mu.Lock()
	s.h.Running = false
	s.mu.Unlock()
}

func (s *stageHealth) failed(err error, ranLong bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h.Running = false
	s.h.Restarts++
	if ranLong {
		s.h.ConsecutiveFailures = 0
	}
	s.h.ConsecutiveFailures++
	if err != nil {
		s.h.LastError = err.Error()
	} else {
		s.h.LastError = "stopped without an error"
	}
	s.h.LastFailure = time.Now()
}

func (s *stageHealth) snapshot() StageHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h
}

// SaramaConfig returns the base client config the pipeline uses (version,
// TLS/SASL), so that servers beside it connect the same way.
func (p *Pipeline) SaramaConfig() func() *sarama.Config { return p.opts.Sarama }
