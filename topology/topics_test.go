package topology_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"

	"github.com/taxi-stream/taxi-stream/topology"
)

// fakeAdmin is a sarama.ClusterAdmin with the three calls the package makes; any
// other call panics (nil embedded interface).
type fakeAdmin struct {
	sarama.ClusterAdmin
	topics    map[string]sarama.TopicDetail
	listErr   error
	createErr map[string]error // per topic
	created   []created
	describe  func(topics []string) ([]*sarama.TopicMetadata, error)
}

type created struct {
	name         string
	partitions   int32
	replication  int16
	configs      map[string]string
	validateOnly bool
}

func (a *fakeAdmin) ListTopics() (map[string]sarama.TopicDetail, error) {
	if a.listErr != nil {
		return nil, a.listErr
	}
	return a.topics, nil
}

func (a *fakeAdmin) CreateTopic(topic string, d *sarama.TopicDetail, validateOnly bool) error {
	c := created{name: topic, partitions: d.NumPartitions, replication: d.ReplicationFactor, configs: map[string]string{}, validateOnly: validateOnly}
	for k, v := range d.ConfigEntries {
		c.configs[k] = *v
	}
	a.created = append(a.created, c)
	return a.createErr[topic]
}

func (a *fakeAdmin) DescribeTopics(topics []string) ([]*sarama.TopicMetadata, error) {
	return a.describe(topics)
}

func specs() []topology.TopicSpec { return topology.ProcessorTopics(defaults(4)) }

func TestEnsureTopicsCreatesMissing(t *testing.T) {
	admin := &fakeAdmin{topics: map[string]sarama.TopicDetail{
		"taxi-rides":   {NumPartitions: 4},
		"taxi-results": {NumPartitions: 4},
	}}
	if err := topology.EnsureTopics(admin, specs(), 3); err != nil {
		t.Fatal(err)
	}
	compact := map[string]string{"cleanup.policy": "compact", "segment.bytes": "16777216", "min.cleanable.dirty.ratio": "0.1"}
	want := []created{
		{name: "taxi-stream-windows-repartition", partitions: 4, replication: 3, configs: map[string]string{"retention.ms": "604800000"}},
		{name: "taxi-stream-windows-table", partitions: 4, replication: 3, configs: compact},
		{name: "taxi-late", partitions: 4, replication: 3, configs: map[string]string{}},
		{name: "taxi-dead", partitions: 4, replication: 3, configs: map[string]string{}},
	}
	if diff := cmp.Diff(want, admin.created, cmp.AllowUnexported(created{})); diff != "" {
		t.Errorf("created topics (-want +got):\n%s", diff)
	}

	// The broker's default replication factor.
	admin = &fakeAdmin{topics: map[string]sarama.TopicDetail{}}
	if err := topology.EnsureTopics(admin, specs()[:1], -1); err != nil {
		t.Fatal(err)
	}
	if len(admin.created) != 1 || admin.created[0].replication != -1 {
		t.Errorf("created %+v, want replication -1", admin.created)
	}
}

func TestEnsureTopicsRefusesPartitionMismatch(t *testing.T) {
	admin := &fakeAdmin{topics: map[string]sarama.TopicDetail{
		"taxi-stream-windows-repartition": {NumPartitions: 4},
		"taxi-stream-windows-table":       {NumPartitions: 2},
	}}
	err := topology.EnsureTopics(admin, specs(), 1)
	want := "topic taxi-stream-windows-table has 2 partitions, the pipeline needs 4 (delete it, or configure matching partitions)"
	if err == nil || err.Error() != want {
		t.Fatalf("EnsureTopics: %v, want %q", err, want)
	}
	if len(admin.created) != 0 {
		t.Errorf("created %v before the mismatch was found", admin.created)
	}
	// A spec without a partition count accepts any.
	admin = &fakeAdmin{topics: map[string]sarama.TopicDetail{"t": {NumPartitions: 9}}}
	if err := topology.EnsureTopics(admin, []topology.TopicSpec{{Name: "t"}}, 1); err != nil || len(admin.created) != 0 {
		t.Errorf("spec without partitions: %v, created %v", err, admin.created)
	}
}

func TestEnsureTopicsToleratesConcurrentCreation(t *testing.T) {
	admin := &fakeAdmin{topics: map[string]sarama.TopicDetail{}, createErr: map[string]error{
		// How sarama's clusterAdmin reports it, and the bare error.
		"taxi-stream-windows-repartition": &sarama.TopicError{Err: sarama.ErrTopicAlreadyExists},
		"taxi-late":                       sarama.ErrTopicAlreadyExists,
	}}
	if err := topology.EnsureTopics(admin, specs(), 1); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	if len(admin.created) != 5 {
		t.Errorf("%d create calls, want 5", len(admin.created))
	}
}

func TestEnsureTopicsErrors(t *testing.T) {
	admin := &fakeAdmin{listErr: errors.New("broker down")}
	if err := topology.EnsureTopics(admin, specs(), 1); err == nil || err.Error() != "list topics: broker down" {
		t.Errorf("list error: %v", err)
	}
	denied := &sarama.TopicError{Err: sarama.ErrTopicAuthorizationFailed}
	admin = &fakeAdmin{topics: map[string]sarama.TopicDetail{}, createErr: map[string]error{"taxi-stream-windows-table": denied}}
	err := topology.EnsureTopics(admin, specs(), 1)
	if err == nil || !strings.HasPrefix(err.Error(), "create topic taxi-stream-windows-table: ") || !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Errorf("create error: %v", err)
	}
	if len(admin.created) != 2 {
		t.Errorf("%d create calls, want 2 (stop at the first failure)", len(admin.created))
	}
}

func TestPartitions(t *testing.T) {
	md := func(name string, kerr sarama.KError, n int) *sarama.TopicMetadata {
		m := &sarama.TopicMetadata{Name: name, Err: kerr}
		for i := range n {
			m.Partitions = append(m.Partitions, &sarama.PartitionMetadata{ID: int32(i)})
		}
		return m
	}
	var asked []string
	admin := &fakeAdmin{describe: func(topics []string) ([]*sarama.TopicMetadata, error) {
		asked = append(asked, topics...)
		switch topics[0] {
		case "six":
			return []*sarama.TopicMetadata{md("six", sarama.ErrNoError, 6)}, nil
		case "missing":
			return []*sarama.TopicMetadata{md("missing", sarama.ErrUnknownTopicOrPartition, 0)}, nil
		case "none":
			return nil, nil
		default:
			return nil, errors.New("timeout")
		}
	}}
	if n, err := topology.Partitions(admin, "six"); n != 6 || err != nil {
		t.Errorf("Partitions(six) = %d, %v", n, err)
	}
	if _, err := topology.Partitions(admin, "missing"); err == nil || !errors.Is(err, sarama.ErrUnknownTopicOrPartition) || !strings.HasPrefix(err.Error(), "topic missing: ") {
		t.Errorf("Partitions(missing): %v", err)
	}
	if _, err := topology.Partitions(admin, "none"); err == nil || err.Error() != "topic none not found" {
		t.Errorf("Partitions(none): %v", err)
	}
	if _, err := topology.Partitions(admin, "slow"); err == nil || err.Error() != "describe topic slow: timeout" {
		t.Errorf("Partitions(slow): %v", err)
	}
	if want := []string{"six", "missing", "none", "slow"}; !cmp.Equal(asked, want) {
		t.Errorf("described %v, want one topic per call: %v", asked, want)
	}
}
