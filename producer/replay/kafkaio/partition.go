package kafkaio

// Partition returns the partition of key among n partitions (n > 0) the way sarama's hash
// partitioner, kafka-go's Hash balancer and goka's default hasher (used by goka views to find
// a key) pick it: the FNV-1a 32-bit hash of the key as an int32, modulo n, negated if
// negative. Writing a key to this partition is what lets a goka lookup table find it.
//
// Hot path of the replay (one call per ride); it does not allocate.
func Partition(key []byte, n int) int {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for _, b := range key {
		h ^= uint32(b)
		h *= prime32
	}
	p := int32(h) % int32(n)
	if p < 0 {
		p = -p
	}
	return int(p)
}
