package eos

import "github.com/IBM/sarama"

// headerDropper is the consumers' interceptor of Config.DropHeaders: it removes the
// listed headers from every consumed record before goka sees it. goka copies all of a
// record's headers into a new map whenever a callback asks for any one of them
// (Context.Headers); on the rides topic that map held the replay's three provenance
// headers for every ride: 9 % of the processor's CPU and 18 % of its allocations on a
// 2M-ride backlog (docs/benchmarks.md, "Where the user path's CPU goes").
type headerDropper struct{ keys []string }

func (d headerDropper) OnConsume(m *sarama.ConsumerMessage) {
	n := 0
	for _, h := range m.Headers {
		if h != nil && !d.drops(h.Key) {
			m.Headers[n] = h
			n++
		}
	}
	if n == len(m.Headers) {
		return
	}
	clear(m.Headers[n:])
	m.Headers = m.Headers[:n]
}

func (d headerDropper) drops(key []byte) bool {
	for _, k := range d.keys {
		if string(key) == k {
			return true
		}
	}
	return false
}
