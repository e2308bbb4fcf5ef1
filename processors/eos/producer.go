package eos

import (
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// producer is the one Sarama producer of a runtime. goka emits through it (it is a
// goka.Producer) and the runtime's flush hooks send through it, so everything an
// instance writes between two commits is in the same Kafka transaction.
type producer struct {
	ap sarama.AsyncProducer

	mu       sync.Mutex
	cond     *sync.Cond
	inFlight int   // messages sent and not yet acknowledged
	failed   error // first send error since the last commit
	sent     int64 // messages ever sent

	wg sync.WaitGroup
}

// sendMeta travels in ProducerMessage.Metadata.
type sendMeta struct {
	finish goka.PromiseFinisher // nil for the runtime's own sends
}

func newProducer(ap sarama.AsyncProducer) *producer {
	p := &producer{ap: ap}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		for msg := range ap.Successes() {
			p.done(msg, nil)
		}
	}()
	go func() {
		defer p.wg.Done()
		for perr := range ap.Errors() {
			p.done(perr.Msg, perr.Err)
		}
	}()
	return p
}

func (p *producer) done(msg *sarama.ProducerMessage, err error) {
	if meta, ok := msg.Metadata.(*sendMeta); ok && meta.finish != nil {
		meta.finish(msg, err)
	}
	p.mu.Lock()
	p.inFlight--
	if err != nil && p.failed == nil {
		p.failed = fmt.Errorf("write to %s/%d: %w", msg.Topic, msg.Partition, err)
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// send writes msg asynchronously; its outcome is collected by waitAcked.
func (p *producer) send(msg *sarama.ProducerMessage, finish goka.PromiseFinisher) {
	p.mu.Lock()
	p.inFlight++
	p.sent++
	p.mu.Unlock()
	msg.Metadata = &sendMeta{finish: finish}
	p.ap.Input() <- msg
}

// waitAcked waits until every message sent so far is acknowledged and returns the
// first error since the last reset.
func (p *producer) waitAcked() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.inFlight > 0 {
		p.cond.Wait()
	}
	return p.failed
}

func (p *producer) sentCount() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// Emit implements goka.Producer.
func (p *producer) Emit(topic, key string, value []byte) *goka.Promise {
	return p.EmitWithHeaders(topic, key, value, nil)
}

// EmitWithHeaders implements goka.Producer.
func (p *producer) EmitWithHeaders(topic, key string, value []byte, headers goka.Headers) *goka.Promise {
	promise, finish := goka.NewPromiseWithFinisher()
	msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Headers: headers.ToSarama()}
	if value != nil {
		msg.Value = sarama.ByteEncoder(value)
	}
	p.send(msg, finish)
	return promise
}

// Close implements goka.Producer. goka closes its producer when a processor stops;
// the runtime owns this one and closes it itself (close).
func (p *producer) Close() error { return nil }

func (p *producer) close() error {
	err := p.ap.Close()
	p.wg.Wait()
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) && len(perrs) == 0 {
		err = nil
	}
	return err
}
