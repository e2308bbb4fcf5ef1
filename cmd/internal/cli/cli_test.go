package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func TestBindEnvSetsUnsetFlagsOnly(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	delay := fs.Duration("watermark-delay", 10*time.Minute, "")
	topic := fs.String("topic", "taxi-rides", "")
	if err := fs.Parse([]string{"--topic", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TS_WATERMARK_DELAY", "2m")
	t.Setenv("TS_TOPIC", "from-env")
	if err := BindEnv(fs, "TS"); err != nil {
		t.Fatal(err)
	}
	if *delay != 2*time.Minute {
		t.Errorf("delay = %s, want 2m from the environment", *delay)
	}
	if *topic != "from-flag" {
		t.Errorf("topic = %s: the command line must win over the environment", *topic)
	}
}

func TestBindEnvNamesTheBadVariable(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.Duration("watermark-delay", time.Minute, "")
	t.Setenv("TS_WATERMARK_DELAY", "ten minutes")
	err := BindEnv(fs, "TS")
	if !IsUsage(err) || !strings.Contains(err.Error(), "TS_WATERMARK_DELAY") {
		t.Fatalf("err = %v, want a usage error naming TS_WATERMARK_DELAY", err)
	}
}

func TestBrokers(t *testing.T) {
	got, err := Brokers(" a:1, b:2 ,")
	if err != nil || strings.Join(got, ",") != "a:1,b:2" {
		t.Fatalf("Brokers = %v, %v", got, err)
	}
	if _, err := Brokers("nohost"); err == nil {
		t.Fatal("accepted a broker without a port")
	}
	if _, err := Brokers(""); err == nil {
		t.Fatal("accepted an empty list")
	}
}

func TestNewLoggerRejectsUnknownFormat(t *testing.T) {
	if _, err := NewLogger(nil, "xml", "info"); err == nil {
		t.Fatal("accepted format xml")
	}
	if _, err := NewLogger(nil, "json", "loud"); err == nil {
		t.Fatal("accepted level loud")
	}
}

// TestSetupReadsTheEnvironmentFirst: the logger, brokers and security settings are
// checked with the values the environment gave.
func TestSetupReadsTheEnvironmentFirst(t *testing.T) {
	newFlags := func() (*pflag.FlagSet, *string, *string, *string, *Security) {
		f := pflag.NewFlagSet("x", pflag.ContinueOnError)
		format := f.String("log-format", "text", "")
		level := f.String("log-level", "info", "")
		brokers := f.String("brokers", "localhost:9092", "")
		sec := &Security{}
		sec.Register(f)
		return f, format, level, brokers, sec
	}
	t.Setenv("TEST_SETUP_BROKERS", "a:1,b:2")
	f, format, level, brokers, sec := newFlags()
	_, list, err := Setup(f, "TEST_SETUP", format, level, brokers, sec)
	if err != nil || strings.Join(list, ",") != "a:1,b:2" {
		t.Errorf("Setup = %v, %v; want the brokers from the environment", list, err)
	}
	t.Setenv("TEST_SETUP_LOG_FORMAT", "xml")
	f, format, level, brokers, sec = newFlags()
	if _, _, err := Setup(f, "TEST_SETUP", format, level, brokers, sec); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("Setup with TEST_SETUP_LOG_FORMAT=xml: %v, want a --log-format error", err)
	}
}

// TestReplicationFlag: --replication is an int, -1 by default, and takes -1 or
// 1..32767 only, from the command line or the environment (a usage error otherwise).
func TestReplicationFlag(t *testing.T) {
	newFlags := func() (*pflag.FlagSet, *int) {
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		var r int
		ReplicationFlag(fs, &r, "replication factor")
		return fs, &r
	}
	fs, r := newFlags()
	if f := fs.Lookup("replication"); *r != -1 || f.DefValue != "-1" || f.Value.Type() != "int" {
		t.Fatalf("default %d, DefValue %q, type %q", *r, f.DefValue, f.Value.Type())
	}
	for in, want := range map[string]int{"-1": -1, "1": 1, "3": 3, "32767": 32767} {
		fs, r := newFlags()
		if err := fs.Parse([]string{"--replication", in}); err != nil || *r != want {
			t.Errorf("--replication %s: %d, %v", in, *r, err)
		}
	}
	for _, in := range []string{"0", "-2", "32768", "70000", "three", ""} {
		fs, _ := newFlags()
		if err := fs.Parse([]string{"--replication=" + in}); err == nil || !strings.Contains(err.Error(), "want -1") {
			t.Errorf("--replication %q: err %v, want a rejection", in, err)
		}
	}
	t.Setenv("TS_REPLICATION", "0")
	fs, _ = newFlags()
	if err := BindEnv(fs, "TS"); !IsUsage(err) || !strings.Contains(err.Error(), "TS_REPLICATION") {
		t.Errorf("TS_REPLICATION=0: %v, want a usage error naming the variable", err)
	}
}

// TestUseEnvBindsSubcommandsAndNamesVariablesOnce: the flags of every subcommand,
// persistent ones included, come from the environment, and --help names each
// variable once.
func TestUseEnvBindsSubcommandsAndNamesVariablesOnce(t *testing.T) {
	var dir string
	var nodes int
	newRoot := func() (root, start *cobra.Command) {
		root = &cobra.Command{Use: "kl"}
		root.PersistentFlags().StringVar(&dir, "dir", ".kl", "cluster directory")
		start = &cobra.Command{Use: "start", RunE: func(*cobra.Command, []string) error { return nil }}
		start.Flags().IntVar(&nodes, "nodes", 1, "number of nodes")
		root.AddCommand(start)
		UseEnv(root, "KL")
		UseEnv(root, "KL") // twice: still one name per flag
		root.SetArgs([]string{"start"})
		return root, start
	}
	t.Setenv("KL_DIR", "/tmp/x")
	t.Setenv("KL_NODES", "3")
	root, start := newRoot()
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if dir != "/tmp/x" || nodes != 3 {
		t.Errorf("dir %q, nodes %d: want them from $KL_DIR and $KL_NODES", dir, nodes)
	}
	for _, f := range []*pflag.Flag{root.PersistentFlags().Lookup("dir"), start.Flags().Lookup("nodes")} {
		if n := strings.Count(f.Usage, "[$KL_"); n != 1 {
			t.Errorf("--%s usage %q names its variable %d times", f.Name, f.Usage, n)
		}
	}
	t.Setenv("KL_NODES", "many")
	root, _ = newRoot()
	if err := root.Execute(); !IsUsage(err) || !strings.Contains(err.Error(), "KL_NODES") {
		t.Errorf("KL_NODES=many: %v, want a usage error naming it", err)
	}
}

func TestParseDaysDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"45d": 45 * 24 * time.Hour, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute, "0": 0, "0d": 0,
	} {
		if got, err := parseDaysDuration(in); err != nil || got != want {
			t.Errorf("parseDaysDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"d", "1.5d", "-1d", "1dx", "abc"} {
		if _, err := parseDaysDuration(bad); err == nil {
			t.Errorf("parseDaysDuration(%q) accepted", bad)
		}
	}
}
