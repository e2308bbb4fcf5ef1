package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/processors/eos"
)

// TestDeferredCommitsUnderExactlyOnce: a goka callback that defers its commit
// (ctx.DeferCommit, e.g. to finish an asynchronous call) must not have its offset
// committed before the deferred work is done, and what it emitted must become
// visible with that offset, in one transaction. A deferred message that takes longer
// than the commit waits fails the commit: the transaction (its emit) is aborted and
// its offset is not committed, so the next owner processes it again.
func TestDeferredCommitsUnderExactlyOnce(t *testing.T) {
	in := kafka.Topic(t, kafkatest.Partitions(1))
	out := kafka.Topic(t, kafkatest.Partitions(1))
	group := kafkatest.UniqueName(t, "defer")
	var recs []rawRecord
	for i := range 5 {
		recs = append(recs, rawRecord{key: fmt.Sprint(i), value: []byte(fmt.Sprint("v", i))})
	}
	writeRecords(t, in, recs)

	held := make(chan func(error), 10)
	rt, err := eos.New(eos.Config{
		Brokers: kafka.Brokers(t), Group: group, Mode: eos.ExactlyOnce, TransactionalID: group + "-a",
		// The commit waits for deferred messages up to half of this (default 10 s).
		Sarama: kafkatest.SaramaConfig,
	}, eos.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	graph := goka.DefineGroup(goka.Group(group),
		goka.Input(goka.Stream(in), new(codec.String), rt.Wrap(func(ctx goka.Context, msg any) {
			commit := ctx.DeferCommit()
			ctx.Emit(goka.Stream(out), ctx.Key(), "done-"+msg.(string))
			held <- commit // the test finishes the message later
		})),
		goka.Output(goka.Stream(out), new(codec.String)),
	)
	proc, err := goka.NewProcessor(kafka.Brokers(t), graph, rt.ProcessorOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- rt.Run(ctx, proc) }()

	var commits []func(error)
	for len(commits) < 5 {
		select {
		case c := <-held:
			commits = append(commits, c)
		case err := <-runErr:
			t.Fatalf("runtime stopped: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatalf("%d of 5 messages reached the callback within 60s", len(commits))
		}
	}
	// Ten commit intervals pass with the messages deferred: nothing may be committed.
	time.Sleep(time.Second)
	if off := committedOffset(t, group, in); off > 0 {
		t.Errorf("offset %d committed while all 5 messages were still deferred", off)
	}
	if got := readAll(t, out, 0, 500*time.Millisecond); len(got) != 0 {
		t.Errorf("%d emits visible read_committed while their messages were deferred", len(got))
	}
	for _, c := range commits {
		c(nil)
	}
	if got := readAll(t, out, 5, 2*time.Minute); len(got) != 5 {
		t.Errorf("%d emits visible after the deferred messages were done, want 5", len(got))
	}
	deadline := time.Now().Add(30 * time.Second)
	for committedOffset(t, group, in) != 5 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if off := committedOffset(t, group, in); off != 5 {
		t.Errorf("committed offset %d after the deferred messages were done, want 5", off)
	}

	// A message whose deferred work takes longer than the commit waits (5 s) fails
	// the commit. (goka itself stops only once every deferred message is done, as
	// its DeferCommit requires: the work finishes late, after the failure.)
	writeRecords(t, in, []rawRecord{{key: "stuck", value: []byte("v-stuck")}})
	var stuck func(error)
	select {
	case stuck = <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the sixth message did not reach the callback")
	}
	time.Sleep(7 * time.Second)
	stuck(nil)
	select {
	case err := <-runErr:
		if err == nil || !strings.Contains(err.Error(), "deferred commits") {
			t.Errorf("runtime returned %v, want the deferred-commit timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a deferred message done after the commit's wait did not fail the commit")
	}
	if got := readAll(t, out, 5, 3*time.Second); len(got) != 5 {
		t.Errorf("%d emits visible after the failed commit, want 5 (the stuck message's emit aborted)", len(got))
	}
	if off := committedOffset(t, group, in); off != 5 {
		t.Errorf("committed offset %d after the failed commit, want 5 (the stuck message is processed again)", off)
	}
}

// committedOffset returns the group's committed offset of partition 0 (-1: none).
func committedOffset(t *testing.T, group, topic string) int64 {
	t.Helper()
	resp, err := kafka.Admin(t).ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	if err != nil {
		t.Fatal(err)
	}
	b := resp.GetBlock(topic, 0)
	if b == nil || b.Err != sarama.ErrNoError {
		return -1
	}
	return b.Offset
}
