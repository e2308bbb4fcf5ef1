package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/producer/synth"
	"github.com/taxi-stream/taxi-stream/topology"
)

// envInt reads an integer knob of the chaos suite (make chaos sets the long ones).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// moduleRoot is the directory holding go.mod.
func moduleRoot(t testing.TB) string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// instance is a taxi-stream process the chaos harness starts and kills.
type instance struct {
	name string
	args []string
	log  *os.File
	cmd  *exec.Cmd
	done chan struct{}
}

func (in *instance) start(t testing.TB, bin string) {
	t.Helper()
	cmd := exec.Command(bin, in.args...)
	cmd.Stdout, cmd.Stderr = in.log, in.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", in.name, err)
	}
	in.cmd, in.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(in.done) }()
}

func (in *instance) kill() {
	_ = in.cmd.Process.Kill()
	<-in.done
}

func (in *instance) stop(t testing.TB) {
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
		if code := in.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM (log %s)", in.name, code, in.log.Name())
		}
	case <-time.After(60 * time.Second):
		t.Errorf("%s did not stop within 60s of SIGTERM", in.name)
		in.kill()
	}
}

// TestExactlyOnceUnderProcessKills runs three processor processes on six
// partitions, SIGKILLs a random one every few seconds while rides stream in, and
// restarts it with the same instance id. The committed results must equal the
// oracle exactly, with one record per (window, borough).
func TestExactlyOnceUnderProcessKills(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite: starts processor processes")
	}
	rows := envInt("CHAOS_ROWS", 200_000)
	minKills := envInt("CHAOS_KILLS", 6)
	instances := 3
	dir := t.TempDir()
	bin := filepath.Join(dir, "taxi-stream")
	build := exec.Command("go", "build", "-o", bin, "./cmd/taxi-stream")
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build taxi-stream: %v\n%s", err, out)
	}

	// Input: generated rides (real zones).
	data := sharedData(t)
	file := filepath.Join(dir, "synthetic.parquet")
	cfg := synth.DefaultConfig(int64(rows))
	cfg.Seed = 7
	if _, err := synth.WriteFile(context.Background(), file, cfg); err != nil {
		t.Fatalf("generate: %v", err)
	}
	want := oracle(t, readParquetRides(t, file), readBoroughs(t, filepath.Join(data, "taxi_zone_lookup.csv")))

	topics := pipelineInputs(t, 6)
	admin := kafka.Admin(t)
	// The processor creates its own topics; create them here so that the first
	// instances do not race each other creating them.
	tcfg := topology.Config{Topics: topics, App: topics.Rides + "-app", IngestPartitions: 6}.WithDefaults()
	if err := topology.EnsureTopics(admin, topology.ProcessorTopics(tcfg), -1); err != nil {
		t.Fatal(err)
	}

	procs := make([]*instance, instances)
	for i := range procs {
		name := fmt.Sprintf("p%d", i)
		logDir := envString("CHAOS_LOGS", dir) // CHAOS_LOGS keeps the processes' logs
		logf, err := os.Create(filepath.Join(logDir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = &instance{name: name, log: logf, args: []string{
			"--brokers", strings.Join(kafka.Brokers(t), ","),
			"--rides-topic", topics.Rides, "--zones-topic", topics.Zones, "--windows-topic", topics.Windows,
			"--results-topic", topics.Results, "--late-topic", topics.Late, "--dead-topic", topics.Dead,
			"--app", tcfg.App, "--instance-id", name, "--state-dir", filepath.Join(dir, name+"-state"),
			// Several processes on one machine: the default :8080 would collide.
			"--http-addr", "127.0.0.1:0",
			// CHAOS_GUARANTEE=at_least_once runs the same suite without transactions: it
			// is expected to fail (duplicates), which shows that the suite can fail.
			"--guarantee", envString("CHAOS_GUARANTEE", "exactly_once"),
			"--log-level", "debug",
		}}
	}
	// Scale 1 -> 3 -> 1: one instance first, two more join while the rides stream in,
	// and at the end two leave with SIGTERM (a clean stop) and one finishes the work.
	procs[0].start(t, bin)
	running := map[*instance]bool{procs[0]: true}
	defer func() {
		for _, p := range procs {
			if running[p] {
				p.stop(t)
			}
		}
		if t.Failed() {
			for _, p := range procs {
				t.Logf("log of %s: %s", p.name, p.log.Name())
			}
		}
	}()

	// Stream the rides while killing processes.
	fed := make(chan int, 1)
	go func() { fed <- feedRides(t, topics.Rides, 6, file, feedOptions{markers: true}) }()
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	feeding := true
	var n int
	time.Sleep(3 * time.Second)
	for _, p := range procs[1:] {
		p.start(t, bin)
		running[p] = true
	}
	t.Log("scaled 1 -> 3 instances")
	for feeding || kills < minKills {
		select {
		case n = <-fed:
			feeding = false
			continue
		case <-time.After(time.Duration(2000+rng.IntN(2000)) * time.Millisecond):
		}
		victim := procs[rng.IntN(len(procs))]
		victim.kill()
		kills++
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
		victim.start(t, bin)
	}
	time.Sleep(2 * time.Second) // let the last restarted instance come up
	for _, p := range procs[1:] {
		p.stop(t)
		running[p] = false
	}
	t.Log("scaled 3 -> 1 instance (SIGTERM)")
	lastFault := time.Now()
	t.Logf("%d rides fed, %d SIGKILLs", n, kills)

	// Wait for all results, then check them.
	deadline := time.Now().Add(4 * time.Minute)
	var got map[string][]string
	for {
		got = map[string][]string{}
		for _, m := range readAll(t, topics.Results, len(want), 20*time.Second) {
			got[string(m.Key)] = append(got[string(m.Key)], string(m.Value))
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("all results committed %s after the last kill", time.Since(lastFault).Round(time.Second))
	for key, c := range want {
		vs := got[key]
		if len(vs) != 1 {
			t.Errorf("%s: %d committed records, want exactly 1", key, len(vs))
			continue
		}
		checkResultAgainstOracle(t, key, []byte(vs[0]), c)
	}
	for key := range got {
		if want[key] == nil {
			t.Errorf("result %s is not in the oracle", key)
		}
	}
	if late := readAll(t, topics.Late, 0, 3*time.Second); len(late) != 0 {
		t.Errorf("late topic holds %d rides (dropoff order: none may be late)", len(late))
	}
	if dead := readAll(t, topics.Dead, 0, 3*time.Second); len(dead) != 0 {
		t.Errorf("dead-letter topic holds %d records", len(dead))
	}
}
