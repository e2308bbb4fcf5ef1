package main

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/taxi-stream/taxi-stream/integration/kafkalocal"
	"github.com/taxi-stream/taxi-stream/processors/httpapi/metricstest"
)

//go:embed spark_job.py
var sparkJob []byte

//go:embed producer.py
var pyProducer []byte

//go:embed requirements.txt
var requirements []byte

//go:embed pom.xml
var sparkPOM []byte

// Config is one bench-peers run.
type Config struct {
	Rows     int    // rides of the backlog
	PyRows   int    // rows of the Python producer (-1: Rows, 0: skip)
	Peers    string // "on", "off", "auto": Spark and the Python producer
	WorkDir  string // "" : a temporary directory
	CacheDir string // venv and Spark jars
	Zones    string // zone lookup CSV
	Doc      string // markdown file to add the table to
	PprofDir string // profiles of the exactly-once run
	Brokers  string // existing cluster ("" : start one)
	// ModuleRoot is the taxi-stream module (default: go env GOMOD's directory).
	ModuleRoot string
	// Timeout bounds each engine's run.
	Timeout time.Duration
	// SparkShufflePartitions sets spark.sql.shuffle.partitions (0: Spark's default, 200,
	// as the tutorial ran it). The smoke test uses 2: 200 state-store partitions per
	// micro-batch take minutes on a loaded 2-core machine even for 50k rides.
	SparkShufflePartitions int
	// Rounds is how many pairs of compared taxi-stream runs (exactly_once and
	// at_least_once, alternating) are made; the table shows each guarantee's median.
	Rounds int
	// WarmTxns is how many transactions warm the broker's transaction path before
	// any engine is timed (warmTransactions; 0: none).
	WarmTxns int
	// ABEnv, when set (e.g. "GOGC=200"), adds ABRounds pairs of exactly-once runs
	// without and with these environment variables, alternating, to the report.
	ABEnv    string
	ABRounds int
}

func defaultConfig() Config {
	return Config{Rows: 2_000_000, PyRows: -1, Peers: "auto", CacheDir: filepath.Join(kafkalocal.DefaultCacheDir(), "bench-peers"),
		Timeout: 30 * time.Minute, Rounds: 3, WarmTxns: 8000}
}

// Engine is one line of the table.
type Engine struct {
	Name  string
	Units int64 // rides (processors) or rows (producers)
	usage
	FromQueryStart time.Duration // Spark: query start until done
	Note           string
	// BrokerCPU is what the run's own broker spent over the same interval (0: unknown).
	BrokerCPU time.Duration
}

// PerSecond is units per second from process start.
func (e Engine) PerSecond() float64 {
	if e.Wall <= 0 {
		return 0
	}
	return float64(e.Units) / e.Wall.Seconds()
}

// CPUPerMillion is CPU seconds per million units.
func (e Engine) CPUPerMillion() float64 {
	if e.Units == 0 {
		return 0
	}
	return e.CPU.Seconds() / float64(e.Units) * 1e6
}

// Report is the outcome of a run.
type Report struct {
	Date                   time.Time
	Rows                   int64
	LoadBefore, LoadAfter  string
	EOS, ALO, Spark, Limit *Engine
	// FirstEOS and FirstALO are taxi-stream's first runs, on the fresh broker (shown,
	// not compared: see Run).
	FirstEOS, FirstALO *Engine
	// EOSRuns and ALORuns are the compared runs in the order made; EOS and ALO are
	// their medians.
	EOSRuns, ALORuns []*Engine
	// FirstReplay is the replay that filled the backlog topic on the fresh broker (shown,
	// not compared); Replay is the same command again into a topic of its own, after the
	// engines, on the broker the Python producer meets too.
	FirstReplay              *Engine
	Replay, PyProducer       *Engine
	AB                       []*Engine // --ab-env rounds, alternating base and variant
	Agreement                []string  // what was checked, one sentence each
	SparkSkipped             string    // why Spark and the Python producer did not run
	Command                  string
	ProfileFiles             []string
	sparkOpenRides, resultsN int
}

// Run runs the benchmark.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (_ *Report, err error) {
	if cfg.Rows <= 0 {
		return nil, fmt.Errorf("--rows %d: want > 0", cfg.Rows)
	}
	switch cfg.Peers {
	case "on", "off", "auto":
	default:
		return nil, fmt.Errorf("--peers %q: want on, off or auto", cfg.Peers)
	}
	if cfg.PyRows < 0 || cfg.PyRows > cfg.Rows {
		cfg.PyRows = cfg.Rows
	}
	if cfg.Rounds < 1 {
		return nil, fmt.Errorf("--rounds %d: want >= 1", cfg.Rounds)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Minute
	}
	if cfg.ModuleRoot == "" {
		if cfg.ModuleRoot, err = moduleRoot(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.Zones == "" {
		cfg.Zones = filepath.Join(cfg.ModuleRoot, "..", "shared", "data", "taxi_zone_lookup.csv")
	}
	if _, err := os.Stat(cfg.Zones); err != nil {
		return nil, fmt.Errorf("zone lookup CSV: %w (set --zones)", err)
	}
	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "taxi-bench-peers-")
		if err != nil {
			return nil, err
		}
		defer func() {
			if err == nil {
				os.RemoveAll(dir)
			} else {
				err = fmt.Errorf("%w (outputs kept in %s)", err, dir)
			}
		}()
		cfg.WorkDir = dir
	}
	rep := &Report{Date: time.Now().UTC(), Rows: int64(cfg.Rows), LoadBefore: loadAvg(),
		Command: fmt.Sprintf("make bench-peers ROWS=%d", cfg.Rows)}
	if cfg.PyRows != cfg.Rows && cfg.Peers != "off" {
		rep.Command += fmt.Sprintf(" PY_ROWS=%d", cfg.PyRows)
	}
	var extra []string
	if cfg.Peers != "auto" {
		extra = append(extra, "--peers "+cfg.Peers)
	}
	if cfg.WarmTxns != defaultConfig().WarmTxns {
		extra = append(extra, fmt.Sprintf("--warm-txns %d", cfg.WarmTxns))
	}
	if cfg.Rounds != defaultConfig().Rounds {
		extra = append(extra, fmt.Sprintf("--rounds %d", cfg.Rounds))
	}
	if cfg.ABEnv != "" {
		extra = append(extra, fmt.Sprintf("--ab-env %s --ab-rounds %d", cfg.ABEnv, cfg.ABRounds))
	}
	if len(extra) > 0 {
		rep.Command += fmt.Sprintf(" BENCH_PEERS_ARGS='%s'", strings.Join(extra, " "))
	}
	bin := filepath.Join(cfg.WorkDir, "bin")
	log.Info("building the shipped binaries", "dir", bin)
	if err := run(ctx, cfg.ModuleRoot, "go", "build", "-o", bin+"/",
		"./cmd/taxi-gen", "./cmd/taxi-replay", "./cmd/taxi-stream", "./cmd/taxi-results", "./cmd/taxi-bench-peers"); err != nil {
		return nil, err
	}

	// Spark and the Python producer: venv and jars first, so that a missing registry is
	// known before the broker starts.
	var py *pythonEnv
	if cfg.Peers != "off" {
		py, err = preparePython(ctx, cfg, log)
		if err != nil {
			if cfg.Peers == "on" || os.Getenv("CI") == "true" {
				return nil, err
			}
			log.Warn("Spark and the Python producer are skipped", "err", err)
			rep.SparkSkipped = err.Error()
			py = nil
		}
	} else {
		rep.SparkSkipped = "--peers off"
	}

	brokers := cfg.Brokers
	var meter brokerMeter
	if brokers == "" {
		log.Info("starting a local Kafka broker (kafkalocal)")
		cl, err := kafkalocal.Start(ctx, kafkalocal.Config{Dir: filepath.Join(cfg.WorkDir, "kafka"), Logger: log})
		if err != nil {
			return nil, fmt.Errorf("start kafka: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if serr := cl.Stop(sctx); serr != nil {
				log.Warn("stop kafka", "err", serr)
			}
		}()
		brokers = strings.Join(cl.Brokers(), ",")
		meter = brokerMeter{pids: cl.PIDs()}
	}
	// Topic and group names of this run: a shared cluster (--brokers) may hold earlier runs'.
	id := fmt.Sprintf("bench-peers-%d", time.Now().UnixNano())
	b := &bench{cfg: cfg, log: log, bin: bin, brokers: brokers, broker: meter, rep: rep, id: id,
		ridesTopic: id + "-rides", zonesTopic: id + "-zones", pyTopic: id + "-py-rides"}
	if err := b.feed(ctx); err != nil {
		return nil, err
	}
	// The limit first: it reads the whole topic once, so that no engine meets a cold
	// broker (a fresh JVM compiles its fetch path on the same cores: the first engine
	// measured 2x slower than the same binary later in the run).
	if err := b.limit(ctx); err != nil {
		return nil, err
	}
	if err := warmInternalTopics(ctx, b.brokers, id); err != nil {
		return nil, err
	}
	if err := warmTransactions(ctx, b.brokers, id, cfg.WarmTxns, b.broker, log); err != nil {
		return nil, err
	}
	// A first run of each guarantee, shown but not compared: the limit warms the
	// broker's fetch path, but a fresh broker JVM still compiles its transaction and
	// group paths on the same two cores during the first engine that uses them
	// (measured: the first exactly-once run 121k rides/s, the same binary 156-161k
	// right after; at-least-once ran second and looked 1.8x faster). The compared
	// runs below, and Spark after them, all meet a broker that has run every path.
	first := func(guarantee, name string) (*Engine, error) {
		e, c, err := b.taxiStream(ctx, guarantee, name, nil)
		if err != nil {
			return nil, err
		}
		if total := c.rides(); total != rep.Rows {
			return nil, fmt.Errorf("taxi-stream %s (first run) counted %d rides, the backlog has %d", guarantee, total, rep.Rows)
		}
		e.Name += ", first run on the fresh broker"
		return e, nil
	}
	if rep.FirstEOS, err = first("exactly_once", "first-eos"); err != nil {
		return nil, err
	}
	if rep.FirstALO, err = first("at_least_once", "first-alo"); err != nil {
		return nil, err
	}
	eosCells, err := b.rounds(ctx)
	if err != nil {
		return nil, err
	}
	rep.resultsN = len(eosCells)
	rep.Agreement = append(rep.Agreement, fmt.Sprintf(
		"taxi-stream exactly_once and at_least_once: the same %d results (window, borough: count, passengers, distance, tips, fares, totals), %d rides in them, every ride of the backlog.",
		len(eosCells), eosCells.rides()))
	if cfg.ABEnv != "" {
		if err := b.abRounds(ctx, eosCells); err != nil {
			return nil, err
		}
	}
	if py != nil {
		if err := b.spark(ctx, py, eosCells); err != nil {
			return nil, err
		}
	}
	// The compared replay: the broker has taken the backlog and served every engine by now,
	// as it has when the Python producer runs (the first replay met a fresh JVM: 224k
	// rows/s in one run where the same binary made 350k-520k on a warm broker).
	if rep.Replay, err = b.replay(ctx, id+"-replay", "taxi-replay.log"); err != nil {
		return nil, err
	}
	if py != nil {
		if cfg.PyRows > 0 {
			if err := b.pyProducer(ctx, py); err != nil {
				return nil, err
			}
		}
	}
	rep.LoadAfter = loadAvg()
	if cfg.Doc != "" {
		if err := rep.WriteDoc(cfg.Doc); err != nil {
			return nil, err
		}
		log.Info("table added", "doc", cfg.Doc)
	}
	return rep, nil
}

type bench struct {
	cfg      Config
	log      *slog.Logger
	bin      string
	brokers  string
	broker   brokerMeter // the run's own broker's CPU (none with --brokers)
	rep      *Report
	backlog  string
	messages int64 // records in the rides topic (rides + markers)

	id                              string // prefix of the run's topics and groups
	ridesTopic, zonesTopic, pyTopic string
}

// feed generates the backlog and replays it with taxi-replay's defaults.
func (b *bench) feed(ctx context.Context) error {
	b.backlog = filepath.Join(b.cfg.WorkDir, "backlog.parquet")
	b.log.Info("generating the backlog", "rows", b.cfg.Rows)
	if err := run(ctx, "", filepath.Join(b.bin, "taxi-gen"), "--rows", strconv.Itoa(b.cfg.Rows),
		"--outliers=false", "--order", "tlc", "--out", b.backlog); err != nil {
		return err
	}
	if err := run(ctx, "", filepath.Join(b.bin, "taxi-replay"), "zones", "--brokers", b.brokers,
		"--topic", b.zonesTopic, "--file", b.cfg.Zones); err != nil {
		return err
	}
	first, err := b.replay(ctx, b.ridesTopic, "taxi-replay-first.log")
	if err != nil {
		return err
	}
	first.Name += ", first run on the fresh broker"
	b.rep.FirstReplay = first
	n, err := topicRecords(ctx, b.brokers, b.ridesTopic)
	if err != nil {
		return err
	}
	b.messages = n
	return nil
}

// replay runs taxi-replay with its defaults on the backlog into topic and measures it.
func (b *bench) replay(ctx context.Context, topic, logName string) (*Engine, error) {
	b.log.Info("replaying the backlog with taxi-replay's defaults", "topic", topic)
	broker0 := b.broker.now()
	p, err := startProc("taxi-replay", exec.CommandContext(ctx, filepath.Join(b.bin, "taxi-replay"),
		"--brokers", b.brokers, "--topic", topic, "--progress", "none", b.backlog),
		filepath.Join(b.cfg.WorkDir, logName))
	if err != nil {
		return nil, err
	}
	if err := p.waitExit(ctx, b.cfg.Timeout); err != nil {
		return nil, err
	}
	e := &Engine{Name: "taxi-replay (defaults: dropoff order, zstd, acks=all, markers)",
		Units: int64(b.cfg.Rows), usage: p.usage(time.Since(p.start)), BrokerCPU: b.broker.now() - broker0}
	if m := summaryField(p.logPath, "send_seconds"); m != "" {
		e.Note = "send phase " + m + " s"
	}
	return e, nil
}

// taxiStream runs the shipped binary with its defaults (but guarantee) on the backlog and
// returns its results.
func (b *bench) taxiStream(ctx context.Context, guarantee, name string, env []string) (*Engine, cells, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	results := b.id + "-results-" + name
	args := []string{"--brokers", b.brokers, "--rides-topic", b.ridesTopic, "--zones-topic", b.zonesTopic,
		"--results-topic", results, "--late-topic", b.id + "-late-" + name, "--dead-topic", b.id + "-dead-" + name,
		"--app", b.id + "-" + name, "--instance-id", b.id + "-" + name,
		"--state-dir", filepath.Join(b.cfg.WorkDir, "state-"+name), "--http-addr", addr, "--guarantee", guarantee}
	profile := b.cfg.PprofDir != "" && name == "eos-1"
	if profile {
		args = append(args, "--pprof")
		if err := os.MkdirAll(b.cfg.PprofDir, 0o755); err != nil {
			return nil, nil, err
		}
	}
	b.log.Info("running taxi-stream", "guarantee", guarantee, "run", name, "env", env)
	cmd := exec.CommandContext(ctx, filepath.Join(b.bin, "taxi-stream"), args...)
	cmd.Env = append(os.Environ(), env...)
	broker0 := b.broker.now()
	p, err := startProc("taxi-stream "+guarantee, cmd, filepath.Join(b.cfg.WorkDir, "taxi-stream-"+name+".log"))
	if err != nil {
		return nil, nil, err
	}
	var profiles sync.WaitGroup
	stopProfiles := make(chan struct{})
	if profile {
		profiles.Add(1)
		go func() {
			defer profiles.Done()
			b.cpuProfiles(addr, stopProfiles)
		}()
	}
	wall, err := waitMetrics(ctx, p, "http://"+addr+"/metrics", b.rep.Rows, b.cfg.Timeout)
	brokerCPU := b.broker.now() - broker0
	close(stopProfiles)
	if err != nil {
		return nil, nil, err
	}
	if profile {
		f := filepath.Join(b.cfg.PprofDir, "taxi-stream-allocs.pprof")
		if err := download("http://"+addr+"/debug/pprof/allocs", f); err != nil {
			b.log.Warn("allocs profile", "err", err)
		} else {
			b.rep.ProfileFiles = append(b.rep.ProfileFiles, f)
		}
	}
	if err := p.terminate(ctx); err != nil {
		return nil, nil, err
	}
	profiles.Wait()
	e := &Engine{Name: "taxi-stream " + guarantee, Units: b.rep.Rows, usage: p.usage(wall), BrokerCPU: brokerCPU}
	c, err := b.readResults(ctx, results)
	return e, c, err
}

// rounds runs the compared taxi-stream runs: cfg.Rounds pairs of exactly_once and
// at_least_once, the guarantee that goes first swapping each round (a single pair
// measured 0.69-0.99 for the same binaries: the broker's state, not the guarantee, made
// most of the difference). rep.EOS and rep.ALO are each guarantee's median run. Every
// run must give the same results; they are returned.
func (b *bench) rounds(ctx context.Context) (cells, error) {
	var want cells
	for i := 1; i <= b.cfg.Rounds; i++ {
		order := []string{"exactly_once", "at_least_once"}
		if i%2 == 0 {
			order[0], order[1] = order[1], order[0]
		}
		for _, guarantee := range order {
			short := map[string]string{"exactly_once": "eos", "at_least_once": "alo"}[guarantee]
			name := fmt.Sprintf("%s-%d", short, i)
			e, c, err := b.taxiStream(ctx, guarantee, name, nil)
			if err != nil {
				return nil, err
			}
			if want == nil {
				if total := c.rides(); total != b.rep.Rows {
					return nil, fmt.Errorf("taxi-stream's results count %d rides, the backlog has %d", total, b.rep.Rows)
				}
				want = c
			} else if err := sameCells(want, c); err != nil {
				return nil, fmt.Errorf("taxi-stream %s (round %d) disagrees with the first compared run: %w", guarantee, i, err)
			}
			if guarantee == "exactly_once" {
				b.rep.EOSRuns = append(b.rep.EOSRuns, e)
			} else {
				b.rep.ALORuns = append(b.rep.ALORuns, e)
			}
		}
	}
	b.rep.EOS, b.rep.ALO = median(b.rep.EOSRuns), median(b.rep.ALORuns)
	b.rep.EOS.Name = "taxi-stream exactly_once (defaults)"
	if len(b.rep.EOSRuns) > 1 {
		b.rep.EOS.Name += fmt.Sprintf(", median of %d runs", len(b.rep.EOSRuns))
		b.rep.ALO.Name += fmt.Sprintf(", median of %d runs", len(b.rep.ALORuns))
	}
	return want, nil
}

// median returns the run with the median rate (the lower middle one of an even count).
func median(runs []*Engine) *Engine {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b *Engine) int { return cmp.Compare(a.PerSecond(), b.PerSecond()) })
	m := *sorted[(len(sorted)-1)/2]
	return &m
}

// abRounds runs taxi-stream (exactly_once) alternately without and with cfg.ABEnv, on
// the same backlog and broker, and checks that both give the same results.
func (b *bench) abRounds(ctx context.Context, want cells) error {
	env := strings.Fields(b.cfg.ABEnv)
	for i := 1; i <= b.cfg.ABRounds; i++ {
		for _, variant := range []bool{false, true} {
			name, e := fmt.Sprintf("ab-base-%d", i), []string(nil)
			if variant {
				name, e = fmt.Sprintf("ab-var-%d", i), env
			}
			eng, got, err := b.taxiStream(ctx, "exactly_once", name, e)
			if err != nil {
				return err
			}
			if err := sameCells(want, got); err != nil {
				return fmt.Errorf("%s: results differ from the first run: %w", name, err)
			}
			eng.Name = fmt.Sprintf("round %d, taxi-stream exactly_once", i)
			if variant {
				eng.Name += " with " + b.cfg.ABEnv
			}
			eng.Note = loadAvg()
			b.rep.AB = append(b.rep.AB, eng)
		}
	}
	return nil
}

// cpuProfiles saves consecutive 2-second CPU profiles until stop (merge them with
// `go tool pprof -top taxi-stream cpu-*.pprof`).
func (b *bench) cpuProfiles(addr string, stop <-chan struct{}) {
	for i := 1; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		f := filepath.Join(b.cfg.PprofDir, fmt.Sprintf("taxi-stream-cpu-%03d.pprof", i))
		if err := download("http://"+addr+"/debug/pprof/profile?seconds=2", f); err != nil {
			os.Remove(f)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond): // not listening yet
			}
			i--
			continue
		}
		b.rep.ProfileFiles = append(b.rep.ProfileFiles, f)
	}
}

// waitMetrics polls taxi-stream's /metrics until every ride is closed, late or dead.
func waitMetrics(ctx context.Context, p *proc, url string, rides int64, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-p.exited:
			return 0, fmt.Errorf("%s exited early: %v%s", p.name, p.waitErr, p.logTail())
		case <-ctx.Done():
			p.kill()
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return 0, fmt.Errorf("%s: not every ride accounted for after %s%s", p.name, timeout, p.logTail())
		}
		// Uncompressed: a scrape every 50 ms, gzipped, cost the measured process ~3 % of
		// its allocations (compress/flate in its allocation profile); Prometheus
		// scrapes every 15 s or so.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := client.Do(req)
		if err != nil {
			continue // not listening yet
		}
		m, err := metricstest.Parse(resp.Body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		covered := m["taxi_stream_rides_closed_total"] + m["taxi_stream_rides_late_total"] + m["taxi_stream_dead_letters_total"]
		if covered >= float64(rides) {
			return time.Since(p.start), nil
		}
	}
}

// readResults reads a results topic with the shipped taxi-results.
func (b *bench) readResults(ctx context.Context, topic string) (cells, error) {
	p, err := startProc("taxi-results", exec.CommandContext(ctx, filepath.Join(b.bin, "taxi-results"),
		"--brokers", b.brokers, "--topic", topic, "--format", "json", "--exit-after-idle", "3s"),
		filepath.Join(b.cfg.WorkDir, topic+".log"))
	if err != nil {
		return nil, err
	}
	if err := p.waitExit(ctx, 5*time.Minute); err != nil {
		return nil, err
	}
	return parseResults(p.lines())
}

// limit runs `taxi-bench-peers limit`: franz-go consume + DecodeRideFacts.
func (b *bench) limit(ctx context.Context) error {
	b.log.Info("running the limit: franz-go consumer + codecs.DecodeRideFacts")
	broker0 := b.broker.now()
	p, err := startProc("limit", exec.CommandContext(ctx, filepath.Join(b.bin, "taxi-bench-peers"), "limit",
		"--brokers", b.brokers, "--topic", b.ridesTopic, "--rides", strconv.FormatInt(b.rep.Rows, 10)),
		filepath.Join(b.cfg.WorkDir, "limit.log"))
	if err != nil {
		return err
	}
	if err := p.waitExit(ctx, b.cfg.Timeout); err != nil {
		return err
	}
	wall := time.Since(p.start)
	brokerCPU := b.broker.now() - broker0
	var res limitResult
	lines := p.lines()
	if len(lines) == 0 || json.Unmarshal([]byte(lines[len(lines)-1]), &res) != nil {
		return fmt.Errorf("limit: no result line%s", p.logTail())
	}
	if res.Rides != b.rep.Rows || res.Invalid != 0 {
		return fmt.Errorf("limit decoded %d rides (%d invalid), want %d", res.Rides, res.Invalid, b.rep.Rows)
	}
	b.rep.Limit = &Engine{Name: "limit: franz-go consumer + codecs.DecodeRideFacts, nothing else", Units: res.Rides, usage: p.usage(wall), BrokerCPU: brokerCPU}
	b.rep.Agreement = append(b.rep.Agreement, fmt.Sprintf("The limit decoded all %d rides (and skipped %d markers).", res.Rides, res.Markers))
	return nil
}

// spark runs the original Spark job and compares its cells with taxi-stream's.
func (b *bench) spark(ctx context.Context, py *pythonEnv, want cells) error {
	job := filepath.Join(b.cfg.WorkDir, "spark_job.py")
	if err := os.WriteFile(job, sparkJob, 0o644); err != nil {
		return err
	}
	out := filepath.Join(b.cfg.WorkDir, "spark-out")
	b.log.Info("running the original Spark Structured Streaming job", "master", "local[2]")
	args := []string{"--master", "local[2]", "--jars", strings.Join(py.jars, ",")}
	if b.cfg.SparkShufflePartitions > 0 {
		args = append(args, "--conf", fmt.Sprintf("spark.sql.shuffle.partitions=%d", b.cfg.SparkShufflePartitions))
	}
	cmd := exec.CommandContext(ctx, filepath.Join(py.venv, "bin", "spark-submit"), append(args, job,
		b.brokers, b.ridesTopic, b.cfg.Zones, out, filepath.Join(b.cfg.WorkDir, "spark-checkpoint"), strconv.FormatInt(b.messages, 10))...)
	cmd.Env = append(envWithout("SPARK_HOME", "PYSPARK_SUBMIT_ARGS"), "PYSPARK_PYTHON="+filepath.Join(py.venv, "bin", "python"),
		"PYSPARK_DRIVER_PYTHON="+filepath.Join(py.venv, "bin", "python"),
		"SPARK_LOCAL_IP=127.0.0.1", "SPARK_LOCAL_DIRS="+filepath.Join(b.cfg.WorkDir, "spark-local"))
	broker0 := b.broker.now()
	p, err := startProc("spark job", cmd, filepath.Join(b.cfg.WorkDir, "spark.log"))
	if err != nil {
		return err
	}
	line, wall, err := p.waitDone(ctx, b.cfg.Timeout)
	if err != nil {
		return err
	}
	brokerCPU := b.broker.now() - broker0
	if err := p.waitExit(ctx, 3*time.Minute); err != nil {
		return err
	}
	var done struct {
		QueryStart float64 `json:"query_start"`
		Done       float64 `json:"done"`
		Messages   int64   `json:"messages"`
		Watermark  string  `json:"watermark"`
		Batches    int     `json:"batches"`
	}
	if err := json.Unmarshal([]byte(line), &done); err != nil {
		return fmt.Errorf("spark job: done line %q: %w", line, err)
	}
	got, err := readSparkCells(out)
	if err != nil {
		return err
	}
	wm, err := time.Parse(time.RFC3339Nano, done.Watermark)
	if err != nil {
		return fmt.Errorf("spark job: watermark %q: %w", done.Watermark, err)
	}
	closed, openRides, openWindows, err := compareSpark(got, want, wm.UnixMilli())
	if err != nil {
		return fmt.Errorf("spark and taxi-stream disagree: %w", err)
	}
	b.rep.sparkOpenRides = int(openRides)
	b.rep.Spark = &Engine{Name: "Spark 3.5.7 Structured Streaming, original job, local[2]", Units: b.rep.Rows,
		usage:          p.usage(wall),
		BrokerCPU:      brokerCPU,
		FromQueryStart: time.Duration((done.Done - done.QueryStart) * float64(time.Second))}
	b.rep.Agreement = append(b.rep.Agreement, fmt.Sprintf(
		"Spark read all %d messages in %d micro-batches and wrote %d results; each equals taxi-stream's cell (count, passenger sum and count, and the sums of distance, tips, fares and totals rounded to cents). "+
			"The backlog arrives as one micro-batch, so the watermark (max dropoff - 10 min = %s) moves only after it and Spark drops no ride as late; "+
			"the %d window(s) ending after that watermark (%d rides) stay open in Spark, because no later ride moves it, while taxi-stream closes them on the replay's final marker.",
		done.Messages, done.Batches, closed, wm.UTC().Format("2006-01-02 15:04"), openWindows, openRides))
	return nil
}

// pyProducer runs the original producer into its own topic.
func (b *bench) pyProducer(ctx context.Context, py *pythonEnv) error {
	script := filepath.Join(b.cfg.WorkDir, "producer.py")
	if err := os.WriteFile(script, pyProducer, 0o644); err != nil {
		return err
	}
	// The tutorial creates its topic beforehand (kafka-topics.sh --create); the broker
	// does not create topics on first use.
	if err := createTopic(b.brokers, b.pyTopic, 3); err != nil {
		return err
	}
	b.log.Info("running the original Python producer", "rows", b.cfg.PyRows)
	broker0 := b.broker.now()
	p, err := startProc("python producer", exec.CommandContext(ctx, filepath.Join(py.venv, "bin", "python"), script,
		b.brokers, b.pyTopic, b.backlog, strconv.Itoa(b.cfg.PyRows)), filepath.Join(b.cfg.WorkDir, "producer.log"))
	if err != nil {
		return err
	}
	if err := p.waitExit(ctx, b.cfg.Timeout); err != nil {
		return err
	}
	wall := time.Since(p.start)
	brokerCPU := b.broker.now() - broker0
	n, err := topicRecords(ctx, b.brokers, b.pyTopic)
	if err != nil {
		return err
	}
	if n != int64(b.cfg.PyRows) {
		return fmt.Errorf("python producer: %d records in %s, want %d", n, b.pyTopic, b.cfg.PyRows)
	}
	b.rep.PyProducer = &Engine{Name: "original Python producer (pandas iterrows + to_json + kafka-python, acks=1, file order)",
		Units: n, usage: p.usage(wall), BrokerCPU: brokerCPU}
	if b.cfg.PyRows != b.cfg.Rows {
		b.rep.PyProducer.Note = fmt.Sprintf("first %d rows", b.cfg.PyRows)
	}
	return nil
}

// run runs a command to completion, its output in the error.
func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if len(out) > 4000 {
			out = out[len(out)-4000:]
		}
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the taxi-stream module (go env GOMOD is empty)")
	}
	return filepath.Dir(mod), nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func download(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.ReadFrom(resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// summaryField reads key=value from taxi-replay's "replay summary" log line.
func summaryField(logPath, key string) string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "replay summary") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, key+"="); ok {
				return v
			}
		}
	}
	return ""
}

// envWithout is the environment without the named variables (pyspark's scripts find their
// own SPARK_HOME; an inherited one would run another Spark).
func envWithout(names ...string) []string {
	var env []string
outer:
	for _, kv := range os.Environ() {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return env
}
