package cli

import (
	"strings"
	"testing"
	"time"

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
	if err == nil || !strings.Contains(err.Error(), "TS_WATERMARK_DELAY") {
		t.Fatalf("err = %v, want it to name TS_WATERMARK_DELAY", err)
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
