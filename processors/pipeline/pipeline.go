// Package pipeline runs taxi-stream's two stages (ingest, windows) in one process:
// it creates the topics the processor owns, builds each stage's goka processor on an
// eos.Runtime, and restarts a stage from its last commit when it fails.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v4"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/ingest"
	"github.com/taxi-stream/taxi-stream/processors/windows"
	"github.com/taxi-stream/taxi-stream/topology"
)

// Options configure a pipeline instance.
type Options struct {
	Brokers  []string
	Topology topology.Config
	// Guarantee is exactly_once (default) or at_least_once.
	Guarantee eos.Mode
	// CommitInterval: Kafka Streams' commit.interval.ms. Default 100ms.
	CommitInterval time.Duration
	// InstanceID names this instance; keep it stable across restarts (it makes the
	// transactional ids, so a restart fences its predecessor at once). Required.
	InstanceID string
	// StateDir holds the windows stage's LevelDB. Required.
	StateDir string
	// Replication is the replication factor of topics the processor creates (-1: broker default).
	Replication int16
	// SessionTimeout: how long the consumer groups wait for a silent instance before
	// its partitions move (session.timeout.ms). Default 10s.
	SessionTimeout time.Duration
	// DynamicMembership turns static group membership off. By default the instance
	// joins with InstanceID as its group.instance.id (KIP-345): restarted within
	// SessionTimeout, it gets its partitions back without a rebalance of the group.
	DynamicMembership bool
	// HotStandby keeps a read_committed copy of every windows state partition this
	// instance does not own (goka's WithHotStandby, Kafka Streams' standby replicas):
	// when an owner fails, its partitions move to instances that need to restore
	// only the last few changelog records.
	HotStandby bool
	// TopicWait bounds how long to wait for the rides and zones topics to exist;
	// then Run fails naming the missing topic. Negative: wait as long as it takes.
	// Default (0) 2 minutes.
	TopicWait time.Duration
	// Sarama returns a base client config (version, TLS/SASL). Default eos.DefaultSaramaConfig.
	Sarama func() *sarama.Config
	Logger *slog.Logger
	// WatermarkPassed, when set, is called when an ingest partition's watermark
	// passes window ends (see ingest.Config.WatermarkPassed); for measurements.
	WatermarkPassed func(partition int32, watermarkMs int64)
}

func (o *Options) validate() error {
	if len(o.Brokers) == 0 {
		return errors.New("pipeline: no brokers configured")
	}
	if o.InstanceID == "" {
		return errors.New("pipeline: instance id is required")
	}
	if o.StateDir == "" {
		return errors.New("pipeline: state dir is required")
	}
	if o.Guarantee == "" {
		o.Guarantee = eos.ExactlyOnce
	}
	if o.CommitInterval <= 0 {
		o.CommitInterval = 100 * time.Millisecond
	}
	if o.Replication == 0 {
		o.Replication = -1
	}
	if o.TopicWait == 0 {
		o.TopicWait = 2 * time.Minute
	}
	if o.Sarama == nil {
		o.Sarama = eos.DefaultSaramaConfig
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Pipeline is a running instance; its counters feed metrics and tests.
type Pipeline struct {
	opts Options
	cfg  topology.Config

	mu        sync.Mutex
	ingest    *ingest.Stage
	windows   *windows.Stage
	ingestRT  *eos.Runtime
	windowsRT *eos.Runtime
	ready     chan struct{}
	once      sync.Once

	// Observability (stats.go): the stages' goka processors, totals of replaced
	// stages, and each stage's restart record.
	ingestProc, windowsProc *goka.Processor
	zones                   *zoneTable       // the ingest stage's zone lookup, owned by Run
	topo                    *topology.Config // p.cfg once Run has set it (read under mu)
	carried                 Stats
	health                  [2]stageHealth
	stopping                atomic.Bool
}

// New validates the options.
func New(opts Options) (*Pipeline, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Pipeline{opts: opts, ready: make(chan struct{})}, nil
}

// Config returns the topology config in force (after Run has read the partition counts).
func (p *Pipeline) Config() topology.Config { return p.cfg }

// Ready is closed once both stages have started their first generation.
func (p *Pipeline) Ready() <-chan struct{} { return p.ready }

// Stages returns the current stage objects (nil before the first start).
func (p *Pipeline) Stages() (*ingest.Stage, *windows.Stage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ingest, p.windows
}

// Runtimes returns the current commit runtimes of the two stages (nil before start).
func (p *Pipeline) Runtimes() (ingest, windows *eos.Runtime) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ingestRT, p.windowsRT
}

// Run runs both stages until ctx ends. A stage that fails is rebuilt and resumes
// from its last commit, with exponential back-off.
func (p *Pipeline) Run(ctx context.Context) error {
	admin, err := sarama.NewClusterAdmin(p.opts.Brokers, p.opts.Sarama())
	if err != nil {
		return fmt.Errorf("connect to kafka %v: %w", p.opts.Brokers, err)
	}
	cfg := p.opts.Topology.WithDefaults()
	cfg.IngestPartitions, err = p.waitForTopic(ctx, admin, cfg.Topics.Rides)
	if err == nil {
		_, err = p.waitForTopic(ctx, admin, cfg.Topics.Zones)
	}
	if err != nil {
		admin.Close()
		return err
	}
	cfg = topology.Config{
		Topics: cfg.Topics, App: cfg.App, Window: cfg.Window, Watermark: cfg.Watermark,
		EventTimeField: cfg.EventTimeField, IngestPartitions: cfg.IngestPartitions,
		AllowedLateness: cfg.AllowedLateness, IdleTimeout: cfg.IdleTimeout, CloseOnIdle: cfg.CloseOnIdle,
		WindowsPartitions: p.opts.Topology.WindowsPartitions,
	}.WithDefaults()
	if err := cfg.Validate(); err != nil {
		admin.Close()
		return err
	}
	p.setConfig(cfg)
	admin, err = p.ensureTopics(ctx, admin, cfg)
	admin.Close()
	if err != nil {
		return err
	}
	p.opts.Logger.Info("pipeline starting", "instance", p.opts.InstanceID, "guarantee", p.opts.Guarantee,
		"rides_partitions", cfg.IngestPartitions, "windows_partitions", cfg.WindowsPartitions,
		"window", cfg.Window.Size.String(), "slide", cfg.Window.Slide.String(), "delay", cfg.Watermark.Delay.String())

	defer context.AfterFunc(ctx, func() { p.stopping.Store(true) })()
	zones, err := p.startZones(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	p.zones = zones
	// A zones view that ends by itself (it reconnects after broker faults, so only
	// an unrecoverable error ends it) stops the pipeline: the ingest stage cannot
	// join without it.
	stagesCtx, stopStages := context.WithCancelCause(ctx)
	defer stopStages(nil)
	viewFailed := make(chan error, 1)
	go func() {
		select {
		case err := <-zones.done:
			zones.done <- err // for zones.stop
			if err == nil {
				err = errors.New("stopped")
			}
			err = fmt.Errorf("zones view of %s: %w", cfg.Topics.Zones, err)
			viewFailed <- err
			stopStages(err)
		case <-stagesCtx.Done():
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	var started sync.WaitGroup
	started.Add(2)
	for i, stage := range []func(context.Context, func()) error{p.runIngest, p.runWindows} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			errs <- p.supervise(stagesCtx, &p.health[i], func(ctx context.Context) error {
				return stage(ctx, func() { once.Do(started.Done) })
			})
		}()
	}
	go func() { started.Wait(); p.once.Do(func() { close(p.ready) }) }()
	wg.Wait()
	close(errs)
	// Every ingest processor has returned: no callback can read the zones any more.
	stopStages(nil)
	if err := zones.stop(); err != nil && ctx.Err() == nil {
		p.opts.Logger.Warn("stopping the zones view", "err", err)
	}
	select {
	case err := <-viewFailed:
		return err
	default:
	}
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *Pipeline) waitForTopic(ctx context.Context, admin sarama.ClusterAdmin, topic string) (int, error) {
	start := time.Now()
	var lastLog time.Time
	for {
		n, err := topology.Partitions(admin, topic)
		if err == nil {
			return n, nil
		}
		waited := time.Since(start)
		if p.opts.TopicWait > 0 && waited >= p.opts.TopicWait {
			return 0, fmt.Errorf("the input topic %s does not exist (waited %s; --topic-wait): create it with the replay producer (taxi-replay): %w", topic, p.opts.TopicWait, err)
		}
		if time.Since(lastLog) >= 10*time.Second {
			limit := "until it exists"
			if p.opts.TopicWait > 0 {
				limit = (p.opts.TopicWait - waited).Round(time.Second).String() + " more"
			}
			p.opts.Logger.Warn("waiting for the input topic", "topic", topic, "waited", waited.Round(time.Second), "waiting", limit)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// supervise runs run until ctx ends, restarting it after failures.
func (p *Pipeline) supervise(ctx context.Context, h *stageHealth, run func(context.Context) error) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	bo.MaxInterval = 10 * time.Second
	bo.MaxElapsedTime = 0
	for {
		start := time.Now()
		h.started(start)
		err := run(ctx)
		if ctx.Err() != nil {
			h.stopped()
			return nil
		}
		if time.Since(start) > time.Minute {
			bo.Reset()
		}
		h.failed(err, time.Since(start) > time.Minute)
		wait := bo.NextBackOff()
		p.opts.Logger.Error("stage stopped; restarting from its last commit", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// committer forwards early-commit requests to the runtime built after the stage.
type committer struct{ rt *eos.Runtime }

func (c *committer) RequestCommit() {
	if c.rt != nil {
		c.rt.RequestCommit()
	}
}

// Position and LogEnd serve the ingest stage's idle detection (ingest.Progress).
func (c *committer) Position(topic string, partition int32) (eos.Position, bool) {
	if c.rt == nil {
		return eos.Position{}, false
	}
	return c.rt.Position(topic, partition)
}

func (c *committer) LogEnd(topic string, partition int32, timeout time.Duration) (int64, error) {
	if c.rt == nil {
		return -1, errors.New("pipeline: the ingest stage has no runtime yet")
	}
	return c.rt.LogEnd(topic, partition, timeout)
}

// readAheadBudget is how many input records an instance buffers ahead of its callbacks,
// spread over the input partitions (eos.Config.ReadAhead): ~10 MB of rides. With
// Sarama's 256 per partition, each 256 KiB fetch (~5,000 zstd-compressed rides) was
// processed before the next one was sent. make kafka-start broker, 2M-ride backlog,
// exactly-once, alternating: 206k-240k rides/s at 256, 278k-322k at 3072 per partition
// (3 partitions), peak RSS 77-78 -> 85-90 MiB; 4096 gave the same speed at 92-97 MiB.
const readAheadBudget = 9216

func readAhead(partitions int) int {
	return max(256, readAheadBudget/max(1, partitions))
}

func (p *Pipeline) runtime(group goka.Group, partitions int, hooks eos.Hooks) (*eos.Runtime, error) {
	groupInstanceID := p.opts.InstanceID
	if p.opts.DynamicMembership {
		groupInstanceID = ""
	}
	return eos.New(eos.Config{
		Brokers:         p.opts.Brokers,
		Group:           string(group),
		Mode:            p.opts.Guarantee,
		CommitInterval:  p.opts.CommitInterval,
		TransactionalID: string(group) + "-" + p.opts.InstanceID,
		GroupInstanceID: groupInstanceID,
		SessionTimeout:  p.opts.SessionTimeout,
		Sarama:          p.opts.Sarama,
		Logger:          p.opts.Logger, // eos names the group in every line
		// The replay's provenance headers (for --resume and the oracle tests) are
		// never read here; late and dead records get their own headers.
		DropHeaders: []string{codecs.HeaderSeq, codecs.HeaderSource, codecs.HeaderRow},
		ReadAhead:   readAhead(partitions),
	}, hooks)
}

func (p *Pipeline) runIngest(ctx context.Context, started func()) error {
	c := &committer{}
	stage, err := ingest.New(ingest.Config{
		RidesTopic:        p.cfg.Topics.Rides,
		App:               p.cfg.App,
		Zones:             p.zones,
		LateTopic:         goka.Stream(p.cfg.Topics.Late),
		DeadTopic:         goka.Stream(p.cfg.Topics.Dead),
		WindowsTopic:      p.cfg.Topics.Windows,
		WindowsPartitions: p.cfg.WindowsPartitions,
		Window:            p.cfg.Window,
		Watermark:         p.cfg.Watermark,
		EventTimeField:    p.cfg.EventTimeField,
		Logger:            p.opts.Logger.With("stage", "ingest"),
		WatermarkPassed:   p.opts.WatermarkPassed,
		AllowedLateness:   p.cfg.AllowedLateness,
		IdleTimeout:       p.cfg.IdleTimeout,
		CloseOnIdle:       p.cfg.CloseOnIdle,
		Progress:          c,
		OtherWatermarks: func() map[int32]int64 {
			if _, w := p.Stages(); w != nil {
				return w.Watermarks()
			}
			return nil
		},
	}, c)
	if err != nil {
		return err
	}
	hooks := stage.Hooks()
	assigned := hooks.Assigned
	hooks.Assigned = func(ctx context.Context, claims map[string][]int32, md map[eos.TopicPartition]string) error {
		err := assigned(ctx, claims, md)
		started()
		return err
	}
	rt, err := p.runtime(p.cfg.IngestGroup(), p.cfg.IngestPartitions, hooks)
	if err != nil {
		return err
	}
	c.rt = rt
	proc, err := goka.NewProcessor(p.opts.Brokers, topology.IngestGraph(p.cfg, rt.Wrap(stage.Process)),
		append(rt.ProcessorOptions(),
			goka.WithStorageBuilder(storage.MemoryBuilder()), // only the small zones lookup
			// goka's default skips (and commits) messages with a nil value: an empty
			// message would vanish. Process them: they go to the dead-letter topic.
			goka.WithNilHandling(goka.NilProcess),
			goka.WithClientID("taxi-stream-ingest-"+p.opts.InstanceID),
			goka.WithLogger(gokaLogger{p.opts.Logger.With("stage", "ingest")}),
		)...)
	if err != nil {
		_ = rt.Discard()
		return fmt.Errorf("ingest processor: %w", err)
	}
	p.setIngest(stage, rt, proc)
	return rt.Run(ctx, proc)
}

// cleanMarker in the windows state dir says the LevelDB holds exactly what the last
// committed transaction left: written after a clean stop, removed at start. Without
// it the LevelDB may hold writes of an aborted transaction and is rebuilt from the
// committed changelog (Kafka Streams does the same with its .checkpoint file).
const cleanMarker = "CLEAN"

func (p *Pipeline) runWindows(ctx context.Context, started func()) error {
	c := &committer{}
	stage, err := windows.New(windows.Config{
		ResultsTopic:     goka.Stream(p.cfg.Topics.Results),
		IngestPartitions: p.cfg.IngestPartitions,
		App:              p.cfg.App,
		AllowedLateness:  p.cfg.AllowedLateness,
		Logger:           p.opts.Logger.With("stage", "windows"),
	}, c)
	if err != nil {
		return err
	}
	dir := filepath.Join(p.opts.StateDir, string(p.cfg.WindowsGroup()))
	if err := prepareStateDir(dir, p.opts.Logger); err != nil {
		return err
	}
	rt, err := p.runtime(p.cfg.WindowsGroup(), p.cfg.WindowsPartitions, eos.Hooks{
		Assigned: func(context.Context, map[string][]int32, map[eos.TopicPartition]string) error {
			started()
			return nil
		},
		Revoked: stage.Forget,
	})
	if err != nil {
		return err
	}
	c.rt = rt
	opts := append(rt.ProcessorOptions(),
		goka.WithStorageBuilder(storage.BuilderWithOptions(dir, levelDBOptions())),
		goka.WithClientID("taxi-stream-windows-"+p.opts.InstanceID),
		goka.WithLogger(gokaLogger{p.opts.Logger.With("stage", "windows")}),
	)
	if p.opts.HotStandby {
		// Standby copies read the changelog read_committed (the runtime's consumer
		// builder), so they hold committed state only, like the owner's restore.
		opts = append(opts, goka.WithHotStandby())
	}
	proc, err := goka.NewProcessor(p.opts.Brokers, topology.WindowsGraph(p.cfg, rt.Wrap(stage.Process)), opts...)
	if err != nil {
		_ = rt.Discard()
		return fmt.Errorf("windows processor: %w", err)
	}
	p.setWindows(stage, rt, proc)
	runErr := rt.Run(ctx, proc)
	if runErr == nil {
		// The last generation ended with a successful commit: the LevelDB is exact.
		if err := os.WriteFile(filepath.Join(dir, cleanMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
			p.opts.Logger.Warn("cannot mark the state dir clean; the next start restores from the changelog", "dir", dir, "err", err)
		}
	}
	return runErr
}

// levelDBOptions size LevelDB for the windows state: one small value per partition,
// rewritten at most once per commit. LevelDB's defaults (a 4 MiB write buffer and an
// 8 MiB block cache per partition) were a third of the processor's live heap.
func levelDBOptions() *opt.Options {
	return &opt.Options{WriteBuffer: 256 << 10, BlockCacheCapacity: 256 << 10}
}

// prepareStateDir keeps the LevelDB only after a clean stop.
func prepareStateDir(dir string, log *slog.Logger) error {
	marker := filepath.Join(dir, cleanMarker)
	if _, err := os.Stat(marker); err == nil {
		if err := os.Remove(marker); err != nil {
			return fmt.Errorf("state dir %s: %w", dir, err)
		}
		log.Info("windows state: clean local state kept", "dir", dir)
		return nil
	}
	if _, err := os.Stat(dir); err == nil {
		log.Info("windows state: no clean-stop marker, rebuilding from the changelog", "dir", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear state dir %s: %w", dir, err)
	}
	return os.MkdirAll(dir, 0o755)
}

// gokaLogger sends goka's log lines to slog at debug level (goka is chatty).
type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(v ...any)                 { g.l.Debug(fmt.Sprint(v...)) }
func (g gokaLogger) Println(v ...any)               { g.l.Debug(fmt.Sprint(v...)) }
func (g gokaLogger) Printf(format string, v ...any) { g.l.Debug(fmt.Sprintf(format, v...)) }
