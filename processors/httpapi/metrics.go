package httpapi

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
)

// Metric names: docs/operations.md lists them with their meaning.
const namespace = "taxi_stream"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

// collector reads the pipeline's counters and the goka processors' state at
// scrape time: nothing is added to the processing path.
type collector struct {
	s *Server

	ridesIn, counted, late, dead, markers                       *prometheus.Desc
	partials, windowsClosed, ridesClosed, ridesDropped, foreign *prometheus.Desc
	revisions, idlePartitions, idleRaises                       *prometheus.Desc
	commits, aborts, fenced, commitSeconds, commitMax           *prometheus.Desc
	commitPaused                                                *prometheus.Desc
	restarts, stageUp, ready, viewRecovered                     *prometheus.Desc
	watermark, eventTimeLag, consumerLag                        *prometheus.Desc
	stateBytes, stateCells, restoreRemaining                    *prometheus.Desc
	stateRecovered, recentResults, scrapeErrors                 *prometheus.Desc
}

func newCollector(s *Server) *collector {
	return &collector{
		s:              s,
		ridesIn:        desc("rides_in_total", "Ride messages read from the rides topic by this instance (watermark markers excluded)."),
		counted:        desc("rides_counted_total", "On-time rides added to their windows."),
		late:           desc("rides_late_total", "Rides sent to the late topic (their window had closed)."),
		dead:           desc("dead_letters_total", "Messages sent to the dead-letter topic."),
		markers:        desc("watermark_markers_total", "Watermark markers read from the rides topic."),
		partials:       desc("partials_applied_total", "Partial aggregates applied by the windows stage."),
		windowsClosed:  desc("windows_closed_total", "Final (window, borough) results written to the results topic: one per closed window and borough."),
		ridesClosed:    desc("rides_closed_total", "Rides covered by the results written (a revision adds the rides it newly counts)."),
		revisions:      desc("results_revised_total", "Revised results written: late rides within --allowed-lateness updated a closed window."),
		idlePartitions: desc("idle_partitions", "Ingest partitions of this instance found idle (--idle-timeout): they no longer hold the watermark back."),
		idleRaises:     desc("idle_watermark_raises_total", "Raises of idle partitions' watermarks (each commit while idle)."),
		ridesDropped:   desc("rides_dropped_total", "Rides in partials for already closed windows (must stay 0)."),
		foreign:        desc("partials_foreign_total", "Partials on this app's repartition topic written by another app, refused (must stay 0: give each app its own --windows-topic)."),
		commits:        desc("commits_total", "Commits (transactions under exactly-once) per stage.", "stage"),
		aborts:         desc("transactions_aborted_total", "Aborted transactions per stage (a failed commit; the stage resumes from the last commit).", "stage"),
		fenced:         desc("departed_transactions_fenced_total", "Open transactions of departed instances this instance aborted when it took over (instead of waiting for their timeout), per stage.", "stage"),
		commitSeconds:  desc("commit_duration_seconds", "Time commits took, from the start to the transaction's end (processing goes on during the round trips), per stage.", "stage"),
		commitMax:      desc("commit_duration_max_seconds", "The longest pause of processing for a commit since the instance started, per stage.", "stage"),
		commitPaused:   desc("commit_paused_seconds_total", "Time processing was paused for commits (the partial sums are flushed with the callbacks held), per stage.", "stage"),
		restarts:       desc("stage_restarts_total", "Stage failures, each followed by a restart from the last commit.", "stage"),
		stageUp:        desc("stage_up", "1 when the stage's processor runs with its state recovered.", "stage"),
		ready:          desc("ready", "1 when /readyz answers 200."),
		viewRecovered:  desc("query_view_recovered", "1 when the query view of the windows state has caught up."),
		watermark:      desc("watermark_seconds", "Watermark of each ingest partition this instance owns, as of its last commit (event-time wall clock as Unix seconds; +Inf after the final marker).", "partition"),
		eventTimeLag:   desc("event_time_lag_seconds", "Current wall clock in the event-time zone minus the partition's watermark (0 after the final marker).", "partition"),
		consumerLag:    desc("consumer_lag", "Records between the group's committed offset and the end (last stable offset) of each input partition this instance owns.", "group", "topic", "partition"),
		stateBytes:     desc("state_bytes", "Size of the local windows state value of each owned windows partition.", "partition"),
		stateCells:     desc("state_open_cells", "Open (window, borough) cells in the local windows state of each owned windows partition.", "partition"),
		restoreRemaining: desc("state_restore_remaining_records",
			"Changelog records still to restore for each windows state partition held here (0 once recovered).", "partition", "mode"),
		stateRecovered: desc("state_recovered", "1 when the windows state partition held here is recovered.", "partition", "mode"),
		recentResults:  desc("recent_results", "Final results held for /api/v1/results."),
		scrapeErrors:   desc("scrape_errors", "1 for each part of this scrape that could not be read (consumer lag).", "part"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.ridesIn, c.counted, c.late, c.dead, c.markers, c.partials, c.windowsClosed,
		c.ridesClosed, c.revisions, c.idlePartitions, c.idleRaises, c.ridesDropped, c.commits, c.aborts, c.fenced, c.commitSeconds, c.commitMax, c.commitPaused, c.restarts, c.stageUp,
		c.ready, c.viewRecovered, c.watermark, c.eventTimeLag, c.consumerLag, c.stateBytes, c.stateCells,
		c.restoreRemaining, c.stateRecovered, c.recentResults, c.scrapeErrors} {
		ch <- d
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v int64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	gauge(ch, c.ready, boolValue(len(s.notReady()) == 0))
	gauge(ch, c.viewRecovered, boolValue(s.view.Recovered()))
	kept, _ := s.results.Len()
	gauge(ch, c.recentResults, float64(kept))
	if s.inst == nil {
		return
	}
	st := s.inst.Stats()
	counter(ch, c.ridesIn, st.Ingest.In)
	counter(ch, c.counted, st.Ingest.OnTime)
	counter(ch, c.late, st.Ingest.Late)
	counter(ch, c.dead, st.Ingest.Dead)
	counter(ch, c.markers, st.Ingest.Markers)
	counter(ch, c.partials, st.Windows.Partials)
	counter(ch, c.windowsClosed, st.Windows.ResultsEmitted)
	counter(ch, c.ridesClosed, st.Windows.RidesEmitted)
	counter(ch, c.revisions, st.Windows.Revisions)
	gauge(ch, c.idlePartitions, float64(st.IdlePartitions))
	counter(ch, c.idleRaises, st.Ingest.IdleAdvances)
	counter(ch, c.ridesDropped, st.Windows.DroppedRides)
	counter(ch, c.foreign, st.Windows.ForeignPartials)
	for _, sc := range []struct {
		stage string
		c     pipeline.CommitCounts
	}{{pipeline.StageIngest, st.IngestCommits}, {pipeline.StageWindows, st.WindowsCommits}} {
		counter(ch, c.commits, sc.c.Commits, sc.stage)
		counter(ch, c.aborts, sc.c.Aborts, sc.stage)
		counter(ch, c.fenced, sc.c.Fenced, sc.stage)
		ch <- prometheus.MustNewConstSummary(c.commitSeconds, uint64(sc.c.Commits), sc.c.Time.Seconds(), nil, sc.stage)
		gauge(ch, c.commitMax, sc.c.Longest.Seconds(), sc.stage)
		ch <- prometheus.MustNewConstMetric(c.commitPaused, prometheus.CounterValue, sc.c.Paused.Seconds(), sc.stage)
	}
	for _, h := range s.inst.Health() {
		counter(ch, c.restarts, h.Restarts, h.Name)
	}
	for _, stg := range s.inst.Stages() {
		gauge(ch, c.stageUp, boolValue(stg.Recovered), stg.Name)
	}
	now := s.now()
	for p, m := range s.inst.Watermarks() {
		if !m.OK {
			continue
		}
		part := strconv.Itoa(int(p))
		if m.Ms == watermark.Closed {
			gauge(ch, c.watermark, math.Inf(1), part)
			gauge(ch, c.eventTimeLag, 0, part)
			continue
		}
		gauge(ch, c.watermark, float64(m.Ms)/1000, part)
		gauge(ch, c.eventTimeLag, s.eventTimeLag(now, m.Ms).Seconds(), part)
	}
	lags, err := s.lag.Lag(s.inst.Owned())
	gauge(ch, c.scrapeErrors, boolValue(err != nil), "consumer_lag")
	for _, l := range lags {
		gauge(ch, c.consumerLag, float64(l.Lag), l.Group, l.Topic, strconv.Itoa(int(l.Partition)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, t := range s.inst.Tables(ctx) {
		part, mode := strconv.Itoa(int(t.Partition)), "active"
		if !t.Active {
			mode = "standby"
		}
		gauge(ch, c.restoreRemaining, float64(t.RestoreRemaining), part, mode)
		gauge(ch, c.stateRecovered, boolValue(t.Recovered), part, mode)
		if t.HasState {
			gauge(ch, c.stateBytes, float64(t.Bytes), part)
			gauge(ch, c.stateCells, float64(t.OpenCells), part)
		}
	}
}
