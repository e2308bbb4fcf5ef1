// Command cpuload runs a command while busy threads oversubscribe the CPU: the
// way `make test-loaded` checks that no test assumes an idle machine.
//
//	go run ./tools/cpuload -per-core 2 -- make test
//
// It starts per-core × cores threads that spin, runs the command with the same
// standard streams, stops the load, prints the command's wall time and the load
// average, and exits with the command's exit code.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	os.Exit(run())
}

func run() int {
	perCore := flag.Int("per-core", 2, "busy threads per core")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: cpuload [-per-core N] -- command [args...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 || *perCore < 0 {
		flag.Usage()
		return 2
	}
	busy := *perCore * runtime.NumCPU()
	// Every busy goroutine needs its own OS thread, beside the ones the runtime uses.
	runtime.GOMAXPROCS(busy + 1)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var quit atomic.Bool
	var wg sync.WaitGroup
	for range busy {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // a thread of its own, scheduled like a busy process
			x := uint64(1)
			for !quit.Load() {
				for range 1 << 16 {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			_ = x
		}()
	}
	fmt.Fprintf(os.Stderr, "cpuload: %d busy threads on %d cores; running %s\n", busy, runtime.NumCPU(), strings.Join(args, " "))

	start := time.Now()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	err := cmd.Run()
	load := loadAverage()
	quit.Store(true)
	wg.Wait()

	code := 0
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
		if code < 0 {
			code = 1
		}
	default:
		fmt.Fprintf(os.Stderr, "cpuload: %v\n", err)
		code = 1
	}
	fmt.Fprintf(os.Stderr, "cpuload: %s exited %d after %s under %d busy threads (load average %s)\n",
		args[0], code, time.Since(start).Round(time.Second), busy, load)
	return code
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
