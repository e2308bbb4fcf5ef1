// Package cli holds what taxi-stream's programs share on the command line: every
// flag can also come from an environment variable, one logger setup, broker lists.
package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// EnvName is the environment variable of a flag: prefix + "_" + the flag name in
// upper case with dashes as underscores (--watermark-delay -> TAXI_STREAM_WATERMARK_DELAY).
func EnvName(prefix, flag string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// BindEnv sets every flag that was not given on the command line from its
// environment variable, if set. A bad value names the variable.
func BindEnv(flags *pflag.FlagSet, prefix string) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := EnvName(prefix, f.Name)
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if serr := flags.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("environment variable %s=%q: %w", name, v, serr)
		}
	})
	return err
}

// EnvHelp appends to each flag's usage the environment variable that can set it.
func EnvHelp(flags *pflag.FlagSet, prefix string) {
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		f.Usage += " [$" + EnvName(prefix, f.Name) + "]"
	})
}

// Setup is the common start of a program's run: it fills the flags not given from
// the environment (prefix), then builds the logger and checks the broker list and
// the security settings. The pointers are read after the environment is bound.
func Setup(flags *pflag.FlagSet, prefix string, logFormat, logLevel, brokers *string, sec *Security) (*slog.Logger, []string, error) {
	if err := BindEnv(flags, prefix); err != nil {
		return nil, nil, err
	}
	log, err := NewLogger(os.Stderr, *logFormat, *logLevel)
	if err != nil {
		return nil, nil, err
	}
	list, err := Brokers(*brokers)
	if err != nil {
		return nil, nil, err
	}
	if err := sec.Validate(); err != nil {
		return nil, nil, err
	}
	return log, list, nil
}

// NewLogger returns a slog logger writing text or JSON at the given level.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// Brokers splits a comma-separated broker list.
func Brokers(list string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(list, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if !strings.Contains(b, ":") {
				return nil, fmt.Errorf("--brokers: %q is not host:port", b)
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--brokers is empty: give host:port[,host:port...] or set KAFKA_BROKERS")
	}
	return out, nil
}

// DefaultBrokers is $KAFKA_BROKERS, else localhost:9092.
func DefaultBrokers() string {
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		return v
	}
	return "localhost:9092"
}
