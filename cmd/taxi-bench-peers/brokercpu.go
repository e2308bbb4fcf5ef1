package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// brokerMeter reads the CPU time the run's own broker JVMs have used (from
// /proc/<pid>/stat). It knows nothing of a cluster given with --brokers: then every
// reading is zero and the table shows "—".
type brokerMeter struct{ pids []int }

// now is the broker's CPU time so far (0 when unknown).
func (m brokerMeter) now() time.Duration {
	var total time.Duration
	for _, pid := range m.pids {
		d, err := processCPU(pid)
		if err != nil {
			return 0
		}
		total += d
	}
	return total
}

// known reports whether the meter reads a broker.
func (m brokerMeter) known() bool { return len(m.pids) > 0 }

// processCPU is utime + stime of a process from /proc/<pid>/stat, in clock ticks of
// 10 ms (USER_HZ, 100 on Linux).
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: count from the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 > len(data) {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(data[i+2:]) // f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
