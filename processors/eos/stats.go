package eos

// Read-only accessors for metrics and health checks.

// Group returns the consumer group (goka group) the runtime commits for.
func (r *Runtime) Group() string { return r.cfg.Group }

// Claims returns the input partitions of the current consumer-group generation,
// by topic (nil between generations). The map is a copy.
func (r *Runtime) Claims() map[string][]int32 {
	r.mu.Lock()
	s := r.sess
	r.mu.Unlock()
	if s == nil {
		return nil
	}
	out := map[string][]int32{}
	for topic, parts := range s.Claims() {
		out[topic] = append([]int32(nil), parts...)
	}
	return out
}
