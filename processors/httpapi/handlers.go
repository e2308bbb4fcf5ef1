package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
)

// unhealthy returns why the instance is not live ("" when it is): a stage stuck
// in a restart loop. A query-only server is always live.
func (s *Server) unhealthy() string {
	if s.inst == nil {
		return ""
	}
	now := s.now()
	var reasons []string
	for _, h := range s.inst.Health() {
		if h.Stuck(now) {
			reasons = append(reasons, fmt.Sprintf("stage %s is stuck in a restart loop: %d failures in a row, the last %s ago: %s",
				h.Name, h.ConsecutiveFailures, now.Sub(h.LastFailure).Round(time.Second), h.LastError))
		}
	}
	return strings.Join(reasons, "; ")
}

// notReady returns why the instance is not ready (nil when it is): both stages
// must run with their state recovered, and the query view must have caught up.
func (s *Server) notReady() []string {
	var reasons []string
	if s.inst != nil {
		if s.inst.Stopping() {
			reasons = append(reasons, "shutting down")
		}
		for _, st := range s.inst.Stages() {
			switch {
			case !st.Started:
				reasons = append(reasons, "stage "+st.Name+" not started")
			case !st.Recovered:
				reasons = append(reasons, "stage "+st.Name+" is recovering its state or rebalancing")
			}
		}
	}
	if !s.view.Recovered() {
		reasons = append(reasons, errNotRecovered.Error())
	}
	return reasons
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	if reason := s.unhealthy(); reason != "" {
		plain(w, http.StatusServiceUnavailable, reason)
		return
	}
	plain(w, http.StatusOK, "ok")
}

func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	if reasons := s.notReady(); len(reasons) > 0 {
		plain(w, http.StatusServiceUnavailable, strings.Join(reasons, "; "))
		return
	}
	plain(w, http.StatusOK, "ready")
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, msg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

type errorJSON struct {
	Error string `json:"error"`
}

// snapshotOr503 reads the committed state, or answers 503 (still recovering) or 500.
func (s *Server) snapshotOr503(w http.ResponseWriter) (snapshot, bool) {
	snap, err := s.view.Snapshot()
	switch {
	case errors.Is(err, errNotRecovered):
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorJSON{err.Error()})
		return snapshot{}, false
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, errorJSON{err.Error()})
		return snapshot{}, false
	}
	return snap, true
}

// openWindowsJSON is the body of GET /api/v1/windows/open.
type openWindowsJSON struct {
	AsOfMs int64 `json:"as_of_ms"`
	// WatermarkMs is the stage watermark (minimum over the ingest partitions),
	// null while a partition has none or after every partition's final marker.
	WatermarkMs *int64 `json:"watermark_ms"`
	// Final: every ingest partition has seen the producer's final marker.
	Final   bool              `json:"final"`
	Windows []json.RawMessage `json:"windows"`
}

func (s *Server) handleOpenWindows(w http.ResponseWriter, r *http.Request) {
	snap, ok := s.snapshotOr503(w)
	if !ok {
		return
	}
	borough := r.URL.Query().Get("borough")
	body := openWindowsJSON{AsOfMs: s.now().UnixMilli(), Windows: []json.RawMessage{}}
	if wm, ok := snap.MinWatermark(); ok {
		if wm == watermark.Closed {
			body.Final = true
		} else {
			body.WatermarkMs = &wm
		}
	}
	for _, e := range snap.Open {
		if borough != "" && e.Borough != borough {
			continue
		}
		body.Windows = append(body.Windows, provisionalJSON(e))
	}
	writeJSON(w, http.StatusOK, body)
}

// provisionalJSON is an open cell as a result JSON with "provisional":true.
func provisionalJSON(e aggregate.Entry) json.RawMessage {
	b := aggregate.Result{Window: e.Window, Borough: e.Borough, Sums: e.Sums}.AppendJSON(make([]byte, 0, 512))
	b = bytes.TrimSuffix(b, []byte("}"))
	return append(b, `,"provisional":true}`...)
}

// resultsJSON is the body of GET /api/v1/results.
type resultsJSON struct {
	AsOfMs  int64             `json:"as_of_ms"`
	Results []json.RawMessage `json:"results"`
}

// defaultResultsLimit is the limit of /api/v1/results without ?limit.
const defaultResultsLimit = 100

func (s *Server) handleResults(w http.ResponseWriter, r *http.Request) {
	limit := defaultResultsLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeJSON(w, http.StatusBadRequest, errorJSON{fmt.Sprintf("limit %q: want a positive integer (at most %d)", v, s.cfg.RecentResults)})
			return
		}
		limit = min(n, s.cfg.RecentResults)
	}
	body := resultsJSON{AsOfMs: s.now().UnixMilli(), Results: []json.RawMessage{}}
	for _, v := range s.results.Last(limit, r.URL.Query().Get("borough")) {
		body.Results = append(body.Results, v)
	}
	writeJSON(w, http.StatusOK, body)
}

// statusJSON is the body of GET /api/v1/status.
type statusJSON struct {
	Instance    string          `json:"instance"`
	AsOfMs      int64           `json:"as_of_ms"`
	Watermarks  []watermarkJSON `json:"watermarks"`
	Counters    countersJSON    `json:"counters"`
	ConsumerLag []lagJSON       `json:"consumer_lag"`
	Ready       bool            `json:"ready"`
	NotReady    []string        `json:"not_ready"`
	Errors      []string        `json:"errors"`
}

type watermarkJSON struct {
	Partition      int32  `json:"partition"`
	WatermarkMs    *int64 `json:"watermark_ms"`
	EventTimeLagMs *int64 `json:"event_time_lag_ms"`
	Final          bool   `json:"final"`
}

type countersJSON struct {
	RidesIn       int64 `json:"rides_in"`
	Counted       int64 `json:"counted"`
	Late          int64 `json:"late"`
	Dead          int64 `json:"dead"`
	WindowsClosed int64 `json:"windows_closed"`
}

type lagJSON struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Lag       int64  `json:"lag"`
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	now := s.now()
	body := statusJSON{Instance: s.cfg.InstanceID, AsOfMs: now.UnixMilli(),
		Watermarks: []watermarkJSON{}, ConsumerLag: []lagJSON{}, NotReady: s.notReady(), Errors: []string{}}
	body.Ready = len(body.NotReady) == 0
	if body.NotReady == nil {
		body.NotReady = []string{}
	}
	if snap, err := s.view.Snapshot(); err == nil {
		for p := range int32(snap.IngestPartitions) {
			wj := watermarkJSON{Partition: p}
			if wm, ok := snap.Watermarks[p]; ok {
				if wm == watermark.Closed {
					wj.Final = true
				} else {
					lag := s.eventTimeLag(now, wm).Milliseconds()
					wj.WatermarkMs, wj.EventTimeLagMs = &wm, &lag
				}
			}
			body.Watermarks = append(body.Watermarks, wj)
		}
	} else {
		body.Errors = append(body.Errors, err.Error())
	}
	if s.inst != nil {
		st := s.inst.Stats()
		body.Counters = countersJSON{RidesIn: st.Ingest.In, Counted: st.Ingest.OnTime, Late: st.Ingest.Late,
			Dead: st.Ingest.Dead, WindowsClosed: st.Windows.ResultsEmitted}
		lags, err := s.lag.Lag(s.inst.Owned())
		if err != nil {
			body.Errors = append(body.Errors, err.Error())
		}
		for _, l := range lags {
			body.ConsumerLag = append(body.ConsumerLag, lagJSON{l.Group, l.Topic, l.Partition, l.Lag})
		}
	}
	writeJSON(w, http.StatusOK, body)
}

// eventTimeLag is how far the watermark is behind the current time. Event times
// are the wall clock of cfg.EventTimeZone read as UTC (as the TLC files hold
// them), so now is converted the same way.
func (s *Server) eventTimeLag(now time.Time, wm int64) time.Duration {
	_, offset := now.In(s.cfg.EventTimeZone).Zone()
	wall := now.UnixMilli() + int64(offset)*1000
	return time.Duration(wall-wm) * time.Millisecond
}
