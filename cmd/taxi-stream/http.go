package main

import (
	"context"

	"github.com/taxi-stream/taxi-stream/processors/httpapi"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
)

// runPipeline runs the pipeline until ctx ends and, unless hc.Addr is empty, the
// HTTP server beside it (metrics, probes, queries). The server starts listening
// before the pipeline starts (a taken port fails at once) and stops only after
// the pipeline has: while the pipeline commits its last work after a SIGTERM,
// /readyz answers 503 "shutting down".
func runPipeline(ctx context.Context, p *pipeline.Pipeline, hc httpapi.Config) error {
	if hc.Addr == "" {
		return p.Run(ctx)
	}
	srv, err := httpapi.New(hc)
	if err != nil {
		return err
	}
	if _, err := srv.Listen(); err != nil {
		return err
	}
	srvCtx, stopServer := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Run(srvCtx) }()
	err = p.Run(ctx)
	stopServer()
	if serr := <-served; err == nil {
		err = serr
	}
	return err
}
