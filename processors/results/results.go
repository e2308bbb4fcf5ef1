// Package results reads the results topic the way a downstream consumer should
// (read_committed, so only final, committed results) and renders them: a console
// table per window, like the original Spark job's console sink, or JSON lines.
package results

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

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
func Follow(ctx context.Context, cfg FollowConfig, fn func(Record, error)) error {
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
	errs := make(chan error, len(parts))
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(cfg.Topic, p, start)
		if err != nil {
			return fmt.Errorf("results: consume %s/%d: %w", cfg.Topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-pc.Messages():
					rec := Record{Key: string(m.Key), Value: m.Value}
					err := rec.Result.UnmarshalJSON(m.Value)
					mu.Lock()
					fn(rec, err)
					mu.Unlock()
				case err := <-pc.Errors():
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	if errors.Is(ctx.Err(), context.Canceled) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil
	}
	return ctx.Err()
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
	grp.results = append(grp.results, r)
	grp.last = time.Now()
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
	fmt.Fprintf(&b, "-------------------------------------------\nWindow: %s - %s\n-------------------------------------------\n",
		strings.Replace(fmtWall(win.StartMs), "T", " ", 1), strings.Replace(fmtWall(win.EndMs), "T", " ", 1))
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
