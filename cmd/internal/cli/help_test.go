package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestRepeatedDefaults: a flag whose description states its non-zero default, which
// pflag prints again, is reported, in subcommands and persistent flags too; the
// shared flags (--brokers, --replication, security) and EnvHelp's additions are not.
func TestRepeatedDefaults(t *testing.T) {
	var s, b string
	var r int
	var sec Security
	root := &cobra.Command{Use: "prog", Run: func(*cobra.Command, []string) {}}
	root.Flags().StringVar(&s, "format", "table", "table or json")
	root.Flags().StringVar(&b, "state-dir", "", "state directory (default: $TMPDIR/x)") // zero default: pflag prints none
	BrokersFlag(root.Flags(), &b)
	ReplicationFlag(root.Flags(), &r, "replication factor of the topics it creates: 1..32767, or -1 for the broker's setting")
	sec.Register(root.Flags())
	sub := &cobra.Command{Use: "sub", Run: func(*cobra.Command, []string) {}}
	sub.Flags().StringVar(&s, "window", "1h", "window duration (default 1h)")
	root.PersistentFlags().IntVar(&r, "heap-mb", 768, "JVM heap (default 768 MiB)")
	root.AddCommand(sub)
	UseEnv(root, "PROG")

	got := RepeatedDefaults(root)
	want := []string{"prog: --heap-mb int", "prog sub: --window string", "prog sub: --heap-mb int"}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d, starting %q", strings.Join(got, "\n"), len(want), want)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("problem %d = %q, want it to start %q", i, got[i], w)
		}
	}
}

func TestFlagLinesJoinsContinuations(t *testing.T) {
	help := "Usage:\n  x [flags]\n\nFlags:\n  -a, --aa string   first\n      line two (default \"q\")\n      --bb   b\n\nGlobal Flags:\n      --cc   c (default 1)\n"
	got := flagLines(help)
	if len(got) != 3 || got[0] != `-a, --aa string   first line two (default "q")` || !strings.HasPrefix(got[2], "--cc") {
		t.Fatalf("flagLines = %q", got)
	}
}
