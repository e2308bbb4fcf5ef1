// Package httpapi is taxi-stream's HTTP server: Prometheus metrics, liveness and
// readiness probes, and interactive queries over the processor's state.
//
// Endpoints (docs/operations.md has the details):
//
//	GET /metrics              Prometheus text format
//	GET /healthz              200 unless a stage is stuck in a restart loop
//	GET /readyz               200 once both stages run with their state recovered
//	GET /api/v1/windows/open  the open windows' current sums (provisional results)
//	GET /api/v1/results       the most recent final results
//	GET /api/v1/status        watermarks, counters, consumer lag, readiness
//
// Queries read the windows stage's group table through a goka View and the
// results topic, both read_committed: any instance, even one that runs no stage
// (Config.Pipeline nil), answers for every partition and shows only committed data.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"
	_ "time/tzdata" // the event-time zone must load in minimal (scratch) images

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/topology"
)

// Config configures a Server.
type Config struct {
	// Addr is the listen address, e.g. ":8080" or "127.0.0.1:0" (a free port; the
	// bound address is logged and returned by Listen). Required.
	Addr    string
	Brokers []string
	// Topology names the topics and the app (goka groups); partition counts are
	// read from Kafka.
	Topology topology.Config
	// InstanceID names this instance in /api/v1/status. Default: the host name.
	InstanceID string
	// Pipeline is the instance's running pipeline; nil for a query-only server.
	Pipeline *pipeline.Pipeline
	// Sarama returns a base client config (version, TLS/SASL). Default: the
	// pipeline's (Pipeline.SaramaConfig), else eos.DefaultSaramaConfig.
	Sarama func() *sarama.Config
	// RecentResults is how many final results /api/v1/results keeps. Default 1000.
	RecentResults int
	// LagCacheTTL bounds how often consumer lag is read from Kafka. Default 5s.
	LagCacheTTL time.Duration
	// EventTimeZone is the zone of the event times' wall clock (TLC: New York);
	// event-time lag compares the watermark with the current wall clock there.
	// Default America/New_York.
	EventTimeZone *time.Location
	// Profiling serves Go's runtime profiles under /debug/pprof/ (net/http/pprof).
	// Off by default: a profile costs CPU and shows internals.
	Profiling bool
	Logger    *slog.Logger
}

func (c *Config) validate() error {
	if c.Addr == "" {
		return errors.New("httpapi: no listen address")
	}
	if len(c.Brokers) == 0 {
		return errors.New("httpapi: no brokers configured")
	}
	c.Topology = c.Topology.WithDefaults()
	if c.InstanceID == "" {
		c.InstanceID, _ = os.Hostname()
	}
	if c.Sarama == nil && c.Pipeline != nil {
		c.Sarama = c.Pipeline.SaramaConfig()
	}
	if c.Sarama == nil {
		c.Sarama = eos.DefaultSaramaConfig
	}
	if c.RecentResults <= 0 {
		c.RecentResults = 1000
	}
	if c.LagCacheTTL <= 0 {
		c.LagCacheTTL = 5 * time.Second
	}
	if c.EventTimeZone == nil {
		loc, err := time.LoadLocation("America/New_York")
		if err != nil {
			return fmt.Errorf("httpapi: event time zone: %w", err)
		}
		c.EventTimeZone = loc
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server serves the endpoints. Create it with New, then Run it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	inst    instance // nil: query-only
	view    stateReader
	results *recentResults
	lag     *lagReader
	reg     *prometheus.Registry
	handler http.Handler
	now     func() time.Time

	// background work, started by Run
	runView    func(context.Context)
	runResults func(context.Context)

	mu sync.Mutex
	ln net.Listener
}

// New builds a server; nothing connects or listens before Listen/Run.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "http"),
		results: newRecentResults(cfg.RecentResults),
		now:     time.Now,
	}
	if cfg.Pipeline != nil {
		s.inst = pipelineInstance{cfg.Pipeline}
	}
	sv := newStateView(s.kafkaConfig, cfg.Brokers, cfg.Topology, cfg.InstanceID, s.log)
	s.view, s.runView = sv, sv.run
	s.runResults = s.followResults
	s.lag = newLagReader(cfg.Brokers, s.kafkaConfig, cfg.LagCacheTTL)
	s.init()
	return s, nil
}

// init builds the registry and the routes (also used by tests with fake sources).
func (s *Server) init() {
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCollector(s),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn), Registry: s.reg,
	}))
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.HandleFunc("GET /api/v1/windows/open", s.handleOpenWindows)
	mux.HandleFunc("GET /api/v1/results", s.handleResults)
	mux.HandleFunc("GET /api/v1/status", s.handleStatus)
	if s.cfg.Profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	s.handler = mux
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler { return s.handler }

// kafkaConfig is the client config of every connection the server makes: the
// base config, read_committed, and never creating a topic by asking for it.
func (s *Server) kafkaConfig(clientID string) *sarama.Config {
	c := s.cfg.Sarama()
	if clientID != "" {
		c.ClientID = clientID
	}
	c.Metadata.AllowAutoTopicCreation = false
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.MaxWaitTime = 50 * time.Millisecond
	c.Consumer.Return.Errors = true
	return c
}

// Listen binds the listen address and logs it (msg "http server listening",
// addr); Run calls it when it has not been called. A taken port fails here.
func (s *Server) Listen() (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr(), nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.log.Info("http server listening", "addr", ln.Addr().String())
	return ln.Addr(), nil
}

// Run serves until ctx ends, then stops serving (in-flight requests get 5 s),
// stops the view and the results reader and returns. Start it with the
// pipeline's context ending after the pipeline has stopped, so that /readyz
// reports "shutting down" while the pipeline commits its last work.
func (s *Server) Run(ctx context.Context) error {
	if _, err := s.Listen(); err != nil {
		return err
	}
	// The view and the results reader stop only after the HTTP server has: no
	// request reads a view that is closing.
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	for _, run := range []func(context.Context){s.runView, s.runResults} {
		bg.Add(1)
		go func() { defer bg.Done(); run(bgCtx) }()
	}
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(s.ln) }()
	var err error
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = hs.Shutdown(sctx)
		cancel()
		<-served
	case err = <-served:
	}
	stopBackground()
	bg.Wait()
	s.lag.close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

// backoff waits d (doubling up to max for the next call) or until ctx ends.
func backoff(ctx context.Context, d *time.Duration, max time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(*d):
	}
	*d = min(2**d, max)
	return true
}

// unlessDone runs fn (a blocking call that takes no context, like sarama.NewClient
// on an unreachable cluster) and returns its result, or ctx.Err() as soon as ctx
// ends; a result that arrives later is passed to release. Shutdown never waits
// for a dial timeout.
func unlessDone[T any](ctx context.Context, fn func() (T, error), release func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil && release != nil {
				release(r.v)
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}
