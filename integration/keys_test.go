package integration

import (
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/processors/eos"
)

// TestLateAndDeadKeepTheKeyExactly: a record with a null key (kafka-python's
// send(topic, value) writes one) reaches the dead-letter and late topics with a
// null key, and one with an empty key with an empty key: goka's string keys do not
// turn one into the other.
func TestLateAndDeadKeepTheKeyExactly(t *testing.T) {
	topics := pipelineInputs(t, 1)
	cfg := kafkatest.SaramaConfig()
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(kafka.Brokers(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	final := codecs.AppendMarkerJSON(nil, codecs.Marker{Type: "watermark", WatermarkMs: 1, Final: true})
	ride := rideJSON("2024-01-01 13:05:00", 7, "1", "1.5", "10.00", "2.00", "14.5")
	msgs := []*sarama.ProducerMessage{
		{Topic: topics.Rides, Key: nil, Value: sarama.StringEncoder("not json")},
		{Topic: topics.Rides, Key: sarama.StringEncoder(""), Value: sarama.StringEncoder("not json either")},
		{Topic: topics.Rides, Key: sarama.StringEncoder(codecs.MarkerKey), Value: sarama.ByteEncoder(final),
			Headers: []sarama.RecordHeader{{Key: []byte(codecs.HeaderKind), Value: []byte(codecs.KindWatermark)}}},
		{Topic: topics.Rides, Key: nil, Value: sarama.ByteEncoder(ride)},                      // late: after the final marker
		{Topic: topics.Rides, Key: sarama.StringEncoder(""), Value: sarama.ByteEncoder(ride)}, // late too
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	h := startPipelineApp(t, topics, eos.ExactlyOnce, "k1", topics.Rides+"-app")
	defer h.stop()

	check := func(topic string, want int) {
		t.Helper()
		got := readAll(t, topic, want, 3*time.Minute)
		if len(got) != want {
			t.Fatalf("%s holds %d records, want %d", topic, len(got), want)
		}
		// Partition order = send order: the null key first.
		if got[0].Key != nil {
			t.Errorf("%s: the null key became %q", topic, got[0].Key)
		}
		if got[1].Key == nil || len(got[1].Key) != 0 {
			t.Errorf("%s: the empty key became %#v", topic, got[1].Key)
		}
		for _, m := range got {
			if header(m, eos.HeaderNullKey) != "" {
				t.Errorf("%s: the internal %s header leaked", topic, eos.HeaderNullKey)
			}
		}
	}
	check(topics.Dead, 2)
	check(topics.Late, 2)
	for _, m := range readAll(t, topics.Late, 2, time.Minute) {
		if r := header(m, codecs.HeaderLateReason); r != codecs.LateAfterFinalMarker {
			t.Errorf("late reason %q, want %q", r, codecs.LateAfterFinalMarker)
		}
	}
}
