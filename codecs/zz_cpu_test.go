package codecs

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZCPU(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	msgs := map[string][]byte{"ours": AppendTripJSON(nil, &syntheticTrips[0].trip), "pandas": []byte(pandasRide), "2025": AppendTripJSON(nil, &syntheticTrips[3].trip)}
	for name, m := range msgs {
		best := time.Hour
		for r := 0; r < 5; r++ {
			const n = 300000
			start := cpuNow()
			for i := 0; i < n; i++ {
				DecodeRideFacts(m, "")
			}
			best = min(best, (cpuNow()-start)/n)
		}
		t.Logf("%s: %v cpu/op (%d bytes)", name, best, len(m))
	}
}
