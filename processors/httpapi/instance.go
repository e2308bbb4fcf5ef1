package httpapi

import (
	"context"
	"slices"
	"strings"

	"github.com/lovoo/goka"

	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/processors/ingest"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
)

// instance is what the server reads from this instance's pipeline. Every method
// is cheap or bounded by ctx, and safe to call at any time.
type instance interface {
	Stats() pipeline.Stats
	Health() []pipeline.StageHealth
	Stopping() bool
	// Stages reports each stage's processor, ingest first.
	Stages() []stageState
	// Watermarks are the owned ingest partitions' watermarks as of the last commit.
	Watermarks() map[int32]watermark.Mark
	// Owned lists the input partitions this instance's consumer groups own.
	Owned() []ownedPartition
	// Tables describes the windows group-table partitions this instance holds.
	Tables(ctx context.Context) []tablePartition
}

type stageState struct {
	Name      string
	Started   bool // a processor has been built
	Recovered bool // the processor is running with its state recovered
}

type ownedPartition struct {
	Group, Topic string
	Partition    int32
}

func compareOwned(a, b ownedPartition) int {
	if c := strings.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return int(a.Partition) - int(b.Partition)
}

// tablePartition is one windows group-table partition held by this instance.
type tablePartition struct {
	Partition int32
	Active    bool // claimed by this instance (false: a hot-standby copy)
	Recovered bool
	// RestoreRemaining is how many changelog records are still to be restored
	// (0 once recovered).
	RestoreRemaining int64
	// Bytes and OpenCells describe the local state value (active and recovered only).
	Bytes, OpenCells int
	HasState         bool
}

// pipelineInstance reads a *pipeline.Pipeline.
type pipelineInstance struct{ p *pipeline.Pipeline }

func (pi pipelineInstance) Stats() pipeline.Stats          { return pi.p.Stats() }
func (pi pipelineInstance) Health() []pipeline.StageHealth { return pi.p.Health() }
func (pi pipelineInstance) Stopping() bool                 { return pi.p.Stopping() }

func (pi pipelineInstance) Stages() []stageState {
	in, win := pi.p.Processors()
	out := []stageState{{Name: pipeline.StageIngest}, {Name: pipeline.StageWindows}}
	for i, proc := range []*goka.Processor{in, win} {
		if proc != nil {
			out[i].Started = true
			out[i].Recovered = proc.Recovered()
		}
	}
	return out
}

func (pi pipelineInstance) Watermarks() map[int32]watermark.Mark {
	in, _ := pi.p.Stages()
	if in == nil {
		return nil
	}
	return in.Watermarks()
}

func (pi pipelineInstance) Owned() []ownedPartition {
	var out []ownedPartition
	irt, wrt := pi.p.Runtimes()
	if irt != nil {
		out = appendClaims(out, irt.Group(), irt.Claims())
	}
	if wrt != nil {
		out = appendClaims(out, wrt.Group(), wrt.Claims())
	}
	slices.SortFunc(out, compareOwned)
	return out
}

func appendClaims(out []ownedPartition, group string, claims map[string][]int32) []ownedPartition {
	for topic, parts := range claims {
		for _, p := range parts {
			out = append(out, ownedPartition{Group: group, Topic: topic, Partition: p})
		}
	}
	return out
}

func (pi pipelineInstance) Tables(ctx context.Context) []tablePartition {
	_, proc := pi.p.Processors()
	topo, ok := pi.p.Topology()
	if proc == nil || !ok {
		return nil
	}
	claimed := map[int32]bool{}
	if _, wrt := pi.p.Runtimes(); wrt != nil {
		for _, p := range wrt.Claims()[topo.Topics.Windows] {
			claimed[p] = true
		}
	}
	keys := ingest.PartitionKeys(topo.WindowsPartitions)
	stats := proc.StatsWithContext(ctx)
	var out []tablePartition
	for id, ps := range stats.Group {
		ts := ps.TableStats
		if ts == nil {
			continue
		}
		tp := tablePartition{Partition: id, Active: claimed[id], Recovered: ts.Status == goka.PartitionRunning}
		if !tp.Recovered && ts.Recovery != nil && ts.Recovery.Hwm > 0 {
			tp.RestoreRemaining = max(0, ts.Recovery.Hwm-ts.Recovery.Offset-1)
		}
		if tp.Active && tp.Recovered && int(id) < len(keys) {
			if v, err := proc.Get(keys[id]); err == nil {
				if raw, _ := v.([]byte); raw != nil {
					var st aggregate.State
					if err := st.UnmarshalBinary(raw); err == nil {
						tp.Bytes, tp.OpenCells, tp.HasState = len(raw), st.Len(), true
					}
				}
			}
		}
		out = append(out, tp)
	}
	slices.SortFunc(out, func(a, b tablePartition) int { return int(a.Partition) - int(b.Partition) })
	return out
}
