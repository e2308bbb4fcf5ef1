package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/producer/synth"
	"github.com/taxi-stream/taxi-stream/topology"
)

// TestFailoverWithAndWithoutStandby measures failover of the windows stage (the
// stage with state): three processor processes share six partitions while rides
// stream in; an instance is SIGKILLed and stays down until its partitions are
// processed again elsewhere, then it is restarted. It runs once without and once
// with --hot-standby and reports, per kill:
//
//   - detection: SIGKILL -> the group drops the silent member (the session timeout);
//   - handover: the member dropped -> every partition it owned commits progress
//     again on a survivor (rebalance + state restore + first commit);
//   - failover: SIGKILL -> processing again (detection + handover);
//   - rejoin: restart -> every partition the returning instance gets commits again.
//
// Both runs must end with results equal to the oracle (one record per key).
// Knobs: FAILOVER_KILLS (kills per run, default 1; make failover: 4), FAILOVER_ROWS (generated rides,
// default 150k), FAILOVER_SLIDE (e.g. 5m: sliding windows, more state per partition).
func TestFailoverWithAndWithoutStandby(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processor processes")
	}
	t.Parallel() // see TestMain
	kills := envInt("FAILOVER_KILLS", 1)
	rows := envInt("FAILOVER_ROWS", 150_000)
	slide := envString("FAILOVER_SLIDE", "")
	dir := t.TempDir()
	if err := buildPrograms(moduleRoot(t), dir, "taxi-stream", "taxi-replay"); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "synthetic.parquet")
	cfg := synth.DefaultConfig(int64(rows))
	cfg.Seed = 11
	if _, err := synth.WriteFile(context.Background(), input, cfg); err != nil {
		t.Fatalf("generate: %v", err)
	}
	rides := readParquetRides(t, input)
	boroughs := readBoroughs(t, filepath.Join(sharedData(t), "taxi_zone_lookup.csv"))
	want := oracle(t, rides, boroughs)
	if slide != "" {
		d, err := time.ParseDuration(slide)
		if err != nil {
			t.Fatalf("FAILOVER_SLIDE: %v", err)
		}
		want = oracleWindows(t, rides, boroughs, time.Hour, d)
	}

	reports := map[bool]*failoverReport{}
	for _, standby := range []bool{false, true} {
		name := "without_standby"
		if standby {
			name = "with_standby"
		}
		t.Run(name, func(t *testing.T) {
			reports[standby] = runFailover(t, failoverRun{
				dir: filepath.Join(dir, name), bin: dir, input: input, rides: len(rides), want: want,
				standby: standby, kills: kills, slide: slide,
			})
		})
	}
	for _, standby := range []bool{false, true} {
		if r := reports[standby]; r != nil {
			t.Logf("hot standby %-5v: %s", standby, r)
		}
	}
}

type failoverRun struct {
	dir, bin, input string
	rides           int
	want            map[string]*oracleCell
	standby         bool
	kills           int
	slide           string
}

// failoverReport holds the measured durations of one run.
type failoverReport struct {
	detection, handover, failover, rejoin []time.Duration
	fenced                                []int // per kill: survivors' log lines aborting the victim's transactions
}

func (r *failoverReport) String() string {
	f := func(ds []time.Duration) string {
		if len(ds) == 0 {
			return "n/a"
		}
		s := slices.Sorted(slices.Values(ds))
		return fmt.Sprintf("p50 %s max %s", percentile(s, 0.5).Round(10*time.Millisecond), s[len(s)-1].Round(10*time.Millisecond))
	}
	return fmt.Sprintf("%d kills: failover %s (detection %s, handover %s); rejoin %s; victim's open transactions aborted by survivors, per kill: %v",
		len(r.failover), f(r.failover), f(r.detection), f(r.handover), f(r.rejoin), r.fenced)
}

const failoverSessionTimeout = 6 * time.Second // the broker's minimum by default

func runFailover(t *testing.T, run failoverRun) *failoverReport {
	topics := pipelineInputs(t, 6)
	tcfg := topology.Config{Topics: topics, App: topics.Rides + "-app", IngestPartitions: 6}.WithDefaults()
	if err := topology.EnsureTopics(kafka.Admin(t), topology.ProcessorTopics(tcfg), -1); err != nil {
		t.Fatal(err)
	}
	brokers := strings.Join(kafka.Brokers(t), ",")
	procs := make([]*instance, 3)
	for i := range procs {
		name := fmt.Sprintf("f%d", i)
		procs[i] = &instance{name: name, log: createLog(t, envString("CHAOS_LOGS", t.TempDir()), name), args: []string{
			"--brokers", brokers,
			"--rides-topic", topics.Rides, "--zones-topic", topics.Zones, "--windows-topic", topics.Windows,
			"--results-topic", topics.Results, "--late-topic", topics.Late, "--dead-topic", topics.Dead,
			"--app", tcfg.App, "--instance-id", name, "--state-dir", filepath.Join(run.dir, name+"-state"),
			"--http-addr", "127.0.0.1:0", "--log-level", "debug",
			"--session-timeout", failoverSessionTimeout.String(),
			"--hot-standby=" + strconv.FormatBool(run.standby),
		}}
		if run.slide != "" {
			procs[i].args = append(procs[i].args, "--slide", run.slide)
		}
	}
	stream := filepath.Join(run.bin, "taxi-stream")
	for _, p := range procs {
		p.start(t, stream)
	}
	running := map[*instance]bool{procs[0]: true, procs[1]: true, procs[2]: true}
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
	w := watchGroup(t, string(tcfg.WindowsGroup()), topics.Windows)
	defer w.stop()
	if _, ok := w.waitMembers(3, time.Now(), 90*time.Second); !ok {
		t.Fatalf("the three instances did not join the windows group within 90s (last sample: %v)", w.last())
	}

	// Stream long enough for every kill: detection, handover, restart and settling.
	feed := time.Duration(run.kills)*(failoverSessionTimeout+12*time.Second) + 10*time.Second
	producer := &instance{name: "producer", log: createLog(t, t.TempDir(), "producer"), args: []string{
		"--brokers", brokers, "--topic", topics.Rides, "--progress", "none", "--temp-dir", run.dir,
		"--rate", strconv.Itoa(int(float64(run.rides) / feed.Seconds())), run.input,
	}}
	producer.start(t, filepath.Join(run.bin, "taxi-replay"))
	defer func() {
		select {
		case <-producer.done:
		default:
			producer.kill()
		}
	}()

	report := &failoverReport{}
	time.Sleep(5 * time.Second)
	for k := range run.kills {
		victim := procs[k%len(procs)]
		owned := w.owned(victim.name)
		if len(owned) == 0 {
			t.Fatalf("kill %d: %s owns no windows partition", k+1, victim.name)
		}
		fencedBefore := fencedBy(t, procs, victim)
		killedAt := time.Now()
		victim.kill()
		dead := time.Now() // kill returns once the process has exited: no commit after this
		running[victim] = false
		detected, ok := w.waitGone(victim.name, killedAt, 60*time.Second)
		if !ok {
			t.Fatalf("kill %d: %s stayed in the group for 60s", k+1, victim.name)
		}
		resumed, ok := w.waitProgress(owned, dead, 60*time.Second)
		if !ok {
			t.Fatalf("kill %d: partitions %v of %s were not processed again within 60s", k+1, owned, victim.name)
		}
		// Whether survivors aborted the victim's open transactions (it has one only
		// if it died between a send and the commit).
		fenced := fencedBy(t, procs, victim) - fencedBefore
		report.fenced = append(report.fenced, fenced)
		report.detection = append(report.detection, detected.Sub(killedAt))
		report.handover = append(report.handover, resumed.Sub(detected))
		report.failover = append(report.failover, resumed.Sub(killedAt))
		t.Logf("kill %d: %s (partitions %v): detected after %s, processing again %s later; its open transactions aborted by survivors: %d",
			k+1, victim.name, owned, detected.Sub(killedAt).Round(10*time.Millisecond), resumed.Sub(detected).Round(10*time.Millisecond), fenced)

		restartedAt := time.Now()
		victim.start(t, stream)
		running[victim] = true
		joined, ok := w.waitMembers(3, restartedAt, 60*time.Second)
		if !ok {
			t.Fatalf("kill %d: %s did not rejoin within 60s", k+1, victim.name)
		}
		// The rebalance is eager: at joined the survivors have given the partitions up.
		back := w.ownedAt(victim.name, joined)
		if rejoined, ok := w.waitProgress(back, joined, 60*time.Second); ok && len(back) > 0 {
			report.rejoin = append(report.rejoin, rejoined.Sub(restartedAt))
		} else {
			t.Errorf("kill %d: %s got partitions %v back but they were not processed within 60s", k+1, victim.name, back)
		}
		time.Sleep(3 * time.Second)
	}

	select {
	case <-producer.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the producer did not finish within 3 minutes")
	}
	if code := producer.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("producer exited with %d (log %s)", code, producer.log.Name())
	}
	got := map[string][]string{}
	deadline := time.Now().Add(2 * time.Minute)
	for len(got) < len(run.want) && time.Now().Before(deadline) {
		got = map[string][]string{}
		for _, m := range readAll(t, topics.Results, len(run.want), 3*time.Minute) {
			got[string(m.Key)] = append(got[string(m.Key)], string(m.Value))
		}
	}
	for key, c := range run.want {
		if vs := got[key]; len(vs) != 1 {
			t.Errorf("%s: %d committed records, want exactly 1", key, len(vs))
		} else {
			checkResultAgainstOracle(t, key, []byte(vs[0]), c)
		}
	}
	for key := range got {
		if run.want[key] == nil {
			t.Errorf("result %s is not in the oracle", key)
		}
	}
	return report
}

// fencedBy counts the survivors' log lines aborting victim's transactions so far.
func fencedBy(t testing.TB, procs []*instance, victim *instance) int {
	n := 0
	for _, p := range procs {
		if p != victim {
			n += countFenced(t, p.log.Name(), victim.name)
		}
	}
	return n
}

// countFenced counts the lines of a processor's log in which it aborted open
// transactions of the instance named victim.
func countFenced(t testing.TB, logFile, victim string) int {
	t.Helper()
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "aborted the open transactions of departed instances") && strings.Contains(line, "-"+victim) {
			n++
		}
	}
	return n
}
