package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taxi-stream/taxi-stream/codecs"
)

// limitResult is what `taxi-bench-peers limit` prints as its last line.
type limitResult struct {
	Rides   int64 `json:"rides"`   // records decoded as rides
	Markers int64 `json:"markers"` // watermark markers (ts-kind header), skipped
	Invalid int64 `json:"invalid"` // records DecodeRideFacts rejected
	// Check is a checksum of the decoded facts (sum of the total cents), so that the
	// compiler cannot drop the decoding.
	Check int64 `json:"check"`
}

// limitMain is the limit of the table: a franz-go consumer (default fetch settings, no
// group) that reads the topic from offset 0 and decodes every ride with
// codecs.DecodeRideFacts, nothing else. It stops when --rides rides are decoded.
func limitMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("limit", flag.ContinueOnError)
	brokers := fs.String("brokers", "localhost:9092", "Kafka bootstrap servers")
	topic := fs.String("topic", "taxi-rides", "rides topic")
	rides := fs.Int64("rides", 0, "stop after this many rides (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rides <= 0 {
		return fmt.Errorf("limit: --rides must be > 0")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ConsumeTopics(*topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return fmt.Errorf("limit: kafka client: %w", err)
	}
	defer cl.Close()
	var res limitResult
	for res.Rides+res.Invalid < *rides {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("limit: %d of %d rides: %w", res.Rides, *rides, err)
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			fetchErr = fmt.Errorf("limit: fetch %s[%d]: %w", t, p, err)
		})
		if fetchErr != nil {
			return fetchErr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == codecs.HeaderKind && string(h.Value) == codecs.KindWatermark {
					res.Markers++
					return
				}
			}
			f, err := codecs.DecodeRideFacts(r.Value, "")
			if err != nil {
				res.Invalid++
				return
			}
			res.Rides++
			res.Check += f.TotalCents
		})
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
