package integration

import (
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/processors/eos"
)

// TestLastVisibleOffsetAfterAbortBySameProducer: goka recovers a changelog up to
// eos.LastVisibleOffset. A producer that aborts a transaction and then commits more
// (a restarted instance keeps its producer id) must have the later records counted
// as visible: treating them as aborted made a restarted instance recover stale state
// and close windows a second time (found by the chaos suite).
func TestLastVisibleOffsetAfterAbortBySameProducer(t *testing.T) {
	topic := kafka.Topic(t, kafkatest.Partitions(1))
	cfg := kafkatest.SaramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Transaction.ID = kafkatest.UniqueName(t, "txn")
	p, err := sarama.NewSyncProducer(kafka.Brokers(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	txn := func(n int, commit bool) {
		t.Helper()
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("v")}); err != nil {
				t.Fatal(err)
			}
		}
		if commit {
			err = p.CommitTxn()
		} else {
			err = p.AbortTxn()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rc := kafkatest.SaramaConfig()
	rc.Consumer.IsolationLevel = sarama.ReadCommitted
	client, err := sarama.NewClient(kafka.Brokers(t), rc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// visible waits for want (commit markers are written just after CommitTxn
	// returns; until then the transaction is still open for readers).
	visible := func(want int64) int64 {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			off, err := eos.LastVisibleOffset(client, topic, 0)
			if err != nil {
				t.Fatal(err)
			}
			if off == want || time.Now().After(deadline) {
				return off
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	txn(3, true) // records 0-2, commit marker 3
	if got := visible(3); got != 3 {
		t.Fatalf("after one committed transaction: last visible + 1 = %d, want 3", got)
	}
	txn(2, false)           // records 4-5 aborted, abort marker 6
	time.Sleep(time.Second) // let the abort marker land
	if got := visible(3); got != 3 {
		t.Fatalf("after an aborted transaction: %d, want 3 (the aborted records are not visible)", got)
	}
	txn(2, true) // records 7-8 by the same producer, commit marker 9
	if got := visible(9); got != 9 {
		t.Fatalf("after abort then commit by the same producer: %d, want 9", got)
	}
}
