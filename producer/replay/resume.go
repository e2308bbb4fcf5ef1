package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/order"
	"github.com/taxi-stream/taxi-stream/producer/replay/kafkaio"
)

// ErrResumeMismatch is wrapped by resume errors that say the topic does not hold a prefix of
// this replay (other inputs, order or marker settings, or data of another producer).
var ErrResumeMismatch = errors.New("topic does not continue this replay")

// resumePoint is where one partition ends: the position (ts-seq) of its last record, and
// what that record is, so that the regenerated sequence can be checked against it.
type resumePoint struct {
	last     int64 // -1: the partition is empty
	marker   bool
	key      []byte
	offset   int64
	verified bool
}

// fresh returns the resume points of an empty topic.
func fresh(partitions int) []resumePoint {
	pts := make([]resumePoint, partitions)
	for p := range pts {
		pts[p].last = -1
	}
	return pts
}

// readResumePoints reads the last record of every partition.
func readResumePoints(ctx context.Context, admin *kafkaio.Admin, topic string, partitions int) ([]resumePoint, error) {
	tails, err := admin.Tails(ctx, topic, partitions)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	pts := fresh(partitions)
	for p, t := range tails {
		switch {
		case t.Last == nil && t.End == 0:
			continue
		case t.Last == nil:
			return nil, fmt.Errorf("resume: %s/%d: its records were deleted (log start = end = %d), where it ended is unknown: %w",
				topic, p, t.End, ErrResumeMismatch)
		}
		seq, err := t.Last.HeaderInt(codecs.HeaderSeq)
		if err != nil {
			return nil, fmt.Errorf("resume: %s/%d: last %v: not written by taxi-replay: %w", topic, p, err, ErrResumeMismatch)
		}
		pts[p] = resumePoint{
			last:   seq,
			marker: t.Last.Headers[codecs.HeaderKind] == codecs.KindWatermark,
			key:    t.Last.Key,
			offset: t.Last.Offset,
		}
	}
	return pts, nil
}

// check compares one item of the regenerated sequence with the partitions' resume points.
// Every partition whose last record has the item's position must hold exactly this item.
func check(pts []resumePoint, it item, topic string) error {
	for p := range pts {
		pt := &pts[p]
		if pt.last != it.seq {
			continue
		}
		var want string
		switch {
		case it.marker && !pt.marker:
			want = "a watermark marker"
		case !it.marker && it.part != p:
			want = fmt.Sprintf("ride %s in partition %d", it.key, it.part)
		case !it.marker && (pt.marker || !bytes.Equal(pt.key, it.key)):
			want = fmt.Sprintf("ride %s", it.key)
		}
		if want != "" {
			got := "a watermark marker"
			if !pt.marker {
				got = fmt.Sprintf("ride %s", pt.key)
			}
			return fmt.Errorf("resume: %s/%d ends at offset %d with %s at ts-seq %d, but this replay has %s there "+
				"(other inputs, order, event time or marker settings?); start over in an empty topic instead: %w",
				topic, p, pt.offset, got, it.seq, want, ErrResumeMismatch)
		}
		pt.verified = true
	}
	return nil
}

// verifyResume regenerates the sequence (without sending) until it has passed every
// partition's last position, and checks that each partition ends with the item this replay
// has at that position. Nothing is sent before this check passes, so resuming with other
// settings or into another producer's topic stops before it writes anything.
func verifyResume(ctx context.Context, it order.Iterator, seqr *sequencer, pts []resumePoint, topic string) error {
	maxLast := int64(-1)
	for _, pt := range pts {
		maxLast = max(maxLast, pt.last)
	}
	if maxLast < 0 {
		return nil
	}
	visit := func(x item, ok bool) (bool, error) {
		if !ok {
			return false, nil
		}
		if err := check(pts, x, topic); err != nil {
			return true, err
		}
		return x.seq >= maxLast, nil
	}
	if done, err := visit(seqr.start()); done || err != nil {
		return err
	}
	rows := make([]order.Row, readBatch)
	for {
		n, err := it.Next(rows)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		for i := range rows[:n] {
			if done, err := visit(seqr.row(&rows[i]), true); done || err != nil {
				return err
			}
			if done, err := visit(seqr.periodic()); done || err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if done, err := visit(seqr.final()); done || err != nil {
		return err
	}
	for p, pt := range pts {
		if pt.last >= 0 && !pt.verified {
			return fmt.Errorf("resume: %s/%d ends at ts-seq %d, beyond this replay's last position %d: %w",
				topic, p, pt.last, seqr.seq-1, ErrResumeMismatch)
		}
	}
	return nil
}
