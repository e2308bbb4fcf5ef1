// Package dashboard serves taxi-stream's live web page: per borough, the final hourly
// results as time series, the open windows with their running (provisional)
// aggregates, and the pipeline's health.
//
// It reads only what any downstream user may read: the results topic (read_committed,
// from the beginning, kept in memory) and the processor's query API (polled about
// once a second; several instances' counters are summed). The page receives
// everything by Server-Sent Events: on connect the history, then each new result and
// status as it arrives. The browser's EventSource reconnects by itself when the server
// restarts; the server then sends what the page missed (Last-Event-ID of this server)
// or, after a restart, the whole history again, and the page keeps one value per key.
package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v4"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/results"
)

// Config configures a Server.
type Config struct {
	// Brokers are the Kafka bootstrap addresses. Required.
	Brokers []string
	// ResultsTopic is the processor's results topic. Required.
	ResultsTopic string
	// QueryURLs are base URLs of the processor instances' HTTP servers
	// ("http://host:8080"); empty: the page shows the results only.
	QueryURLs []string
	// PollInterval is how often the query API is polled. Default 1s.
	PollInterval time.Duration
	// Sarama returns a base Kafka client config. Default eos.DefaultSaramaConfig.
	Sarama func() *sarama.Config
	// HTTPClient polls the query API. Default: a client with a 2s timeout.
	HTTPClient *http.Client
	// Explain rewrites a Kafka connection error into one that says what to fix
	// (cli.Security.Explain); the page and the log show it. Default
	// cli.ExplainUnreachable: brokers that cannot be reached are reported as
	// "broker unreachable".
	Explain func(error) error
	// Logger. Default: discard.
	Logger *slog.Logger
}

// Server is the dashboard: a results reader, a query API poller and the HTTP handler.
type Server struct {
	cfg   Config
	hub   *hub
	epoch string // identifies this server's event numbering (see Last-Event-ID)
	q     *querier

	mu          sync.Mutex
	followErr   string // why the results topic cannot be read now ("": it can)
	unreachable bool   // followErr is cli.ErrBrokerUnreachable
	followGen   int64  // counts setFollowErr calls
}

// New checks the config.
func New(cfg Config) (*Server, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("dashboard: no brokers configured")
	}
	if cfg.ResultsTopic == "" {
		return nil, errors.New("dashboard: no results topic configured")
	}
	for _, u := range cfg.QueryURLs {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("dashboard: query URL %q: want http://host:port", u)
		}
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Sarama == nil {
		cfg.Sarama = eos.DefaultSaramaConfig
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 2 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Explain == nil {
		cfg.Explain = cli.ExplainUnreachable
	}
	return &Server{
		cfg:   cfg,
		hub:   newHub(),
		epoch: strconv.FormatInt(time.Now().UnixNano(), 36),
		q:     &querier{urls: cfg.QueryURLs, client: cfg.HTTPClient},
	}, nil
}

// Run reads the results topic and polls the query API until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.follow(ctx) }()
	go func() { defer wg.Done(); s.poll(ctx) }()
	wg.Wait()
	return nil
}

// Serve runs the dashboard and serves HTTP on ln until ctx ends, then closes every
// connection (the pages' event streams included) and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Request contexts end with ctx, so the event streams end and Shutdown returns.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = s.Run(ctx) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	s.cfg.Logger.Info("dashboard listening", "url", URL(ln.Addr()))
	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		cancel()
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		_ = srv.Close()
	}
	<-runDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// URL is the page's address for a listener address (a wildcard host becomes localhost).
func URL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// follow keeps the results topic's records in the hub. The brokers may be down and
// the topic may not exist yet (the processor creates it): the reader is retried
// until ctx ends, and starting over from the oldest offset only repeats records the
// hub drops as duplicates. The error shown in the status ("broker unreachable: ..."
// when no broker answers) stays until a broker has answered again.
func (s *Server) follow(ctx context.Context) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 500 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = 0
	base := s.cfg.Sarama
	sc := func() *sarama.Config {
		c := base()
		c.Metadata.AllowAutoTopicCreation = false // never create the processor's topic with broker defaults
		return c
	}
	cfg := results.FollowConfig{Brokers: s.cfg.Brokers, Topic: s.cfg.ResultsTopic, Sarama: sc, Logger: s.cfg.Logger}
	var (
		last        string // the error last logged, to log a repeated one at debug level only
		unreachable bool   // it said "broker unreachable"
	)
	for {
		started := time.Now()
		err := s.connect(sc)
		if err == nil {
			if unreachable {
				s.cfg.Logger.Info("brokers reachable again", "brokers", s.cfg.Brokers)
				last, unreachable = "", false
			}
			// The brokers answered; another error (the topic does not exist yet)
			// stays until the reader has run for a while.
			gen := s.clearUnreachable()
			running := time.AfterFunc(readerSettled, func() { s.clearFollowErr(gen) })
			err = results.Follow(ctx, cfg, func(r results.Record, err error) {
				if err != nil {
					s.cfg.Logger.Warn("unreadable result record", "key", r.Key, "err", err)
					return
				}
				s.hub.addResult(r.Key, r.Value)
			})
			running.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			bo.Reset()
		}
		if err == nil {
			err = errors.New("results reader stopped")
		}
		err = s.cfg.Explain(err)
		s.setFollowErr(err)
		wait := bo.NextBackOff()
		level, msg := slog.LevelInfo, "results topic not readable yet; retrying"
		if unreachable = errors.Is(err, cli.ErrBrokerUnreachable); unreachable {
			level, msg = slog.LevelWarn, "broker unreachable; retrying"
		}
		if err.Error() == last {
			level = slog.LevelDebug
		}
		last = err.Error()
		s.cfg.Logger.Log(ctx, level, msg, "brokers", s.cfg.Brokers, "topic", s.cfg.ResultsTopic, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// connect checks that a broker answers (a metadata request) before the reader
// starts, so that the status says the brokers are reachable only when they are.
func (s *Server) connect(sc func() *sarama.Config) error {
	client, err := sarama.NewClient(s.cfg.Brokers, sc())
	if err != nil {
		return fmt.Errorf("connect to %v: %w", s.cfg.Brokers, err)
	}
	_ = client.Close() // only the answer mattered
	return nil
}

// readerSettled is how long the results reader runs before an earlier error is
// taken as resolved.
const readerSettled = 2 * time.Second

// setFollowErr records why the results topic cannot be read.
func (s *Server) setFollowErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.followGen++
	s.followErr, s.unreachable = err.Error(), errors.Is(err, cli.ErrBrokerUnreachable)
}

// clearUnreachable clears a "broker unreachable" error (a broker has answered) and
// returns the error's generation for clearFollowErr.
func (s *Server) clearUnreachable() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unreachable {
		s.followErr, s.unreachable = "", false
	}
	return s.followGen
}

// clearFollowErr clears the error unless a newer one was recorded since gen.
func (s *Server) clearFollowErr(gen int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.followGen == gen {
		s.followErr, s.unreachable = "", false
	}
}

// poll publishes a merged status every PollInterval.
func (s *Server) poll(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		st := s.status(ctx)
		if ctx.Err() != nil {
			return
		}
		b, err := json.Marshal(st)
		if err != nil {
			s.cfg.Logger.Error("encode status", "err", err)
		} else {
			s.hub.setStatus(b)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) status(ctx context.Context) Status {
	var st Status
	if len(s.q.urls) > 0 {
		st = s.q.poll(ctx)
	} else {
		st = mergeAnswers(nil, nil)
	}
	st.Results.Topic = s.cfg.ResultsTopic
	st.Results.Records = s.hub.count()
	s.mu.Lock()
	st.Results.Error, st.Results.BrokerUnreachable = s.followErr, s.unreachable
	s.mu.Unlock()
	return st
}
