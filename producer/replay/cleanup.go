package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taxi-stream/taxi-stream/producer/replay/kafkaio"
)

// CleanupResult is the outcome for one topic.
type CleanupResult struct {
	Topic   string
	Deleted bool // false: it did not exist (Err nil) or deletion failed (Err set)
	Err     error
}

// Cleanup deletes the named topics. Topics that do not exist are reported, not an error; the
// error joins the failures.
func Cleanup(ctx context.Context, brokers []string, topics []string, timeout time.Duration) ([]CleanupResult, error) {
	return CleanupSecure(ctx, brokers, kafkaio.Security{}, topics, timeout)
}

// CleanupSecure is Cleanup over connections secured by sec (TLS, SASL).
func CleanupSecure(ctx context.Context, brokers []string, sec kafkaio.Security, topics []string, timeout time.Duration) ([]CleanupResult, error) {
	if len(brokers) == 0 {
		return nil, errors.New("cleanup: brokers: none given")
	}
	if len(topics) == 0 {
		return nil, errors.New("cleanup: no topics given")
	}
	seen := map[string]bool{}
	var names []string
	for _, t := range topics {
		if t == "" {
			return nil, errors.New("cleanup: empty topic name")
		}
		if !seen[t] {
			seen[t] = true
			names = append(names, t)
		}
	}
	admin := kafkaio.NewAdmin(brokers, timeout).WithSecurity(sec)
	errs, err := admin.DeleteTopics(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("cleanup: %w", err)
	}
	var out []CleanupResult
	var failed []error
	for _, n := range names {
		e := errs[n]
		switch {
		case e == nil:
			out = append(out, CleanupResult{Topic: n, Deleted: true})
		case errors.Is(e, kafkaio.ErrTopicNotFound):
			out = append(out, CleanupResult{Topic: n})
		default:
			out = append(out, CleanupResult{Topic: n, Err: e})
			failed = append(failed, fmt.Errorf("delete topic %s: %w", n, e))
		}
	}
	return out, errors.Join(failed...)
}
