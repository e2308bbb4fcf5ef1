package eos

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// A null key survives goka's string keys: the consumers mark it, a re-emit with the
// mark gets a null key again (and not the mark), an empty key stays empty.
func TestNullKeyRoundTrip(t *testing.T) {
	null := &sarama.ConsumerMessage{Key: nil, Headers: []*sarama.RecordHeader{{Key: []byte("h"), Value: []byte("x")}}}
	empty := &sarama.ConsumerMessage{Key: []byte{}}
	for _, m := range []*sarama.ConsumerMessage{null, empty} {
		nullKeyMarker{}.OnConsume(m)
	}
	if len(null.Headers) != 2 || string(null.Headers[1].Key) != HeaderNullKey {
		t.Fatalf("a null-key record's headers %v, want %s added", null.Headers, HeaderNullKey)
	}
	if len(empty.Headers) != 0 {
		t.Errorf("an empty key was marked null: %v", empty.Headers)
	}
	r, _, _ := testRuntime(t, Config{}, Hooks{})
	found := false
	for _, i := range r.ConsumerConfig().Consumer.Interceptors {
		_, found = i.(nullKeyMarker)
	}
	if !found {
		t.Error("the runtime's consumers do not mark null keys")
	}

	p, ap := newTestProducer(t)
	in := goka.Headers{HeaderNullKey: []byte("1"), "reason": []byte("late")}
	for range 2 { // the header map is used twice: the first send must not change it
		if err := within(t, promiseResult(p.EmitWithHeaders("late", "", nil, in)), 5*time.Second, "promise"); err != nil {
			t.Fatal(err)
		}
	}
	if err := within(t, promiseResult(p.EmitWithHeaders("late", "", nil, goka.Headers{"reason": []byte("late")})), 5*time.Second, "promise"); err != nil {
		t.Fatal(err)
	}
	if _, ok := in[HeaderNullKey]; !ok {
		t.Error("the caller's headers were changed")
	}
	msgs := ap.Msgs()
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, m := range msgs[:2] {
		if m.msg.Key != nil {
			t.Errorf("message %d: key %#v, want null", i, m.msg.Key)
		}
		if len(m.msg.Headers) != 1 || string(m.msg.Headers[0].Key) != "reason" {
			t.Errorf("message %d: headers %v, want only reason", i, m.msg.Headers)
		}
	}
	if k, _ := msgs[2].msg.Key.Encode(); msgs[2].msg.Key == nil || string(k) != "" {
		t.Errorf("an unmarked empty key became %#v", msgs[2].msg.Key)
	}
}
