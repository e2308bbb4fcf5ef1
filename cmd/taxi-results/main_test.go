package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
)

// TestUsageErrorsExit2: bad flags, arguments and values exit 2 with one
// "taxi-results: ..." line, before anything connects to Kafka.
func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--no-such-flag"}, "", "unknown flag: --no-such-flag"},
		{[]string{"extra"}, "", `unknown command "extra"`},
		{[]string{"--format", "xml"}, "", `--format "xml"`},
		{[]string{"--exit-after-idle", "soon"}, "", `invalid argument "soon" for "--exit-after-idle"`},
		{nil, "TAXI_RESULTS_EXIT_AFTER_IDLE=soon", "TAXI_RESULTS_EXIT_AFTER_IDLE"},
		{[]string{"--brokers", ","}, "", "--brokers is empty"},
		{[]string{"--security-protocol", "SSL", "--tls-ca-file", "/nonexistent/ca.pem"}, "", "--tls-ca-file"},
	} {
		t.Run(strings.Join(tc.args, " ")+tc.env, func(t *testing.T) {
			if k, v, ok := strings.Cut(tc.env, "="); ok {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			code := cli.Run(context.Background(), "taxi-results", newCommand(), tc.args, &stderr)
			out := stderr.String()
			if code != cli.ExitUsage || !strings.HasPrefix(out, "taxi-results: ") || !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want %d and one line naming %q", code, out, cli.ExitUsage, tc.want)
			}
		})
	}
}

func TestHelpStatesEachDefaultOnce(t *testing.T) {
	for _, p := range cli.RepeatedDefaults(newCommand()) {
		t.Error(p)
	}
}
