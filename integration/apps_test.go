package integration

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/processors/pipeline"
	"github.com/taxi-stream/taxi-stream/topology"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

// TestTwoAppsOnOneClusterStayApart: two apps (--app) with different windows read the
// same rides at the same time and write into the same results, late and dead
// topics (the shared defaults). Their internal topics are named from the app, so
// each counts exactly its own oracle, told apart by the ts-app header. A third app
// pointed by hand at the first app's repartition topic (--windows-topic) refuses
// the first app's partials (and the first app refuses the third's): both still
// equal their oracles, with the refusals counted.
func TestTwoAppsOnOneClusterStayApart(t *testing.T) {
	t.Parallel() // see TestMain
	data := sharedData(t)
	path := filepath.Join(data, "green_tripdata_2024-01.parquet")
	rides := readParquetRides(t, path)
	boroughs := readBoroughs(t, filepath.Join(data, "taxi_zone_lookup.csv"))
	wantHour := oracleWindows(t, rides, boroughs, time.Hour, time.Hour)
	wantHalf := oracleWindows(t, rides, boroughs, 30*time.Minute, 30*time.Minute)

	topics := pipelineInputs(t, 3)
	topics.Windows = "" // named from the app, as by default
	if n := feedRides(t, topics.Rides, 3, path, feedOptions{markers: true}); n != len(rides) {
		t.Fatalf("fed %d rides, the oracle read %d", n, len(rides))
	}
	hourApp, halfApp, sharingApp := topics.Rides+"-hour", topics.Rides+"-half", topics.Rides+"-sharing"
	sharingResults := topics.Rides + "-sharing-results"
	withWindow := func(size time.Duration) func(*pipeline.Options) {
		return func(o *pipeline.Options) { o.Topology.Window = window.Tumbling(size) }
	}
	hour := startPipelineApp(t, topics, eos.ExactlyOnce, "h1", hourApp, withWindow(time.Hour))
	defer hour.stop()
	half := startPipelineApp(t, topics, eos.ExactlyOnce, "m1", halfApp, withWindow(30*time.Minute))
	defer half.stop()
	shared := topics
	shared.Windows = topology.RepartitionTopic(hourApp) // shared by hand with the hour app
	shared.Results = sharingResults
	sharing := startPipelineApp(t, shared, eos.ExactlyOnce, "s1", sharingApp, withWindow(30*time.Minute))
	defer sharing.stop()

	if cfg, _ := hour.p.Topology(); cfg.Topics.Windows != hourApp+"-windows-repartition" {
		t.Errorf("hour app's repartition topic is %q, want it named from the app", cfg.Topics.Windows)
	}

	// The shared results topic holds both apps' results; the header tells them apart.
	byApp := map[string]map[string][]byte{}
	for _, m := range readAll(t, topics.Results, len(wantHour)+len(wantHalf), 5*time.Minute) {
		app := header(m, codecs.HeaderApp)
		if byApp[app] == nil {
			byApp[app] = map[string][]byte{}
		}
		if _, dup := byApp[app][string(m.Key)]; dup {
			t.Errorf("app %s wrote result %s more than once", app, m.Key)
		}
		byApp[app][string(m.Key)] = m.Value
	}
	sharingGot := map[string][]byte{}
	for _, m := range readAll(t, sharingResults, len(wantHalf), 5*time.Minute) {
		if app := header(m, codecs.HeaderApp); app != sharingApp {
			t.Errorf("result %s in the sharing app's results topic written by %q", m.Key, app)
		}
		sharingGot[string(m.Key)] = m.Value
	}
	for _, c := range []struct {
		app  string
		got  map[string][]byte
		want map[string]*oracleCell
	}{{hourApp, byApp[hourApp], wantHour}, {halfApp, byApp[halfApp], wantHalf}, {sharingApp, sharingGot, wantHalf}} {
		if len(c.got) != len(c.want) {
			t.Errorf("app %s wrote %d results, its oracle has %d", c.app, len(c.got), len(c.want))
		}
		for key, cell := range c.want {
			v, ok := c.got[key]
			if !ok {
				t.Errorf("app %s: no result for %s (oracle: %d rides)", c.app, key, cell.count)
				continue
			}
			checkResultAgainstOracle(t, c.app+" "+key, v, cell)
		}
	}
	if len(byApp) != 2 {
		t.Errorf("the shared results topic holds records of %d writers (%v), want the two apps", len(byApp), mapKeys(byApp))
	}

	// Refusals are counted where the repartition topic was shared, and nowhere else;
	// no ride was dropped anywhere.
	eventually(t, 2*time.Minute, "refusals counted", func() string {
		if f := sharing.p.Stats().Windows.ForeignPartials; f == 0 {
			return "the sharing app refused no partial of the hour app"
		}
		if f := hour.p.Stats().Windows.ForeignPartials; f == 0 {
			return "the hour app refused no partial of the sharing app"
		}
		return ""
	})
	if f := half.p.Stats().Windows.ForeignPartials; f != 0 {
		t.Errorf("the half-hour app refused %d partials; its repartition topic is its own", f)
	}
	for name, h := range map[string]*pipelineHandle{hourApp: hour, halfApp: half, sharingApp: sharing} {
		st := h.p.Stats()
		if st.Windows.DroppedRides != 0 || st.Ingest.Late != 0 || st.Ingest.Dead != 0 {
			t.Errorf("app %s: dropped %d, late %d, dead %d; want 0 each", name, st.Windows.DroppedRides, st.Ingest.Late, st.Ingest.Dead)
		}
	}
	t.Logf("apps %s (1h) and %s (30m) wrote %d and %d results equal to their oracles into one topic; %s (30m) on %s's repartition topic refused %d partials and wrote %d exact results",
		hourApp, halfApp, len(byApp[hourApp]), len(byApp[halfApp]), sharingApp, hourApp, sharing.p.Stats().Windows.ForeignPartials, len(sharingGot))
}

func header(m *sarama.ConsumerMessage, key string) string {
	for _, h := range m.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, fmt.Sprintf("%q", k))
	}
	return out
}
