package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/processors/eos"
)

// waitSettled waits until an instance has committed everything there is to read:
// the ingest group's committed offsets reach the last visible record of every rides
// partition, and then the windows group's reach the last visible partial. From then
// on every result the windows stage emitted is committed, however slow the machine.
// It waits for these conditions, never for a quiet period.
func waitSettled(t testing.TB, h *pipelineHandle, timeout time.Duration) {
	t.Helper()
	cfg, ok := h.p.Topology()
	if !ok {
		t.Fatal("waitSettled: the pipeline has not started")
	}
	client, err := sarama.NewClient(kafka.Brokers(t), kafkatest.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	// not admin.Close(): it would close the client that the deferred Close closes.
	deadline := time.Now().Add(timeout)
	for _, stage := range []struct{ group, topic string }{
		{string(cfg.IngestGroup()), cfg.Topics.Rides},
		{string(cfg.WindowsGroup()), cfg.Topics.Windows},
	} {
		for {
			behind, err := groupBehind(client, admin, stage.group, stage.topic)
			if err == nil && behind == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("group %s did not commit all of %s within %s: %v%s", stage.group, stage.topic, timeout, err, behind)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// groupBehind describes the partitions of topic where group's committed offset is
// short of the last visible record ("" when none is).
func groupBehind(client sarama.Client, admin sarama.ClusterAdmin, group, topic string) (string, error) {
	if err := client.RefreshMetadata(topic); err != nil {
		return "", err
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return "", err
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return "", err
	}
	behind := ""
	for _, p := range parts {
		end, err := eos.LastVisibleOffset(client, topic, p)
		if err != nil {
			return "", err
		}
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return "", err
		}
		if end <= start {
			continue // nothing to read
		}
		committed := int64(-1)
		if b := resp.GetBlock(topic, p); b != nil {
			committed = b.Offset
		}
		if committed < end {
			behind += fmt.Sprintf(" %s/%d committed %d of %d;", topic, p, committed, end)
		}
	}
	return behind, nil
}
