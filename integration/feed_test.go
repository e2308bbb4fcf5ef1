package integration

import (
	"context"
	"testing"

	"github.com/taxi-stream/taxi-stream/producer/replay"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

// sharedData returns ../shared/data next to the repository (tlctest.DataDir: the
// test is skipped when it is missing, unless CI is set).
func sharedData(t testing.TB) string { return tlctest.DataDir(t) }

// feedOptions shape how feedRides writes a file.
type feedOptions struct {
	fileOrder   bool // default: sorted by dropoff
	markers     bool // watermark markers as docs/design.md says
	markerEvery int
}

// feedRides replays path into topic with the replay producer (producer/replay) and
// returns the number of rides written.
func feedRides(t testing.TB, topic string, partitions int32, path string, opt feedOptions) int {
	t.Helper()
	cfg := replay.Config{
		Inputs: []string{path}, Brokers: kafka.Brokers(t), Topic: topic, Partitions: int(partitions),
		NoMarkers: !opt.markers, MarkerEvery: opt.markerEvery, TempDir: t.TempDir(), LogEvery: -1,
	}
	if opt.fileOrder {
		cfg.Order = replay.OrderFile
	}
	sum, err := replay.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("replay %s: %v", path, err)
	}
	if sum.Partitions != int(partitions) {
		t.Fatalf("replay wrote to %d partitions, want %d", sum.Partitions, partitions)
	}
	return int(sum.Rows)
}
