package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"

	"github.com/taxi-stream/taxi-stream/cmd/internal/dashboard"
	"github.com/taxi-stream/taxi-stream/processors/httpapi"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/topology"
)

// servers are the processor's HTTP server (query API, metrics) and the dashboard,
// run in the demo's process next to the processor.
type servers struct {
	DashboardURL, APIURL string
	wg                   sync.WaitGroup
	stop                 context.CancelFunc
}

// startServers starts the query API on apiAddr and, unless dashAddr is empty, the
// dashboard on dashAddr (a taken port falls back to a free one). Close stops both.
func startServers(brokers []string, topo topology.Config, p *pipeline.Pipeline, apiAddr, dashAddr string, log *slog.Logger, say func(string, ...any)) (*servers, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &servers{stop: cancel}
	api, err := httpapi.New(httpapi.Config{Addr: apiAddr, Brokers: brokers, Topology: topo, InstanceID: "demo", Pipeline: p, Logger: log})
	if err != nil {
		cancel()
		return nil, err
	}
	addr, err := api.Listen()
	if err != nil {
		cancel()
		return nil, err
	}
	s.APIURL = "http://" + addr.String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := api.Run(ctx); err != nil {
			log.Warn("query API stopped", "err", err)
		}
	}()
	if dashAddr == "" {
		return s, nil
	}
	ln, err := net.Listen("tcp", dashAddr)
	if errors.Is(err, syscall.EADDRINUSE) {
		host, _, _ := net.SplitHostPort(dashAddr)
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err == nil {
			say("--dashboard-addr %s is taken; the dashboard uses %s instead", dashAddr, ln.Addr())
		}
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("--dashboard-addr %s: %w", dashAddr, err)
	}
	d, err := dashboard.New(dashboard.Config{Brokers: brokers, ResultsTopic: topo.Topics.Results, QueryURLs: []string{s.APIURL}, Logger: log})
	if err != nil {
		ln.Close()
		s.Close()
		return nil, err
	}
	s.DashboardURL = dashboard.URL(ln.Addr())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := d.Serve(ctx, ln); err != nil {
			log.Warn("dashboard stopped", "err", err)
		}
	}()
	return s, nil
}

// Close stops the servers and waits for them.
func (s *servers) Close() {
	s.stop()
	s.wg.Wait()
}
