package results

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

func TestWriteTable(t *testing.T) {
	w := window.Window{StartMs: 1704114000000, EndMs: 1704117600000}
	rs := []aggregate.Result{
		{Window: w, Borough: "Queens", Sums: aggregate.Sums{Count: 3, PassengerSum: 4, PassengerCount: 3, DistanceHundredths: 1050, TipCents: 300, FareCents: 3000, TotalCents: 4050}},
		{Window: w, Borough: "EWR", Sums: aggregate.Sums{Count: 1, DistanceHundredths: 5, FareCents: -701, TotalCents: -701}},
	}
	var b strings.Builder
	if err := WriteTable(&b, rs); err != nil {
		t.Fatal(err)
	}
	want := `-------------------------------------------
Window: 2024-01-01 13:00:00 - 2024-01-01 14:00:00
-------------------------------------------
+-------------+---------+-------------+-------------+-----------+------------+---------+-------+-----------+--------------+
|PickupBorough|TripCount|AvgPassengers|TotalDistance|AvgDistance|AvgTipAmount|TotalFare|AvgFare|TotalAmount|AvgTotalAmount|
+-------------+---------+-------------+-------------+-----------+------------+---------+-------+-----------+--------------+
|Queens       |        3|         1.33|        10.50|       3.50|        1.00|    30.00|  10.00|      40.50|         13.50|
|EWR          |        1|         null|         0.05|       0.05|        0.00|    -7.01|  -7.01|      -7.01|         -7.01|
+-------------+---------+-------------+-------------+-----------+------------+---------+-------+-----------+--------------+

`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestGrouperHandsOverWindowsOldestFirstSortedByBorough(t *testing.T) {
	g := Grouper{}
	w1 := window.Window{StartMs: 3600000, EndMs: 7200000}
	w0 := window.Window{StartMs: 0, EndMs: 3600000}
	g.Add(aggregate.Result{Window: w1, Borough: "Queens"})
	g.Add(aggregate.Result{Window: w0, Borough: "Queens"})
	g.Add(aggregate.Result{Window: w1, Borough: "Bronx"})
	got := g.Ready(true)
	if len(got) != 2 || got[0][0].Window != w0 || got[1][0].Borough != "Bronx" || got[1][1].Borough != "Queens" {
		t.Fatalf("Ready = %+v", got)
	}
	if len(g.Ready(true)) != 0 {
		t.Fatal("windows handed over twice")
	}
}

// partitionsAfter is a consumer whose topic appears after n metadata look-ups.
type partitionsAfter struct {
	sarama.Consumer
	n, calls int
}

func (c *partitionsAfter) Partitions(string) ([]int32, error) {
	c.calls++
	if c.calls <= c.n {
		return nil, sarama.ErrUnknownTopicOrPartition
	}
	return []int32{0, 1}, nil
}

// A reader started before the processor created the results topic waits for it;
// past the wait it fails naming the topic and the flag.
func TestWaitForTopic(t *testing.T) {
	c := &partitionsAfter{n: 2}
	parts, err := waitForTopic(context.Background(), c, "res", time.Minute)
	if err != nil || len(parts) != 2 || c.calls != 3 {
		t.Fatalf("parts %v, err %v after %d look-ups; want the partitions on the 3rd", parts, err, c.calls)
	}
	_, err = waitForTopic(context.Background(), &partitionsAfter{n: 1 << 30}, "res", 600*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "topic res does not exist") || !strings.Contains(err.Error(), "--topic-wait") {
		t.Errorf("err = %v, want the topic and --topic-wait named", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := waitForTopic(ctx, &partitionsAfter{n: 1 << 30}, "res", -1); !errors.Is(err, context.Canceled) {
		t.Errorf("a negative wait ends only with the context: %v", err)
	}
}

// A revision replaces its borough's earlier record in a window still gathered, and
// the table says which boroughs were revised.
func TestGrouperAndTableShowRevisions(t *testing.T) {
	g := Grouper{}
	w := window.Window{StartMs: 1704114000000, EndMs: 1704117600000}
	g.Add(aggregate.Result{Window: w, Borough: "Queens", Sums: aggregate.Sums{Count: 1}})
	g.Add(aggregate.Result{Window: w, Borough: "Queens", Sums: aggregate.Sums{Count: 3}, Revision: 2})
	g.Add(aggregate.Result{Window: w, Borough: "Queens", Sums: aggregate.Sums{Count: 2}, Revision: 1}) // older: ignored
	got := g.Ready(true)
	if len(got) != 1 || len(got[0]) != 1 || got[0][0].Revision != 2 || got[0][0].Sums.Count != 3 {
		t.Fatalf("Ready = %+v; want Queens revision 2 only", got)
	}
	var b strings.Builder
	if err := WriteTable(&b, got[0]); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Window: 2024-01-01 13:00:00 - 2024-01-01 14:00:00 (revised: Queens revision 2)") {
		t.Errorf("table title does not name the revision:\n%s", b.String())
	}
}
