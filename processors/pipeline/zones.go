package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"

	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/ingest"
)

// zoneTable is the ingest stage's zone lookup: a goka view of the zones topic that
// the pipeline owns, started before the first ingest processor and stopped only
// after the last one has returned.
//
// It is not a goka Lookup edge of the ingest processor on purpose. goka (v1.1.17)
// closes a processor's lookup views as soon as the processor's internal context
// ends (processor.go: one errgroup for the views and the consumer group), while its
// partition processors may still be running callbacks that read them: a callback
// then raced with View.close (the race detector saw View.hash against View.close at
// a stop mid-stream) or failed with "View is either not running...". Whichever way
// the processor stops (a clean stop, a failed commit, a consumer-group error), a
// view whose lifetime encloses the processor's cannot close under a callback. It
// also survives the restart of a failed ingest stage, which then need not reload it.
type zoneTable struct {
	view   *goka.View
	done   chan error // View.Run's result
	cancel context.CancelFunc

	mu      sync.Mutex
	closers []func() error // Kafka clients built for the view (goka's View does not close them)

	version atomic.Uint64 // moves after every record the view applies (ingest.VersionedZoneTable)
}

// startZones builds the view, runs it until stop, and waits until it has read the
// whole topic (or ctx ends or the view fails).
func (p *Pipeline) startZones(ctx context.Context) (*zoneTable, error) {
	// A node that went down as the process started fails the view's first steps
	// (goka's topic manager checks the first broker of the metadata, which lists a
	// dead node until the cluster fences it): retry, as ensureTopics does. The
	// topic exists (waitForTopic), so what fails here is the cluster settling.
	var z *zoneTable
	err := p.retryWhileSettling(ctx, "cannot read the zone table yet; retrying", func(bool) error {
		var err error
		z, err = p.startZonesOnce(ctx)
		return err
	})
	return z, err
}

// startZonesOnce starts the view and waits until it has read the table.
func (p *Pipeline) startZonesOnce(ctx context.Context) (*zoneTable, error) {
	z := &zoneTable{done: make(chan error, 1)}
	consumerCfg := func(clientID string) *sarama.Config {
		c := p.opts.Sarama()
		if clientID != "" {
			c.ClientID = clientID
		}
		c.Consumer.IsolationLevel = sarama.ReadCommitted
		c.Consumer.Offsets.Initial = sarama.OffsetOldest
		c.Consumer.MaxWaitTime = 250 * time.Millisecond
		c.Consumer.Return.Errors = true
		return c
	}
	view, err := goka.NewView(p.opts.Brokers, goka.Table(p.cfg.Topics.Zones), new(codec.Bytes),
		goka.WithViewStorageBuilder(storage.MemoryBuilder()),
		goka.WithViewCallback(func(ctx goka.UpdateContext, s storage.Storage, key string, value []byte) error {
			err := goka.DefaultUpdate(ctx, s, key, value)
			z.version.Add(1) // after the storage holds the record
			return err
		}),
		goka.WithViewClientID("taxi-stream-zones-"+p.opts.InstanceID),
		goka.WithViewLogger(gokaLogger{p.opts.Logger.With("view", p.cfg.Topics.Zones)}),
		// A broker restart or a lost connection reconnects with back-off instead of
		// ending the view (Get keeps serving the table read so far meanwhile).
		goka.WithViewAutoReconnect(),
		goka.WithViewConsumerSaramaBuilder(func(brokers []string, clientID string) (sarama.Consumer, error) {
			c, err := sarama.NewConsumer(brokers, eos.TopicScoped(consumerCfg(clientID)))
			if err != nil {
				return nil, err
			}
			z.track(c.Close)
			return c, nil
		}),
		goka.WithViewTopicManagerBuilder(func(brokers []string) (goka.TopicManager, error) {
			tm, err := eos.NewTopicManager(brokers, consumerCfg(""), "", 0)
			if err != nil {
				return nil, err
			}
			z.track(tm.Close)
			return tm, nil
		}),
	)
	if err != nil {
		z.closeClients()
		return nil, fmt.Errorf("zones view of %s: %w", p.cfg.Topics.Zones, err)
	}
	z.view = view
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() { z.done <- view.Run(runCtx) }()
	stopOnErr := func(err error) (*zoneTable, error) {
		cancel()
		if rerr := <-z.done; rerr != nil && err == nil {
			err = rerr
		}
		z.closeClients()
		return nil, err
	}
	select {
	case <-view.WaitRunning():
	case err := <-z.done:
		z.done <- err // for stopOnErr
		if err == nil {
			err = errors.New("stopped before it was running")
		}
		return stopOnErr(fmt.Errorf("zones view of %s: %w", p.cfg.Topics.Zones, err))
	case <-ctx.Done():
		return stopOnErr(ctx.Err())
	}
	z.cancel = cancel
	return z, nil
}

// Get returns the raw zone record of a LocationID (nil when none).
func (z *zoneTable) Get(key string) ([]byte, error) {
	v, err := z.view.Get(key)
	if err != nil {
		return nil, err
	}
	raw, _ := v.([]byte)
	return raw, nil
}

var _ ingest.VersionedZoneTable = (*zoneTable)(nil)

// Version implements ingest.VersionedZoneTable.
func (z *zoneTable) Version() uint64 { return z.version.Load() }

func (z *zoneTable) track(close func() error) {
	z.mu.Lock()
	z.closers = append(z.closers, close)
	z.mu.Unlock()
}

func (z *zoneTable) closeClients() error {
	z.mu.Lock()
	closers := z.closers
	z.closers = nil
	z.mu.Unlock()
	var errs []error
	for _, c := range closers {
		if err := c(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stop ends the view and closes its clients. Call it only after every ingest
// processor that reads the table has returned.
func (z *zoneTable) stop() error {
	z.cancel()
	err := <-z.done
	if cerr := z.closeClients(); err == nil {
		err = cerr
	}
	return err
}
