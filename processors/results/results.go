// Package results reads the results topic the way a downstream consumer should
// (read_committed, so only committed results) and renders them: a console table
// per window, like the original Spark job's console sink, or JSON lines. With
// taxi-stream --allowed-lateness a key can be written again after its final
// result: a revision with the new exact totals ("revision" 1, 2, ...; the table
// marks the window as revised).
package results

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v4"
	"golang.org/x/sync/errgroup"

	"github.com/taxi-stream/taxi-stream/processors/aggregate"
)

// FollowConfig configures Follow.
type FollowConfig struct {
	Brokers []string
	Topic   string
	// FromNewest starts at the end of the topic instead of its beginning.
	FromNewest bool
	// Sarama returns a base client config (version, TLS/SASL).
	Sarama func() *sarama.Config
	// TopicWait bounds how long Follow waits for the topic to exist (a reader
	// started before the processor has created it). Default (0) 2 minutes;
	// negative: as long as it takes.
	TopicWait time.Duration
	// Logger reports broker faults while reading (the reader rides through them).
	// Default: discard.
	Logger *slog.Logger
}

// Record is one result as read from the topic.
type Record struct {
	Key    string
	Value  []byte // the JSON as written by the processor
	Result aggregate.Result
}

// Follow reads the results topic (every partition, read_committed) and calls fn
// for each record until ctx ends. A record that does not parse is reported to
// fn with its error and skipped.
//
// Broker faults (a broker restarting, a leader moving) do not end it: Sarama's
// partition consumers reconnect by themselves and report what happened on their
// error channels, which Follow logs. A partition consumer that Sarama closes is
// started again after the last record delivered, so no record is delivered twice
// and none is skipped. Follow returns an error only when it cannot start or
// restart reading a partition.
func Follow(ctx context.Context, cfg FollowConfig, fn func(Record, error)) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sc := cfg.Sarama()
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.MaxWaitTime = 50 * time.Millisecond
	sc.Consumer.Return.Errors = true
	consumer, err := sarama.NewConsumer(cfg.Brokers, sc)
	if err != nil {
		return fmt.Errorf("results: connect to %v: %w", cfg.Brokers, err)
	}
	defer consumer.Close()
	parts, err := waitForTopic(ctx, consumer, cfg.Topic, cmp.Or(cfg.TopicWait, 2*time.Minute))
	if err != nil {
		return err
	}
	start := sarama.OffsetOldest
	if cfg.FromNewest {
		start = sarama.OffsetNewest
	}
	var mu sync.Mutex // fn is called from one goroutine at a time
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		pr := &partitionReader{consumer: consumer, topic: cfg.Topic, partition: p, next: start, log: log}
		g.Go(func() error {
			return pr.run(gctx, func(rec Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				fn(rec, err)
			})
		})
	}
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// partitionReader reads one partition, restarting its Sarama consumer after the last
// record delivered whenever Sarama closes it.
type partitionReader struct {
	consumer  sarama.Consumer
	topic     string
	partition int32
	next      int64 // the offset to start again from
	log       *slog.Logger
}

// restartTimeout bounds how long a closed partition consumer is restarted in vain.
const restartTimeout = 5 * time.Minute

func (r *partitionReader) run(ctx context.Context, fn func(Record, error)) error {
	for {
		pc, err := r.start(ctx)
		if err != nil {
			return err
		}
		closed := r.read(ctx, pc, fn)
		pc.AsyncClose()
		if !closed {
			return nil // ctx ended
		}
		r.log.Warn("results reader: partition consumer closed; starting it again after the last record read",
			"topic", r.topic, "partition", r.partition, "offset", r.next)
	}
}

// start starts the partition consumer at r.next, retrying with back-off while the
// cluster is unavailable.
func (r *partitionReader) start(ctx context.Context) (sarama.PartitionConsumer, error) {
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(200*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second), backoff.WithMaxElapsedTime(restartTimeout))
	return backoff.RetryWithData(func() (sarama.PartitionConsumer, error) {
		pc, err := r.consumer.ConsumePartition(r.topic, r.partition, r.next)
		if errors.Is(err, sarama.ErrOffsetOutOfRange) {
			return nil, backoff.Permanent(err)
		}
		return pc, err
	}, backoff.WithContext(bo, ctx))
}

// read delivers records until ctx ends (false) or Sarama closes the consumer (true).
func (r *partitionReader) read(ctx context.Context, pc sarama.PartitionConsumer, fn func(Record, error)) bool {
	var last string // the error last logged: a fault repeats it on every retry
	for {
		select {
		case <-ctx.Done():
			return false
		case m, ok := <-pc.Messages():
			if !ok {
				return true
			}
			if last != "" {
				r.log.Info("results reader: reading again", "topic", r.topic, "partition", r.partition)
				last = ""
			}
			r.next = m.Offset + 1
			rec := Record{Key: string(m.Key), Value: m.Value}
			fn(rec, rec.Result.UnmarshalJSON(m.Value))
		case err, ok := <-pc.Errors():
			if !ok {
				return true
			}
			if err.Error() != last {
				r.log.Warn("results reader: broker fault; Sarama retries", "topic", r.topic, "partition", r.partition, "err", err)
				last = err.Error()
			}
		}
	}
}

// waitForTopic returns the topic's partitions once it exists, polling its metadata.
func waitForTopic(ctx context.Context, consumer sarama.Consumer, topic string, wait time.Duration) ([]int32, error) {
	start := time.Now()
	for {
		parts, err := consumer.Partitions(topic)
		if err == nil && len(parts) > 0 {
			return parts, nil
		}
		if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) && err != nil {
			return nil, fmt.Errorf("results: topic %s: %w", topic, err)
		}
		if wait >= 0 && time.Since(start) >= wait {
			return nil, fmt.Errorf("results: topic %s does not exist (waited %s; --topic-wait): is the processor running with this --results-topic? %w", topic, wait, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Grouper collects results per window and hands a window over once no result for
// it has arrived for Quiet (a window's results are committed together, but spread
// over the topic's partitions).
type Grouper struct {
	Quiet time.Duration
	mu    sync.Mutex
	open  map[int64]*group
}

type group struct {
	results []aggregate.Result
	last    time.Time
}

// Add adds one result.
func (g *Grouper) Add(r aggregate.Result) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open == nil {
		g.open = map[int64]*group{}
	}
	grp := g.open[r.Window.StartMs]
	if grp == nil {
		grp = &group{}
		g.open[r.Window.StartMs] = grp
	}
	grp.last = time.Now()
	// A revision (taxi-stream --allowed-lateness) that arrives while its window is
	// still gathered replaces the earlier record of its borough.
	for i, old := range grp.results {
		if old.Borough == r.Borough && old.Window == r.Window {
			if r.Revision >= old.Revision {
				grp.results[i] = r
			}
			return
		}
	}
	grp.results = append(grp.results, r)
}

// Ready returns the windows that have been quiet for Quiet (all when force),
// oldest first, each sorted by borough.
func (g *Grouper) Ready(force bool) [][]aggregate.Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	var starts []int64
	for s, grp := range g.open {
		if force || time.Since(grp.last) >= g.Quiet {
			starts = append(starts, s)
		}
	}
	slices.Sort(starts)
	var out [][]aggregate.Result
	for _, s := range starts {
		rs := g.open[s].results
		slices.SortFunc(rs, func(a, b aggregate.Result) int { return strings.Compare(a.Borough, b.Borough) })
		out = append(out, rs)
		delete(g.open, s)
	}
	return out
}

// columns of the console table, as the original job named its aggregates.
var columns = []string{"PickupBorough", "TripCount", "AvgPassengers", "TotalDistance", "AvgDistance",
	"AvgTipAmount", "TotalFare", "AvgFare", "TotalAmount", "AvgTotalAmount"}

func cells(r aggregate.Result) []string {
	avgPass := "null"
	if h, ok := r.AvgPassengerCount(); ok {
		avgPass = money(h)
	}
	return []string{r.Borough, fmt.Sprint(r.Sums.Count), avgPass, money(r.Sums.DistanceHundredths),
		money(r.AvgDistanceHundredths()), money(r.AvgTipCents()), money(r.Sums.FareCents),
		money(r.AvgFareCents()), money(r.Sums.TotalCents), money(r.AvgTotalCents())}
}

func money(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// WriteTable writes one window's results as a console table.
func WriteTable(w io.Writer, rs []aggregate.Result) error {
	if len(rs) == 0 {
		return nil
	}
	rows := [][]string{columns}
	for _, r := range rs {
		rows = append(rows, cells(r))
	}
	widths := make([]int, len(columns))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	sep := func() {
		b.WriteByte('+')
		for _, wd := range widths {
			b.WriteString(strings.Repeat("-", wd))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	win := rs[0].Window
	var revised []string
	for _, r := range rs {
		if r.Revision > 0 {
			revised = append(revised, fmt.Sprintf("%s revision %d", r.Borough, r.Revision))
		}
	}
	title := ""
	if len(revised) > 0 {
		// Late rides within --allowed-lateness updated these boroughs after the
		// window's final result: the rows are the new totals, not increments.
		title = " (revised: " + strings.Join(revised, ", ") + ")"
	}
	fmt.Fprintf(&b, "-------------------------------------------\nWindow: %s - %s%s\n-------------------------------------------\n",
		strings.Replace(fmtWall(win.StartMs), "T", " ", 1), strings.Replace(fmtWall(win.EndMs), "T", " ", 1), title)
	sep()
	for i, row := range rows {
		b.WriteByte('|')
		for j, c := range row {
			if j == 0 {
				fmt.Fprintf(&b, "%-*s|", widths[j], c)
			} else {
				fmt.Fprintf(&b, "%*s|", widths[j], c)
			}
		}
		b.WriteByte('\n')
		if i == 0 {
			sep()
		}
	}
	sep()
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtWall(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05") }
