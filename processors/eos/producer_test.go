package eos

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

func newTestProducer(t *testing.T) (*producer, *fakeAP) {
	t.Helper()
	ap := newFakeAP()
	p := newProducer(ap)
	t.Cleanup(func() { _ = p.close() })
	return p, ap
}

// promiseResult returns a channel that delivers the promise's outcome.
func promiseResult(pr *goka.Promise) <-chan error {
	ch := make(chan error, 1)
	pr.Then(func(err error) { ch <- err })
	return ch
}

func TestProducerEmit(t *testing.T) {
	p, ap := newTestProducer(t)
	hdrs := goka.Headers{"h": []byte("x")}
	res := promiseResult(p.EmitWithHeaders("out", "key", []byte("value"), hdrs))
	if err := within(t, res, 5*time.Second, "promise"); err != nil {
		t.Fatal(err)
	}
	del := promiseResult(p.Emit("out", "gone", nil))
	if err := within(t, del, 5*time.Second, "promise"); err != nil {
		t.Fatal(err)
	}
	if err := p.waitAcked(); err != nil {
		t.Fatal(err)
	}
	msgs := ap.Msgs()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0].msg
	v, _ := m.Value.Encode()
	if m.Topic != "out" || string(v) != "value" || len(m.Headers) != 1 || string(m.Headers[0].Key) != "h" || string(m.Headers[0].Value) != "x" {
		t.Errorf("message %+v", m)
	}
	if msgs[1].msg.Value != nil {
		t.Errorf("a nil value must stay nil (a tombstone), got %#v", msgs[1].msg.Value)
	}
	if p.sentCount() != 2 {
		t.Errorf("sentCount %d", p.sentCount())
	}
	// goka closes its producer when a processor stops: the runtime's stays open.
	if err := p.Close(); err != nil || ap.isClosed() {
		t.Errorf("Close() = %v, closed the producer: %v", err, ap.isClosed())
	}
}

func TestProducerWaitAckedReportsFirstError(t *testing.T) {
	p, ap := newTestProducer(t)
	first, second := errors.New("first"), errors.New("second")
	errs := []error{nil, first, second}
	ap.setResult(func(*sarama.ProducerMessage) error { e := errs[0]; errs = errs[1:]; return e })
	var results []<-chan error
	for _, topic := range []string{"a", "b", "c"} {
		results = append(results, promiseResult(p.Emit(topic, "", nil)))
	}
	err := p.waitAcked()
	if !errors.Is(err, first) || !strings.Contains(err.Error(), "write to b/0") {
		t.Fatalf("waitAcked() = %v, want the first failure (b)", err)
	}
	for i, want := range []error{nil, first, second} {
		if got := within(t, results[i], time.Second, "promise"); got != want {
			t.Errorf("promise %d: %v, want %v", i, got, want)
		}
	}
}

// TestProducerWaitAckedWaits: waitAcked returns only once every message sent is
// acknowledged.
func TestProducerWaitAckedWaits(t *testing.T) {
	p, ap := newTestProducer(t)
	arrived, answer := blockingAcks(ap)
	p.send(&sarama.ProducerMessage{Topic: "out"}, nil) // the runtime's own send: no promise
	within(t, arrived, 5*time.Second, "send")
	acked := make(chan error, 1)
	go func() { acked <- p.waitAcked() }()
	never(t, acked, 30*time.Millisecond, "waitAcked returning before the ack")
	answer <- nil
	if err := within(t, acked, 5*time.Second, "waitAcked"); err != nil {
		t.Fatal(err)
	}
}

func TestProducerHoldRelease(t *testing.T) {
	p, ap := newTestProducer(t)
	p.hold()
	r1 := promiseResult(p.Emit("out", "1", nil))
	p.send(&sarama.ProducerMessage{Topic: "out", Key: sarama.StringEncoder("2")}, nil)
	r3 := promiseResult(p.Emit("out", "3", nil))
	if err := p.waitAcked(); err != nil { // held messages are not in flight
		t.Fatal(err)
	}
	if n := len(ap.Msgs()); n != 0 || p.sentCount() != 0 {
		t.Fatalf("%d held messages reached the producer (sent %d)", n, p.sentCount())
	}
	p.release()
	if err := p.waitAcked(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ap.Msgs() {
		got = append(got, msgName(m.msg))
	}
	if strings.Join(got, " ") != "out/1 out/2 out/3" {
		t.Errorf("released %v, want in send order", got)
	}
	for _, r := range []<-chan error{r1, r3} {
		if err := within(t, r, time.Second, "promise"); err != nil {
			t.Error(err)
		}
	}
	// Released: later sends go straight through.
	p.Emit("out", "4", nil)
	if err := p.waitAcked(); err != nil || len(ap.Msgs()) != 4 {
		t.Errorf("send after release: %v, %d messages", err, len(ap.Msgs()))
	}
}

func TestProducerDropHeld(t *testing.T) {
	p, ap := newTestProducer(t)
	p.hold()
	res := promiseResult(p.Emit("out", "1", nil))
	p.send(&sarama.ProducerMessage{Topic: "out"}, nil)
	boom := errors.New("transaction failed")
	p.dropHeld(boom)
	if err := within(t, res, time.Second, "promise"); err != boom {
		t.Errorf("dropped message's promise: %v, want %v", err, boom)
	}
	if len(ap.Msgs()) != 0 || p.sentCount() != 0 {
		t.Errorf("dropped messages were sent")
	}
	// No longer holding; nothing left to release.
	p.Emit("out", "2", nil)
	p.release()
	if err := p.waitAcked(); err != nil || len(ap.Msgs()) != 1 {
		t.Errorf("after dropHeld: %v, %d messages", err, len(ap.Msgs()))
	}
}

func TestProducerClose(t *testing.T) {
	ap := newFakeAP()
	p := newProducer(ap)
	ap.closeErr = sarama.ProducerErrors{} // sarama's Close: no message failed
	if err := p.close(); err != nil {
		t.Errorf("close() = %v, want nil for an empty ProducerErrors", err)
	}
	ap2 := newFakeAP()
	p2 := newProducer(ap2)
	ap2.closeErr = sarama.ProducerErrors{{Msg: &sarama.ProducerMessage{}, Err: sarama.ErrOutOfBrokers}}
	if err := p2.close(); err == nil {
		t.Errorf("close() hid a failed message")
	}
	ap3 := newFakeAP()
	p3 := newProducer(ap3)
	ap3.closeErr = errors.New("closing")
	if err := p3.close(); err == nil || err.Error() != "closing" {
		t.Errorf("close() = %v", err)
	}
}
