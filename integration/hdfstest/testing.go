package hdfstest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
)

// StartTest starts a cluster for t and stops it in t.Cleanup.
//
// It skips t under -short, and when java (or mvn, on a cold jar cache) is
// missing, unless the CI environment variable is set: on CI a missing tool
// fails the test, so the HDFS tests cannot silently stop running. Any other
// start failure fails t with the JVM log tail. Progress is logged through
// t.Log unless opts.Logger is set.
func StartTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("hdfstest: skipping real HDFS (two JVMs, ~10 s) in -short mode")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	c, err := Start(context.Background(), opts)
	if errors.Is(err, ErrMissingTool) && os.Getenv("CI") == "" {
		t.Skipf("%v (the test fails instead when CI is set)", err)
	}
	if err != nil {
		t.Fatalf("start HDFS: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop HDFS: %v", err)
		}
	})
	return c
}

// tWriter sends slog output to t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
