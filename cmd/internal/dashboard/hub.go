package dashboard

import (
	"bytes"
	"encoding/json"
	"sync"
)

// entry is one final result as read from the results topic, numbered in the order
// this server received it (seq starts at 1).
type entry struct {
	Seq   int64           `json:"-"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// hub holds what the page shows: every final result received so far (an append-only
// log, so each connection keeps its own cursor and a slow browser never blocks the
// others) and the latest merged status of the query API. Subscribers are woken on
// every change.
type hub struct {
	mu        sync.Mutex
	log       []entry
	latest    map[string][]byte // key -> value last appended (exact duplicates are dropped)
	status    []byte            // the latest status event's JSON
	statusVer int64
	subs      map[chan struct{}]struct{}
}

func newHub() *hub {
	return &hub{latest: map[string][]byte{}, subs: map[chan struct{}]struct{}{}}
}

// addResult appends a result unless the same key already holds the same bytes (the
// results reader starts over from the oldest offset after a reconnect). A key that
// comes again with another value (a re-run in at-least-once mode) is appended; the
// page keeps the last value per key.
func (h *hub) addResult(key string, value []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.latest[key]; ok && bytes.Equal(old, value) {
		return false
	}
	v := bytes.Clone(value)
	h.latest[key] = v
	h.log = append(h.log, entry{Seq: int64(len(h.log)) + 1, Key: key, Value: v})
	h.wakeLocked()
	return true
}

// results returns the entries after seq (at most max; 0: all).
func (h *hub) results(after int64, max int) []entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	if after < 0 {
		after = 0
	}
	if after >= int64(len(h.log)) {
		return nil
	}
	out := h.log[after:]
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out // entries are never modified after they are appended
}

// count is the number of entries held.
func (h *hub) count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return int64(len(h.log))
}

// setStatus replaces the status snapshot.
func (h *hub) setStatus(b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status = b
	h.statusVer++
	h.wakeLocked()
}

// statusSince returns the status snapshot if its version is newer than ver.
func (h *hub) statusSince(ver int64) ([]byte, int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.statusVer == ver || h.status == nil {
		return nil, ver, false
	}
	return h.status, h.statusVer, true
}

// subscribe returns a channel that receives a value after each change (changes
// coalesce: the receiver then reads everything new) and a function to unsubscribe.
func (h *hub) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

func (h *hub) wakeLocked() {
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
