package eos

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/integration/testio"
)

// groupBroker is a MockBroker that coordinates group g and the transactional ids
// in txids, lists the transactions in ongoing and describes g with members.
type groupBroker struct {
	*sarama.MockBroker
	handlers map[string]sarama.MockResponse
}

func newGroupBroker(t *testing.T, ongoing []string, members map[string]*sarama.GroupMemberDescription, txids ...string) *groupBroker {
	t.Helper()
	mb := sarama.NewMockBroker(t, 1)
	t.Cleanup(mb.Close)
	coord := sarama.NewMockFindCoordinatorResponse(t).SetCoordinator(sarama.CoordinatorGroup, "g", mb)
	for _, id := range txids {
		coord.SetCoordinator(sarama.CoordinatorTransaction, id, mb)
	}
	list := sarama.NewMockListTransactionsResponse(t)
	for i, id := range ongoing {
		list.AddTransaction(id, int64(100+i), "Ongoing")
	}
	gb := &groupBroker{MockBroker: mb, handlers: map[string]sarama.MockResponse{
		"MetadataRequest": sarama.NewMockMetadataResponse(t).SetBroker(mb.Addr(), mb.BrokerID()).
			SetController(mb.BrokerID()),
		"FindCoordinatorRequest":  coord,
		"ListTransactionsRequest": list,
		"DescribeGroupsRequest": sarama.NewMockDescribeGroupsResponse(t).AddGroupDescription("g", &sarama.GroupDescription{
			GroupId: "g", State: "Stable", Members: members,
		}),
		"InitProducerIDRequest": sarama.NewMockInitProducerIDResponse(t).SetProducerID(100).SetProducerEpoch(1),
		"LeaveGroupRequest":     sarama.NewMockLeaveGroupResponse(t),
		// "g-node" is another app's group whose name starts with ours: its
		// transactions ("g-node-x") are not ours to fence.
		"ListGroupsRequest": sarama.NewMockListGroupsResponse(t).AddGroup("g", "consumer").AddGroup("g-node-x", "consumer"),
	}}
	gb.apply()
	return gb
}

func (b *groupBroker) set(request string, res sarama.MockResponse) {
	b.handlers[request] = res
	b.apply()
}

func (b *groupBroker) apply() { b.SetHandlerByMap(b.handlers) }

// initialised returns the transactional ids producers were initialised with.
func (b *groupBroker) initialised() []string {
	var ids []string
	for _, rr := range b.History() {
		if req, ok := rr.Request.(*sarama.InitProducerIDRequest); ok && req.TransactionalID != nil {
			ids = append(ids, *req.TransactionalID)
		}
	}
	return ids
}

// logBuffer collects a runtime's log lines.
type logBuffer struct{ testio.Buffer }

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

func strp(s string) *string { return &s }

var liveMembers = map[string]*sarama.GroupMemberDescription{
	"m2": {MemberId: "m2", ClientId: "taxi-stream-g-node-2"},                   // dynamic member
	"m4": {MemberId: "m4", ClientId: "other", GroupInstanceId: strp("node-4")}, // static member
}

// TestFenceDeparted: of the group's ongoing transactions, those of instances that
// are no longer members are aborted (a producer with their id is initialised);
// this instance's own, the live members' and other groups' are left alone.
func TestFenceDeparted(t *testing.T) {
	mb := newGroupBroker(t, []string{"g-node-1", "g-node-2", "g-node-3", "g-node-4", "other-node-5", "g-node-6", "g-node-x-i1"}, liveMembers,
		"g-node-3", "g-node-6")
	r, _, _ := testRuntime(t, Config{Brokers: []string{mb.Addr()}, Group: "g", TransactionalID: "g-node-1", Sarama: mockSarama}, Hooks{})
	fenced, err := r.fenceDeparted(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"g-node-3", "g-node-6"}; !slices.Equal(fenced, want) {
		t.Errorf("fenced %v, want %v", fenced, want)
	}
	if got := mb.initialised(); !slices.Equal(got, []string{"g-node-3", "g-node-6"}) {
		t.Errorf("producers initialised for %v", got)
	}

	// fenceDepartedBounded counts them.
	r.fenceDepartedBounded(context.Background())
	if r.Fenced() != 2 {
		t.Errorf("Fenced() = %d, want 2", r.Fenced())
	}
}

func TestFenceDepartedNothingToDo(t *testing.T) {
	// At-least-once, or a transactional id outside the group's naming scheme: no
	// broker is asked at all (the address is not even valid).
	for _, cfg := range []Config{
		{Mode: AtLeastOnce},
		{TransactionalID: "someone-else"},
	} {
		cfg.Brokers, cfg.Group = []string{"invalid:0"}, "g"
		r, _, _ := testRuntime(t, cfg, Hooks{})
		if fenced, err := r.fenceDeparted(context.Background()); fenced != nil || err != nil {
			t.Errorf("%+v: fenced %v, %v", cfg, fenced, err)
		}
	}
	// Only our own and live members' transactions are open.
	mb := newGroupBroker(t, []string{"g-node-1", "g-node-2"}, liveMembers)
	r, _, _ := testRuntime(t, Config{Brokers: []string{mb.Addr()}, Group: "g", TransactionalID: "g-node-1", Sarama: mockSarama}, Hooks{})
	if fenced, err := r.fenceDeparted(context.Background()); fenced != nil || err != nil {
		t.Errorf("fenced %v, %v", fenced, err)
	}
	// No transaction open: the group is not even described.
	mb2 := newGroupBroker(t, nil, liveMembers)
	r2, _, _ := testRuntime(t, Config{Brokers: []string{mb2.Addr()}, Group: "g", TransactionalID: "g-node-1", Sarama: mockSarama}, Hooks{})
	if fenced, err := r2.fenceDeparted(context.Background()); fenced != nil || err != nil {
		t.Errorf("fenced %v, %v", fenced, err)
	}
	for _, rr := range mb2.History() {
		if _, ok := rr.Request.(*sarama.DescribeGroupsRequest); ok {
			t.Errorf("group described without candidates")
		}
	}
}

func TestFenceDepartedErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		request string
		res     func(t *testing.T) sarama.MockResponse
		ctx     func() context.Context
		want    string
		fenced  []string
	}{
		"list": {
			request: "ListTransactionsRequest",
			res: func(t *testing.T) sarama.MockResponse {
				return sarama.NewMockListTransactionsResponse(t).SetError(sarama.ErrClusterAuthorizationFailed)
			},
			want: "list ongoing transactions",
		},
		"describe": {
			request: "DescribeGroupsRequest",
			res: func(t *testing.T) sarama.MockResponse {
				return sarama.NewMockDescribeGroupsResponse(t).AddGroupDescription("g", &sarama.GroupDescription{
					GroupId: "g", Err: sarama.ErrGroupAuthorizationFailed, ErrorCode: int16(sarama.ErrGroupAuthorizationFailed),
				})
			},
			want: "describe group g",
		},
		"fence": {
			request: "InitProducerIDRequest",
			res: func(t *testing.T) sarama.MockResponse {
				return sarama.NewMockInitProducerIDResponse(t).SetError(sarama.ErrTransactionalIDAuthorizationFailed)
			},
			want: "fence g-node-3",
		},
		"cancelled": {
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			want: context.Canceled.Error(),
		},
	} {
		t.Run(name, func(t *testing.T) {
			mb := newGroupBroker(t, []string{"g-node-3"}, liveMembers, "g-node-3")
			if tc.request != "" {
				mb.set(tc.request, tc.res(t))
			}
			logs := &logBuffer{}
			r, _, _ := testRuntime(t, Config{Brokers: []string{mb.Addr()}, Group: "g", TransactionalID: "g-node-1",
				Sarama: mockSarama, Logger: logs.logger()}, Hooks{})
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			fenced, err := r.fenceDeparted(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) || fenced != nil {
				t.Fatalf("fenceDeparted() = %v, %v; want an error containing %q", fenced, err, tc.want)
			}
			if tc.ctx == nil {
				// A failure is logged, and the generation goes on.
				r.fenceDepartedBounded(ctx)
				if !strings.Contains(logs.String(), "cannot abort the open transactions of departed instances") || r.Fenced() != 0 {
					t.Errorf("fenceDepartedBounded: fenced %d, log %s", r.Fenced(), logs.String())
				}
			}
		})
	}
	t.Run("no broker", func(t *testing.T) {
		c := mockSarama()
		c.Metadata.Retry.Max = 0
		r, _, _ := testRuntime(t, Config{Brokers: []string{"127.0.0.1:1"}, Group: "g", TransactionalID: "g-node-1",
			Sarama: func() *sarama.Config { return c }}, Hooks{})
		if _, err := r.fenceDeparted(context.Background()); err == nil {
			t.Errorf("no error without a broker")
		}
	})
}

func TestLeaveGroup(t *testing.T) {
	t.Run("dynamic member", func(t *testing.T) {
		// Nothing to do: not even a broker address.
		logs := &logBuffer{}
		r, _, _ := testRuntime(t, Config{Brokers: []string{"invalid:0"}, Logger: logs.logger()}, Hooks{})
		r.leaveGroup()
		if logs.String() != "" {
			t.Errorf("dynamic member tried to leave: %s", logs.String())
		}
	})
	t.Run("static member", func(t *testing.T) {
		mb := newGroupBroker(t, nil, nil)
		logs := &logBuffer{}
		r, _, _ := testRuntime(t, Config{Brokers: []string{mb.Addr()}, Group: "g", GroupInstanceID: "node-1", Sarama: mockSarama, Logger: logs.logger()}, Hooks{})
		r.leaveGroup()
		var left []string
		for _, rr := range mb.History() {
			if req, ok := rr.Request.(*sarama.LeaveGroupRequest); ok {
				for _, m := range req.Members {
					left = append(left, req.GroupId+"/"+*m.GroupInstanceId)
				}
			}
		}
		if !slices.Equal(left, []string{"g/node-1"}) {
			t.Errorf("left %v, want g/node-1", left)
		}
		if !strings.Contains(logs.String(), "left the group") {
			t.Errorf("log: %s", logs.String())
		}
	})
	for name, res := range map[string]*sarama.LeaveGroupResponse{
		"group error":            {Version: 3, Err: sarama.ErrGroupAuthorizationFailed},
		"member error":           {Version: 3, Members: []sarama.MemberResponse{{GroupInstanceId: strp("node-1"), Err: sarama.ErrFencedInstancedId}}},
		"unknown member is fine": {Version: 3, Members: []sarama.MemberResponse{{GroupInstanceId: strp("node-1"), Err: sarama.ErrUnknownMemberId}}},
	} {
		t.Run(name, func(t *testing.T) {
			mb := newGroupBroker(t, nil, nil)
			mb.set("LeaveGroupRequest", sarama.NewMockWrapper(res))
			logs := &logBuffer{}
			r, _, _ := testRuntime(t, Config{Brokers: []string{mb.Addr()}, Group: "g", GroupInstanceID: "node-1", Sarama: mockSarama, Logger: logs.logger()}, Hooks{})
			r.leaveGroup()
			failed := strings.Contains(logs.String(), "cannot leave the group")
			if wantFail := name != "unknown member is fine"; failed != wantFail {
				t.Errorf("failure logged %v, want %v: %s", failed, wantFail, logs.String())
			}
		})
	}
	t.Run("no broker", func(t *testing.T) {
		c := mockSarama()
		c.Metadata.Retry.Max = 0
		logs := &logBuffer{}
		r, _, _ := testRuntime(t, Config{Brokers: []string{"127.0.0.1:1"}, GroupInstanceID: "node-1", Logger: logs.logger(),
			Sarama: func() *sarama.Config { return c }}, Hooks{})
		r.leaveGroup()
		if !strings.Contains(logs.String(), "cannot leave the group") {
			t.Errorf("log: %s", logs.String())
		}
	})
}
