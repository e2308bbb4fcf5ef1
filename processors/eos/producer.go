package eos

import (
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// producer is the one Sarama producer of a runtime. goka emits through it (it is a
// goka.Producer) and the runtime's flush hooks send through it, so everything an
// instance writes between two commits is in the same Kafka transaction.
type producer struct {
	ap sarama.AsyncProducer

	// sendMu orders sends: held messages are released before any later send.
	sendMu  sync.Mutex
	holding bool                      // guarded by sendMu
	held    []*sarama.ProducerMessage // guarded by sendMu

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

// send writes msg asynchronously; its outcome is collected by waitAcked. While the
// producer holds (a transaction is committing), msg waits for the next transaction.
func (p *producer) send(msg *sarama.ProducerMessage, finish goka.PromiseFinisher) {
	msg.Metadata = &sendMeta{finish: finish}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if p.holding {
		p.held = append(p.held, msg)
		return
	}
	p.input(msg)
}

func (p *producer) input(msg *sarama.ProducerMessage) {
	p.mu.Lock()
	p.inFlight++
	p.sent++
	p.mu.Unlock()
	p.ap.Input() <- msg
}

// hold keeps later sends out of the transaction that is being committed: they
// wait in memory until release (the next transaction) or dropHeld.
func (p *producer) hold() {
	p.sendMu.Lock()
	p.holding = true
	p.sendMu.Unlock()
}

// release sends the held messages, in order, and ends holding.
func (p *producer) release() {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	for _, msg := range p.held {
		p.input(msg)
	}
	p.held, p.holding = nil, false
}

// dropHeld fails the held messages with err (their transaction will never begin)
// and ends holding.
func (p *producer) dropHeld(err error) {
	p.sendMu.Lock()
	held := p.held
	p.held, p.holding = nil, false
	p.sendMu.Unlock()
	for _, msg := range held {
		if meta, ok := msg.Metadata.(*sendMeta); ok && meta.finish != nil {
			meta.finish(msg, err)
		}
	}
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
	msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key)}
	if _, null := headers[HeaderNullKey]; null {
		msg.Key = nil
		headers = maps.Clone(headers)
		delete(headers, HeaderNullKey)
	}
	msg.Headers = headers.ToSarama()
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
