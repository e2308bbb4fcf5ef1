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
		{[]string{"--rows", "10", "--order", "random", "--out", filepath.Join(dir, "a")}, "Config.Order"},
		{[]string{"--rows", "0", "--out", filepath.Join(dir, "b")}, "Config.Rows"},
		{[]string{"--rows", "10", "--month", "2025-1-1", "--out", filepath.Join(dir, "c")}, "2025-1-1"},
		{[]string{"--rows", "10"}, "out"},
	} {
		_, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
