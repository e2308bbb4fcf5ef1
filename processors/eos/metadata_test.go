package eos

import (
	"fmt"
	"slices"
	"testing"

	"github.com/IBM/sarama"
)

// A cluster shared with other apps: the clients the runtime builds for consuming and
// producing hold the metadata of the topics they use, not the cluster's; the topic
// manager goka needs (full metadata: it lists topics and finds the controller) still works.
func TestClientsHoldOnlyTheirTopicsMetadata(t *testing.T) {
	mb := sarama.NewMockBroker(t, 1)
	defer mb.Close()
	meta := sarama.NewMockMetadataResponse(t).SetBroker(mb.Addr(), mb.BrokerID()).SetController(mb.BrokerID())
	for i := range 50 {
		for p := range int32(3) {
			meta.SetLeader(fmt.Sprintf("other-app-%02d", i), p, mb.BrokerID())
		}
	}
	meta.SetLeader("rides", 0, mb.BrokerID())
	mb.SetHandlerByMap(map[string]sarama.MockResponse{"MetadataRequest": meta})
	brokers := []string{mb.Addr()}

	topicsAfterUsingRides := func(cfg *sarama.Config) []string {
		t.Helper()
		c, err := sarama.NewClient(brokers, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if parts, err := c.Partitions("rides"); err != nil || !slices.Equal(parts, []int32{0}) {
			t.Fatalf("Partitions(rides) = %v, %v", parts, err)
		}
		topics, err := c.Topics()
		if err != nil {
			t.Fatal(err)
		}
		return topics
	}
	if got := topicsAfterUsingRides(mockSarama()); len(got) != 51 {
		t.Fatalf("a default client holds %d topics; the test expects Sarama's full metadata (51)", len(got))
	}
	if got := topicsAfterUsingRides(TopicScoped(mockSarama())); !slices.Equal(got, []string{"rides"}) {
		t.Errorf("a topic-scoped client holds the metadata of %v, want [rides] only", got)
	}

	// The runtime's producer is topic-scoped, and so are the goka consumers it builds.
	_, _, producerCfg := testRuntime(t, Config{}, Hooks{})
	if producerCfg.Metadata.Full {
		t.Errorf("the runtime's producer config keeps the whole cluster's metadata")
	}

	// NewTopicManager builds goka's manager (a cluster admin: full metadata) and its own
	// topic-scoped clients from one config.
	tm, err := NewTopicManager(brokers, mockSarama(), "", 0)
	if err != nil {
		t.Fatalf("topic manager: %v", err)
	}
	defer tm.Close()
	if parts, err := tm.Partitions("rides"); err != nil || !slices.Equal(parts, []int32{0}) {
		t.Errorf("topic manager Partitions(rides) = %v, %v", parts, err)
	}
}
