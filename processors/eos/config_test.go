package eos

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{
		"exactly_once":  ExactlyOnce,
		"exactly-once":  ExactlyOnce,
		"eos":           ExactlyOnce,
		"at_least_once": AtLeastOnce,
		"at-least-once": AtLeastOnce,
		"alos":          AtLeastOnce,
	} {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "EOS", "exactly once", "at_most_once"} {
		if got, err := ParseMode(in); err == nil || got != "" {
			t.Errorf("ParseMode(%q) = %q, %v; want an error", in, got, err)
		} else if !strings.Contains(err.Error(), in) {
			t.Errorf("ParseMode(%q): error %q does not name the input", in, err)
		}
	}
}

func TestConfigValidateDefaults(t *testing.T) {
	c := Config{Brokers: []string{"b:9092"}, Group: "g", TransactionalID: "g-1"}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Mode != ExactlyOnce {
		t.Errorf("Mode = %q, want exactly_once by default", c.Mode)
	}
	if c.CommitInterval != 100*time.Millisecond || c.TransactionTimeout != 10*time.Second || c.SessionTimeout != 10*time.Second {
		t.Errorf("defaults: commit interval %s, transaction timeout %s, session timeout %s; want 100ms, 10s, 10s",
			c.CommitInterval, c.TransactionTimeout, c.SessionTimeout)
	}
	if c.Sarama == nil || c.Logger == nil {
		t.Fatalf("Sarama or Logger default missing")
	}
	if sc := c.Sarama(); sc.Version != sarama.V4_1_0_0 || sc.ClientID != "taxi-stream" {
		t.Errorf("default sarama config: version %s, client id %q", sc.Version, sc.ClientID)
	}

	// Explicit values are kept; at-least-once needs no transactional id.
	c = Config{Brokers: []string{"b"}, Group: "g", Mode: AtLeastOnce, CommitInterval: time.Second,
		TransactionTimeout: time.Minute, SessionTimeout: 45 * time.Second}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Mode != AtLeastOnce || c.CommitInterval != time.Second || c.TransactionTimeout != time.Minute || c.SessionTimeout != 45*time.Second {
		t.Errorf("explicit values changed: %+v", c)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"no brokers":       {Config{Group: "g", TransactionalID: "t"}, "no brokers"},
		"no group":         {Config{Brokers: []string{"b"}, TransactionalID: "t"}, "group is required"},
		"unknown mode":     {Config{Brokers: []string{"b"}, Group: "g", Mode: "at_most_once"}, `unknown mode "at_most_once"`},
		"eos without txid": {Config{Brokers: []string{"b"}, Group: "g"}, "TransactionalID"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate() = %v, want an error containing %q", err, tc.want)
			}
			// New refuses it before building anything.
			if _, err := newRuntime(tc.cfg, Hooks{}, func([]string, *sarama.Config) (sarama.AsyncProducer, error) {
				t.Fatal("producer built for an invalid config")
				return nil, nil
			}); err == nil {
				t.Fatal("newRuntime accepted an invalid config")
			}
		})
	}
}

func TestNewExactlyOnceProducerConfig(t *testing.T) {
	r, ap, pcfg := testRuntime(t, Config{Group: "g", TransactionalID: "g-node-1", TransactionTimeout: 7 * time.Second}, Hooks{})
	p := pcfg.Producer
	if !p.Idempotent || p.RequiredAcks != sarama.WaitForAll || pcfg.Net.MaxOpenRequests != 1 {
		t.Errorf("producer not idempotent with acks=all and one open request: idempotent %v acks %v open %d", p.Idempotent, p.RequiredAcks, pcfg.Net.MaxOpenRequests)
	}
	if !p.Return.Successes || !p.Return.Errors {
		t.Errorf("successes and errors must be returned (waitAcked counts them)")
	}
	if p.Transaction.ID != "g-node-1" || p.Transaction.Timeout != 7*time.Second {
		t.Errorf("transaction id %q timeout %s; want g-node-1, 7s", p.Transaction.ID, p.Transaction.Timeout)
	}
	// New begins the first transaction.
	if got := ap.Log(); len(got) != 1 || got[0] != "begin" || !r.txnOpen {
		t.Errorf("after New: log %v, txnOpen %v; want one BeginTxn", got, r.txnOpen)
	}
	if r.Group() != "g" {
		t.Errorf("Group() = %q", r.Group())
	}
}

func TestNewAtLeastOnceHasNoTransaction(t *testing.T) {
	r, ap, pcfg := testRuntime(t, Config{Mode: AtLeastOnce}, Hooks{})
	if pcfg.Producer.Transaction.ID != "" {
		t.Errorf("at-least-once producer has transactional id %q", pcfg.Producer.Transaction.ID)
	}
	if got := ap.Log(); len(got) != 0 || r.txnOpen {
		t.Errorf("at-least-once New: log %v txnOpen %v; want no transaction", got, r.txnOpen)
	}
}

func TestNewErrors(t *testing.T) {
	cfg := Config{Brokers: []string{"b"}, Group: "g", TransactionalID: "g-1"}
	boom := errors.New("boom")
	_, err := newRuntime(cfg, Hooks{}, func([]string, *sarama.Config) (sarama.AsyncProducer, error) { return nil, boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "create producer for group g") {
		t.Errorf("producer constructor failure: %v", err)
	}

	// BeginTxn fails: the producer is closed again.
	ap := newFakeAP()
	ap.setErrs(boom, nil, nil, nil)
	_, err = newRuntime(cfg, Hooks{}, func([]string, *sarama.Config) (sarama.AsyncProducer, error) { return ap, nil })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "begin transaction (g-1)") {
		t.Errorf("BeginTxn failure: %v", err)
	}
	if !ap.isClosed() {
		t.Errorf("producer left open after New failed")
	}
}

func TestConsumerConfig(t *testing.T) {
	r, _, _ := testRuntime(t, Config{SessionTimeout: 600 * time.Millisecond, Sarama: func() *sarama.Config {
		c := DefaultSaramaConfig()
		c.ClientID = "base"
		return c
	}}, Hooks{})
	c := r.ConsumerConfig()
	if c.Consumer.IsolationLevel != sarama.ReadCommitted {
		t.Errorf("consumers must read committed")
	}
	if c.Consumer.Offsets.AutoCommit.Enable {
		t.Errorf("auto commit must be off: the runtime commits")
	}
	if c.Consumer.Offsets.Initial != sarama.OffsetOldest {
		t.Errorf("initial offset %d, want oldest", c.Consumer.Offsets.Initial)
	}
	if c.Consumer.Group.Session.Timeout != 600*time.Millisecond || c.Consumer.Group.Heartbeat.Interval != 200*time.Millisecond {
		t.Errorf("session %s heartbeat %s; want 600ms and a third of it", c.Consumer.Group.Session.Timeout, c.Consumer.Group.Heartbeat.Interval)
	}
	if c.ClientID != "base" {
		t.Errorf("ConsumerConfig client id %q, want the base config's", c.ClientID)
	}
	if got := r.consumerBase("goka-client").ClientID; got != "goka-client" {
		t.Errorf("consumerBase(goka-client).ClientID = %q", got)
	}
	// A long session timeout: heartbeats stay at 250 ms.
	r2, _, _ := testRuntime(t, Config{}, Hooks{})
	if hb := r2.ConsumerConfig().Consumer.Group.Heartbeat.Interval; hb != 250*time.Millisecond {
		t.Errorf("heartbeat %s, want 250ms", hb)
	}
	if err := r2.ConsumerConfig().Validate(); err != nil {
		t.Errorf("consumer config invalid: %v", err)
	}
	if got := r2.ConsumerConfig().ChannelBufferSize; got != 256 {
		t.Errorf("ChannelBufferSize %d without ReadAhead, want Sarama's 256", got)
	}
	r3, _, _ := testRuntime(t, Config{ReadAhead: 3072}, Hooks{})
	if got := r3.ConsumerConfig().ChannelBufferSize; got != 3072 {
		t.Errorf("ChannelBufferSize %d with ReadAhead 3072", got)
	}
	if got := len(r.ProcessorOptions()); got != 4 {
		t.Errorf("ProcessorOptions: %d options, want producer, consumer group, consumer and topic manager builders", got)
	}
}
