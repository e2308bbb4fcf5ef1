package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
)

// TestUsageErrorsExit2: like the other programs, kafka-local exits 2 with one
// "kafka-local: ..." line for a missing or unknown command, bad flags and values,
// from the command line or from KAFKA_LOCAL_* variables; nothing is started.
func TestUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{nil, "", "a command is required"},
		{[]string{"strat"}, "", `unknown command "strat" for "kafka-local" (did you mean start?)`},
		{[]string{"start", "--no-such-flag"}, "", "unknown flag: --no-such-flag"},
		{[]string{"status", "extra"}, "", `unknown command "extra"`},
		{[]string{"start", "--dir", dir, "--nodes", "2"}, "", "--nodes 2: want 1 or 3"},
		{[]string{"run", "--dir", dir, "--nodes", "3", "--port", "9092"}, "", "--port: 1 ports given for 3 nodes"},
		{[]string{"start", "--dir", dir}, "KAFKA_LOCAL_NODES=2", "--nodes 2: want 1 or 3"},
		{[]string{"start", "--dir", dir}, "KAFKA_LOCAL_HEAP_MB=lots", "KAFKA_LOCAL_HEAP_MB"},
	} {
		t.Run(strings.Join(tc.args, " ")+" "+tc.env, func(t *testing.T) {
			if k, v, ok := strings.Cut(tc.env, "="); ok {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			code := cli.Run(context.Background(), "kafka-local", newRootCmd(), tc.args, &stderr)
			out := stderr.String()
			if code != cli.ExitUsage || !strings.HasPrefix(out, "kafka-local: ") || !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want %d and one line naming %q", code, out, cli.ExitUsage, tc.want)
			}
		})
	}
}

// TestFlagsFromEnvironment: every flag can come from KAFKA_LOCAL_<FLAG>, the
// command line wins, and --help names the variables.
func TestFlagsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KAFKA_LOCAL_DIR", dir)
	var stdout, stderr bytes.Buffer
	root := newRootCmd()
	root.SetOut(&stdout)
	if code := cli.Run(context.Background(), "kafka-local", root, []string{"status"}, &stderr); code != cli.ExitError ||
		!strings.Contains(stderr.String(), filepath.Base(dir)) {
		t.Errorf("status with $KAFKA_LOCAL_DIR=%s: exit %d, stderr %q; want it to look there (and find no cluster)", dir, code, stderr.String())
	}

	root = newRootCmd()
	start, _, err := root.Find([]string{"start"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nodes", "port", "heap-mb", "cache", "timeout"} {
		if u := start.Flags().Lookup(name).Usage; strings.Count(u, "[$"+cli.EnvName(envPrefix, name)+"]") != 1 {
			t.Errorf("--%s usage %q does not name $%s once", name, u, cli.EnvName(envPrefix, name))
		}
	}
	if u := root.PersistentFlags().Lookup("dir").Usage; strings.Count(u, "[$KAFKA_LOCAL_DIR]") != 1 {
		t.Errorf("--dir usage %q does not name $KAFKA_LOCAL_DIR once", u)
	}
	var help bytes.Buffer
	start.SetOut(&help)
	start.HelpFunc()(start, nil)
	if !strings.Contains(help.String(), "[$KAFKA_LOCAL_NODES]") || !strings.Contains(help.String(), "[$KAFKA_LOCAL_DIR]") {
		t.Errorf("kafka-local start --help does not name the variables:\n%s", help.String())
	}
}

func TestHelpStatesEachDefaultOnce(t *testing.T) {
	for _, p := range cli.RepeatedDefaults(newRootCmd()) {
		t.Error(p)
	}
}
