package eos

import (
	"testing"

	"github.com/IBM/sarama"
)

// The consumers drop exactly the configured headers, keep the others in order, and
// leave a record without them as it was.
func TestDropHeaders(t *testing.T) {
	h := func(k string) *sarama.RecordHeader {
		return &sarama.RecordHeader{Key: []byte(k), Value: []byte("v-" + k)}
	}
	d := headerDropper{keys: []string{"ts-seq", "ts-row"}}
	m := &sarama.ConsumerMessage{Headers: []*sarama.RecordHeader{h("ts-seq"), h("ts-kind"), h("ts-row"), h("ts-source"), h("ts-seq")}}
	d.OnConsume(m)
	var got []string
	for _, x := range m.Headers {
		got = append(got, string(x.Key)+"="+string(x.Value))
	}
	if len(got) != 2 || got[0] != "ts-kind=v-ts-kind" || got[1] != "ts-source=v-ts-source" {
		t.Errorf("headers after the drop: %v, want [ts-kind=v-ts-kind ts-source=v-ts-source]", got)
	}
	none := &sarama.ConsumerMessage{}
	d.OnConsume(none)
	if none.Headers != nil {
		t.Errorf("a record without headers got %v", none.Headers)
	}
	keep := []*sarama.RecordHeader{h("a")}
	other := &sarama.ConsumerMessage{Headers: keep}
	d.OnConsume(other)
	if len(other.Headers) != 1 || other.Headers[0] != keep[0] {
		t.Errorf("a record without dropped headers changed: %v", other.Headers)
	}

	for _, tc := range []struct {
		drop []string
		want bool
	}{{nil, false}, {[]string{"ts-seq"}, true}} {
		r, _, _ := testRuntime(t, Config{DropHeaders: tc.drop}, Hooks{})
		found := false
		for _, i := range r.ConsumerConfig().Consumer.Interceptors {
			if _, ok := i.(headerDropper); ok {
				found = true
			}
		}
		if found != tc.want {
			t.Errorf("DropHeaders %v: interceptor installed %v, want %v", tc.drop, found, tc.want)
		}
	}
}
