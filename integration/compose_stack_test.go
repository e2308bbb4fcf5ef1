package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Environment of the docker-compose stack's integration service (docker-compose.yml); the
// test is skipped without TAXI_STACK_RIDES.
const (
	envStackRides   = "TAXI_STACK_RIDES"   // the file the replay service sent (a path in this container)
	envStackZones   = "TAXI_STACK_ZONES"   // the zone table init-zones loaded (default: beside the rides)
	envStackResults = "TAXI_STACK_RESULTS" // the processors' results topic (default taxi-results)
	envStackWait    = "TAXI_STACK_WAIT"    // how long to wait for every result (default 5m)
)

// TestComposeStackResultsEqualOracle is the check of the docker-compose stack (`docker compose
// run --rm integration`, and `make compose-test` after its faults): the stack's results topic,
// written by three processor containers that were killed and restarted and whose broker was
// restarted, equals the batch oracle of the replayed month for every (hour, borough), with
// exactly one record per key.
func TestComposeStackResultsEqualOracle(t *testing.T) {
	rides := os.Getenv(envStackRides)
	if rides == "" {
		t.Skipf("the check of the docker-compose stack's integration service; %s names the replayed file", envStackRides)
	}
	zones := os.Getenv(envStackZones)
	if zones == "" {
		zones = filepath.Join(filepath.Dir(rides), "taxi_zone_lookup.csv")
	}
	topic := os.Getenv(envStackResults)
	if topic == "" {
		topic = "taxi-results"
	}
	wait := 5 * time.Minute
	if v := os.Getenv(envStackWait); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", envStackWait, v, err)
		}
		wait = d
	}
	var all []oracleRide
	if strings.Contains(filepath.Base(rides), ".csv") {
		all = readCSVRides(t, rides)
	} else {
		all = readParquetRides(t, rides)
	}
	want := oracle(t, all, readBoroughs(t, zones))
	results := readAll(t, topic, len(want), wait)
	if len(results) < len(want) {
		t.Errorf("%s holds %d results after %s; the oracle has %d", topic, len(results), wait, len(want))
	}
	checkResultsEqualOracle(t, results, want)
	if !t.Failed() {
		t.Logf("%s: %d rides; %s holds %d results, one per (hour, borough), each equal to the batch oracle",
			filepath.Base(rides), len(all), topic, len(results))
	}
}
