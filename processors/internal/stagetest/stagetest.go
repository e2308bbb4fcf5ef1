// Package stagetest holds test doubles shared by the stages' unit tests: a
// committer that counts early-commit requests and a slog handler that keeps records.
package stagetest

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Committer counts RequestCommit calls.
type Committer struct{ N atomic.Int64 }

// RequestCommit implements the stages' committer.
func (c *Committer) RequestCommit() { c.N.Add(1) }

// LogRecorder is a slog.Handler that keeps every record.
type LogRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *LogRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *LogRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

func (l *LogRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *LogRecorder) WithGroup(string) slog.Handler      { return l }

// Find returns the records with the message msg at level, each as a map of its attributes.
func (l *LogRecorder) Find(level slog.Level, msg string) []map[string]slog.Value {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]slog.Value
	for _, r := range l.records {
		if r.Level != level || r.Message != msg {
			continue
		}
		attrs := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.Resolve()
			return true
		})
		out = append(out, attrs)
	}
	return out
}

// QuietLogger is a goka.Logger that drops goka's log lines (kept out of test output).
type QuietLogger struct{}

func (QuietLogger) Print(...any)          {}
func (QuietLogger) Println(...any)        {}
func (QuietLogger) Printf(string, ...any) {}
