package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchPeersSmoke runs `make bench-peers` on 50,000 rides (the Python producer sends
// 10,000 rows: it sends a few hundred to a few thousand rows/s): every engine, the agreement
// checks, the table, the doc insertion and the machine-readable line. Spark and the Python
// producer are skipped only when their venv cannot be installed (PyPI unreachable), never
// with CI=true. With KAFKA_BROKERS set it uses that cluster (topics named per run).
func TestBenchPeersSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker, Spark and the Python producer")
	}
	rows := 50_000
	doc := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := os.WriteFile(doc, []byte("# notes\n\n"+docMarker+"\n\nolder runs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	cfg.Rows, cfg.PyRows, cfg.Doc = rows, 10_000, doc
	cfg.WorkDir = t.TempDir()
	cfg.Brokers = os.Getenv("KAFKA_BROKERS")
	cfg.Timeout = 10 * time.Minute
	cfg.SparkShufflePartitions = 2
	cfg.Rounds = 2 // both orders of the alternation, fewer runs than the default
	cfg.WarmTxns = 100
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	rep, err := Run(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s%s", rep.Table(), rep.Line())

	for name, e := range map[string]*Engine{"exactly_once": rep.EOS, "at_least_once": rep.ALO, "limit": rep.Limit, "taxi-replay": rep.Replay, "taxi-replay first run": rep.FirstReplay,
		"exactly_once first run": rep.FirstEOS, "at_least_once first run": rep.FirstALO} {
		if e == nil || e.Units != int64(rows) || e.PerSecond() <= 0 || e.CPU <= 0 || e.RSSMiB <= 0 {
			t.Errorf("%s: %+v, want %d units with time, CPU and RSS", name, e, rows)
		}
	}
	if len(rep.EOSRuns) != 2 || len(rep.ALORuns) != 2 {
		t.Errorf("compared runs: %d exactly_once, %d at_least_once, want 2 each", len(rep.EOSRuns), len(rep.ALORuns))
	} else if lo := min(rep.EOSRuns[0].PerSecond(), rep.EOSRuns[1].PerSecond()); rep.EOS.PerSecond() != lo {
		t.Errorf("exactly_once in the table %.0f rides/s, want the lower middle of %.0f and %.0f",
			rep.EOS.PerSecond(), rep.EOSRuns[0].PerSecond(), rep.EOSRuns[1].PerSecond())
	}
	if cfg.Brokers == "" && (rep.EOS.BrokerCPU <= 0 || rep.ALO.BrokerCPU <= 0 || rep.Replay.BrokerCPU <= 0) {
		t.Errorf("broker CPU on the run's own broker: exactly_once %v, at_least_once %v, taxi-replay %v; want each > 0",
			rep.EOS.BrokerCPU, rep.ALO.BrokerCPU, rep.Replay.BrokerCPU)
	}
	if rep.SparkSkipped == "" {
		if rep.Spark == nil || rep.Spark.FromQueryStart <= 0 || rep.PyProducer == nil || rep.PyProducer.Units != 10_000 {
			t.Errorf("Spark %+v, Python producer %+v: want both measured", rep.Spark, rep.PyProducer)
		}
	} else {
		t.Logf("Spark and the Python producer skipped: %s", rep.SparkSkipped)
	}
	line := rep.Line()
	if !strings.HasPrefix(line, "bench-peers: taxi_stream=") || strings.Contains(line, "taxi_stream=NA") ||
		!strings.Contains(line, " eos_alo=") || !strings.Contains(line, " rss_mib=") {
		t.Errorf("machine-readable line %q", line)
	}
	got, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(got); !strings.Contains(s, docMarker+"\n\n#### ") || !strings.Contains(s, line) || !strings.HasSuffix(s, "older runs\n") {
		t.Errorf("doc after the run:\n%s", s)
	}
}

// testWriter sends the driver's log to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
