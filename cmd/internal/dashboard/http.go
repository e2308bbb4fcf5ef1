package dashboard

import (
	"bufio"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// web holds the page; vendor/ holds the charting library copied from npm by
// `make web-vendor` (package.json pins it), so go build needs no npm.
//
//go:embed web/index.html web/app.js web/style.css web/vendor
var web embed.FS

const (
	// historyBatch is how many results one "results" event carries.
	historyBatch = 500
	// keepAlive is the interval of comment lines on an idle event stream.
	keepAlive = 15 * time.Second
	// retryMs tells EventSource how soon to reconnect after the stream breaks.
	retryMs = 1000
)

// Handler serves the page (/), its assets, the event stream (/events) and JSON
// snapshots (/api/results: every result held; /api/status: the merged status).
func (s *Server) Handler() http.Handler {
	static, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	files := http.FileServerFS(static)
	mux.Handle("GET /", noCache(files))
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.HandleFunc("GET /api/results", s.serveResults)
	mux.HandleFunc("GET /api/status", s.serveStatus)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return mux
}

// noCache makes the browser revalidate the page after an upgrade of the server.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) serveResults(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	es := s.hub.results(0, 0)
	if es == nil {
		es = []entry{}
	}
	_ = json.NewEncoder(w).Encode(es)
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if b, _, ok := s.hub.statusSince(-1); ok {
		_, _ = w.Write(b)
		return
	}
	_ = json.NewEncoder(w).Encode(s.status(r.Context()))
}

// resumeFrom returns the sequence number after which the stream starts: the one
// of Last-Event-ID when it was issued by this server (same epoch), else 0 (all).
func (s *Server) resumeFrom(lastEventID string) int64 {
	epoch, seq, ok := strings.Cut(lastEventID, "-")
	if !ok || epoch != s.epoch {
		return 0
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if err != nil || n < 0 || n > s.hub.count() {
		return 0
	}
	return n
}

// serveEvents streams Server-Sent Events:
//
//	event: hello    {"epoch": "...", "results_topic": "...", "resumed_after": n}  once per connection
//	event: results  [{"key": "...", "value": {result JSON}}, ...]  id: <epoch>-<seq of the last one>
//	event: synced   {"results": n}  after the history that was there at connect time
//	event: status   the merged Status, about once a second
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)

	cursor := s.resumeFrom(r.Header.Get("Last-Event-ID"))
	hello, _ := json.Marshal(map[string]any{"epoch": s.epoch, "results_topic": s.cfg.ResultsTopic, "resumed_after": cursor})
	fmt.Fprintf(bw, "retry: %d\nevent: hello\ndata: %s\n\n", retryMs, hello)

	wake, unsubscribe := s.hub.subscribe()
	defer unsubscribe()
	historyEnd := s.hub.count()
	synced := false
	var statusVer int64
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		for {
			batch := s.hub.results(cursor, historyBatch)
			if len(batch) == 0 {
				break
			}
			if err := writeResults(bw, s.epoch, batch); err != nil {
				return
			}
			cursor = batch[len(batch)-1].Seq
		}
		if !synced && cursor >= historyEnd {
			synced = true
			fmt.Fprintf(bw, "event: synced\ndata: {\"results\":%d}\n\n", cursor)
		}
		if b, ver, ok := s.hub.statusSince(statusVer); ok {
			statusVer = ver
			fmt.Fprintf(bw, "event: status\ndata: %s\n\n", b)
		}
		if err := bw.Flush(); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-ping.C:
			_, _ = bw.WriteString(": keep-alive\n\n")
		}
	}
}

func writeResults(bw *bufio.Writer, epoch string, batch []entry) error {
	data, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	_, err = fmt.Fprintf(bw, "id: %s-%d\nevent: results\ndata: %s\n\n", epoch, batch[len(batch)-1].Seq, data)
	return err
}
