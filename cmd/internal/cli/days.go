package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// DaysDurationFlag defines a duration flag that also takes whole days ("45d",
// "1d12h"): time.ParseDuration stops at hours, and allowed lateness is naturally
// said in days. The default prints in Go's form (1080h0m0s for 45d).
func DaysDurationFlag(f *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	f.Var((*daysDuration)(p), name, usage)
}

type daysDuration time.Duration

func (d *daysDuration) String() string { return time.Duration(*d).String() }

func (d *daysDuration) Type() string { return "duration" }

func (d *daysDuration) Set(s string) error {
	v, err := parseDaysDuration(s)
	if err != nil {
		return err
	}
	*d = daysDuration(v)
	return nil
}

// parseDaysDuration parses an optional leading "<N>d" and the rest with
// time.ParseDuration.
func parseDaysDuration(s string) (time.Duration, error) {
	days, rest, found := strings.Cut(s, "d")
	if !found {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q: days must be a whole number before \"d\" (e.g. 45d or 1d12h)", s)
	}
	total := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, err)
		}
		total += r
	}
	return total, nil
}
