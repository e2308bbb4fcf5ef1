package eos

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/IBM/sarama"
)

// recordingHandler is goka's side of the consumer group: it records the sessions
// it is given.
type recordingHandler struct {
	mu         sync.Mutex
	setup      []sarama.ConsumerGroupSession
	consume    []sarama.ConsumerGroupSession
	cleanup    []sarama.ConsumerGroupSession
	cleanupErr error
}

func (h *recordingHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.setup = append(h.setup, s)
	return nil
}

func (h *recordingHandler) ConsumeClaim(s sarama.ConsumerGroupSession, _ sarama.ConsumerGroupClaim) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.consume = append(h.consume, s)
	return nil
}

func (h *recordingHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanup = append(h.cleanup, s)
	return h.cleanupErr
}

// offsetsBroker is a MockBroker that coordinates group g and answers offset
// fetches with the given response.
func offsetsBroker(t *testing.T, group string, offsets sarama.MockResponse) *sarama.MockBroker {
	t.Helper()
	mb := sarama.NewMockBroker(t, 1)
	t.Cleanup(mb.Close)
	mb.SetHandlerByMap(map[string]sarama.MockResponse{
		"MetadataRequest": sarama.NewMockMetadataResponse(t).SetBroker(mb.Addr(), mb.BrokerID()).
			SetController(mb.BrokerID()).SetLeader("in", 0, mb.BrokerID()),
		"FindCoordinatorRequest": sarama.NewMockFindCoordinatorResponse(t).SetCoordinator(sarama.CoordinatorGroup, group, mb),
		"OffsetFetchRequest":     offsets,
	})
	return mb
}

func TestGroupHandlerGeneration(t *testing.T) {
	mb := offsetsBroker(t, "g", sarama.NewMockOffsetFetchResponse(t).
		SetOffset("g", "in", 0, 5, "m0", sarama.ErrNoError).
		SetOffset("g", "in", 1, -1, "", sarama.ErrNoError)) // nothing committed
	var assignedClaims map[string][]int32
	var assignedMeta map[TopicPartition]string
	revoked := 0
	r, ap, _ := testRuntime(t, Config{
		Brokers:         []string{mb.Addr()},
		Group:           "g",
		TransactionalID: "elsewhere-1", // not "g-...": no fencing at the generation start
		Sarama:          mockSarama,
	}, Hooks{
		Assigned: func(_ context.Context, claims map[string][]int32, md map[TopicPartition]string) error {
			assignedClaims, assignedMeta = claims, md
			return nil
		},
		Revoked: func() { revoked++ },
	})
	inner := &recordingHandler{}
	h := &groupHandler{inner: inner, rt: r}
	fs := newFakeSession(5, map[string][]int32{"in": {0, 1}})

	if err := h.Setup(fs); err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(assignedClaims, fs.claims, slices.Equal) {
		t.Errorf("Assigned claims %v", assignedClaims)
	}
	if want := map[TopicPartition]string{{"in", 0}: "m0"}; !maps.Equal(assignedMeta, want) {
		t.Errorf("Assigned metadata %v, want %v", assignedMeta, want)
	}
	if len(inner.setup) != 1 {
		t.Fatalf("goka's Setup called %d times", len(inner.setup))
	}
	ws, ok := inner.setup[0].(*session)
	if !ok || ws.ConsumerGroupSession != fs {
		t.Fatalf("goka got session %T, want the runtime's wrapper of sarama's", inner.setup[0])
	}
	if got := r.Claims(); !maps.EqualFunc(got, fs.claims, slices.Equal) {
		t.Errorf("Claims() = %v", got)
	}

	// goka's claims see the same wrapper; its offset marks do not reach sarama.
	if err := h.ConsumeClaim(fs, nil); err != nil {
		t.Fatal(err)
	}
	if inner.consume[0] != ws {
		t.Errorf("ConsumeClaim got %v, want the wrapper", inner.consume[0])
	}
	ws.MarkOffset("in", 0, 100, "x")
	ws.MarkMessage(&sarama.ConsumerMessage{Topic: "in", Offset: 100}, "")
	ws.ResetOffset("in", 0, 0, "")
	ws.Commit()
	if marks, commits, resets, msgs := fs.state(); len(marks)+commits+resets+msgs != 0 {
		t.Errorf("goka's offset calls reached sarama: marks %v commits %d resets %d msgs %d", marks, commits, resets, msgs)
	}
	// A session the runtime does not know is passed through.
	other := newFakeSession(4, nil)
	if err := h.ConsumeClaim(other, nil); err != nil || inner.consume[1] != other {
		t.Errorf("unknown session: %v, %v", err, inner.consume[1])
	}

	// The generation ends: goka cleans up, then the runtime commits what ran.
	process(r, "in", 1, 0, nil)
	if err := h.Cleanup(fs); err != nil {
		t.Fatal(err)
	}
	if len(inner.cleanup) != 1 || inner.cleanup[0] != ws {
		t.Errorf("goka's Cleanup got %v", inner.cleanup)
	}
	if adds := ap.Adds(); len(adds) != 1 || offsetsString(adds[0].offsets) != "in/1@1:(epoch -1)" || adds[0].group.GenerationID != 5 {
		t.Errorf("generation's last commit: %+v", adds)
	}
	if revoked != 1 || r.Claims() != nil {
		t.Errorf("after Cleanup: revoked %d, claims %v", revoked, r.Claims())
	}
}

func TestGroupHandlerCleanupErrors(t *testing.T) {
	boom, gokaErr := errors.New("boom"), errors.New("goka cleanup")
	for name, tc := range map[string]struct {
		gokaErr, want error
	}{
		"commit fails":          {nil, boom},
		"goka's error is first": {gokaErr, gokaErr},
	} {
		t.Run(name, func(t *testing.T) {
			revoked := 0
			r, ap, _ := testRuntime(t, Config{}, Hooks{Revoked: func() { revoked++ }})
			inner := &recordingHandler{cleanupErr: tc.gokaErr}
			h := &groupHandler{inner: inner, rt: r}
			fs := newFakeSession(1, nil)
			startSession(r, fs)
			process(r, "in", 0, 0, nil)
			ap.setErrs(nil, nil, boom, nil)
			if err := h.Cleanup(fs); !errors.Is(err, tc.want) {
				t.Fatalf("Cleanup() = %v, want %v", err, tc.want)
			}
			// The generation's state is dropped even when its commit failed.
			if revoked != 1 || r.Claims() != nil {
				t.Errorf("revoked %d claims %v", revoked, r.Claims())
			}
		})
	}
}

func TestGroupHandlerSetupErrors(t *testing.T) {
	t.Run("offsets", func(t *testing.T) {
		mb := offsetsBroker(t, "g", sarama.NewMockOffsetFetchResponse(t).SetError(sarama.ErrGroupAuthorizationFailed))
		r, _, _ := testRuntime(t, Config{Brokers: []string{mb.Addr()}, Sarama: mockSarama}, Hooks{
			Assigned: func(context.Context, map[string][]int32, map[TopicPartition]string) error {
				t.Error("Assigned called without the committed metadata")
				return nil
			},
		})
		inner := &recordingHandler{}
		err := (&groupHandler{inner: inner, rt: r}).Setup(newFakeSession(1, map[string][]int32{"in": {0}}))
		if !errors.Is(err, sarama.ErrGroupAuthorizationFailed) || !strings.Contains(err.Error(), "read committed offsets of g") {
			t.Errorf("Setup() = %v", err)
		}
		if len(inner.setup) != 0 || r.Claims() != nil {
			t.Errorf("generation started although its offsets could not be read")
		}
	})
	t.Run("assigned", func(t *testing.T) {
		mb := offsetsBroker(t, "g", sarama.NewMockOffsetFetchResponse(t).SetOffset("g", "in", 0, 1, "", sarama.ErrNoError))
		boom := errors.New("restore failed")
		r, _, _ := testRuntime(t, Config{Brokers: []string{mb.Addr()}, Sarama: mockSarama}, Hooks{
			Assigned: func(context.Context, map[string][]int32, map[TopicPartition]string) error { return boom },
		})
		inner := &recordingHandler{}
		if err := (&groupHandler{inner: inner, rt: r}).Setup(newFakeSession(1, map[string][]int32{"in": {0}})); !errors.Is(err, boom) {
			t.Errorf("Setup() = %v, want the Assigned hook's error", err)
		}
		if len(inner.setup) != 0 {
			t.Errorf("goka's Setup ran after the Assigned hook failed")
		}
	})
}

// fakeGroup is sarama's consumer group: each Consume is one session.
type fakeGroup struct {
	sarama.ConsumerGroup
	calls   int
	handler sarama.ConsumerGroupHandler
	consume func(ctx context.Context, call int) error
}

func (g *fakeGroup) Consume(ctx context.Context, _ []string, h sarama.ConsumerGroupHandler) error {
	g.calls++
	g.handler = h
	return g.consume(ctx, g.calls)
}

func TestConsumerGroupRejoinsAtOnce(t *testing.T) {
	r, _, _ := testRuntime(t, Config{}, Hooks{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fg := &fakeGroup{consume: func(_ context.Context, call int) error {
		if call == 3 {
			cancel() // the processor stops during the third session
		}
		return nil // a rebalance ended the session
	}}
	inner := &recordingHandler{}
	cg := &consumerGroup{ConsumerGroup: fg, rt: r}
	if err := cg.Consume(ctx, []string{"in"}, inner); err != nil {
		t.Fatal(err)
	}
	if fg.calls != 3 {
		t.Errorf("%d sessions, want a new one after each rebalance until the context ends", fg.calls)
	}
	if gh, ok := fg.handler.(*groupHandler); !ok || gh.inner != inner || gh.rt != r {
		t.Errorf("sarama got handler %T, want the runtime's wrapper of goka's", fg.handler)
	}

	boom := errors.New("boom")
	fg2 := &fakeGroup{consume: func(context.Context, int) error { return boom }}
	if err := (&consumerGroup{ConsumerGroup: fg2, rt: r}).Consume(context.Background(), []string{"in"}, inner); !errors.Is(err, boom) || fg2.calls != 1 {
		t.Errorf("Consume() = %v after %d sessions, want the error at once", err, fg2.calls)
	}
}
