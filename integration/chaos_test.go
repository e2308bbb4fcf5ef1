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

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/integration/childproc"
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
	in.cmd, in.done = cmd, make(chan struct{})
	waited, err := childproc.Start(cmd)
	if err != nil {
		t.Fatalf("start %s: %v", in.name, err)
	}
	go func() { <-waited; close(in.done) }()
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
// partitions while the replay producer (a process too) streams generated rides plus
// real samples in dropoff order. A random processor is SIGKILLed every few seconds
// and restarted with the same instance id; the producer is SIGKILLed once and
// resumed; the broker is restarted once (on a 3-node cluster, KAFKA_LOCAL_NODES=3: a
// broker is killed and restarted); the group scales 1 -> 3 -> 1. The committed results
// must equal the oracle exactly, with one record per (window, borough).
//
// Knobs: CHAOS_ROWS (generated rides, default 200k), CHAOS_KILLS (min processor
// kills, default 6), CHAOS_REAL (real sample files, comma separated, "none"),
// CHAOS_FEED_SECONDS (how long the producer streams, default 20), CHAOS_GUARANTEE,
// CHAOS_DYNAMIC (non-empty: the processors run with --dynamic-membership),
// CHAOS_LOGS (a directory that keeps the processes' logs).
func TestExactlyOnceUnderProcessKills(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite: starts processor processes")
	}
	rows := envInt("CHAOS_ROWS", 200_000)
	minKills := envInt("CHAOS_KILLS", 6)
	feedSeconds := envInt("CHAOS_FEED_SECONDS", 20)
	instances := 3
	dir := t.TempDir()
	logDir := envString("CHAOS_LOGS", dir)
	if err := buildPrograms(moduleRoot(t), dir, "taxi-stream", "taxi-replay"); err != nil {
		t.Fatal(err)
	}
	bins := map[string]string{"taxi-stream": filepath.Join(dir, "taxi-stream"), "taxi-replay": filepath.Join(dir, "taxi-replay")}

	// Input: generated rides plus real samples (real zones).
	data := sharedData(t)
	inputs := []string{filepath.Join(dir, "synthetic.parquet")}
	cfg := synth.DefaultConfig(int64(rows))
	cfg.Seed = 7
	if _, err := synth.WriteFile(context.Background(), inputs[0], cfg); err != nil {
		t.Fatalf("generate: %v", err)
	}
	if real := envString("CHAOS_REAL", "green_tripdata_2024-01.parquet"); real != "none" {
		for _, name := range strings.Split(real, ",") {
			inputs = append(inputs, filepath.Join(data, strings.TrimSpace(name)))
		}
	}
	var rides []oracleRide
	for _, in := range inputs {
		rides = append(rides, readParquetRides(t, in)...)
	}
	want := oracle(t, rides, readBoroughs(t, filepath.Join(data, "taxi_zone_lookup.csv")))

	topics := pipelineInputs(t, 6)
	admin := kafka.Admin(t)
	// The processor creates its own topics; create them here so that the first
	// instances do not race each other creating them.
	tcfg := topology.Config{Topics: topics, App: topics.Rides + "-app", IngestPartitions: 6}.WithDefaults()
	if err := topology.EnsureTopics(admin, topology.ProcessorTopics(tcfg), -1); err != nil {
		t.Fatal(err)
	}
	brokers := strings.Join(kafka.Brokers(t), ",")

	procs := make([]*instance, instances)
	for i := range procs {
		name := fmt.Sprintf("p%d", i)
		procs[i] = &instance{name: name, log: createLog(t, logDir, name), args: []string{
			"--brokers", brokers,
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
		if os.Getenv("CHAOS_DYNAMIC") != "" {
			procs[i].args = append(procs[i].args, "--dynamic-membership")
		}
	}
	producerArgs := append([]string{"--brokers", brokers, "--topic", topics.Rides, "--progress", "none",
		"--rate", strconv.Itoa(len(rides) / feedSeconds), "--temp-dir", dir}, inputs...)
	producer := &instance{name: "producer", log: createLog(t, logDir, "producer"), args: producerArgs}

	// Scale 1 -> 3 -> 1: one instance first, two more join while the rides stream in,
	// and at the end two leave with SIGTERM (a clean stop) and one finishes the work.
	procs[0].start(t, bins["taxi-stream"])
	running := map[*instance]bool{procs[0]: true}
	defer func() {
		for _, p := range procs {
			if running[p] {
				p.stop(t)
			}
		}
		if t.Failed() {
			for _, p := range append(procs, producer) {
				t.Logf("log of %s: %s", p.name, p.log.Name())
			}
		}
	}()
	progress := watchGroup(t, string(tcfg.IngestGroup()), topics.Rides)
	defer progress.stop()

	// Stream the rides while killing processes. The producer runs until it has sent
	// everything; it is killed once and resumed, and resumed again if the broker
	// fault makes it give up.
	start := time.Now()
	producer.start(t, bins["taxi-replay"])
	producerDone := producer.done
	rng := rand.New(rand.NewPCG(1, 2))
	var kills []time.Time
	producerKilled, brokerFaulted := false, false
	feeding := true
	time.Sleep(3 * time.Second)
	for _, p := range procs[1:] {
		p.start(t, bins["taxi-stream"])
		running[p] = true
	}
	t.Log("scaled 1 -> 3 instances")
	var brokerFault time.Duration
	for feeding || len(kills) < minKills {
		select {
		case <-producerDone:
			if producer.cmd.ProcessState.ExitCode() == 0 {
				feeding, producerDone = false, nil
				t.Logf("producer finished after %s", time.Since(start).Round(time.Second))
				continue
			}
			t.Logf("producer exited with %d; resuming it", producer.cmd.ProcessState.ExitCode())
			producer.args = withResume(producerArgs)
			producer.start(t, bins["taxi-replay"])
			producerDone = producer.done
			continue
		case <-time.After(time.Duration(2000+rng.IntN(2000)) * time.Millisecond):
		}
		elapsed := time.Since(start)
		switch {
		case feeding && !producerKilled && elapsed > time.Duration(feedSeconds)*time.Second*35/100:
			producer.kill()
			producerKilled = true
			t.Logf("producer SIGKILLed at %s; resuming it", elapsed.Round(time.Second))
			producer.args = withResume(producerArgs)
			producer.start(t, bins["taxi-replay"])
			producerDone = producer.done
		case !brokerFaulted && elapsed > time.Duration(feedSeconds)*time.Second*60/100:
			brokerFaulted = true
			brokerFault = brokerFailure(t)
		default:
			victim := procs[rng.IntN(len(procs))]
			victim.kill()
			kills = append(kills, time.Now())
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
			victim.start(t, bins["taxi-stream"])
		}
	}
	time.Sleep(2 * time.Second) // let the last restarted instance come up
	for _, p := range procs[1:] {
		p.stop(t)
		running[p] = false
	}
	t.Log("scaled 3 -> 1 instance (SIGTERM)")
	lastFault := time.Now()
	t.Logf("%d rides in %d files, %d processor SIGKILLs, producer killed and resumed: %v, broker fault: %v", len(rides), len(inputs), len(kills), producerKilled, brokerFaulted)

	// Wait for all results, then check them.
	deadline := time.Now().Add(4 * time.Minute)
	var got map[string][]string
	for {
		got = map[string][]string{}
		for _, m := range readAll(t, topics.Results, len(want), 3*time.Minute) {
			got[string(m.Key)] = append(got[string(m.Key)], string(m.Value))
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("all results committed %s after the last fault", time.Since(lastFault).Round(time.Second))
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

	// The report (docs/benchmarks.md).
	progress.stop()
	if rec := progress.recoveries(kills); len(rec) > 0 {
		t.Logf("recovery after a processor kill (its partitions committing again) over %d kills: p50 %s, max %s",
			len(rec), percentile(rec, 0.5).Round(10*time.Millisecond), rec[len(rec)-1].Round(10*time.Millisecond))
	}
	if brokerFault > 0 {
		t.Logf("broker fault: down for %s", brokerFault.Round(100*time.Millisecond))
	}
	for _, topic := range []string{topics.Results, topics.Windows} {
		all := len(readAllLevel(t, topic, sarama.ReadUncommitted, 0, 3*time.Second))
		committed := len(readAll(t, topic, 0, 3*time.Second))
		t.Logf("%s: %d records written, %d committed, %d discarded with aborted transactions", topic, all, committed, all-committed)
	}
}

func createLog(t testing.TB, dir, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// withResume returns the producer's arguments with --resume.
func withResume(args []string) []string {
	return append([]string{"--resume"}, args...)
}

// brokerFailure restarts the local broker (one node: a clean stop and start, like a
// rolling restart) or kills and restarts one broker of a 3-node cluster, and
// returns how long it was down. With KAFKA_BROKERS (a cluster the test does not
// own) it does nothing.
func brokerFailure(t testing.TB) time.Duration {
	t.Helper()
	c := kafka.Local(t)
	if c == nil {
		t.Log("broker fault skipped: the tests use KAFKA_BROKERS")
		return 0
	}
	ids := c.NodeIDs()
	id := ids[len(ids)-1]
	start := time.Now()
	if len(ids) >= 3 {
		if err := c.KillNode(id); err != nil {
			t.Fatalf("kill broker %d: %v", id, err)
		}
		t.Logf("broker %d of %d SIGKILLed", id, len(ids))
		time.Sleep(3 * time.Second)
	} else {
		if err := c.StopNode(id, 30*time.Second); err != nil {
			t.Fatalf("stop broker %d: %v", id, err)
		}
		t.Logf("broker %d stopped", id)
	}
	if err := c.RestartNode(context.Background(), id); err != nil {
		t.Fatalf("restart broker %d: %v", id, err)
	}
	d := time.Since(start)
	t.Logf("broker %d back after %s", id, d.Round(100*time.Millisecond))
	return d
}
