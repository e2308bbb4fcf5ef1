package main

import (
	"os"
	"testing"
	"time"
)

func TestProcessCPUReadsThisProcess(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// 300 ms of spinning on one goroutine: at least one tick even on a machine shared
	// many ways, and not more than the wall time of the whole test process can explain.
	if d := after - before; d < 10*time.Millisecond {
		t.Errorf("CPU grew by %v over 300 ms of spinning (x=%d)", d, x)
	}
	if m := (brokerMeter{}); m.known() || m.now() != 0 {
		t.Errorf("a meter without processes reads %v", m.now())
	}
	if _, err := processCPU(-1); err == nil {
		t.Error("no error for pid -1")
	}
}
