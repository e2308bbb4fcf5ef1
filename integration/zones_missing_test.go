package integration

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/producer/zones"
)

// A compose stack without the TLC files (docs/compose.md): `taxi-replay zones
// --missing-file-ok` creates the empty compacted zones topic, so the processors start
// (they wait for that topic) and count every ride under borough Unknown. Without the
// flag a missing file is an error naming it.
func TestZonesLoaderMissingFileOK(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "taxi_zone_lookup.csv")
	topic := kafkatest.UniqueName(t, "zones")
	if _, err := zones.Run(context.Background(), zones.Config{File: missing, Brokers: kafka.Brokers(t), Topic: topic}); err == nil {
		t.Fatal("a missing zone file was accepted without --missing-file-ok")
	}
	sum, err := zones.Run(context.Background(), zones.Config{File: missing, Brokers: kafka.Brokers(t), Topic: topic, MissingFileOK: true})
	if err != nil {
		t.Fatalf("--missing-file-ok: %v", err)
	}
	if sum.Zones != 0 || !sum.Created {
		t.Errorf("summary %+v, want 0 zones and the topic created", sum)
	}
	admin := kafka.Admin(t)
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatal(err)
	}
	compacted := false
	for _, e := range entries {
		if e.Name == "cleanup.policy" && e.Value == "compact" {
			compacted = true
		}
	}
	if !compacted {
		t.Errorf("zones topic %s is not compacted: %+v", topic, entries)
	}
}
