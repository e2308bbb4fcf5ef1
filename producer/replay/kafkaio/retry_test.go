package kafkaio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sentBatch is what the in-process cluster saw of one produce request's batch.
type sentBatch struct {
	producerID int64
	epoch      int16
	sequence   int32
}

// produceWith starts an in-process cluster whose produce requests are answered by answer
// (errorCode 0: handled by the cluster) and produces one record to it, calls times (default
// once). It returns the batches the cluster saw (one per produce request) and the first
// error.
func produceWith(t *testing.T, ctx context.Context, retryTimeout time.Duration, answer func(n int64) int16, calls ...int) ([]sentBatch, error) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "rides"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var (
		mu   sync.Mutex
		sent []sentBatch
	)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		raw := pr.Topics[0].Partitions[0].Records
		mu.Lock()
		sent = append(sent, sentBatch{
			producerID: int64(binary.BigEndian.Uint64(raw[43:])),
			epoch:      int16(binary.BigEndian.Uint16(raw[51:])),
			sequence:   int32(binary.BigEndian.Uint32(raw[53:])),
		})
		n := int64(len(sent))
		mu.Unlock()
		code := answer(n)
		if code == 0 {
			return nil, nil, false
		}
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	p, err := NewProducer(ProducerConfig{Brokers: c.ListenAddrs(), Topic: "rides", WriteTimeout: 5 * time.Second, RetryTimeout: retryTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var rs Records
	rs.Begin()
	rs.Buf = append(rs.Buf, "k"...)
	rs.EndKey()
	rs.Buf = append(rs.Buf, "v"...)
	rs.EndValue()
	rs.End()
	times := 1
	if len(calls) > 0 {
		times = calls[0]
	}
	for range times {
		if _, err = p.Produce(ctx, 0, &rs); err != nil {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return sent, err
}

const (
	codeRequestTimedOut   = 7  // outcome unknown: resent as it was (idempotent)
	codeMessageTooLarge   = 10 // final: checked before the append
	codeNotEnoughReplicas = 19 // checked before the append: resent
)

func TestProduceResendsRejectedBatch(t *testing.T) {
	sent, err := produceWith(t, context.Background(), time.Minute, func(n int64) int16 {
		if n <= 2 {
			return codeNotEnoughReplicas
		}
		return 0
	})
	if err != nil || len(sent) != 3 {
		t.Fatalf("Produce after two rejections: %v, %d requests; want success on the 3rd", err, len(sent))
	}
}

// A batch whose outcome is unknown is resent exactly as it was: the same producer id,
// epoch and base sequence, so that a broker that appended it drops the copy. The next
// batch continues the sequence.
func TestProduceResendsUnknownOutcomeWithTheSameSequence(t *testing.T) {
	sent, err := produceWith(t, context.Background(), time.Minute, func(n int64) int16 {
		if n <= 2 {
			return codeRequestTimedOut
		}
		return 0
	}, 2)
	if err != nil || len(sent) != 4 {
		t.Fatalf("Produce after two timeouts, then a second batch: %v, %d requests; want 4", err, len(sent))
	}
	first := sent[0]
	if first.producerID < 0 || first.epoch < 0 || first.sequence != 0 {
		t.Fatalf("first batch not idempotent: %+v", first)
	}
	for i, b := range sent[1:3] {
		if b != first {
			t.Errorf("resend %d carries %+v, want %+v", i+1, b, first)
		}
	}
	if want := (sentBatch{first.producerID, first.epoch, 1}); sent[3] != want {
		t.Errorf("second batch carries %+v, want %+v", sent[3], want)
	}
}

func TestProduceGivesUpAtTheRetryTimeout(t *testing.T) {
	sent, err := produceWith(t, context.Background(), time.Second, func(int64) int16 { return codeRequestTimedOut })
	var pe *ProduceError
	if !errors.As(err, &pe) || !pe.Unknown || !strings.Contains(err.Error(), "still failing after") || len(sent) < 2 {
		t.Fatalf("Produce that always times out: %v, %d requests; want an Unknown ProduceError after retries", err, len(sent))
	}
}

func TestProduceDoesNotResendFinalErrors(t *testing.T) {
	sent, err := produceWith(t, context.Background(), time.Minute, func(int64) int16 { return codeMessageTooLarge })
	var pe *ProduceError
	if !errors.As(err, &pe) || pe.Unknown || len(sent) != 1 {
		t.Fatalf("Produce of a batch too large: %v, %d requests; want a not-written ProduceError after 1", err, len(sent))
	}
}

func TestProduceStopsResendingWhenCanceled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	sent, err := produceWith(t, ctx, time.Minute, func(int64) int16 { return codeNotEnoughReplicas })
	var pe *ProduceError
	if !errors.As(err, &pe) || pe.Unknown || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "while waiting to resend") || len(sent) < 2 {
		t.Fatalf("Produce canceled while resending: %v, %d requests; want a not-written ProduceError wrapping the deadline", err, len(sent))
	}
}

const (
	codeLeaderNotAvailable     = 5  // retriable: the cluster is settling
	codeTopicAuthorizationFail = 29 // final
)

// tailsWith starts an in-process cluster whose list-offsets requests are answered by answer
// (errorCode 0: handled by the cluster) and runs call (default: Tails) with an Admin of the
// given timeout. It returns how many list-offsets requests the cluster saw and call's error.
func tailsWith(t *testing.T, timeout time.Duration, answer func(n int64) int16, call ...func(context.Context, *Admin) error) (int64, error) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "rides"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var requests atomic.Int64
	c.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		code := answer(requests.Add(1))
		if code == 0 {
			return nil, nil, false
		}
		lr := req.(*kmsg.ListOffsetsRequest)
		resp := lr.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range lr.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	a := NewAdmin(c.ListenAddrs(), timeout)
	if len(call) > 0 {
		err = call[0](context.Background(), a)
	} else {
		_, err = a.Tails(context.Background(), "rides", 1)
	}
	return requests.Load(), err
}

// kafka-go sends the first and the last offsets as two list-offsets requests: an attempt of
// Tails is two requests.
const tailsRequests = 2

func TestTailsRetriesWhileSettling(t *testing.T) {
	n, err := tailsWith(t, 10*time.Second, func(n int64) int16 {
		if n <= tailsRequests {
			return codeLeaderNotAvailable
		}
		return 0
	})
	if err != nil || n != 2*tailsRequests {
		t.Fatalf("Tails after a LEADER_NOT_AVAILABLE attempt: %v, %d requests; want success on the 2nd attempt", err, n)
	}
}

func TestTailsDoesNotRetryFinalErrors(t *testing.T) {
	n, err := tailsWith(t, 10*time.Second, func(int64) int16 { return codeTopicAuthorizationFail })
	if err == nil || n > tailsRequests {
		t.Fatalf("Tails with an authorization error: %v, %d requests; want the error after 1 attempt", err, n)
	}
}

func TestTailsGivesUpAtTheTimeout(t *testing.T) {
	n, err := tailsWith(t, time.Second, func(int64) int16 { return codeLeaderNotAvailable })
	if err == nil || !strings.Contains(err.Error(), "still failing when") || n < 2 {
		t.Fatalf("Tails that never settles: %v, %d requests; want the last error after retries", err, n)
	}
}

func TestWaitReady(t *testing.T) {
	waitReady := func(ctx context.Context, a *Admin) error {
		info, err := a.WaitReady(ctx, "rides")
		if err == nil && (!info.Ready || info.Partitions != 1) {
			return errors.New("ready without leaders")
		}
		return err
	}
	if n, err := tailsWith(t, 10*time.Second, func(n int64) int16 {
		if n <= 2*tailsRequests {
			return codeTopicAuthorizationFail // WaitReady retries every error until its timeout
		}
		return 0
	}, waitReady); err != nil || n != 3*tailsRequests {
		t.Fatalf("WaitReady after two failing attempts: %v, %d list-offsets requests; want success on the 3rd attempt", err, n)
	}
	n, err := tailsWith(t, time.Second, func(int64) int16 { return codeLeaderNotAvailable }, waitReady)
	if err == nil || !strings.Contains(err.Error(), "topic rides not ready: list offsets") || n < 2*tailsRequests {
		t.Fatalf("WaitReady that never settles: %v, %d list-offsets requests; want the last error after retries", err, n)
	}
}

// An Admin WithRetry waits for a broker that is not there yet (connection refused) and
// carries on once it is up.
func TestAdminWaitsForABrokerThatComesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens: connection refused until the cluster starts
	started := make(chan *kfake.Cluster, 1)
	go func() {
		time.Sleep(700 * time.Millisecond)
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(2, "rides"))
		if err != nil {
			t.Error(err)
		}
		started <- c
	}()
	defer func() {
		if c := <-started; c != nil {
			c.Close()
		}
	}()
	a := NewAdmin([]string{fmt.Sprintf("127.0.0.1:%d", port)}, 5*time.Second).WithRetry(time.Minute, nil)
	info, err := a.Describe(context.Background(), "rides")
	if err != nil || info.Partitions != 2 {
		t.Fatalf("Describe once the broker is up: %+v, %v; want 2 partitions", info, err)
	}
}

func TestAdminGivesUpOnAnUnreachableBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	_, err = NewAdmin([]string{addr}, 5*time.Second).WithRetry(time.Second, nil).Describe(context.Background(), "rides")
	if err == nil || !BrokerDown(err) || !strings.Contains(err.Error(), "still failing after") {
		t.Fatalf("Describe on a closed port: %v; want a connection error after retries", err)
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Errorf("gave up after %s, before retrying", took)
	}
	// Without WithRetry it fails at once.
	if _, err := NewAdmin([]string{addr}, 5*time.Second).Describe(context.Background(), "rides"); !BrokerDown(err) ||
		strings.Contains(err.Error(), "still failing") {
		t.Fatalf("Describe without retry: %v", err)
	}
}

func TestBrokerDown(t *testing.T) {
	for _, tc := range []struct {
		err  error
		down bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("metadata: %w", &net.DNSError{Err: "no such host", Name: "kafka", IsNotFound: true}), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, false}, // the request may have been sent
		{io.EOF, false},
		{errors.New("topic has cleanup.policy=delete"), false},
	} {
		if got := BrokerDown(tc.err); got != tc.down {
			t.Errorf("BrokerDown(%v) = %v, want %v", tc.err, got, tc.down)
		}
	}
}
