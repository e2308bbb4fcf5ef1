package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"

	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/topology"
)

// snapshot is the committed windows state over every partition.
type snapshot struct {
	// IngestPartitions is the partition count of the rides topic.
	IngestPartitions int
	// Watermarks holds, per ingest partition, the latest watermark any windows
	// partition has received from it (every partition receives every watermark).
	Watermarks map[int32]int64
	// Open are the open (window, borough) cells, sorted by window start, end and
	// borough. A window is split over partitions by its start, so cells never repeat.
	Open []aggregate.Entry
}

// MinWatermark is the watermark that closes windows: the minimum over every
// ingest partition, ok false while one of them has none.
func (s snapshot) MinWatermark() (ms int64, ok bool) {
	if s.IngestPartitions <= 0 {
		return 0, false
	}
	for p := range int32(s.IngestPartitions) {
		wm, has := s.Watermarks[p]
		if !has {
			return 0, false
		}
		if !ok || wm < ms {
			ms, ok = wm, true
		}
	}
	return ms, ok
}

// stateReader reads the committed windows state.
type stateReader interface {
	// Recovered reports whether the state is complete (the view has caught up).
	Recovered() bool
	Snapshot() (snapshot, error)
}

// errNotRecovered is returned by Snapshot before the view has caught up.
var errNotRecovered = errors.New("the query view of the windows state is still recovering")

// mergeStates decodes the group table's values (one aggregate.State per windows
// partition) into a snapshot.
func mergeStates(values [][]byte, ingestPartitions int) (snapshot, error) {
	snap := snapshot{IngestPartitions: ingestPartitions, Watermarks: map[int32]int64{}}
	for _, raw := range values {
		if len(raw) == 0 {
			continue
		}
		var st aggregate.State
		if err := st.UnmarshalBinary(raw); err != nil {
			return snapshot{}, fmt.Errorf("windows state: %w", err)
		}
		snap.Open = append(snap.Open, st.OpenEntries()...)
		for p := range int32(ingestPartitions) {
			if wm, ok := st.Watermark(p); ok {
				if old, seen := snap.Watermarks[p]; !seen || wm > old {
					snap.Watermarks[p] = wm
				}
			}
		}
	}
	slices.SortFunc(snap.Open, func(a, b aggregate.Entry) int {
		switch {
		case a.Window.StartMs != b.Window.StartMs:
			return cmpInt(a.Window.StartMs, b.Window.StartMs)
		case a.Window.EndMs != b.Window.EndMs:
			return cmpInt(a.Window.EndMs, b.Window.EndMs)
		case a.Borough < b.Borough:
			return -1
		case a.Borough > b.Borough:
			return 1
		}
		return 0
	})
	return snap, nil
}

func cmpInt(a, b int64) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// stateView runs a goka View of the windows stage's group table. It reads
// read_committed (a view reads uncommitted data by default: a crashed instance's
// aborted writes would show) and finds the table's end with the eos topic
// manager, as the processor does.
type stateView struct {
	kafkaConfig func(clientID string) *sarama.Config
	brokers     []string
	topo        topology.Config
	clientID    string
	log         *slog.Logger

	mu               sync.RWMutex // readers hold it shared; the runner closes the view exclusively
	view             *goka.View
	ingestPartitions int
	caughtUp         bool // every partition of view has caught up once
}

func newStateView(kafkaConfig func(string) *sarama.Config, brokers []string, topo topology.Config, instance string, log *slog.Logger) *stateView {
	return &stateView{kafkaConfig: kafkaConfig, brokers: brokers, topo: topo,
		clientID: "taxi-stream-view-" + instance, log: log.With("view", string(goka.GroupTable(topo.WindowsGroup())))}
}

// run waits for the topics, then runs the view until ctx ends; errors are logged
// and retried.
func (v *stateView) run(ctx context.Context) {
	wait := 500 * time.Millisecond
	for ctx.Err() == nil {
		err := v.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		v.log.Warn("query view stopped; retrying", "err", err, "in", wait)
		if !backoff(ctx, &wait, 10*time.Second) {
			return
		}
	}
}

func (v *stateView) runOnce(ctx context.Context) error {
	table := goka.GroupTable(v.topo.WindowsGroup())
	client, err := unlessDone(ctx, func() (sarama.Client, error) {
		return sarama.NewClient(v.brokers, v.kafkaConfig(v.clientID))
	}, closeClient)
	if err != nil {
		return fmt.Errorf("connect to kafka %v: %w", v.brokers, err)
	}
	ingestParts, err := waitPartitions(ctx, client, v.topo.Topics.Rides, v.log)
	if err == nil {
		_, err = waitPartitions(ctx, client, string(table), v.log)
	}
	client.Close()
	if err != nil {
		return err
	}
	built, err := unlessDone(ctx, func() (*builtView, error) { return v.newView(table) }, (*builtView).discard)
	if err != nil {
		return fmt.Errorf("query view: %w", err)
	}
	view := built.view
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := view.Run(runCtx)
		built.clients.close()
		done <- err
	}()
	v.mu.Lock()
	v.view, v.ingestPartitions, v.caughtUp = view, ingestParts, false
	v.mu.Unlock()
	v.log.Info("query view started", "ingest_partitions", ingestParts)

	// goka's partitions pass through "connecting" right after their recovery (and
	// on every reconnect), so view.Recovered() flickers. Once every partition has
	// caught up, the view holds the complete table and keeps serving it.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if view.Recovered() {
				v.mu.Lock()
				v.caughtUp = true
				v.mu.Unlock()
				v.log.Info("query view caught up")
				tick.Stop()
			}
		case <-ctx.Done():
			// Take the view away from readers before it closes its partitions.
			v.mu.Lock()
			v.view = nil
			cancel()
			err = <-done
			v.mu.Unlock()
			return err
		case err = <-done:
			cancel()
			v.mu.Lock()
			v.view = nil
			v.mu.Unlock()
			if err == nil {
				err = errors.New("view stopped")
			}
			return err
		}
	}
}

// builtView is a view and the Kafka clients built for it: goka's View never
// closes its consumer and topic manager, so they are closed here after Run.
type builtView struct {
	view    *goka.View
	clients *closers
}

func (v *stateView) newView(table goka.Table) (*builtView, error) {
	clients := &closers{}
	view, err := goka.NewView(v.brokers, table, new(codec.Bytes),
		goka.WithViewClientID(v.clientID),
		goka.WithViewConsumerSaramaBuilder(func(brokers []string, clientID string) (sarama.Consumer, error) {
			c, err := sarama.NewConsumer(brokers, eos.TopicScoped(v.kafkaConfig(clientID)))
			clients.add(c, err)
			return c, err
		}),
		goka.WithViewTopicManagerBuilder(func(brokers []string) (goka.TopicManager, error) {
			tm, err := eos.NewTopicManager(brokers, v.kafkaConfig(v.clientID), "", 0) // a view may read behind open transactions
			clients.add(tm, err)
			return tm, err
		}),
		// One small value per windows partition: memory is enough, and a restart
		// reads the compacted changelog again.
		goka.WithViewStorageBuilder(storage.MemoryBuilder()),
		goka.WithViewAutoReconnect(),
		goka.WithViewLogger(gokaLogger{v.log}),
	)
	if err != nil {
		clients.close()
		return nil, err
	}
	return &builtView{view: view, clients: clients}, nil
}

// discard releases a view that was never run: Run with an ended context closes
// its partitions.
func (b *builtView) discard() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = b.view.Run(ctx)
	b.clients.close()
}

func closeClient(c sarama.Client) { _ = c.Close() }

// closers collects what must be closed (a second Close of a sarama client only
// returns an error).
type closers struct {
	mu   sync.Mutex
	list []io.Closer
}

func (c *closers) add(cl io.Closer, err error) {
	if err != nil || cl == nil {
		return
	}
	c.mu.Lock()
	c.list = append(c.list, cl)
	c.mu.Unlock()
}

func (c *closers) close() {
	c.mu.Lock()
	list := c.list
	c.list = nil
	c.mu.Unlock()
	for _, cl := range list {
		_ = cl.Close()
	}
}

// Recovered reports whether the view has caught up with the committed table.
func (v *stateView) Recovered() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.view != nil && v.caughtUp
}

// Snapshot reads every partition's committed state.
func (v *stateView) Snapshot() (snapshot, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.view == nil || !v.caughtUp {
		return snapshot{}, errNotRecovered
	}
	it, err := v.view.Iterator()
	if err != nil {
		return snapshot{}, fmt.Errorf("read the windows state: %w", err)
	}
	defer it.Release()
	var values [][]byte
	for it.Next() {
		val, err := it.Value()
		if err != nil {
			return snapshot{}, fmt.Errorf("read the windows state, key %s: %w", it.Key(), err)
		}
		if raw, ok := val.([]byte); ok {
			// The iterator may reuse the bytes after Next.
			values = append(values, slices.Clone(raw))
		}
	}
	if err := it.Err(); err != nil {
		return snapshot{}, fmt.Errorf("read the windows state: %w", err)
	}
	return mergeStates(values, v.ingestPartitions)
}

// waitPartitions waits until topic exists and returns its partition count.
func waitPartitions(ctx context.Context, client sarama.Client, topic string, log *slog.Logger) (int, error) {
	logged := false
	for {
		// Metadata requests take no context: do not wait for one when ctx ends.
		parts, err := unlessDone(ctx, func() ([]int32, error) {
			if err := client.RefreshMetadata(topic); err != nil {
				return nil, err
			}
			return client.Partitions(topic)
		}, nil)
		if err == nil && len(parts) > 0 {
			return len(parts), nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if !logged {
			log.Info("waiting for topic", "topic", topic, "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// gokaLogger sends goka's log lines to slog at debug level.
type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(v ...any)                 { g.l.Debug(fmt.Sprint(v...)) }
func (g gokaLogger) Println(v ...any)               { g.l.Debug(fmt.Sprint(v...)) }
func (g gokaLogger) Printf(format string, v ...any) { g.l.Debug(fmt.Sprintf(format, v...)) }
