package eos

import "github.com/IBM/sarama"

// HeaderNullKey marks a record whose Kafka key is null. goka's keys are strings, so
// a callback cannot tell a null key from an empty one: the runtime's consumers add
// this header to every consumed record with a null key, and its producer sends a
// message that carries the header with a null key (and without the header). A
// callback that re-emits an input (a late ride, a dead letter) passes the header on,
// so the key stays exactly as it was.
const HeaderNullKey = "ts-null-key"

// nullKeyMarker is the consumers' interceptor that adds HeaderNullKey.
type nullKeyMarker struct{}

func (nullKeyMarker) OnConsume(m *sarama.ConsumerMessage) {
	if m.Key == nil {
		m.Headers = append(m.Headers, &sarama.RecordHeader{Key: []byte(HeaderNullKey), Value: []byte("1")})
	}
}
