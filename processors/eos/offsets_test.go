package eos

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// A partition log for lastVisibleIn, built batch by batch.
type logBatch struct {
	first, last int64 // offsets
	producerID  int64
	txn         bool
	marker      string // "abort" or "commit": a control batch (one record)
}

type testLog struct {
	batches []logBatch
	aborted []abortedTxn
}

// abortedTxn is an aborted transaction as the broker's index knows it: from its
// first offset to its abort marker.
type abortedTxn struct {
	producerID    int64
	first, marker int64
}

func (l *testLog) data(first, last int64) *testLog {
	l.batches = append(l.batches, logBatch{first: first, last: last, producerID: -1})
	return l
}

func (l *testLog) txn(pid, first, last int64) *testLog {
	l.batches = append(l.batches, logBatch{first: first, last: last, producerID: pid, txn: true})
	return l
}

func (l *testLog) commit(pid, at int64) *testLog {
	l.batches = append(l.batches, logBatch{first: at, last: at, producerID: pid, txn: true, marker: "commit"})
	return l
}

// abort writes pid's abort marker at offset at; its transaction began at first.
func (l *testLog) abort(pid, first, at int64) *testLog {
	l.batches = append(l.batches, logBatch{first: at, last: at, producerID: pid, txn: true, marker: "abort"})
	l.aborted = append(l.aborted, abortedTxn{producerID: pid, first: first, marker: at})
	return l
}

func (b logBatch) recordBatch() *sarama.RecordBatch {
	rb := &sarama.RecordBatch{
		Version: 2, FirstOffset: b.first, LastOffsetDelta: int32(b.last - b.first),
		ProducerID: b.producerID, IsTransactional: b.txn, Control: b.marker != "",
	}
	if b.marker != "" {
		typ := byte(1) // commit
		if b.marker == "abort" {
			typ = 0
		}
		rb.Records = []*sarama.Record{{Key: []byte{0, 0, 0, typ}, Value: []byte{0, 0, 0, 0, 0, 0}}}
		return rb
	}
	for o := b.first; o <= b.last; o++ {
		rb.Records = append(rb.Records, &sarama.Record{OffsetDelta: o - b.first, Value: []byte("v")})
	}
	return rb
}

// logFetcher serves a testLog as a broker does: from the batch that holds the fetch
// offset on, at most perFetch batches, with the aborted transactions that overlap
// the returned range. It follows the reader's position (the end of the batches it
// returned); the first fetch is at start.
type logFetcher struct {
	t        *testing.T
	log      *testLog
	perFetch int
	pos      int64
	fetches  int
	err      error
	resp     *sarama.FetchResponse // served as is when set
}

func (f *logFetcher) Fetch(req *sarama.FetchRequest) (*sarama.FetchResponse, error) {
	f.fetches++
	if req.Isolation != sarama.ReadCommitted {
		f.t.Errorf("fetch isolation %v, want read_committed", req.Isolation)
	}
	if f.err != nil {
		return nil, f.err
	}
	if f.resp != nil {
		return f.resp, nil
	}
	resp := &sarama.FetchResponse{Version: 11}
	resp.AddError("t", 0, sarama.ErrNoError)
	block := resp.GetBlock("t", 0)
	var end int64 = -1
	for _, b := range f.log.batches {
		if b.last < f.pos || len(block.RecordsSet) == f.perFetch {
			continue
		}
		block.RecordsSet = append(block.RecordsSet, &sarama.Records{RecordBatch: b.recordBatch()})
		end = b.last
	}
	for _, a := range f.log.aborted {
		if a.marker >= f.pos && a.first <= end {
			block.AbortedTransactions = append(block.AbortedTransactions, &sarama.AbortedTransaction{ProducerID: a.producerID, FirstOffset: a.first})
		}
	}
	if end >= 0 {
		f.pos = end + 1
	}
	return resp, nil
}

func TestLastVisibleIn(t *testing.T) {
	for name, tc := range map[string]struct {
		log      *testLog
		from, to int64
		perFetch int
		want     int64
	}{
		"plain records":   {new(testLog).data(0, 4), 0, 5, 0, 4},
		"empty range":     {new(testLog).data(0, 4), 3, 3, 0, -1},
		"range limits":    {new(testLog).data(0, 9), 2, 4, 0, 3},
		"commit marker":   {new(testLog).txn(1, 0, 2).commit(1, 3), 0, 4, 0, 2},
		"aborted at end":  {new(testLog).data(0, 1).txn(2, 2, 3).abort(2, 2, 4), 0, 5, 0, 1},
		"only aborted":    {new(testLog).txn(2, 0, 3).abort(2, 0, 4), 0, 5, 0, -1},
		"open txn beyond": {new(testLog).data(0, 1).txn(2, 2, 3), 0, 2, 0, 1},
		// A restarted instance keeps its producer id: its committed transaction
		// after the aborted one is visible.
		"same producer aborted then committed": {new(testLog).txn(1, 0, 0).abort(1, 0, 1).txn(1, 2, 2).commit(1, 3), 0, 4, 0, 2},
		"interleaved producers":                {new(testLog).txn(1, 0, 0).txn(2, 1, 1).abort(1, 0, 2).commit(2, 3), 0, 4, 0, 1},
		"interleaved, aborted last":            {new(testLog).txn(1, 0, 0).txn(2, 1, 1).commit(2, 2).txn(1, 3, 3).abort(1, 0, 4), 0, 5, 0, 1},
		"non-transactional during an abort":    {new(testLog).txn(1, 0, 0).data(1, 1).abort(1, 0, 2), 0, 3, 0, 1},
		// One batch per fetch: the aborted transaction spans fetches.
		"across fetches":         {new(testLog).data(4, 4).txn(1, 5, 5).txn(1, 6, 6).abort(1, 5, 7).data(8, 8), 5, 9, 1, 8},
		"across fetches, hidden": {new(testLog).data(4, 4).txn(1, 5, 5).txn(1, 6, 6).abort(1, 5, 7), 5, 8, 1, -1},
		"across fetches, commit": {new(testLog).txn(1, 0, 0).abort(1, 0, 1).txn(1, 2, 2).txn(1, 3, 3).commit(1, 4), 0, 5, 1, 3},
		// The window starts inside an aborted transaction.
		"from inside an abort": {new(testLog).data(0, 0).txn(1, 1, 1).txn(1, 2, 2).abort(1, 1, 3), 2, 4, 0, -1},
	} {
		t.Run(name, func(t *testing.T) {
			f := &logFetcher{t: t, log: tc.log, perFetch: tc.perFetch, pos: tc.from}
			if f.perFetch == 0 {
				f.perFetch = 1000
			}
			got, err := lastVisibleIn(f, "t", 0, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("lastVisibleIn(%d, %d) = %d, want %d", tc.from, tc.to, got, tc.want)
			}
		})
	}
}

func TestLastVisibleInErrors(t *testing.T) {
	boom := errors.New("connection reset")
	if _, err := lastVisibleIn(&logFetcher{t: t, err: boom}, "t", 0, 0, 5); !errors.Is(err, boom) {
		t.Errorf("fetch error: %v", err)
	}
	if _, err := lastVisibleIn(&logFetcher{t: t, resp: &sarama.FetchResponse{Version: 11}}, "t", 0, 0, 5); err == nil || !strings.Contains(err.Error(), "no block") {
		t.Errorf("missing block: %v", err)
	}
	resp := &sarama.FetchResponse{Version: 11}
	resp.AddError("t", 0, sarama.ErrNotLeaderForPartition)
	if _, err := lastVisibleIn(&logFetcher{t: t, resp: resp}, "t", 0, 0, 5); !errors.Is(err, sarama.ErrNotLeaderForPartition) {
		t.Errorf("block error: %v", err)
	}
	// A response without progress ends the scan.
	empty := &sarama.FetchResponse{Version: 11}
	empty.AddError("t", 0, sarama.ErrNoError)
	f := &logFetcher{t: t, resp: empty}
	if got, err := lastVisibleIn(f, "t", 0, 0, 5); err != nil || got != -1 || f.fetches != 1 {
		t.Errorf("no progress: %d, %v after %d fetches", got, err, f.fetches)
	}
}

func TestIsAbortMarker(t *testing.T) {
	for key, want := range map[string]bool{
		"\x00\x00\x00\x00": true,  // version 0, type 0 (abort)
		"\x00\x00\x00\x01": false, // commit
		"\x00\x00\x00":     false, // short
	} {
		if got := isAbortMarker(&sarama.Record{Key: []byte(key)}); got != want {
			t.Errorf("isAbortMarker(%q) = %v", key, got)
		}
	}
}

// partitionBroker is a MockBroker that leads topic t partition 0 with the given
// list-offsets and fetch answers.
func partitionBroker(t *testing.T, offsets, fetch sarama.MockResponse) *sarama.MockBroker {
	t.Helper()
	mb := sarama.NewMockBroker(t, 1)
	t.Cleanup(mb.Close)
	handlers := map[string]sarama.MockResponse{
		"MetadataRequest": sarama.NewMockMetadataResponse(t).SetBroker(mb.Addr(), mb.BrokerID()).
			SetController(mb.BrokerID()).SetLeader("t", 0, mb.BrokerID()),
		"OffsetRequest": offsets,
	}
	if fetch != nil {
		handlers["FetchRequest"] = fetch
	}
	mb.SetHandlerByMap(handlers)
	return mb
}

func newMockClient(t *testing.T, mb *sarama.MockBroker) sarama.Client {
	t.Helper()
	c, err := sarama.NewClient([]string{mb.Addr()}, mockSarama())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestLastVisibleOffsetOverTheWire runs the scan against a mock broker: records,
// transaction markers and the aborted-transaction list go through sarama's
// encoding.
func TestLastVisibleOffsetOverTheWire(t *testing.T) {
	fetch := &sarama.FetchResponse{Version: 11}
	fetch.AddRecordBatch("t", 0, nil, sarama.StringEncoder("visible"), 0, -1, false)
	fetch.AddRecordBatch("t", 0, nil, sarama.StringEncoder("aborted"), 1, 7, true)
	fetch.AddRecordBatch("t", 0, nil, sarama.StringEncoder("aborted"), 2, 7, true)
	fetch.AddControlRecord("t", 0, 3, 7, sarama.ControlRecordAbort)
	fetch.GetBlock("t", 0).AbortedTransactions = []*sarama.AbortedTransaction{{ProducerID: 7, FirstOffset: 1}}
	mb := partitionBroker(t, sarama.NewMockOffsetResponse(t).SetOffset("t", 0, sarama.OffsetOldest, 0).SetOffset("t", 0, sarama.OffsetNewest, 4),
		sarama.NewMockWrapper(fetch))
	got, err := LastVisibleOffset(newMockClient(t, mb), "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got != 1 {
		t.Errorf("LastVisibleOffset = %d, want 1 (after the last record outside the aborted transaction)", got)
	}
}

// TestLastVisibleOffsetWidensWindow: no visible record in the last 512 offsets: the
// scan goes further back.
func TestLastVisibleOffsetWidensWindow(t *testing.T) {
	near := &sarama.FetchResponse{Version: 11}
	near.AddControlRecord("t", 0, 999, 7, sarama.ControlRecordCommit)
	far := &sarama.FetchResponse{Version: 11}
	far.AddRecordBatch("t", 0, nil, sarama.StringEncoder("old"), 5, -1, false)
	mb := partitionBroker(t, sarama.NewMockOffsetResponse(t).SetOffset("t", 0, sarama.OffsetOldest, 0).SetOffset("t", 0, sarama.OffsetNewest, 1000),
		sarama.NewMockSequence(near, far))
	got, err := LastVisibleOffset(newMockClient(t, mb), "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got != 6 {
		t.Errorf("LastVisibleOffset = %d, want 6", got)
	}
}

func TestLastVisibleOffsetWithoutRecords(t *testing.T) {
	// Only a marker since the log start: the log start offset.
	fetch := &sarama.FetchResponse{Version: 11}
	fetch.AddControlRecord("t", 0, 10, 7, sarama.ControlRecordCommit)
	mb := partitionBroker(t, sarama.NewMockOffsetResponse(t).SetOffset("t", 0, sarama.OffsetOldest, 10).SetOffset("t", 0, sarama.OffsetNewest, 11),
		sarama.NewMockWrapper(fetch))
	if got, err := LastVisibleOffset(newMockClient(t, mb), "t", 0); err != nil || got != 10 {
		t.Errorf("LastVisibleOffset = %d, %v; want 10", got, err)
	}
	// An empty partition: no fetch at all.
	mb2 := partitionBroker(t, sarama.NewMockOffsetResponse(t).SetOffset("t", 0, sarama.OffsetOldest, 42).SetOffset("t", 0, sarama.OffsetNewest, 42), nil)
	if got, err := LastVisibleOffset(newMockClient(t, mb2), "t", 0); err != nil || got != 42 {
		t.Errorf("LastVisibleOffset = %d, %v; want 42", got, err)
	}
	if _, err := LastVisibleOffset(newMockClient(t, mb2), "unknown", 0); err == nil {
		t.Errorf("LastVisibleOffset of an unknown topic succeeded")
	}
}

// countingTM is goka's topic manager for the offsets it answers itself.
type countingTM struct {
	countingTopicManager
	asked []int64
}

func (c *countingTM) GetOffset(_ string, _ int32, at int64) (int64, error) {
	c.asked = append(c.asked, at)
	return 77, nil
}

// TestTopicManagerWaitsForStableChangelog: for the group table's changelog the
// newest offset is read only once no transaction is open (last stable offset ==
// high watermark); other offsets and topics are answered without waiting.
func TestTopicManagerWaitsForStableChangelog(t *testing.T) {
	fetch := &sarama.FetchResponse{Version: 11}
	fetch.AddRecordBatch("t", 0, nil, sarama.StringEncoder("x"), 4, -1, false)
	committed := partitionBroker(t, sarama.NewMockOffsetResponse(t).SetOffset("t", 0, sarama.OffsetOldest, 0).SetOffset("t", 0, sarama.OffsetNewest, 5),
		sarama.NewMockWrapper(fetch))
	open := partitionBroker(t, sarama.NewMockOffsetResponse(t).SetOffset("t", 0, sarama.OffsetNewest, 8), nil) // a transaction is open past 5
	stable := partitionBroker(t, sarama.NewMockOffsetResponse(t).SetOffset("t", 0, sarama.OffsetNewest, 5), nil)

	inner := &countingTM{}
	tm := &topicManager{TopicManager: inner, client: newMockClient(t, committed), uncommitted: newMockClient(t, open), stableTopic: "t", stableWait: 120 * time.Millisecond}
	if off, err := tm.GetOffset("t", 0, sarama.OffsetOldest); err != nil || off != 77 || len(inner.asked) != 1 {
		t.Errorf("GetOffset(oldest) = %d, %v; want goka's answer", off, err)
	}
	start := time.Now()
	_, err := tm.GetOffset("t", 0, sarama.OffsetNewest)
	if err == nil || !strings.Contains(err.Error(), "a transaction is still open") || !strings.Contains(err.Error(), "last stable offset 5, high watermark 8") {
		t.Fatalf("GetOffset(newest) with an open transaction = %v", err)
	}
	if waited := time.Since(start); waited < 120*time.Millisecond {
		t.Errorf("gave up after %s, want stableWait", waited)
	}
	// Another topic does not wait.
	tm.stableTopic = "changelog"
	if off, err := tm.GetOffset("t", 0, sarama.OffsetNewest); err != nil || off != 5 {
		t.Errorf("GetOffset(newest) of another topic = %d, %v; want 5", off, err)
	}
	// Once stable, the changelog's end is its last visible record + 1.
	tm.stableTopic = "t"
	tm.uncommitted = newMockClient(t, stable)
	if off, err := tm.GetOffset("t", 0, sarama.OffsetNewest); err != nil || off != 5 {
		t.Errorf("GetOffset(newest) when stable = %d, %v; want 5", off, err)
	}
}

func TestNewTopicManager(t *testing.T) {
	fetch := &sarama.FetchResponse{Version: 11}
	fetch.AddRecordBatch("t", 0, nil, sarama.StringEncoder("x"), 2, -1, false)
	fetch.AddControlRecord("t", 0, 3, 7, sarama.ControlRecordCommit)
	mb := partitionBroker(t, sarama.NewMockOffsetResponse(t).SetOffset("t", 0, sarama.OffsetOldest, 0).SetOffset("t", 0, sarama.OffsetNewest, 4),
		sarama.NewMockWrapper(fetch))
	tm, err := NewTopicManager([]string{mb.Addr()}, mockSarama(), "t", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// goka would recover up to offset 3, a commit marker no consumer sees.
	if off, err := tm.GetOffset("t", 0, sarama.OffsetNewest); err != nil || off != 3 {
		t.Errorf("GetOffset(newest) = %d, %v; want 3 (after the last record)", off, err)
	}
	if off, err := tm.GetOffset("t", 0, sarama.OffsetOldest); err != nil || off != 0 {
		t.Errorf("GetOffset(oldest) = %d, %v", off, err)
	}
	if err := tm.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if _, err := NewTopicManager([]string{"127.0.0.1:1"}, mockSarama(), "", 0); err == nil {
		t.Errorf("NewTopicManager without a broker succeeded")
	}
}

func TestFetchCommittedMetadata(t *testing.T) {
	mb := offsetsBroker(t, "g", sarama.NewMockSequence(
		sarama.NewMockOffsetFetchResponse(t).SetError(sarama.ErrUnstableOffsetCommit), // a transaction holds them: retry
		sarama.NewMockOffsetFetchResponse(t).SetOffset("g", "in", 0, 5, "", sarama.ErrUnstableOffsetCommit),
		sarama.NewMockOffsetFetchResponse(t).
			SetOffset("g", "in", 0, 5, "m0", sarama.ErrNoError).
			SetOffset("g", "in", 1, -1, "", sarama.ErrNoError).
			SetOffset("g", "in", 2, 9, "", sarama.ErrNoError),
	))
	md, err := FetchCommittedMetadata(context.Background(), []string{mb.Addr()}, mockSarama(), "g", map[string][]int32{"in": {0, 1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[TopicPartition]string{{"in", 0}: "m0", {"in", 2}: ""}; !maps.Equal(md, want) {
		t.Errorf("metadata %v, want %v", md, want)
	}
	var fetches int
	for _, rr := range mb.History() {
		if req, ok := rr.Request.(*sarama.OffsetFetchRequest); ok {
			fetches++
			if !req.RequireStable {
				t.Errorf("offset fetch without RequireStable")
			}
		}
	}
	if fetches != 3 {
		t.Errorf("%d offset fetches, want 3 (two unstable answers retried)", fetches)
	}
}

func TestFetchCommittedMetadataErrors(t *testing.T) {
	t.Run("partition error", func(t *testing.T) {
		mb := offsetsBroker(t, "g", sarama.NewMockOffsetFetchResponse(t).SetOffset("g", "in", 0, 0, "", sarama.ErrTopicAuthorizationFailed))
		_, err := FetchCommittedMetadata(context.Background(), []string{mb.Addr()}, mockSarama(), "g", map[string][]int32{"in": {0}})
		if !errors.Is(err, sarama.ErrTopicAuthorizationFailed) || !strings.Contains(err.Error(), "offset of in/0") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("stays unstable", func(t *testing.T) {
		mb := offsetsBroker(t, "g", sarama.NewMockOffsetFetchResponse(t).SetError(sarama.ErrUnstableOffsetCommit))
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		defer cancel()
		_, err := FetchCommittedMetadata(ctx, []string{mb.Addr()}, mockSarama(), "g", map[string][]int32{"in": {0}})
		if !errors.Is(err, sarama.ErrUnstableOffsetCommit) || !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no broker", func(t *testing.T) {
		if _, err := FetchCommittedMetadata(context.Background(), []string{"127.0.0.1:1"}, mockSarama(), "g", nil); err == nil {
			t.Errorf("no error without a broker")
		}
	})
}
