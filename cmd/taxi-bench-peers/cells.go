package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/processors/aggregate"
)

// cellKey is one (window, borough) cell.
type cellKey struct {
	StartMs int64
	Borough string
}

// cell is a result: the window's end and exact sums.
type cell struct {
	EndMs int64
	aggregate.Sums
}

type cells map[cellKey]cell

func (c cells) rides() int64 {
	var n int64
	for _, v := range c {
		n += v.Count
	}
	return n
}

// parseResults reads taxi-results --format json lines.
func parseResults(lines []string) (cells, error) {
	out := cells{}
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var r aggregate.Result
		if err := r.UnmarshalJSON([]byte(l)); err != nil {
			return nil, fmt.Errorf("result %q: %w", l, err)
		}
		k := cellKey{r.Window.StartMs, r.Borough}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("two results for %s/%s", time.UnixMilli(k.StartMs).UTC().Format(time.DateTime), k.Borough)
		}
		out[k] = cell{EndMs: r.Window.EndMs, Sums: r.Sums}
	}
	return out, nil
}

// sameCells reports the first difference of two result sets.
func sameCells(a, b cells) error {
	for k, va := range a {
		vb, ok := b[k]
		if !ok {
			return fmt.Errorf("%s/%s only in the first (%d results vs %d)", fmtMs(k.StartMs), k.Borough, len(a), len(b))
		}
		if va != vb {
			return fmt.Errorf("%s/%s: %+v vs %+v", fmtMs(k.StartMs), k.Borough, va, vb)
		}
	}
	if len(a) != len(b) {
		return fmt.Errorf("%d results vs %d", len(a), len(b))
	}
	return nil
}

// sparkRow is one line of the Spark job's JSON file sink (null sums are left out).
type sparkRow struct {
	Window struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	} `json:"window"`
	Borough        string   `json:"Borough"`
	TripCount      int64    `json:"trip_count"`
	Passengers     *float64 `json:"passengers"`
	PassengerRides int64    `json:"passenger_rides"`
	Distance       *float64 `json:"total_distance"`
	Tip            *float64 `json:"total_tip"`
	Fare           *float64 `json:"total_fare"`
	Total          *float64 `json:"total_amount"`
}

// readSparkCells reads the Spark job's file sink. The sums are doubles; they are rounded to
// hundredths (cents, hundredths of a mile) for the comparison.
func readSparkCells(dir string) (cells, error) {
	files, err := filepath.Glob(filepath.Join(dir, "part-*.json"))
	if err != nil {
		return nil, err
	}
	out := cells{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var r sparkRow
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				fh.Close()
				return nil, fmt.Errorf("spark output %s: %w", f, err)
			}
			k := cellKey{r.Window.Start.UnixMilli(), r.Borough}
			if _, dup := out[k]; dup {
				fh.Close()
				return nil, fmt.Errorf("spark output: two rows for %s/%s", fmtMs(k.StartMs), k.Borough)
			}
			out[k] = cell{EndMs: r.Window.End.UnixMilli(), Sums: aggregate.Sums{
				Count: r.TripCount, PassengerSum: round(r.Passengers, 1), PassengerCount: r.PassengerRides,
				DistanceHundredths: round(r.Distance, 100), TipCents: round(r.Tip, 100),
				FareCents: round(r.Fare, 100), TotalCents: round(r.Total, 100),
			}}
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func round(v *float64, scale float64) int64 {
	if v == nil {
		return 0
	}
	return int64(math.Round(*v * scale))
}

// compareSpark checks Spark's cells against taxi-stream's: every Spark cell equals
// taxi-stream's, and every taxi-stream window that ends at or before Spark's watermark is
// in Spark's output. It returns the cells compared and what Spark left open.
func compareSpark(spark, ts cells, watermarkMs int64) (closed int, openRides int64, openWindows int, err error) {
	for k, s := range spark {
		t, ok := ts[k]
		if !ok {
			return 0, 0, 0, fmt.Errorf("spark has %s/%s (%+v), taxi-stream has not", fmtMs(k.StartMs), k.Borough, s)
		}
		if s != t {
			return 0, 0, 0, fmt.Errorf("%s/%s: spark %+v, taxi-stream %+v", fmtMs(k.StartMs), k.Borough, s.Sums, t.Sums)
		}
	}
	open := map[int64]bool{}
	var keys []cellKey
	for k, t := range ts {
		if _, ok := spark[k]; ok {
			continue
		}
		if t.EndMs <= watermarkMs {
			keys = append(keys, k)
			continue
		}
		open[k.StartMs] = true
		openRides += t.Count
	}
	if len(keys) > 0 {
		slices.SortFunc(keys, func(a, b cellKey) int { return int(a.StartMs - b.StartMs) })
		return 0, 0, 0, fmt.Errorf("%d closed taxi-stream results are missing from Spark's output, the first %s/%s",
			len(keys), fmtMs(keys[0].StartMs), keys[0].Borough)
	}
	return len(spark), openRides, len(open), nil
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04") }

// topicRecords counts the records of a topic (end offsets; the producers here are not
// transactional, so offsets are records).
func topicRecords(ctx context.Context, brokers, topic string) (int64, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cl, err := sarama.NewClient(strings.Split(brokers, ","), cfg)
	if err != nil {
		return 0, fmt.Errorf("count records of %s: %w", topic, err)
	}
	defer cl.Close()
	parts, err := cl.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("count records of %s: %w", topic, err)
	}
	var n int64
	for _, p := range parts {
		hi, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, fmt.Errorf("count records of %s[%d]: %w", topic, p, err)
		}
		lo, err := cl.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return 0, fmt.Errorf("count records of %s[%d]: %w", topic, p, err)
		}
		n += hi - lo
	}
	return n, ctx.Err()
}

// createTopic creates a topic with the broker's replication factor.
func createTopic(brokers, topic string, partitions int32) error {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	admin, err := sarama.NewClusterAdmin(strings.Split(brokers, ","), cfg)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1}, false); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}
