package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/taxi-stream/taxi-stream/integration/testio"
)

// testProgram is a command with a subcommand, a validated flag and a run that
// fails, is interrupted or stops cleanly on request.
func testProgram() *cobra.Command {
	var (
		n    int
		mode string
		rep  int
	)
	root := &cobra.Command{Use: "prog", Args: cobra.NoArgs}
	root.Flags().IntVar(&n, "n", 1, "a number")
	root.Flags().StringVar(&mode, "mode", "ok", "ok, fail, usage, wait-fail, wait-clean")
	ReplicationFlag(root.Flags(), &rep, "replication factor")
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		switch mode {
		case "ok":
			return nil
		case "fail":
			return errors.New("the broker said no")
		case "usage":
			return Usagef("--mode usage: bad combination")
		case "wait-fail", "wait-clean":
			<-cmd.Context().Done()
			if mode == "wait-clean" {
				return nil
			}
			return fmt.Errorf("sent 10 of 20 rows: %w", cmd.Context().Err())
		}
		return Usagef("--mode %q: unknown", mode)
	}
	kids := &cobra.Command{Use: "sub", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
	parent := &cobra.Command{Use: "tool"}
	parent.AddCommand(kids)
	root.AddCommand(parent)
	return root
}

// TestRunExitStatusAndErrorFormat: usage errors (cobra's flag and argument errors
// included) exit 2, other errors 1, and each error is printed once as
// "prog: message".
func TestRunExitStatusAndErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string // the whole of stderr, "" for none
	}{
		{nil, ExitOK, ""},
		{[]string{"--mode", "fail"}, ExitError, "prog: the broker said no\n"},
		{[]string{"--mode", "usage"}, ExitUsage, "prog: --mode usage: bad combination\n"},
		{[]string{"--no-such-flag"}, ExitUsage, "prog: unknown flag: --no-such-flag\n"},
		{[]string{"--n", "many"}, ExitUsage, `prog: invalid argument "many" for "--n" flag: strconv.ParseInt: parsing "many": invalid syntax` + "\n"},
		{[]string{"extra"}, ExitUsage, `prog: unknown command "extra" for "prog"` + "\n"},
		{[]string{"tool", "sub", "extra"}, ExitUsage, `prog: unknown command "extra" for "prog tool sub"` + "\n"},
		{[]string{"tool", "sub", "--bad"}, ExitUsage, "prog: unknown flag: --bad\n"},
		{[]string{"--replication", "0"}, ExitUsage, `prog: invalid argument "0" for "--replication" flag: want -1 (the broker's default.replication.factor) or 1..32767` + "\n"},
		{[]string{"--help"}, ExitOK, ""},
	} {
		var stderr bytes.Buffer
		cmd := testProgram()
		cmd.SetOut(io.Discard) // --help
		code := Run(context.Background(), "prog", cmd, tc.args, &stderr)
		if code != tc.code || stderr.String() != tc.msg {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tc.args, code, stderr.String(), tc.code, tc.msg)
		}
	}
}

// TestRunUnknownSubcommandIsUsage: a root command with subcommands and no argument
// check of its own rejects an unknown subcommand as a usage error, with a suggestion.
func TestRunUnknownSubcommandIsUsage(t *testing.T) {
	root := &cobra.Command{Use: "prog", RunE: func(*cobra.Command, []string) error { return nil }}
	root.AddCommand(&cobra.Command{Use: "start", Run: func(*cobra.Command, []string) {}})
	var stderr bytes.Buffer
	if code := Run(context.Background(), "prog", root, []string{"strat"}, &stderr); code != ExitUsage ||
		!strings.HasPrefix(stderr.String(), `prog: unknown command "strat" for "prog" (did you mean start?)`) {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// TestRunAfterStopSignal: once the context ends (Main: SIGINT/SIGTERM), a command
// that returns an error was interrupted (130), one that returns nil stopped cleanly
// (0); a usage error stays a usage error.
func TestRunAfterStopSignal(t *testing.T) {
	for _, tc := range []struct {
		mode string
		code int
		msg  string
	}{
		{"wait-fail", ExitInterrupted, "prog: interrupted: sent 10 of 20 rows: context canceled\n"},
		{"wait-clean", ExitOK, ""},
		{"usage", ExitUsage, "prog: --mode usage: bad combination\n"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(10*time.Millisecond, cancel)
		var stderr bytes.Buffer
		code := Run(ctx, "prog", testProgram(), []string{"--mode", tc.mode}, &stderr)
		cancel()
		if code != tc.code || stderr.String() != tc.msg {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", tc.mode, code, stderr.String(), tc.code, tc.msg)
		}
	}
}

// TestOnSignals: the first signal ends the context with a note, the second quits
// with 130.
func TestOnSignals(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	var w syncBuffer
	exited := make(chan int, 1)
	ctx, stop := onSignals("prog", sigs, &w, func(code int) { exited <- code })
	defer stop()
	sigs <- syscall.SIGTERM
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not end the context")
	}
	sigs <- os.Interrupt
	select {
	case code := <-exited:
		if code != ExitInterrupted {
			t.Errorf("second signal: exit %d, want %d", code, ExitInterrupted)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second signal did not quit")
	}
	if got := w.String(); !strings.HasPrefix(got, "prog: terminated: stopping (again to quit at once)\nprog: interrupt again") {
		t.Errorf("notes %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe for the signal goroutine and the test.
type syncBuffer = testio.Buffer

func TestUsageWrapsOnce(t *testing.T) {
	base := errors.New("x")
	u := Usage(base)
	if !IsUsage(u) || !errors.Is(u, base) || Usage(u) != u || Usage(nil) != nil {
		t.Fatalf("Usage: %#v", u)
	}
	if IsUsage(fmt.Errorf("wrapped: %w", errors.New("y"))) {
		t.Fatal("a plain error counted as usage")
	}
	if !IsUsage(fmt.Errorf("--flag: %w", u)) {
		t.Fatal("a wrapped usage error is not usage")
	}
}
