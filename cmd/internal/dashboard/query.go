package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// The processor's query API (docs: the HTTP contract in processors/httpapi).

// PartitionWatermark is one ingest partition's watermark as the API reports it.
type PartitionWatermark struct {
	Partition      int32  `json:"partition"`
	WatermarkMs    *int64 `json:"watermark_ms"`
	EventTimeLagMs *int64 `json:"event_time_lag_ms"`
	// Final: the partition has seen the producer's final marker (its watermark is +inf).
	Final bool `json:"final"`
}

// ConsumerLag is one partition's lag as an instance reports it.
type ConsumerLag struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Lag       int64  `json:"lag"`
}

type apiStatus struct {
	Instance    string               `json:"instance"`
	Watermarks  []PartitionWatermark `json:"watermarks"`
	Counters    map[string]int64     `json:"counters"`
	ConsumerLag []ConsumerLag        `json:"consumer_lag"`
	Ready       bool                 `json:"ready"`
	NotReady    []string             `json:"not_ready"`
	Errors      []string             `json:"errors"`
}

type apiOpenWindows struct {
	AsOfMs      int64             `json:"as_of_ms"`
	WatermarkMs *int64            `json:"watermark_ms"`
	Final       bool              `json:"final"`
	Windows     []json.RawMessage `json:"windows"`
}

// Instance is what the dashboard knows of one query API base URL.
type Instance struct {
	URL      string `json:"url"`
	Instance string `json:"instance,omitempty"`
	Up       bool   `json:"up"`
	Ready    bool   `json:"ready"`
	// Error: the instance did not answer; or why it is not ready, or what it could
	// not read (e.g. consumer lag while Kafka is unreachable).
	Error string `json:"error,omitempty"`
}

// Status is the merged view of all query APIs that the page receives about once a
// second. Counters are summed over the instances that answered (each counts what it
// processed since it started); watermarks and open windows are global, so they come
// from the first instance that answered; consumer lag is the union of what each
// instance reports for the partitions it owns.
type Status struct {
	AsOfMs      int64  `json:"as_of_ms"`
	WatermarkMs *int64 `json:"watermark_ms"`
	// Final: every rides partition has seen the producer's final marker.
	Final       bool                 `json:"final"`
	OpenWindows []json.RawMessage    `json:"open_windows"`
	Watermarks  []PartitionWatermark `json:"watermarks"`
	Counters    map[string]int64     `json:"counters"`
	ConsumerLag []ConsumerLag        `json:"consumer_lag"`
	Instances   []Instance           `json:"instances"`
	// HaveQuery is false when the query API answered nowhere (or none is configured):
	// the page then hides what only the API can tell.
	HaveQuery bool `json:"have_query"`
	Results   struct {
		Topic   string `json:"topic"`
		Records int64  `json:"records"`
		// Error: why the results topic cannot be read now; it starts with "broker
		// unreachable" when no broker answers (then BrokerUnreachable is true).
		Error             string `json:"error,omitempty"`
		BrokerUnreachable bool   `json:"broker_unreachable,omitempty"`
	} `json:"results"`
}

// querier polls the query API base URLs.
type querier struct {
	urls   []string
	client *http.Client
}

func (q *querier) poll(ctx context.Context) Status {
	type answer struct {
		st   *apiStatus
		open *apiOpenWindows
		err  error
	}
	answers := make([]answer, len(q.urls))
	var wg sync.WaitGroup
	for i, base := range q.urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a answer
			var st apiStatus
			if a.err = q.get(ctx, base, "/api/v1/status", &st); a.err == nil {
				a.st = &st
				var open apiOpenWindows
				if a.err = q.get(ctx, base, "/api/v1/windows/open", &open); a.err == nil {
					a.open = &open
				}
			}
			answers[i] = a
		}()
	}
	wg.Wait()
	return mergeAnswers(q.urls, func(i int) (*apiStatus, *apiOpenWindows, error) {
		return answers[i].st, answers[i].open, answers[i].err
	})
}

// mergeAnswers merges the answers of every URL (see Status).
func mergeAnswers(urls []string, answer func(i int) (*apiStatus, *apiOpenWindows, error)) Status {
	st := Status{AsOfMs: time.Now().UnixMilli(), Counters: map[string]int64{},
		OpenWindows: []json.RawMessage{}, Watermarks: []PartitionWatermark{}, ConsumerLag: []ConsumerLag{}, Instances: []Instance{}}
	type tp struct {
		group, topic string
		partition    int32
	}
	seenLag := map[tp]bool{}
	haveWatermarks, haveOpen := false, false
	for i, u := range urls {
		s, open, err := answer(i)
		in := Instance{URL: u}
		if err != nil {
			in.Error = err.Error()
		}
		if s != nil {
			in.Up, in.Ready, in.Instance = true, s.Ready, s.Instance
			if problems := append(slices.Clone(s.NotReady), s.Errors...); len(problems) > 0 && in.Error == "" {
				in.Error = strings.Join(problems, "; ")
			}
			st.HaveQuery = true
			for k, v := range s.Counters {
				st.Counters[k] += v
			}
			if !haveWatermarks && len(s.Watermarks) > 0 {
				st.Watermarks, haveWatermarks = s.Watermarks, true
			}
			for _, l := range s.ConsumerLag {
				k := tp{l.Group, l.Topic, l.Partition}
				if !seenLag[k] { // during a rebalance two instances may briefly report one partition
					seenLag[k] = true
					st.ConsumerLag = append(st.ConsumerLag, l)
				}
			}
		}
		if open != nil && !haveOpen {
			haveOpen = true
			st.WatermarkMs, st.Final = open.WatermarkMs, open.Final
			if open.Windows != nil {
				st.OpenWindows = open.Windows
			}
		}
		st.Instances = append(st.Instances, in)
	}
	slices.SortFunc(st.Watermarks, func(a, b PartitionWatermark) int { return int(a.Partition - b.Partition) })
	slices.SortFunc(st.ConsumerLag, func(a, b ConsumerLag) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return st
}

func (q *querier) get(ctx context.Context, base, path string, into any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	u := strings.TrimRight(base, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("query API %s: %w", u, err)
	}
	resp, err := q.client.Do(req)
	if err != nil {
		return fmt.Errorf("query API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("query API %s: read: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("query API %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("query API %s: %w", u, err)
	}
	return nil
}
