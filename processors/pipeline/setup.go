package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v4"

	"github.com/taxi-stream/taxi-stream/topology"
)

// ensureTopics creates the processor's topics, retrying while the cluster is
// settling: a node that is down (Sarama keeps asking the controller it cached, so
// the admin is rebuilt to find the new one), a controller moving, a replication
// factor that the live nodes cannot reach yet. It gives up after --topic-wait (0:
// never), and at once on an error no retry can mend (a partition count mismatch,
// an authorization failure, a bad topic config).
func (p *Pipeline) ensureTopics(ctx context.Context, admin sarama.ClusterAdmin, cfg topology.Config) (sarama.ClusterAdmin, error) {
	err := p.retryWhileSettling(ctx, "cannot create the processor's topics yet; retrying", func(retry bool) error {
		if retry {
			// A fresh client asks for the metadata again, and with it the controller.
			if fresh, ferr := sarama.NewClusterAdmin(p.opts.Brokers, p.opts.Sarama()); ferr == nil {
				admin.Close()
				admin = fresh
			}
		}
		err := topology.EnsureTopics(admin, topology.ProcessorTopics(cfg), p.opts.Replication)
		if err != nil && !settling(err) {
			return backoff.Permanent(err)
		}
		return err
	})
	return admin, err
}

// retryWhileSettling runs attempt (retry is false the first time) until it
// succeeds, returns a backoff.Permanent error, ctx ends or --topic-wait has passed
// (0: never), with exponential back-off, logging msg with the error at most every
// 10 s.
func (p *Pipeline) retryWhileSettling(ctx context.Context, msg string, attempt func(retry bool) error) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = 0
	start := time.Now()
	var lastLog time.Time
	for retry := false; ; retry = true {
		err := attempt(retry)
		var permanent *backoff.PermanentError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &permanent):
			return permanent.Err
		case ctx.Err() != nil:
			return ctx.Err()
		}
		waited := time.Since(start)
		if p.opts.TopicWait > 0 && waited >= p.opts.TopicWait {
			return fmt.Errorf("the cluster did not settle in %s (--topic-wait): %w", p.opts.TopicWait, err)
		}
		if time.Since(lastLog) >= 10*time.Second {
			p.opts.Logger.Warn(msg, "err", err, "waited", waited.Round(time.Second))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(bo.NextBackOff()):
		}
	}
}

// settling reports errors of a cluster that a retry may find recovered: a node or
// the controller unreachable or moving, requests timing out, too few live nodes
// for the replication factor.
func settling(err error) bool {
	var op *net.OpError
	switch {
	case errors.As(err, &op),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	for _, k := range []sarama.KError{
		sarama.ErrNotController, sarama.ErrRequestTimedOut, sarama.ErrBrokerNotAvailable,
		sarama.ErrLeaderNotAvailable, sarama.ErrNotEnoughReplicas, sarama.ErrInvalidReplicationFactor,
	} {
		if errors.Is(err, k) {
			return true
		}
	}
	return errors.Is(err, sarama.ErrOutOfBrokers) || errors.Is(err, sarama.ErrNotConnected)
}
