package replay

import (
	"github.com/taxi-stream/taxi-stream/producer/order"
)

// prefetcher reads the next batches of an iterator in its own goroutine while the caller
// sequences and queues the previous one, so that reading (Parquet decoding, the sort's merge)
// and queueing use two cores. Batches come out in order; the order of the rows is unchanged.
type prefetcher struct {
	it    order.Iterator
	full  chan batch
	empty chan []order.Row
	stop  chan struct{}
	done  chan struct{}
	held  []order.Row // the batch the caller holds
	err   error       // the iterator's final error (io.EOF at the end), once delivered
}

type batch struct {
	rows []order.Row
	err  error
}

// prefetch starts reading it ahead: depth batches of size rows.
func prefetch(it order.Iterator, size, depth int) *prefetcher {
	p := &prefetcher{
		it:    it,
		full:  make(chan batch, depth),
		empty: make(chan []order.Row, depth+1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	for range depth + 1 {
		p.empty <- make([]order.Row, size)
	}
	go p.run()
	return p
}

func (p *prefetcher) run() {
	defer close(p.done)
	for {
		var buf []order.Row
		select {
		case buf = <-p.empty:
		case <-p.stop:
			return
		}
		n, err := p.it.Next(buf[:cap(buf)])
		select {
		case p.full <- batch{rows: buf[:n], err: err}:
		case <-p.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// next returns the next batch of rows, valid until the following call; at the end the
// iterator's error (io.EOF).
func (p *prefetcher) next() ([]order.Row, error) {
	if p.err != nil {
		return nil, p.err // the reader has stopped
	}
	if p.held != nil {
		p.empty <- p.held[:cap(p.held)]
		p.held = nil
	}
	b := <-p.full
	if b.err != nil {
		p.err = b.err
		return nil, b.err
	}
	p.held = b.rows
	return b.rows, nil
}

// close stops the reader goroutine (the caller closes the iterator).
func (p *prefetcher) close() {
	close(p.stop)
	<-p.done
}
