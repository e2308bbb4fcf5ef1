package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/replay"
)

func parse(t *testing.T, args ...string) (replay.Config, error) {
	t.Helper()
	cmd, rf := newReplayCommand("replay")
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return rf.config(cmd.Flags().Args())
}

func TestReplayFlags(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "k1:9092, k2:9092")
	cfg, err := parse(t, "a.parquet", "hdfs://nn:8020/x/*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Brokers, ",") != "k1:9092,k2:9092" || cfg.Topic != "taxi-rides" || cfg.Partitions != 3 ||
		cfg.Replication != -1 || cfg.Order != replay.OrderEventTime || cfg.EventTime != codecs.ColDropoff ||
		cfg.NoMarkers || cfg.MarkerEvery != 1000 || cfg.Resume || cfg.SkipVerify || cfg.Compression != "zstd" ||
		len(cfg.Inputs) != 2 || cfg.ProgressBar != nil {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, err = parse(t, "--order", "file", "--markers=false", "--resume", "--rate", "5000", "--event-time", "pickup",
		"--compression", "lz4", "--verify=false", "--hdfs-keytab", "/k", "--hdfs-principal", "etl@EX.COM", "--brokers", "b:1", "f.csv")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Order != replay.OrderFile || !cfg.NoMarkers || !cfg.Resume || cfg.Rate != 5000 || cfg.EventTime != codecs.ColPickup ||
		cfg.Compression != "lz4" || !cfg.SkipVerify || cfg.HDFS.Kerberos.Keytab != "/k" || cfg.Brokers[0] != "b:1" {
		t.Errorf("flags: %+v", cfg)
	}
	for _, tc := range []struct {
		args   []string
		substr string
	}{
		{[]string{"--order", "random", "f"}, `order "random"`},
		{[]string{"--event-time", "noon", "f"}, `event time "noon"`},
		{[]string{"--rate", "10", "--speedup", "10", "f"}, "choose one"},
		{[]string{"--compression", "brotli", "f"}, "brotli"},
		{[]string{"--progress", "fancy", "f"}, "--progress"},
		{[]string{"--log-level", "loud", "f"}, "--log-level"},
		{[]string{"--hdfs-keytab", "/k", "f"}, "--hdfs-principal"},
	} {
		_, err := parse(t, tc.args...)
		if !cli.IsUsage(err) || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%v: got %v, want a usage error mentioning %q", tc.args, err, tc.substr)
		}
	}
}

func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		substr string
	}{
		{[]string{}, "no input files"},
		{[]string{"replay"}, "no input files"},
		{[]string{"cleanup"}, "confirm with --yes"},
		{[]string{"--no-such-flag", "x"}, "unknown flag"},
		{[]string{"zones"}, `--file`},
		{[]string{"zones", "--file", "x", "--security-protocol", "SASL_SSL", "--sasl-mechanism", "GSSAPI"}, "--sasl-username is required with --sasl-mechanism GSSAPI"},
		{[]string{"cleanup", "--yes", "--sasl-username", "alice"}, "--sasl-username is set but --security-protocol is PLAINTEXT"},
		{[]string{"--security-protocol", "SSL", "--tls-ca-file", "/nonexistent/ca.pem", "x.parquet"}, "--tls-ca-file: open /nonexistent/ca.pem"},
	} {
		root := newRoot()
		root.SetArgs(tc.args)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%v: got %v, want an error mentioning %q", tc.args, err, tc.substr)
		}
	}
	// Every flag says what its default is, or has a non-zero default that cobra prints.
	for _, c := range append(newRoot().Commands(), newRoot()) {
		c.Flags().VisitAll(func(f *pflagFlag) {
			if f.Hidden || f.Name == "help" {
				return
			}
			if f.DefValue == "" || f.DefValue == "0" || f.DefValue == "false" {
				if !strings.Contains(f.Usage, "default") && !strings.Contains(f.Usage, "(0:") && !strings.Contains(f.Usage, `"" keeps`) {
					t.Errorf("%s --%s: usage %q does not state its default", c.Name(), f.Name, f.Usage)
				}
			}
		})
	}
}

type pflagFlag = pflag.Flag

// TestEnvironment: every flag of every subcommand can come from $TAXI_REPLAY_<FLAG>; the
// command line wins, and a bad value names the variable.
func TestEnvironment(t *testing.T) {
	t.Setenv("TAXI_REPLAY_ORDER", "file")
	t.Setenv("TAXI_REPLAY_MARKER_EVERY", "250")
	t.Setenv("TAXI_REPLAY_BROKERS", "env:9092")
	root := newRoot()
	replayCmd, _, err := root.Find([]string{"replay"})
	if err != nil {
		t.Fatal(err)
	}
	if err := replayCmd.ParseFlags([]string{"--brokers", "cli:9092"}); err != nil {
		t.Fatal(err)
	}
	if err := cli.BindEnv(replayCmd.Flags(), envPrefix); err != nil {
		t.Fatal(err)
	}
	f := replayCmd.Flags()
	if v, _ := f.GetString("order"); v != "file" {
		t.Errorf("--order from the environment = %q, want file", v)
	}
	if v, _ := f.GetInt("marker-every"); v != 250 {
		t.Errorf("--marker-every from the environment = %d, want 250", v)
	}
	if v, _ := f.GetString("brokers"); v != "cli:9092" {
		t.Errorf("--brokers = %q: the command line must win over the environment", v)
	}
	if u := f.Lookup("marker-every").Usage; !strings.Contains(u, "$TAXI_REPLAY_MARKER_EVERY") {
		t.Errorf("--help does not name the variable: %q", u)
	}

	// Through Execute: the zones file comes from the environment (the load then fails on
	// the missing file, which proves the value arrived), and a bad value is a usage error.
	t.Setenv("TAXI_REPLAY_FILE", "/nonexistent/zones.csv")
	root = newRoot()
	root.SetArgs([]string{"zones", "--brokers", "127.0.0.1:1"})
	root.SetOut(new(bytes.Buffer))
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "/nonexistent/zones.csv") {
		t.Errorf("zones with $TAXI_REPLAY_FILE: got %v, want an error naming the file", err)
	}
	t.Setenv("TAXI_REPLAY_MARKER_EVERY", "many")
	root = newRoot()
	root.SetArgs([]string{"x.parquet"})
	root.SetOut(new(bytes.Buffer))
	err = root.Execute()
	if !cli.IsUsage(err) || !strings.Contains(err.Error(), "TAXI_REPLAY_MARKER_EVERY") {
		t.Errorf("bad environment value: got %v, want a usage error naming the variable", err)
	}
}

// TestExitStatus: through cli.Run, as main runs it: usage errors exit 2, runtime
// errors 1, each printed once as "taxi-replay: ...".
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--no-such-flag", "x.parquet"}, cli.ExitUsage, "unknown flag: --no-such-flag"},
		{[]string{"--marker-every", "many", "x.parquet"}, cli.ExitUsage, `invalid argument "many" for "--marker-every"`},
		{[]string{"replay"}, cli.ExitUsage, "no input files"},
		{[]string{"zones", "--file", "z.csv", "extra"}, cli.ExitUsage, `unknown command "extra"`},
		{[]string{"zones", "--file", "z.csv", "--replication", "0"}, cli.ExitUsage, `"--replication" flag: want -1`},
		{[]string{"--replication", "32768", "x.parquet"}, cli.ExitUsage, `"--replication" flag: want -1`},
		{[]string{"cleanup"}, cli.ExitUsage, "confirm with --yes"},
		{[]string{"zones", "--file", "/nonexistent/zones.csv", "--brokers", "127.0.0.1:1"}, cli.ExitError, "/nonexistent/zones.csv"},
	} {
		var stderr bytes.Buffer
		root := newRoot()
		root.SetOut(new(bytes.Buffer))
		code := cli.Run(context.Background(), "taxi-replay", root, tc.args, &stderr)
		out := stderr.String()
		if code != tc.code || !strings.HasPrefix(out, "taxi-replay: ") || !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want %d and one line naming %q", tc.args, code, out, tc.code, tc.want)
		}
	}
}

// TestReplicationIsAnInt: --replication is the same int flag in replay and zones.
func TestReplicationIsAnInt(t *testing.T) {
	root := newRoot()
	for _, path := range [][]string{{}, {"replay"}, {"zones"}} {
		c, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		f := c.Flags().Lookup("replication")
		if f == nil || f.Value.Type() != "int" || f.DefValue != "-1" {
			t.Errorf("%s --replication: %+v", c.Name(), f)
		}
	}
}

// TestHelpStatesEachDefaultOnce: no flag line of any subcommand's --help mentions
// its default twice.
func TestHelpStatesEachDefaultOnce(t *testing.T) {
	for _, p := range cli.RepeatedDefaults(newRoot()) {
		t.Error(p)
	}
}

// cleanup deletes an app's internal topics by the names the processor gives them
// (topology.RepartitionTopic, ChangelogTopic): --app picks the app; without --yes it
// only lists what it would delete (exit 2).
func TestCleanupNamesTheAppsInternalTopics(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"cleanup"}, []string{"taxi-rides", "taxi-zones", "taxi-results", "taxi-late", "taxi-dead",
			"taxi-stream-windows-repartition", "taxi-stream-windows-table"}},
		{[]string{"cleanup", "--app", "nyc"}, []string{"nyc-windows-repartition", "nyc-windows-table"}},
		{[]string{"cleanup", "--app", "nyc", "--windows", "mine"}, []string{"mine", "nyc-windows-table"}},
	} {
		var stderr bytes.Buffer
		code := cli.Run(context.Background(), "taxi-replay", newRoot(), tc.args, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "would delete") {
			t.Errorf("%v: exit %d, %q; want the list and exit 2", tc.args, code, stderr.String())
		}
		for _, name := range tc.want {
			if !strings.Contains(stderr.String(), name) {
				t.Errorf("%v: %q does not name %s", tc.args, stderr.String(), name)
			}
		}
	}
}
