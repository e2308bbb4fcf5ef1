package ingest

import (
	"strconv"

	"github.com/lovoo/goka"

	"github.com/taxi-stream/taxi-stream/topology/window"
)

// PartitionKeys returns, for each of n partitions, a key that goka's partitioner
// (FNV-1a, as Sarama's hash partitioner uses it) sends to that partition. The windows
// stage keeps one state value per partition under that key, so the partials that
// the ingest stage sends to a partition and the state they update share one key.
func PartitionKeys(n int) []string {
	keys := make([]string, n)
	found := 0
	for i := 0; found < n; i++ {
		k := "windows-" + strconv.Itoa(i)
		p := KeyPartition(k, n)
		if keys[p] == "" {
			keys[p] = k
			found++
		}
	}
	return keys
}

// KeyPartition is the partition goka's default partitioner picks for key.
func KeyPartition(key string, n int) int {
	h := goka.DefaultHasher()()
	_, _ = h.Write([]byte(key))
	p := int32(h.Sum32()) % int32(n)
	if p < 0 {
		p = -p
	}
	return int(p)
}

// WindowPartition spreads windows over the windows stage's partitions: consecutive
// window starts go to consecutive partitions.
func WindowPartition(w window.Window, spec window.Spec, n int) int {
	slot := floorDiv(w.StartMs, spec.Slide.Milliseconds())
	q := slot % int64(n)
	if q < 0 {
		q += int64(n)
	}
	return int(q)
}
