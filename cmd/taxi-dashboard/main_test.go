package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
)

// TestUsageErrorsExit2: bad flags, arguments and values exit 2 with one
// "taxi-dashboard: ..." line, before anything listens or connects.
func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"extra"}, `unknown command "extra"`},
		{[]string{"--query-url", "stream-1:8080"}, `query URL "stream-1:8080"`},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--brokers", "nohost"}, "--brokers"},
	} {
		var stderr bytes.Buffer
		code := cli.Run(context.Background(), "taxi-dashboard", newCommand(), tc.args, &stderr)
		out := stderr.String()
		if code != cli.ExitUsage || !strings.HasPrefix(out, "taxi-dashboard: ") || !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want %d and one line naming %q", tc.args, code, out, cli.ExitUsage, tc.want)
		}
	}
}

func TestHelpStatesEachDefaultOnce(t *testing.T) {
	for _, p := range cli.RepeatedDefaults(newCommand()) {
		t.Error(p)
	}
}
