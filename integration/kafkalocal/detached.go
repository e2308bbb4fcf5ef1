package kafkalocal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DetachedNode is one node of a cluster started with Config.Detach, as recorded in
// its directory.
type DetachedNode struct {
	ID      int
	Broker  string
	PID     int
	Running bool
	Log     string
}

// Status reads the cluster directory of a detached cluster and reports each node.
func Status(dir string) ([]DetachedNode, error) {
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	var out []DetachedNode
	for _, n := range st.Nodes {
		out = append(out, DetachedNode{
			ID: n.ID, Broker: fmt.Sprintf("127.0.0.1:%d", n.Port), PID: n.PID,
			Running: n.PID > 0 && isOurJVM(n.PID, n.propsFile()), Log: n.logFile(),
		})
	}
	return out, nil
}

// StopDetached stops the nodes of a detached cluster recorded in dir: SIGTERM, then
// SIGKILL after grace.
func StopDetached(dir string, grace time.Duration) error {
	st, err := readState(dir)
	if err != nil {
		return err
	}
	var running []nodeState
	for _, n := range st.Nodes {
		if n.PID > 0 && isOurJVM(n.PID, n.propsFile()) {
			_ = syscall.Kill(n.PID, syscall.SIGTERM)
			running = append(running, n)
		}
	}
	deadline := time.Now().Add(grace)
	for _, n := range running {
		for isOurJVM(n.PID, n.propsFile()) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(n.PID, syscall.SIGKILL)
				time.Sleep(200 * time.Millisecond)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := range st.Nodes {
		st.Nodes[i].PID = 0
	}
	data, _ := json.MarshalIndent(st, "", "  ")
	return os.WriteFile(filepath.Join(dir, "cluster.json"), data, 0o644)
}

func readState(dir string) (clusterState, error) {
	var st clusterState
	data, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("no local Kafka cluster in %s (cluster.json missing)", dir)
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("read %s/cluster.json: %w", dir, err)
	}
	return st, nil
}

// isOurJVM tells whether pid is alive and runs the broker with this properties
// file, so that a reused pid is never signalled.
func isOurJVM(pid int, propsFile string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	if strings.Contains(string(cmdline), propsFile) {
		// A zombie has an empty cmdline, so reaching here means it is alive.
		return true
	}
	return false
}
