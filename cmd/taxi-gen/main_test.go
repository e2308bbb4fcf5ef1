package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var logs bytes.Buffer
	cmd := newCommand(slog.New(slog.NewTextHandler(&logs, nil)))
	cmd.SetArgs(args)
	cmd.SetOut(&logs)
	cmd.SetErr(&logs)
	err := cmd.ExecuteContext(context.Background())
	return logs.String(), err
}

func TestWritesFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "g.parquet")
	logs, err := run(t, "--rows", "3000", "--seed", "9", "--month", "2024-02", "--order", "tlc", "--outliers=false", "--out", out)
	if err != nil {
		t.Fatalf("taxi-gen: %v\n%s", err, logs)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if pf.NumRows() != 3000 {
		t.Errorf("file has %d rows, want 3000", pf.NumRows())
	}
	if !strings.Contains(logs, "msg=done") || !strings.Contains(logs, "outliers=0") {
		t.Errorf("missing or wrong done log line:\n%s", logs)
	}
}

func TestRejectsBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rows", "10", "--order", "random", "--out", filepath.Join(dir, "a")}, "--order random"},
		{[]string{"--rows", "0", "--out", filepath.Join(dir, "b")}, "--rows 0"},
		{[]string{"--rows", "10", "--null-fraction", "2", "--out", filepath.Join(dir, "d")}, "--null-fraction 2"},
		{[]string{"--rows", "10", "--month", "2025-1-1", "--out", filepath.Join(dir, "c")}, "2025-1-1"},
		{[]string{"--rows", "10"}, "out"},
	} {
		_, err := run(t, tc.args...)
		if !cli.IsUsage(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want a usage error mentioning %q", tc.args, err, tc.want)
		}
	}
	for _, name := range []string{"a", "b", "c", "d"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("file %s written despite a bad flag", name)
		}
	}
}

// TestExitStatusAndErrorFormat: like every program, taxi-gen prints an error once
// as "taxi-gen: <message>" (not as a log line) and exits 2 for bad usage, 1 for a
// failure, 130 when interrupted before the file is complete.
func TestExitStatusAndErrorFormat(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--rows", "10"}, cli.ExitUsage, "taxi-gen: --out is required"},
		{[]string{"--rows", "ten", "--out", filepath.Join(dir, "a")}, cli.ExitUsage, `taxi-gen: invalid argument "ten" for "--rows" flag`},
		{[]string{"--no-such-flag"}, cli.ExitUsage, "taxi-gen: unknown flag: --no-such-flag"},
		{[]string{"--out", filepath.Join(dir, "b"), "extra"}, cli.ExitUsage, `taxi-gen: unknown command "extra"`},
		{[]string{"--rows", "10", "--out", filepath.Join(dir, "no-such-dir", "c.parquet")}, cli.ExitError, "taxi-gen: "},
	} {
		var stderr, logs bytes.Buffer
		cmd := newCommand(slog.New(slog.NewTextHandler(&logs, nil)))
		code := cli.Run(context.Background(), "taxi-gen", cmd, tc.args, &stderr)
		out := stderr.String()
		if code != tc.code || !strings.HasPrefix(out, tc.want) || strings.Count(out, "\n") != 1 || strings.Contains(logs.String(), "level=ERROR") {
			t.Errorf("%q: exit %d, stderr %q, logs %q; want %d and one line starting %q", tc.args, code, out, logs.String(), tc.code, tc.want)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as cli.Main does on SIGINT
	var stderr bytes.Buffer
	code := cli.Run(ctx, "taxi-gen", newCommand(slog.New(slog.DiscardHandler)), []string{"--rows", "100000", "--out", filepath.Join(dir, "d.parquet")}, &stderr)
	if code != cli.ExitInterrupted || !strings.HasPrefix(stderr.String(), "taxi-gen: interrupted") {
		t.Errorf("interrupted: exit %d, stderr %q; want %d", code, stderr.String(), cli.ExitInterrupted)
	}
}

func TestHelpStatesEachDefaultOnce(t *testing.T) {
	for _, p := range cli.RepeatedDefaults(newCommand(slog.New(slog.DiscardHandler))) {
		t.Error(p)
	}
}
