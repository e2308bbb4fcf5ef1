package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
	"github.com/taxi-stream/taxi-stream/topology"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

// TestUsageErrorsExit2: bad flags, arguments and flag values are usage errors,
// printed once as "taxi-stream: ...", before anything connects to Kafka.
func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--no-such-flag"}, nil, "unknown flag: --no-such-flag"},
		{[]string{"extra"}, nil, `unknown command "extra"`},
		{[]string{"--replication", "0"}, nil, `invalid argument "0" for "--replication" flag: want -1`},
		{[]string{"--replication", "40000"}, nil, "1..32767"},
		{nil, map[string]string{"TAXI_STREAM_REPLICATION": "0"}, "TAXI_STREAM_REPLICATION"},
		{[]string{"--window", "ten"}, nil, `invalid argument "ten" for "--window"`},
		{[]string{"--guarantee", "maybe"}, nil, "--guarantee"},
		{[]string{"--window", "1h", "--slide", "7m"}, nil, "--window/--slide"},
		{[]string{"--log-format", "xml"}, nil, "--log-format"},
		{[]string{"--brokers", "nohost"}, nil, "--brokers"},
		{[]string{"--sasl-username", "alice"}, nil, "--security-protocol is PLAINTEXT"},
		{[]string{"--instance-id", ""}, nil, "instance id is required"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			code := cli.Run(context.Background(), "taxi-stream", newCommand(), append(tc.args, "--http-addr", ""), &stderr)
			out := stderr.String()
			if code != cli.ExitUsage || !strings.HasPrefix(out, "taxi-stream: ") || !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 1 {
				t.Errorf("%q %v: exit %d, stderr %q; want %d and one line naming %q", tc.args, tc.env, code, out, cli.ExitUsage, tc.want)
			}
		})
	}
}

func TestReplicationIsAnInt(t *testing.T) {
	f := newCommand().Flags().Lookup("replication")
	if f == nil || f.Value.Type() != "int" || f.DefValue != "-1" {
		t.Fatalf("--replication: %+v", f)
	}
}

// TestHelpStatesEachDefaultOnce: no flag line of --help mentions its default twice.
func TestHelpStatesEachDefaultOnce(t *testing.T) {
	for _, p := range cli.RepeatedDefaults(newCommand()) {
		t.Error(p)
	}
}

// --describe prints the topology the flags declare (topology.Describe, whose format
// topology's golden file pins), without Kafka.
func TestDescribePrintsTheFlagsTopology(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := newCommand()
	cmd.SetOut(&stdout)
	code := cli.Run(context.Background(), "taxi-stream", cmd, []string{"--describe", "--app", "nyc", "--window", "2h", "--slide", "30m",
		"--results-topic", "res", "--allowed-lateness", "45d", "--close-on-idle", "--brokers", "127.0.0.1:1"}, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := topology.Describe(topology.Config{App: "nyc", Topics: topology.Topics{Results: "res"},
		Window:          window.Spec{Size: 2 * time.Hour, Slide: 30 * time.Minute},
		AllowedLateness: 45 * 24 * time.Hour, IdleTimeout: 30 * time.Second, CloseOnIdle: true}.WithDefaults())
	if stdout.String() != want {
		t.Errorf("--describe printed\n%s\nwant\n%s", stdout.String(), want)
	}
	for _, line := range []string{"group nyc-ingest", "  input   nyc-windows-repartition", "  output  res", "window 2h0m0s slide 30m0s", "allowed lateness 1080h0m0s", "idle timeout 30s (close on idle: true)"} {
		if !strings.Contains(stdout.String(), line) {
			t.Errorf("--describe output lacks %q", line)
		}
	}
}
