package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/taxi-stream/taxi-stream/cmd/internal/cli"
	"github.com/taxi-stream/taxi-stream/integration/embedded"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/processors/results"
	"github.com/taxi-stream/taxi-stream/producer/replay"
	"github.com/taxi-stream/taxi-stream/producer/synth"
	"github.com/taxi-stream/taxi-stream/producer/zones"
	"github.com/taxi-stream/taxi-stream/topology"
)

type demoConfig struct {
	brokers, dataDir, file, format, logLevel string
	dashboardAddr, apiAddr                   string
	hold, keepTopics                         bool
	synthetic, partitions                    int
	speedup                                  float64
}

// findSharedData looks for ../shared/data above the working directory.
func findSharedData() string {
	dir, _ := os.Getwd()
	for {
		cand := filepath.Join(dir, "..", "shared", "data")
		if _, err := os.Stat(filepath.Join(cand, "taxi_zone_lookup.csv")); err == nil {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func run(ctx context.Context, cfg demoConfig) error {
	log, err := cli.NewLogger(os.Stderr, "text", cfg.logLevel)
	if err != nil {
		return err
	}
	if cfg.format != "table" && cfg.format != "json" {
		return cli.Usagef("--format %q: want table or json", cfg.format)
	}
	say := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "taxi-demo: "+format+"\n", args...) }

	// 1. Kafka.
	var brokers []string
	if cfg.brokers == "" {
		c, err := embedded.Start(embedded.Config{})
		if err != nil {
			return err
		}
		defer c.Close()
		brokers = c.Brokers()
		say("embedded Kafka-protocol broker at %s (use --brokers for a real cluster)", strings.Join(brokers, ","))
	} else if brokers, err = cli.Brokers(cfg.brokers); err != nil {
		return err
	}

	// 2. Input: a real month, or generated trips.
	tmp, err := os.MkdirTemp("", "taxi-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if cfg.dataDir == "" {
		cfg.dataDir = findSharedData()
	}
	input := cfg.file
	if !filepath.IsAbs(input) && cfg.dataDir != "" {
		input = filepath.Join(cfg.dataDir, cfg.file)
	}
	if _, err := os.Stat(input); err != nil && cfg.synthetic == 0 {
		say("no trip file at %s; generating 200000 trips instead", input)
		cfg.synthetic = 200_000
	}
	if cfg.synthetic > 0 {
		input = filepath.Join(tmp, "synthetic.parquet")
		gc := synth.DefaultConfig(int64(cfg.synthetic))
		if _, err := synth.WriteFile(ctx, input, gc); err != nil {
			return fmt.Errorf("generate trips: %w", err)
		}
		say("generated %d trips into %s", cfg.synthetic, input)
	}

	// Fresh topic names per run, so a real cluster's earlier runs do not mix in; the
	// app's internal topics are named from the app (topology.RepartitionTopic,
	// ChangelogTopic). On a real cluster every topic of the run is deleted at the end.
	run := time.Now().UTC().Format("20060102-150405")
	app := "taxi-demo-" + run
	topics := topology.DefaultTopics()
	if cfg.brokers != "" {
		for _, t := range []*string{&topics.Rides, &topics.Zones, &topics.Results, &topics.Late, &topics.Dead} {
			*t = "demo-" + run + "-" + *t
		}
		if !cfg.keepTopics {
			created := []string{topics.Rides, topics.Zones, topics.Results, topics.Late, topics.Dead,
				topology.RepartitionTopic(app), topology.ChangelogTopic(app)}
			defer func() {
				if err := deleteTopics(brokers, created); err != nil {
					say("could not delete every topic of this run: %v", err)
				} else {
					say("deleted this run's topics (%s); --keep-topics keeps them", strings.Join(created, ", "))
				}
			}()
		}
	}
	say("topics: rides %s, results %s, late %s, dead %s", topics.Rides, topics.Results, topics.Late, topics.Dead)

	// 3. Zones.
	zoneFile := filepath.Join(cfg.dataDir, "taxi_zone_lookup.csv")
	if cfg.dataDir == "" {
		zoneFile = ""
	}
	if zoneFile != "" {
		zs, err := zones.Run(ctx, zones.Config{File: zoneFile, Brokers: brokers, Topic: topics.Zones, Logger: log})
		if err != nil {
			return fmt.Errorf("load zones: %w", err)
		}
		say("loaded %d zones from %s", zs.Zones, zoneFile)
	} else {
		say("no zone lookup file found: every ride counts under borough Unknown")
		if err := createEmptyTopic(brokers, topics.Zones); err != nil {
			return err
		}
	}

	// 4. The processor, in this process.
	start := time.Now()
	topo := topology.Config{Topics: topics, App: app}
	p, err := pipeline.New(pipeline.Options{
		Brokers: brokers, Topology: topo,
		Guarantee: eos.ExactlyOnce, InstanceID: "demo", StateDir: filepath.Join(tmp, "state"), Logger: log,
	})
	if err != nil {
		return err
	}
	// The processor's query API and the dashboard, in this process too.
	srv, err := startServers(brokers, topo, p, cfg.apiAddr, cfg.dashboardAddr, log, say)
	if err != nil {
		return err
	}
	defer srv.Close()
	if srv.DashboardURL != "" {
		hint := ""
		if !cfg.hold {
			hint = "; --hold keeps it up after the replay"
		}
		say("dashboard: %s (query API %s%s)", srv.DashboardURL, srv.APIURL, hint)
	}
	ctx, cancel := context.WithCancel(ctx)
	procDone := make(chan error, 1)
	replayDone := make(chan replayOutcome, 1)
	var running sync.WaitGroup
	// Whatever way run returns, the processor and the replay have stopped before the
	// run's topics are deleted (a client still writing would create them again).
	defer func() { cancel(); running.Wait() }()
	running.Add(2)
	go func() {
		defer running.Done()
		// The processor waits for the rides topic, which the replay creates.
		procDone <- p.Run(ctx)
	}()
	go func() {
		defer running.Done()
		sum, err := replay.Run(ctx, replay.Config{
			Inputs: []string{input}, Brokers: brokers, Topic: topics.Rides, Partitions: cfg.partitions,
			Speedup: cfg.speedup, Logger: log, LogEvery: -1,
		})
		replayDone <- replayOutcome{sum, err}
	}()

	// 5. Print windows as they close; stop when every ride is accounted for.
	g := &results.Grouper{Quiet: 200 * time.Millisecond}
	followDone := make(chan error, 1)
	var counted int64
	var windows, records int
	go func() {
		followDone <- results.Follow(ctx, results.FollowConfig{Brokers: brokers, Topic: topics.Results, Sarama: eos.DefaultSaramaConfig, Logger: log},
			func(r results.Record, err error) {
				if err != nil {
					log.Warn("unreadable result", "key", r.Key, "err", err)
					return
				}
				g.Add(r.Result)
			})
	}()
	print := func(force bool) {
		for _, w := range g.Ready(force) {
			windows++
			for _, r := range w {
				records++
				counted += r.Sums.Count
				if cfg.format == "json" {
					fmt.Printf("%s\n", r.AppendJSON(nil))
				}
			}
			if cfg.format == "table" {
				_ = results.WriteTable(os.Stdout, w)
			}
		}
	}
	var sent int64 = -1
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			print(true)
			return fmt.Errorf("stopped before every ride was accounted for: %w", ctx.Err())
		case err := <-procDone:
			return fmt.Errorf("processor stopped: %w", err)
		case err := <-followDone:
			return fmt.Errorf("results reader stopped: %w", err)
		case out := <-replayDone:
			if out.err != nil {
				return fmt.Errorf("replay: %w", out.err)
			}
			sent = out.sum.Rows
			say("replayed %d trips in %s (%.0f trips/s), %d watermark markers", out.sum.Rows, out.sum.Elapsed.Round(time.Millisecond), out.sum.RowsPerSecond(), out.sum.Markers)
		case <-tick.C:
			print(false)
			in, _ := p.Stages()
			if sent >= 0 && in != nil {
				late, dead := in.Counters.Late.Load(), in.Counters.Dead.Load()
				if counted+late+dead >= sent {
					print(true)
					elapsed := time.Since(start)
					say("done: %d trips -> %d results in %d windows (%d trips), %d late, %d dead-letter; %s end to end (%.0f trips/s)",
						sent, records, windows, counted, late, dead, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds())
					if cfg.hold && srv.DashboardURL != "" {
						say("holding: the dashboard stays at %s; Ctrl-C to stop", srv.DashboardURL)
						<-ctx.Done()
					}
					cancel()
					if err := <-procDone; err != nil && !errors.Is(err, context.Canceled) {
						return err
					}
					return nil
				}
			}
		}
	}
}

type replayOutcome struct {
	sum replay.Summary
	err error
}
