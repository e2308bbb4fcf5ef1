package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/integration/childproc"
	"github.com/taxi-stream/taxi-stream/processors/httpapi/metricstest"
	"github.com/taxi-stream/taxi-stream/producer/synth"
)

// BenchmarkProcessorProcess measures the taxi-stream program as users run it:
// BENCH_ROWS (default 2M) generated rides in dropoff order with markers wait in a
// 3-partition topic on the real broker; one taxi-stream process with its defaults
// (exactly-once, 100 ms commits, HTTP server on) processes them until its /metrics
// count every ride as closed, late or dead; then it is stopped with SIGTERM. It
// reports rides/s from the process start (startup and recovery included), the
// process's peak resident set size (getrusage maxrss) and its CPU seconds.
// BENCH_HEAPPROFILE=file saves a heap profile (--pprof) when half the rides are in.
//
//	go test -run '^$' -bench BenchmarkProcessorProcess -benchtime 1x ./integration/
func BenchmarkProcessorProcess(b *testing.B) {
	rows := envInt("BENCH_ROWS", 2_000_000)
	dir := b.TempDir()
	if err := buildPrograms(moduleRoot(b), dir, "taxi-stream"); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, "bench.parquet")
	cfg := synth.DefaultConfig(int64(rows))
	cfg.OutlierRate = 0
	if _, err := synth.WriteFile(context.Background(), file, cfg); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		runProcessBacklog(b, filepath.Join(dir, "taxi-stream"), file, filepath.Join(dir, fmt.Sprintf("state-%d", i)))
	}
}

func runProcessBacklog(b *testing.B, bin, file, stateDir string) {
	b.StopTimer()
	topics := pipelineInputs(b, 3)
	n := feedRides(b, topics.Rides, 3, file, feedOptions{markers: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log := createLog(b, b.TempDir(), "taxi-stream")
	cmd := exec.Command(bin, "--brokers", strings.Join(kafka.Brokers(b), ","),
		"--rides-topic", topics.Rides, "--zones-topic", topics.Zones, "--windows-topic", topics.Windows,
		"--results-topic", topics.Results, "--late-topic", topics.Late, "--dead-topic", topics.Dead,
		"--app", topics.Rides+"-app", "--instance-id", "bench", "--state-dir", stateDir,
		"--http-addr", addr, "--log-level", "warn")
	heapProfile := envString("BENCH_HEAPPROFILE", "") // a heap profile when half the rides are in
	if heapProfile != "" {
		cmd.Args = append(cmd.Args, "--pprof")
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	b.StartTimer()
	start := time.Now()
	exited, err := childproc.Start(cmd)
	if err != nil {
		b.Fatal(err)
	}
	done := false
	for !done {
		select {
		case err := <-exited:
			b.Fatalf("taxi-stream exited early: %v (log %s)", err, log.Name())
		case <-time.After(100 * time.Millisecond):
		}
		m, err := scrape("http://" + addr + "/metrics")
		if err != nil {
			continue // not listening yet
		}
		covered := m["taxi_stream_rides_closed_total"] + m["taxi_stream_rides_late_total"] + m["taxi_stream_dead_letters_total"]
		done = covered >= float64(n)
		if heapProfile != "" && covered >= float64(n)/2 {
			if err := download("http://"+addr+"/debug/pprof/heap", heapProfile); err != nil {
				b.Errorf("heap profile: %v", err)
			}
			heapProfile = ""
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("not done after 10 minutes: %v of %d rides covered", covered, n)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		b.Fatalf("taxi-stream did not stop within 60 s of SIGTERM (log %s)", log.Name())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		b.Fatalf("taxi-stream exited with %d after SIGTERM (log %s)", code, log.Name())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatal("no rusage for the process")
	}
	rssMiB := float64(ru.Maxrss) / 1024 // Linux: KiB
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	b.ReportMetric(float64(n)/elapsed.Seconds(), "rides/s")
	b.ReportMetric(rssMiB, "peak-RSS-MiB")
	b.ReportMetric(cpu.Seconds()/float64(n)*1e6, "cpu-s/Mride")
	b.Logf("taxi-stream process: %d rides in %s from its start: %.0f rides/s; peak RSS %.1f MiB; CPU %s (user %s, sys %s)",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), rssMiB, cpu.Round(time.Millisecond),
		time.Duration(ru.Utime.Nano()).Round(time.Millisecond), time.Duration(ru.Stime.Nano()).Round(time.Millisecond))
}

// download writes what url serves to path.
func download(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// scrape reads a /metrics endpoint.
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return metricstest.Parse(resp.Body)
}
