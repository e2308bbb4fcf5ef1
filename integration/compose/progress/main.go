// Command progress tells integration/compose/run how far the stack's replay is, so that its
// faults happen while the replay runs (conditions, not sleeps):
//
//	progress rows FILE.parquet            number of rows of a Parquet file
//	progress offsets BROKER TOPIC         sum of the topic's end offsets (rides and markers written)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/IBM/sarama"
	"github.com/parquet-go/parquet-go"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "progress:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "rows":
		n, err := rows(args[1])
		if err != nil {
			return err
		}
		fmt.Println(n)
	case len(args) == 3 && args[0] == "offsets":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := endOffsets(ctx, args[1], args[2])
		if err != nil {
			return err
		}
		fmt.Println(n)
	default:
		return errors.New("usage: progress rows FILE | progress offsets BROKER TOPIC")
	}
	return nil
}

func rows(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return pf.NumRows(), nil
}

func endOffsets(ctx context.Context, broker, topic string) (int64, error) {
	cfg := sarama.NewConfig()
	cfg.Net.DialTimeout = 3 * time.Second
	cfg.Metadata.Retry.Max = 1
	client, err := sarama.NewClient([]string{broker}, cfg)
	if err != nil {
		return 0, fmt.Errorf("connect %s: %w", broker, err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	var sum int64
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		off, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, fmt.Errorf("end offset of %s/%d: %w", topic, p, err)
		}
		sum += off
	}
	return sum, nil
}
