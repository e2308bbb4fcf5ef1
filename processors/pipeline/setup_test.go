package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/topology"
)

// signalHandler closes warned at the first warning logged.
type signalHandler struct {
	once   sync.Once
	warned chan struct{}
	mu     sync.Mutex
	msgs   []string
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	r.Attrs(func(a slog.Attr) bool { h.msgs = append(h.msgs, a.String()); return true })
	h.mu.Unlock()
	if r.Level >= slog.LevelWarn {
		h.once.Do(func() { close(h.warned) })
	}
	return nil
}
func (h *signalHandler) logged() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.msgs, "; ")
}
func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *signalHandler) WithGroup(string) slog.Handler      { return h }

// The controller that the admin's client cached has died (as in a node SIGKILLed
// while the processor starts): Sarama's CreateTopic keeps dialing it, so
// ensureTopics must rebuild the admin and find the live controller.
func TestEnsureTopicsFindsTheNewControllerAfterANodeDies(t *testing.T) {
	live := sarama.NewMockBroker(t, 1)
	defer live.Close()
	dead := sarama.NewMockBroker(t, 2)
	deadAddr := dead.Addr()
	dead.Close() // connection refused from now on

	// Until the cluster fences the dead node, the metadata still lists it, as
	// the controller; then the live node.
	metadata := func(controller int32) *sarama.MockMetadataResponse {
		m := sarama.NewMockMetadataResponse(t).SetBroker(live.Addr(), live.BrokerID()).SetController(controller)
		if controller == 2 {
			m.SetBroker(deadAddr, 2)
		}
		return m
	}
	handlers := func(controller int32) map[string]sarama.MockResponse {
		return map[string]sarama.MockResponse{
			"MetadataRequest":        metadata(controller),
			"DescribeConfigsRequest": sarama.NewMockDescribeConfigsResponse(t),
			"CreateTopicsRequest":    sarama.NewMockCreateTopicsResponse(t),
		}
	}
	live.SetHandlerByMap(handlers(2))

	logs := &signalHandler{warned: make(chan struct{})}
	p := &Pipeline{opts: Options{
		Brokers: []string{live.Addr()}, Replication: -1, TopicWait: time.Minute, Logger: slog.New(logs),
		Sarama: func() *sarama.Config {
			c := eos.DefaultSaramaConfig()
			// The mock broker answers at the config's version, and its CreateTopics
			// response encodes only up to v4.
			c.ApiVersionsRequest = false
			c.Version = sarama.V2_0_0_0
			c.Admin.Retry.Max = 0
			c.Net.DialTimeout = time.Second
			return c
		},
	}}
	admin, err := sarama.NewClusterAdmin(p.opts.Brokers, p.opts.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	cfg := topology.Config{App: "setup", IngestPartitions: 2, WindowsPartitions: 2}.WithDefaults()
	done := make(chan error, 1)
	go func() {
		a, err := p.ensureTopics(context.Background(), admin, cfg)
		a.Close()
		done <- err
	}()
	select {
	case <-logs.warned:
	case err := <-done:
		t.Fatalf("ensureTopics returned %v while the controller was unreachable", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no warning while the controller was unreachable")
	}
	// The cluster fences the dead node; a fresh metadata request says so.
	live.SetHandlerByMap(handlers(1))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ensureTopics: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("ensureTopics did not find the new controller: %s", logs.logged())
	}
	created := 0
	for _, rr := range live.History() {
		if _, ok := rr.Request.(*sarama.CreateTopicsRequest); ok {
			created++
		}
	}
	if want := len(topology.ProcessorTopics(cfg)); created != want {
		t.Errorf("%d CreateTopics requests reached the live controller, want %d", created, want)
	}
	if !strings.Contains(logs.logged(), "retrying") {
		t.Errorf("no retry was logged: %s", logs.logged())
	}
}

func TestSettlingErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("create topic x: %w", sarama.ErrNotController), true},
		{fmt.Errorf("create topic x: %w", sarama.ErrInvalidReplicationFactor), true},
		{fmt.Errorf("create topic x: %w", sarama.ErrOutOfBrokers), true},
		{fmt.Errorf("create topic x: %w", sarama.ErrTopicAuthorizationFailed), false},
		{fmt.Errorf("create topic x: %w", sarama.ErrPolicyViolation), false},
		{errors.New("topic x has 3 partitions, the pipeline needs 4"), false},
	} {
		if got := settling(c.err); got != c.want {
			t.Errorf("settling(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestReadAheadSpreadsTheBudget(t *testing.T) {
	for _, c := range []struct{ partitions, want int }{{0, readAheadBudget}, {1, readAheadBudget}, {3, 3072}, {12, 768}, {100, 256}} {
		if got := readAhead(c.partitions); got != c.want {
			t.Errorf("readAhead(%d) = %d, want %d", c.partitions, got, c.want)
		}
	}
}
