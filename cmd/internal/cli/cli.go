// Package cli holds what taxi-stream's programs share on the command line: one
// main (Main: exit statuses, error format, signals), every flag can also come from
// an environment variable, one logger setup, broker lists, --replication.
package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// EnvName is the environment variable of a flag: prefix + "_" + the flag name in
// upper case with dashes as underscores (--watermark-delay -> TAXI_STREAM_WATERMARK_DELAY).
func EnvName(prefix, flag string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// BindEnv sets every flag that was not given on the command line from its
// environment variable, if set. A bad value is a usage error naming the variable.
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
			err = Usagef("environment variable %s=%q: %w", name, v, serr)
		}
	})
	return err
}

// EnvHelp appends to each flag's usage the environment variable that can set it,
// once (a flag shared by several flag sets is named once).
func EnvHelp(flags *pflag.FlagSet, prefix string) {
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		if env := " [$" + EnvName(prefix, f.Name) + "]"; !strings.HasSuffix(f.Usage, env) {
			f.Usage += env
		}
	})
}

// UseEnv makes every flag of root and of its subcommands settable from the
// environment (prefix + "_" + FLAG, see EnvName): before a command runs, the flags
// not given on the command line are read from their variables (root's
// PersistentPreRunE, which runs for the subcommands too), and --help names the
// variables.
func UseEnv(root *cobra.Command, prefix string) {
	pre := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if err := BindEnv(cmd.Flags(), prefix); err != nil {
			return err
		}
		if pre != nil {
			return pre(cmd, args)
		}
		return nil
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		EnvHelp(c.Flags(), prefix)
		EnvHelp(c.PersistentFlags(), prefix)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// Setup is the common start of a program's run: it fills the flags not given from
// the environment (prefix), then builds the logger and checks the broker list and
// the security settings, and gives sec the broker list (Security.Brokers). The
// pointers are read after the environment is bound.
// Every error it returns is a usage error.
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
	sec.Brokers = list
	return log, list, nil
}

// NewLogger returns a slog logger writing text or JSON at the given level. A bad
// format or level is a usage error.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, Usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, Usagef("--log-format %q: want text or json", format)
}

// Brokers splits a comma-separated broker list. A bad list is a usage error.
func Brokers(list string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(list, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if !strings.Contains(b, ":") {
				return nil, Usagef("--brokers: %q is not host:port", b)
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, Usagef("--brokers is empty: give host:port[,host:port...] or set KAFKA_BROKERS")
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

// BrokersFlag adds --brokers to f; its default is DefaultBrokers, which --help shows.
func BrokersFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "brokers", DefaultBrokers(), "Kafka bootstrap servers, comma-separated host:port ($KAFKA_BROKERS sets it for every program)")
}

// MaxReplication is the largest replication factor Kafka accepts (an int16).
const MaxReplication = 1<<15 - 1

// ReplicationFlag adds --replication to f, an int that is -1 (the broker's
// default.replication.factor) or 1..MaxReplication; *p starts at -1. Anything else
// is rejected when the flag (or its environment variable) is set: a usage error.
func ReplicationFlag(f *pflag.FlagSet, p *int, usage string) {
	*p = -1
	f.Var((*replication)(p), "replication", usage)
}

// replication is --replication's pflag.Value.
type replication int

func (r *replication) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || (n != -1 && (n < 1 || n > MaxReplication)) {
		return fmt.Errorf("want -1 (the broker's default.replication.factor) or 1..%d", MaxReplication)
	}
	*r = replication(n)
	return nil
}

func (r *replication) String() string { return strconv.Itoa(int(*r)) }
func (r *replication) Type() string   { return "int" }
