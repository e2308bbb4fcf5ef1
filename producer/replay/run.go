package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/order"
	"github.com/taxi-stream/taxi-stream/producer/replay/kafkaio"
	"github.com/taxi-stream/taxi-stream/producer/replay/source"
	"github.com/taxi-stream/taxi-stream/producer/tlc"
)

// ErrInterrupted is wrapped by Run's error when its context ended (Ctrl-C) before the
// replay was complete. What was queued by then has been sent and acknowledged; the same
// command with Resume continues.
var ErrInterrupted = errors.New("replay interrupted")

// readBatch is how many rows are taken from the order iterator at a time.
const readBatch = 4096

// Summary reports a replay.
type Summary struct {
	Inputs     int   // trip files
	TotalRows  int64 // rides in the inputs (-1: unknown, a CSV in file order without verify)
	Partitions int   // partitions of the topic
	Created    bool  // the topic was created by this run

	Rows    int64 // rides written by this run (acknowledged)
	Skipped int64 // rides already in the topic (resume)
	Markers int64 // marker records written (one per partition and position)
	Bytes   int64 // uncompressed key + value + header bytes written
	Batches int64 // record batches (produce requests)
	// Retries counts the resends of batches through broker faults; Paused is how long
	// they held the replay up (wall-clock time with at least one partition failing).
	Retries int64
	Paused  time.Duration

	Elapsed     time.Duration // the whole run: inputs, sort, sending
	SendElapsed time.Duration // from the first send to the last acknowledgement
	Interrupted bool
}

// RowsPerSecond is Rows over SendElapsed.
func (s Summary) RowsPerSecond() float64 {
	if s.SendElapsed <= 0 {
		return 0
	}
	return float64(s.Rows) / s.SendElapsed.Seconds()
}

// Run replays the configured inputs into the rides topic (see the package doc) and returns
// what it did. On Ctrl-C (ctx done) it stops reading, sends what is queued, waits for the
// acknowledgements and returns an error wrapping ErrInterrupted.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	start := time.Now()
	cfg, err := cfg.validated()
	if err != nil {
		return Summary{}, err
	}
	r := &runner{cfg: cfg, log: cfg.Logger}
	sum, err := r.run(ctx)
	sum.Elapsed = time.Since(start)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ErrInterrupted) {
		err = fmt.Errorf("%w before sending: %w", ErrInterrupted, err)
	}
	if err == nil || errors.Is(err, ErrInterrupted) {
		sum.Interrupted = err != nil
		r.log.Info("replay summary", "rows", sum.Rows, "skipped", sum.Skipped, "markers", sum.Markers,
			"bytes", sum.Bytes, "batches", sum.Batches, "seconds", fmt.Sprintf("%.3f", sum.Elapsed.Seconds()),
			"send_seconds", fmt.Sprintf("%.3f", sum.SendElapsed.Seconds()),
			"rows_per_s", int64(sum.RowsPerSecond()), "retries", sum.Retries,
			"paused", sum.Paused.Round(time.Millisecond), "interrupted", sum.Interrupted)
	}
	return sum, err
}

type runner struct {
	cfg    Config
	log    *slog.Logger
	inputs []source.Input
	names  []string
	rows   []atomic.Int64 // rows read per input by the last full pass
}

func (r *runner) run(ctx context.Context) (Summary, error) {
	cfg := r.cfg
	var sum Summary

	// 1. Inputs: resolve, then check every file's footer and schema (CSV: header) before
	//    anything touches Kafka.
	res := source.NewResolver(cfg.HDFS)
	defer res.Close()
	inputs, err := res.Resolve(ctx, cfg.Inputs)
	if err != nil {
		return sum, err
	}
	r.inputs = inputs
	sum.Inputs = len(inputs)
	for _, in := range inputs {
		r.names = append(r.names, in.Name)
	}
	r.rows = make([]atomic.Int64, len(inputs))
	total, err := r.inspect(ctx)
	if err != nil {
		return sum, err
	}
	// 2. In file order, read everything once so that a corrupt page stops the replay before
	//    the first send (event-time order reads everything while sorting anyway).
	if cfg.Order == OrderFile && !cfg.SkipVerify {
		if total, err = r.verify(ctx); err != nil {
			return sum, err
		}
	}

	// The event-time sort reads every input; it needs no broker, so it runs while the topic
	// is created and inspected below (round trips: ~0.1 s on a local broker, more on a
	// remote cluster, that the replay would otherwise spend before sorting).
	sorting := r.startIterator(ctx)
	defer sorting.discard()

	// 3. The topic.
	admin := kafkaio.NewAdmin(cfg.Brokers, cfg.WriteTimeout).WithSecurity(cfg.Security).WithRetry(cfg.RetryTimeout, r.log)
	parts, created, err := admin.EnsureTopic(ctx, kafkaio.TopicSpec{Name: cfg.Topic, Partitions: cfg.Partitions, Replication: cfg.Replication})
	if err != nil {
		return sum, err
	}
	sum.Partitions, sum.Created = parts, created
	switch {
	case created:
		r.log.Info("created topic", "topic", cfg.Topic, "partitions", parts, "replication", cfg.Replication)
	case parts != cfg.Partitions:
		r.log.Info("topic exists; using its partition count", "topic", cfg.Topic, "partitions", parts)
	}

	// 4. Where each partition ends.
	pts := fresh(parts)
	if cfg.Resume {
		if pts, err = readResumePoints(ctx, admin, cfg.Topic, parts); err != nil {
			return sum, err
		}
		if resuming(pts) {
			it, err := sorting.take()
			if err != nil {
				return sum, err
			}
			err = verifyResume(ctx, it, newSequencer(cfg, r.names, parts), pts, cfg.Topic)
			it.Close()
			if err != nil {
				return sum, err
			}
			r.log.Info("resuming", "topic", cfg.Topic, "partition_ends", describe(pts))
		}
	} else if err := r.warnNonEmpty(ctx, admin, parts); err != nil {
		return sum, err
	}

	// 5. Send (a resumed replay's check above took the first iterator).
	it, err := sorting.take()
	if errors.Is(err, errTaken) {
		it, err = r.iterator(ctx)
	}
	if err != nil {
		return sum, err
	}
	defer it.Close()
	if cfg.Order == OrderEventTime {
		total = r.counted() // the sort has read everything
	}
	sum.TotalRows = total
	err = r.send(ctx, it, parts, pts, &sum)
	return sum, err
}

func resuming(pts []resumePoint) bool {
	for _, pt := range pts {
		if pt.last >= 0 {
			return true
		}
	}
	return false
}

func describe(pts []resumePoint) []int64 {
	out := make([]int64, len(pts))
	for i, pt := range pts {
		out[i] = pt.last
	}
	return out
}

// inspect opens every input (Parquet: footer and schema; CSV: header) and returns the total
// row count (-1 if a CSV makes it unknown).
func (r *runner) inspect(ctx context.Context) (int64, error) {
	var total int64
	for _, in := range r.inputs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		src, err := in.Open()
		if err != nil {
			return 0, err
		}
		if pq, ok := src.(interface{ NumRows() int64 }); ok && total >= 0 {
			total += pq.NumRows()
		} else {
			total = -1
		}
		if err := src.Close(); err != nil {
			return 0, fmt.Errorf("close %s: %w", in.Path, err)
		}
	}
	return total, nil
}

// verify reads every row of every input and returns the total.
func (r *runner) verify(ctx context.Context) (int64, error) {
	start := time.Now()
	it := order.InFileOrder(ctx, r.orderInputs())
	defer it.Close()
	rows := make([]order.Row, readBatch)
	for {
		_, err := it.Next(rows)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	total := r.counted()
	r.log.Info("inputs verified", "files", len(r.inputs), "rows", total, "elapsed", time.Since(start).Round(time.Millisecond))
	return total, nil
}

// orderInputs wraps the inputs so that every full pass counts the rows of each file.
func (r *runner) orderInputs() []order.Input {
	out := make([]order.Input, len(r.inputs))
	for i, in := range r.inputs {
		oi := in.OrderInput()
		counter := &r.rows[i]
		open := oi.Open
		oi.Open = func() (tlc.Source, error) {
			src, err := open()
			if err != nil {
				return nil, err
			}
			counter.Store(0)
			return &countingSource{Source: src, n: counter}, nil
		}
		out[i] = oi
	}
	return out
}

func (r *runner) counted() int64 {
	var n int64
	for i := range r.rows {
		n += r.rows[i].Load()
	}
	return n
}

type countingSource struct {
	tlc.Source
	n *atomic.Int64
}

func (s *countingSource) Next(dst []codecs.Trip) (int, error) {
	n, err := s.Source.Next(dst)
	s.n.Add(int64(n))
	return n, err
}

// iterator returns a new iterator over all rows in the configured order. Event-time order
// reads and sorts everything here.
func (r *runner) iterator(ctx context.Context) (order.Iterator, error) {
	if r.cfg.Order == OrderFile {
		return order.InFileOrder(ctx, r.orderInputs()), nil
	}
	start := time.Now()
	s, err := order.Sorted(ctx, r.orderInputs(), order.Config{
		MaxRunRows: r.cfg.SortRunRows, TempDir: r.cfg.TempDir, Key: r.cfg.EventTime,
	})
	if err != nil {
		return nil, err
	}
	by := "dropoff"
	if r.cfg.EventTime == codecs.ColPickup {
		by = "pickup"
	}
	r.log.Info("inputs sorted", "by", by, "rows", r.counted(),
		"spilled_runs", s.Runs(), "elapsed", time.Since(start).Round(time.Millisecond))
	return s, nil
}

// errTaken is returned by pendingIterator.take after the first call.
var errTaken = errors.New("replay: iterator already taken")

// pendingIterator is an iterator being built by a goroutine of its own.
type pendingIterator struct {
	cancel context.CancelFunc
	done   chan struct{}
	it     order.Iterator
	err    error
	taken  bool
}

// startIterator starts building the iterator over all rows (see iterator).
func (r *runner) startIterator(ctx context.Context) *pendingIterator {
	ctx, cancel := context.WithCancel(ctx)
	p := &pendingIterator{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.it, p.err = r.iterator(ctx)
	}()
	return p
}

// take waits for the iterator; the caller closes it. Only the first call gets it.
func (p *pendingIterator) take() (order.Iterator, error) {
	if p.taken {
		return nil, errTaken
	}
	p.taken = true
	<-p.done
	return p.it, p.err
}

// discard stops a build that was not taken, waits for it and closes what it built
// (removing its spill files). The context of a taken iterator ends with the replay.
func (p *pendingIterator) discard() {
	if p.taken {
		p.cancel()
		return
	}
	p.taken = true
	p.cancel()
	<-p.done
	if p.it != nil {
		p.it.Close()
	}
}

// warnNonEmpty logs when a replay without Resume appends to a topic that holds records.
func (r *runner) warnNonEmpty(ctx context.Context, admin *kafkaio.Admin, parts int) error {
	tails, err := admin.Tails(ctx, r.cfg.Topic, parts)
	if err != nil {
		return err
	}
	var n int64
	for _, t := range tails {
		n += t.End - t.Start
	}
	if n > 0 {
		r.log.Warn("the topic already holds records; this replay adds a second copy of every row "+
			"(use --resume to continue an interrupted replay, or taxi-replay cleanup to start over)",
			"topic", r.cfg.Topic, "records", n)
	}
	return nil
}

// send runs the replay proper.
func (r *runner) send(ctx context.Context, it order.Iterator, parts int, pts []resumePoint, sum *Summary) error {
	cfg := r.cfg
	compression, _ := ParseCompression(cfg.Compression)
	producer, err := kafkaio.NewProducer(kafkaio.ProducerConfig{
		Brokers: cfg.Brokers, Topic: cfg.Topic, Compression: compression, ZstdLevel: cfg.ZstdLevel,
		MaxBatchBytes: cfg.MaxBatchBytes, WriteTimeout: cfg.WriteTimeout, RetryTimeout: cfg.RetryTimeout,
		Security: cfg.Security, Logger: r.log,
	})
	if err != nil {
		return err
	}
	defer producer.Close()

	mainCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		counts   counters
		skipped  atomic.Int64
		failed   atomic.Bool
		failOnce sync.Once
		sendErr  error
	)
	fail := func(err error) {
		failOnce.Do(func() {
			sendErr = err
			failed.Store(true)
			cancel(err)
		})
	}
	senders := make([]*sender, parts)
	for p := range senders {
		senders[p] = &sender{part: p, producer: producer, names: r.names, counts: &counts, fail: fail, failed: &failed}
	}
	// On Ctrl-C what is queued is still sent and acknowledged: the producer never cuts a
	// request off (its outcome would be unknown), WriteTimeout bounds each; ctx only ends
	// the waits between resends during a broker fault.
	disp := newDispatcher(ctx, senders, cfg.ChunkRows, cfg.QueueDepth, cfg.Linger)
	prog := startProgress(cfg, &counts, &skipped, sum.TotalRows)

	sendStart := time.Now()
	seqr := newSequencer(cfg, r.names, parts)
	pace := newPacer(cfg.Rate, cfg.Speedup)
	complete, readErr := r.loop(mainCtx, it, seqr, pace, disp, pts, &skipped)
	if complete && !failed.Load() {
		if m, ok := seqr.final(); ok {
			r.marker(disp, pts, m, time.Now())
		}
	}
	disp.close()
	sum.SendElapsed = time.Since(sendStart)
	prog.close()

	sum.Rows, sum.Markers = counts.rows.Load(), counts.markers.Load()
	sum.Bytes, sum.Batches = counts.bytes.Load(), counts.batches.Load()
	sum.Retries, sum.Paused = counts.retries.Load(), producer.Paused()
	sum.Skipped = skipped.Load()
	switch {
	case sendErr != nil:
		return fmt.Errorf("replay to %s stopped: %w (every partition holds a gap-free prefix; rerun with --resume to continue)", cfg.Topic, sendErr)
	case readErr != nil && ctx.Err() == nil:
		return fmt.Errorf("replay stopped: %w", readErr)
	case !complete:
		return fmt.Errorf("%w after %d rows: %w", ErrInterrupted, sum.Rows+sum.Skipped, context.Cause(ctx))
	}
	return nil
}

// loop reads the rows in order and queues rides and markers. It returns complete=true when
// the iterator is exhausted.
func (r *runner) loop(ctx context.Context, it order.Iterator, seqr *sequencer, pace *pacer, disp *dispatcher,
	pts []resumePoint, skipped *atomic.Int64) (complete bool, err error) {
	if m, ok := seqr.start(); ok {
		r.marker(disp, pts, m, time.Now())
	}
	pf := prefetch(it, readBatch, 2)
	defer pf.close()
	paced := pace.enabled()
	for {
		if ctx.Err() != nil {
			return false, nil
		}
		rows, err := pf.next()
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, err
		}
		now := time.Now()
		for i := range rows {
			row := &rows[i]
			x := seqr.row(row)
			if x.seq > pts[x.part].last {
				if paced {
					clock, ok := seqr.clock()
					if err := r.waitUntil(ctx, disp, pace.next(now, clock, ok)); err != nil {
						return false, nil
					}
					now = time.Now()
				}
				disp.ride(x.part, x.seq, row, now)
			} else {
				skipped.Add(1)
			}
			if m, ok := seqr.periodic(); ok {
				r.marker(disp, pts, m, now)
			}
		}
		disp.flushOld(now)
	}
}

// marker queues a marker to every partition that does not hold it yet.
func (r *runner) marker(disp *dispatcher, pts []resumePoint, m item, now time.Time) {
	for p := range pts {
		if m.seq > pts[p].last {
			disp.marker(p, m.seq, m.m, now)
		}
	}
}

// waitUntil sleeps until at (zero: no wait), flushing lingering chunks meanwhile. Waits
// under a millisecond are skipped (the pacer's schedule is cumulative and catches up).
func (r *runner) waitUntil(ctx context.Context, disp *dispatcher, at time.Time) error {
	for {
		d := time.Until(at)
		if at.IsZero() || d < time.Millisecond {
			return nil
		}
		disp.flushOld(time.Now())
		if r.cfg.Linger > 0 && d > r.cfg.Linger {
			d = r.cfg.Linger
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
