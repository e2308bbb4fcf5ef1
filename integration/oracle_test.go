package integration

import (
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/parquet-go/parquet-go"

	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/producer/zones"
	"github.com/taxi-stream/taxi-stream/topology"
)

// The oracle is a plain batch computation over a file, written without the
// processor's packages: it reads the file with parquet-go (or encoding/csv) itself,
// converts money with math/big from the decimal text, and groups by the dropoff
// hour and the pickup borough.

// oracleRide is one row as the oracle reads it.
type oracleRide struct {
	dropoffMs  int64
	pu         int64
	passengers *int64
	dist       string // decimal text
	fare, tip  string
	total      string
}

type oracleCell struct {
	count, passSum, passN, dist, fare, tip, total int64
}

// hundredths converts decimal text to hundredths, rounding half away from zero.
func hundredths(t testing.TB, text string) int64 {
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		t.Fatalf("oracle: bad number %q", text)
	}
	r.Mul(r, big.NewRat(100, 1))
	return roundHalfAway(r)
}

func roundHalfAway(r *big.Rat) int64 {
	neg := r.Sign() < 0
	a := new(big.Rat).Abs(r)
	a.Add(a, big.NewRat(1, 2))
	q := new(big.Int).Quo(a.Num(), a.Denom())
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}

func fmt2(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

func avg2(sum, n int64) string {
	return fmt2(roundHalfAway(big.NewRat(sum, n)))
}

// readParquetRides reads the oracle's columns from a TLC Parquet file.
func readParquetRides(t testing.TB, path string) []oracleRide {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatalf("oracle: open %s: %v", path, err)
	}
	index := map[string]int{}
	for i, col := range pf.Schema().Columns() {
		index[col[0]] = i
	}
	need := []string{"lpep_dropoff_datetime", "PULocationID", "passenger_count", "trip_distance", "fare_amount", "tip_amount", "total_amount"}
	for _, n := range need {
		if _, ok := index[n]; !ok {
			t.Fatalf("oracle: %s has no column %s", path, n)
		}
	}
	num := func(v parquet.Value) string {
		switch v.Kind() {
		case parquet.Double:
			return strconv.FormatFloat(v.Double(), 'f', -1, 64)
		case parquet.Float:
			return strconv.FormatFloat(float64(v.Float()), 'f', -1, 32)
		default:
			return strconv.FormatInt(v.Int64(), 10)
		}
	}
	var out []oracleRide
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 512)
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				col := func(name string) parquet.Value {
					v := row[index[name]]
					if v.Column() != index[name] {
						t.Fatalf("oracle: row layout: value of column %d at %d", v.Column(), index[name])
					}
					return v
				}
				r := oracleRide{
					dropoffMs: floorDiv(col("lpep_dropoff_datetime").Int64(), 1000),
					dist:      num(col("trip_distance")),
					fare:      num(col("fare_amount")),
					tip:       num(col("tip_amount")),
					total:     num(col("total_amount")),
				}
				if v := col("PULocationID"); !v.IsNull() {
					r.pu = v.Int64()
					if v.Kind() == parquet.Double {
						r.pu = int64(v.Double())
					}
				}
				if v := col("passenger_count"); !v.IsNull() {
					p := v.Int64()
					if v.Kind() == parquet.Double {
						p = int64(v.Double())
					}
					r.passengers = &p
				}
				out = append(out, r)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("oracle: read %s: %v", path, err)
			}
		}
		rows.Close()
	}
	return out
}

// readCSVRides reads the oracle's columns from a TLC CSV(.gz) file.
func readCSVRides(t testing.TB, path string) []oracleRide {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	}
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		t.Fatal(err)
	}
	idx := map[string]int{}
	for i, h := range header {
		idx[strings.TrimSpace(h)] = i
	}
	var out []oracleRide
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		field := func(n string) string { return strings.TrimSpace(rec[idx[n]]) }
		tm, err := time.Parse("2006-01-02 15:04:05", field("lpep_dropoff_datetime"))
		if err != nil {
			t.Fatal(err)
		}
		ride := oracleRide{dropoffMs: tm.UnixMilli(), dist: field("trip_distance"), fare: field("fare_amount"), tip: field("tip_amount"), total: field("total_amount")}
		ride.pu, _ = strconv.ParseInt(field("PULocationID"), 10, 64)
		if s := field("passenger_count"); s != "" {
			p, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			ride.passengers = &p
		}
		out = append(out, ride)
	}
	return out
}

func readBoroughs(t testing.TB, path string) map[int64]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	for _, r := range recs[1:] {
		id, _ := strconv.ParseInt(r[0], 10, 64)
		out[id] = r[1]
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// oracle groups rides per (dropoff hour, pickup borough) -> result key.
func oracle(t testing.TB, rides []oracleRide, boroughs map[int64]string) map[string]*oracleCell {
	return oracleWindows(t, rides, boroughs, time.Hour, time.Hour)
}

// oracleWindows groups rides per (window, pickup borough) -> result key, where a
// ride counts in every window [start, start+size) with start a multiple of slide
// that holds its dropoff time (Spark's window(col, size, slide)).
func oracleWindows(t testing.TB, rides []oracleRide, boroughs map[int64]string, size, slide time.Duration) map[string]*oracleCell {
	out := map[string]*oracleCell{}
	cents := centsOf{} // the files repeat their amounts: parse each text once
	for _, r := range rides {
		b, ok := boroughs[r.pu]
		if !ok || b == "" {
			b = "Unknown"
		}
		for start := floorDiv(r.dropoffMs, slide.Milliseconds()) * slide.Milliseconds(); start > r.dropoffMs-size.Milliseconds(); start -= slide.Milliseconds() {
			key := time.UnixMilli(start).UTC().Format("2006-01-02T15:04:05") + "/" + b
			c := out[key]
			if c == nil {
				c = &oracleCell{}
				out[key] = c
			}
			c.add(t, r, cents)
		}
	}
	return out
}

// centsOf memoizes hundredths.
type centsOf map[string]int64

func (m centsOf) of(t testing.TB, text string) int64 {
	v, ok := m[text]
	if !ok {
		v = hundredths(t, text)
		m[text] = v
	}
	return v
}

func (c *oracleCell) add(t testing.TB, r oracleRide, cents centsOf) {
	c.count++
	if r.passengers != nil {
		c.passSum += *r.passengers
		c.passN++
	}
	c.dist += cents.of(t, r.dist)
	c.fare += cents.of(t, r.fare)
	c.tip += cents.of(t, r.tip)
	c.total += cents.of(t, r.total)
}

// checkResultAgainstOracle compares one result record's JSON with the oracle cell.
func checkResultAgainstOracle(t testing.TB, key string, value []byte, c *oracleCell) {
	t.Helper()
	var v map[string]json.RawMessage
	if err := json.Unmarshal(value, &v); err != nil {
		t.Fatalf("result %s: %v", key, err)
	}
	var sums map[string]int64
	if err := json.Unmarshal(v["sums"], &sums); err != nil {
		t.Fatalf("result %s sums: %v", key, err)
	}
	wantSums := map[string]int64{"count": c.count, "passenger_sum": c.passSum, "passenger_count": c.passN,
		"distance_hundredths": c.dist, "tip_cents": c.tip, "fare_cents": c.fare, "total_cents": c.total}
	for k, want := range wantSums {
		if sums[k] != want {
			t.Errorf("%s: sums.%s = %d, oracle %d", key, k, sums[k], want)
		}
	}
	want := map[string]string{
		"trip_count": strconv.FormatInt(c.count, 10), "input_count": strconv.FormatInt(c.count, 10),
		"total_distance": fmt2(c.dist), "avg_distance": avg2(c.dist, c.count),
		"avg_tip_amount": avg2(c.tip, c.count), "total_fare": fmt2(c.fare), "avg_fare": avg2(c.fare, c.count),
		"total_amount": fmt2(c.total), "avg_total_amount": avg2(c.total, c.count),
		"avg_passenger_count": "null",
	}
	if c.passN > 0 {
		want["avg_passenger_count"] = avg2(c.passSum*100, c.passN) // hundredths of a passenger
	}
	for k, w := range want {
		if got := string(v[k]); got != w {
			t.Errorf("%s: %s = %s, oracle %s", key, k, got, w)
		}
	}
}

func TestResultsEqualBatchOracleInDropoffOrder(t *testing.T) {
	data := sharedData(t)
	boroughs := readBoroughs(t, filepath.Join(data, "taxi_zone_lookup.csv"))
	files := []string{"green_tripdata_2020-12.parquet", "green_tripdata_2023-01.parquet",
		"green_tripdata_2024-01.parquet", "green_tripdata_2025-01.parquet", "green_tripdata_2020-04.csv.gz"}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(data, name)
			var rides []oracleRide
			if strings.Contains(name, ".csv") {
				rides = readCSVRides(t, path)
			} else {
				rides = readParquetRides(t, path)
			}
			want := oracle(t, rides, boroughs)

			topics := pipelineInputs(t, 3)
			start := time.Now()
			n := feedRides(t, topics.Rides, 3, path, feedOptions{markers: true})
			if n != len(rides) {
				t.Fatalf("fed %d rides, the oracle read %d", n, len(rides))
			}
			p, cancel, done := startPipeline(t, topics, eos.ExactlyOnce, "i1")
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("pipeline: %v", err)
				}
			}()
			results := readAll(t, topics.Results, len(want), 3*time.Minute)
			elapsed := time.Since(start)
			checkResultsEqualOracle(t, results, want)
			in, _ := p.Stages()
			if in != nil {
				if late, dead := in.Counters.Late.Load(), in.Counters.Dead.Load(); late != 0 || dead != 0 {
					t.Errorf("late %d, dead %d: in dropoff order nothing may be late or dead", late, dead)
				}
			}
			if late := readAll(t, topics.Late, 0, 3*time.Second); len(late) != 0 {
				t.Errorf("late topic holds %d rides", len(late))
			}
			if dead := readAll(t, topics.Dead, 0, 3*time.Second); len(dead) != 0 {
				t.Errorf("dead-letter topic holds %d records", len(dead))
			}
			t.Logf("%s: %d rides, %d results equal to the oracle, %s from first write to last result", name, n, len(want), elapsed.Round(time.Millisecond))
		})
	}
}

// checkResultsEqualOracle checks the results read against the oracle: one record per
// key, none missing, none extra, each equal to its cell. It returns them by key.
func checkResultsEqualOracle(t testing.TB, results []*sarama.ConsumerMessage, want map[string]*oracleCell) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	for _, m := range results {
		if _, dup := got[string(m.Key)]; dup {
			t.Errorf("result %s written more than once", m.Key)
		}
		got[string(m.Key)] = m.Value
	}
	for key, c := range want {
		v, ok := got[key]
		if !ok {
			t.Errorf("no result for %s (oracle: %d rides)", key, c.count)
			continue
		}
		checkResultAgainstOracle(t, key, v, c)
	}
	for key := range got {
		if want[key] == nil {
			t.Errorf("result %s is not in the oracle", key)
		}
	}
	return got
}

// loadZones loads the zone lookup CSV into the zones topic with the replay
// producer's zones loader.
func loadZones(t testing.TB, topic, path string) {
	t.Helper()
	if _, err := zones.Run(context.Background(), zones.Config{File: path, Brokers: kafka.Brokers(t), Topic: topic}); err != nil {
		t.Fatalf("load zones %s: %v", path, err)
	}
}

// pipelineInputs creates a rides topic with the given partitions and a zones topic
// holding the real zone table.
func pipelineInputs(t testing.TB, partitions int32) topology.Topics {
	t.Helper()
	topics := testTopics(t)
	admin := kafka.Admin(t)
	createTopic(t, admin, topics.Rides, partitions, nil)
	createTopic(t, admin, topics.Zones, 1, map[string]string{"cleanup.policy": "compact"})
	loadZones(t, topics.Zones, filepath.Join(sharedData(t), "taxi_zone_lookup.csv"))
	return topics
}

// naiveLateFraction applies Spark's rule (watermark = max event time seen - 10 min,
// a ride is late when its hour has ended before the watermark) in file order.
func naiveLateFraction(rides []oracleRide) float64 {
	var maxSeen int64
	late := 0
	for i, r := range rides {
		if i > 0 && floorDiv(r.dropoffMs, 3_600_000)*3_600_000+3_600_000 <= maxSeen-600_000 {
			late++
		}
		maxSeen = max(maxSeen, r.dropoffMs)
	}
	return float64(late) / float64(len(rides))
}

func TestFileOrderConservationAndLateness(t *testing.T) {
	data := sharedData(t)
	files := []string{"green_tripdata_2020-12.parquet", "green_tripdata_2023-01.parquet",
		"green_tripdata_2024-01.parquet", "green_tripdata_2025-01.parquet"}
	var report []string
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(data, name)
			rides := readParquetRides(t, path)
			nullBlock := 0
			for _, r := range rides {
				if r.passengers == nil {
					nullBlock++
				}
			}
			topics := pipelineInputs(t, 3)
			n := feedRides(t, topics.Rides, 3, path, feedOptions{fileOrder: true, markers: true})
			p, cancel, done := startPipeline(t, topics, eos.ExactlyOnce, "i1")
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("pipeline: %v", err)
				}
			}()
			// Wait until every ride is accounted for.
			var counted, late, dead int64
			deadline := time.Now().Add(3 * time.Minute)
			for time.Now().Before(deadline) {
				in, win := p.Stages()
				if in != nil && win != nil {
					counted, late, dead = win.Counters.RidesEmitted.Load(), in.Counters.Late.Load(), in.Counters.Dead.Load()
					if counted+late+dead >= int64(n) {
						break
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
			// Count again from the topics, read_committed.
			results := readAll(t, topics.Results, 1, time.Minute)
			var inResults int64
			for _, m := range results {
				var v struct {
					TripCount int64 `json:"trip_count"`
				}
				if err := json.Unmarshal(m.Value, &v); err != nil {
					t.Fatal(err)
				}
				inResults += v.TripCount
			}
			lateRecs := readAll(t, topics.Late, int(late), time.Minute)
			deadRecs := readAll(t, topics.Dead, int(dead), 2*time.Minute)
			if got := inResults + int64(len(lateRecs)) + int64(len(deadRecs)); got != int64(n) {
				t.Errorf("conservation: %d in results + %d late + %d dead = %d, want %d rides", inResults, len(lateRecs), len(deadRecs), got, n)
			}
			lateFrac := float64(len(lateRecs)) / float64(n)
			nullFrac := float64(nullBlock) / float64(n)
			naive := naiveLateFraction(rides)
			line := fmt.Sprintf("%s: rides %d, late %.2f%% (null block %.2f%%, limit %.2f%%), dead %d; naive max-minus-10min rule: %.2f%% late",
				name, n, 100*lateFrac, 100*nullFrac, 100*nullFrac+5, len(deadRecs), 100*naive)
			t.Log(line)
			report = append(report, line)
			if lateFrac > nullFrac+0.05 {
				t.Errorf("late fraction %.2f%% exceeds the null block %.2f%% + 5 points", 100*lateFrac, 100*nullFrac)
			}
		})
	}
	sort.Strings(report)
	t.Logf("file order summary:\n%s", strings.Join(report, "\n"))
}

// sortedRecords renders a topic's records as sorted "key\tvalue" lines.
func sortedRecords(t testing.TB, topic string, want int) []string {
	var lines []string
	for _, m := range readAll(t, topic, want, 5*time.Minute) {
		lines = append(lines, string(m.Key)+"\t"+string(m.Value))
	}
	sort.Strings(lines)
	return lines
}

func TestOneAndThreeInstancesGiveIdenticalResults(t *testing.T) {
	data := sharedData(t)
	path := filepath.Join(data, "green_tripdata_2025-01.parquet")
	topics := pipelineInputs(t, 3)
	// File order: the late/on-time decisions matter here, not only the sums.
	n := feedRides(t, topics.Rides, 3, path, feedOptions{fileOrder: true, markers: true})

	run := func(suffix string, instances int) (results, late []string) {
		tp := topics
		tp.Windows += "-" + suffix
		tp.Results += "-" + suffix
		tp.Late += "-" + suffix
		tp.Dead += "-" + suffix
		var stops []func()
		var stages []*pipelineHandle
		for i := 0; i < instances; i++ {
			h := startPipelineApp(t, tp, eos.ExactlyOnce, fmt.Sprintf("i%d", i), topics.Rides+"-"+suffix)
			stages = append(stages, h)
			stops = append(stops, h.stop)
		}
		defer func() {
			for _, s := range stops {
				s()
			}
		}()
		// Wait until all rides are accounted for across the instances.
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			var total int64
			for _, h := range stages {
				in, win := h.p.Stages()
				if in != nil && win != nil {
					total += win.Counters.RidesEmitted.Load() + in.Counters.Late.Load() + in.Counters.Dead.Load()
				}
			}
			if total >= int64(n) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		return sortedRecords(t, tp.Results, 1), keysOf(readAll(t, tp.Late, 0, 5*time.Second))
	}
	res1, late1 := run("one", 1)
	res3, late3 := run("three", 3)
	if len(res1) == 0 {
		t.Fatal("no results")
	}
	if !equalLines(res1, res3) {
		t.Fatalf("results differ: 1 instance %d records, 3 instances %d records\nfirst difference: %s", len(res1), len(res3), firstDiff(res1, res3))
	}
	if !equalLines(late1, late3) {
		t.Fatalf("late rides differ: %d vs %d", len(late1), len(late3))
	}
	t.Logf("1 and 3 instances: %d identical result records, %d identical late rides", len(res1), len(late1))
}

func keysOf(msgs []*saramaMessage) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Key))
	}
	sort.Strings(out)
	return out
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func firstDiff(a, b []string) string {
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("\n  %s\n  %s", a[i], b[i])
		}
	}
	return "(one is a prefix of the other)"
}
