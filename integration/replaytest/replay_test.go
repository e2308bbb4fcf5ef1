package replaytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/parquet-go/parquet-go"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/integration/hdfstest"
	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/producer/replay"
	"github.com/taxi-stream/taxi-stream/producer/replay/source"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
	"github.com/taxi-stream/taxi-stream/producer/zones"
)

// TestReplaySampleFiles replays each real green Parquet file, in event-time (dropoff) order
// and in file order, and checks the topic against the file read independently.
func TestReplaySampleFiles(t *testing.T) {
	for _, f := range tlctest.ParquetFiles {
		for _, order := range []replay.Order{replay.OrderEventTime, replay.OrderFile} {
			t.Run(f.Name+"/"+string(order), func(t *testing.T) {
				topic := kafkatest.UniqueName(t, "rides")
				file := tlctest.Path(t, f.Name)
				sum, err := replay.Run(t.Context(), replay.Config{
					Inputs: []string{file}, Brokers: kafka.Brokers(t), Topic: topic, Order: order,
					Logger: replayLogger(t), LogEvery: -1,
				})
				t.Cleanup(func() { _, _ = replay.Cleanup(context.Background(), kafka.Brokers(t), []string{topic}, 0) })
				if err != nil {
					t.Fatal(err)
				}
				if !sum.Created || sum.Partitions != 3 || sum.Rows != f.Rows || sum.TotalRows != f.Rows || sum.Skipped != 0 ||
					sum.Markers != 3*(2+f.Rows/1000) || sum.Interrupted {
					t.Errorf("summary %+v", sum)
				}
				n := checkReplayTopic(t, topic, replayCheck{
					files: []string{file}, fileOrder: order == replay.OrderFile, markers: true, every: 1000, partitions: 3,
				})
				if int64(n) != f.Rows {
					t.Errorf("%d rows, want %d", n, f.Rows)
				}
			})
		}
	}
}

// TestReplayGlobWithCSV replays the gzipped CSV and a Parquet file through one glob, without
// markers, into a one-partition topic that exists already.
func TestReplayGlobWithCSV(t *testing.T) {
	topic := kafka.Topic(t, kafkatest.Partitions(1))
	dir := tlctest.DataDir(t)
	sum, err := replay.Run(t.Context(), replay.Config{
		Inputs: []string{filepath.Join(dir, "green_tripdata_20[2][05]-0[14]*")}, Brokers: kafka.Brokers(t), Topic: topic,
		NoMarkers: true, Logger: replayLogger(t), LogEvery: -1, Compression: "lz4",
	})
	if err != nil {
		t.Fatal(err)
	}
	// The glob sorts the names: 2020-04.csv.gz comes first.
	files := []string{tlctest.Path(t, tlctest.CSVFile), tlctest.Path(t, "green_tripdata_2025-01.parquet")}
	want := tlctest.CSVRows + 48326
	if sum.Created || sum.Inputs != 2 || sum.Rows != int64(want) || sum.Markers != 0 {
		t.Errorf("summary %+v", sum)
	}
	if n := checkReplayTopic(t, topic, replayCheck{files: files, partitions: 1}); n != want {
		t.Errorf("%d rows, want %d", n, want)
	}
}

// TestReplayPacing checks that --rate and --speedup slow the replay down as asked.
func TestReplayPacing(t *testing.T) {
	file := tlctest.Path(t, "green_tripdata_2025-01.parquet") // 48326 rows, Dec 25 .. Feb 5
	for _, tc := range []struct {
		name    string
		cfg     func(*replay.Config)
		atLeast time.Duration
	}{
		// 48326 rows at 24000 rows/s: 2 s.
		{"rate", func(c *replay.Config) { c.Rate = 24000 }, 1900 * time.Millisecond},
		// About 31 days of event time (plus outliers skipped as gaps) at 1.2M x: > 2 s.
		{"speedup", func(c *replay.Config) { c.Speedup = 31 * 24 * 3600 / 2.2 }, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := kafka.Topic(t, kafkatest.Partitions(3))
			cfg := replay.Config{Inputs: []string{file}, Brokers: kafka.Brokers(t), Topic: topic, LogEvery: -1, Logger: replayLogger(t)}
			tc.cfg(&cfg)
			sum, err := replay.Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Rows != 48326 {
				t.Errorf("%d rows", sum.Rows)
			}
			if sum.SendElapsed < tc.atLeast {
				t.Errorf("sent in %v, want at least %v", sum.SendElapsed, tc.atLeast)
			}
			if sum.SendElapsed > 4*tc.atLeast+10*time.Second {
				t.Errorf("sent in %v: far slower than asked", sum.SendElapsed)
			}
			t.Logf("%s: %v", tc.name, sum.SendElapsed)
		})
	}
}

// TestReplayHDFS puts two real files into a real single-node HDFS and replays them through
// hdfs:// URLs: one with the NameNode in the URL, one (a glob) through HADOOP_CONF_DIR.
func TestReplayHDFS(t *testing.T) {
	brokers := kafka.Brokers(t) // skips under -short before starting HDFS
	c := hdfstest.StartTest(t, hdfstest.Options{})
	local := []string{tlctest.Path(t, "green_tripdata_2025-01.parquet"), tlctest.Path(t, "green_tripdata_2024-01.parquet")}
	remote := []string{"/taxi/a/green_tripdata_2025-01.parquet", "/taxi/b/green_tripdata_2024-01.parquet"}
	for i := range local {
		if err := c.CopyFromLocal(t.Context(), local[i], remote[i]); err != nil {
			t.Fatal(err)
		}
	}
	topic := kafkatest.UniqueName(t, "rides")
	t.Cleanup(func() { _, _ = replay.Cleanup(context.Background(), brokers, []string{topic}, 0) })
	sum, err := replay.Run(t.Context(), replay.Config{
		Inputs:  []string{c.URL(remote[0]), "hdfs:///taxi/b/*.parquet"},
		HDFS:    source.HDFSConfig{ConfDir: c.ConfDir(), User: c.User()},
		Brokers: brokers, Topic: topic, Logger: replayLogger(t), LogEvery: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Inputs != 2 || sum.Rows != 48326+56551 {
		t.Errorf("summary %+v", sum)
	}
	checkReplayTopic(t, topic, replayCheck{files: local, markers: true, every: 1000, partitions: 3})

	// A missing HDFS path is named in the error and nothing is sent.
	_, err = replay.Run(t.Context(), replay.Config{
		Inputs: []string{c.URL("/taxi/nothing.parquet")}, HDFS: source.HDFSConfig{User: c.User()},
		Brokers: brokers, Topic: topic + "-missing",
	})
	if err == nil || !strings.Contains(err.Error(), "/taxi/nothing.parquet") {
		t.Errorf("missing hdfs file: got %v", err)
	}
}

// TestReplayCLI runs the taxi-replay binary: bad inputs, SIGKILL + resume, Ctrl-C, zones and
// cleanup.
func TestReplayCLI(t *testing.T) {
	brokers := brokersFlag(t)
	bin := buildReplayBinary(t)
	run := func(t *testing.T, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append(args, "--brokers", brokers)...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			code = exit.ExitCode()
		default:
			t.Fatalf("run %v: %v", args, err)
		}
		return o.String(), e.String(), code
	}
	t.Run("BadFiles", func(t *testing.T) { testReplayBadFiles(t, run) })
	t.Run("KillAndResume", func(t *testing.T) { testReplayKillResume(t, bin, brokers) })
	t.Run("Zones", func(t *testing.T) {
		topic := kafkatest.UniqueName(t, "zones")
		t.Cleanup(func() { _, _ = replay.Cleanup(context.Background(), kafka.Brokers(t), []string{topic}, 0) })
		out, errOut, code := run(t, "zones", "--file", tlctest.Path(t, "taxi_zone_lookup.csv"), "--topic", topic, "--partitions", "2")
		if code != 0 || !strings.Contains(out, "loaded 265 zones") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		checkZoneLookups(t, topic, 2, "taxi_zone_lookup.csv")
		_, errOut, code = run(t, "zones", "--file", filepath.Join(t.TempDir(), "none.csv"), "--topic", topic)
		if code != 1 || !strings.Contains(errOut, "none.csv") {
			t.Errorf("missing zone file: exit %d, %s", code, errOut)
		}
	})
	t.Run("Cleanup", func(t *testing.T) {
		admin := kafka.Admin(t)
		a, b := kafkatest.UniqueName(t, "a"), kafkatest.UniqueName(t, "b")
		for _, n := range []string{a, b} {
			createTopic(t, admin, n, 1)
		}
		flags := []string{"cleanup", "--rides", a, "--zones", b, "--results", a + "-absent", "--late", "", "--dead", "",
			"--windows", "", "--windows-table", ""}
		_, errOut, code := run(t, flags...)
		if code != 2 || !strings.Contains(errOut, "--yes") {
			t.Fatalf("without --yes: exit %d, %s", code, errOut)
		}
		if topics, _ := admin.ListTopics(); topics[a].NumPartitions != 1 {
			t.Fatalf("topic %s deleted without --yes", a)
		}
		out, errOut, code := run(t, append(flags, "--yes")...)
		if code != 0 || !strings.Contains(out, a+": deleted") || !strings.Contains(out, b+": deleted") || !strings.Contains(out, a+"-absent: not found") {
			t.Fatalf("cleanup: exit %d\n%s%s", code, out, errOut)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			topics, err := admin.ListTopics()
			if err != nil {
				t.Fatal(err)
			}
			_, okA := topics[a]
			_, okB := topics[b]
			if !okA && !okB {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("topics still listed after cleanup: %v %v", okA, okB)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// testReplayBadFiles: every bad input stops the replay before anything is written, with an
// error that names the file (and the column when a column is wrong).
func testReplayBadFiles(t *testing.T, run func(*testing.T, ...string) (string, string, int)) {
	dir := t.TempDir()
	good := tlctest.Path(t, "green_tripdata_2025-01.parquet")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := write("truncated.parquet", data[:len(data)/2])
	empty := write("empty.parquet", nil)
	notParquet := write("text.parquet", []byte("VendorID,lpep_pickup_datetime\n1,2\n"))
	wrongType := writeParquet(t, dir, "wrong_type.parquet", []wrongTypeRow{{Pickup: time.Now(), Dropoff: time.Now(), PU: "132"}})
	missing := writeParquet(t, dir, "missing_column.parquet", []missingColumnRow{{Pickup: time.Now(), Dropoff: time.Now(), PU: 132}})
	badCSV := write("bad.csv", []byte("VendorID,lpep_pickup_datetime,lpep_dropoff_datetime,PULocationID\n1,2024-01-01 00:00:00,2024-01-01 00:10:00,7\n"))
	badRowCSV := write("badrow.csv", append([]byte("VendorID,lpep_pickup_datetime,lpep_dropoff_datetime,PULocationID,trip_distance,fare_amount,tip_amount,total_amount\n"+
		"1,2024-01-01 00:00:00,2024-01-01 00:10:00,7,1.5,10,1,12\n"), []byte("1,2024-13-45 99:00:00,x,7,1,1,1,1\n")...))

	for _, tc := range []struct {
		name   string
		args   []string
		substr []string
	}{
		{"truncated", []string{good, truncated}, []string{"truncated.parquet"}},
		{"empty", []string{empty}, []string{"empty.parquet", "empty file"}},
		{"not parquet", []string{notParquet}, []string{"text.parquet", "not a readable parquet file"}},
		{"wrong column type", []string{good, wrongType}, []string{"wrong_type.parquet", "PULocationID", "incompatible type"}},
		{"missing column", []string{missing}, []string{"missing_column.parquet", "missing required column trip_distance"}},
		{"csv missing column", []string{badCSV}, []string{"bad.csv", "trip_distance"}},
		{"csv bad row, file order", []string{good, badRowCSV, "--order", "file"}, []string{"badrow.csv", "line 3"}},
		{"csv bad row, dropoff order", []string{good, badRowCSV}, []string{"badrow.csv", "line 3"}},
		{"unreadable path", []string{good, filepath.Join(dir, "absent.parquet")}, []string{"absent.parquet", "no such file"}},
		{"empty glob", []string{filepath.Join(dir, "zzz*.parquet")}, []string{"zzz*.parquet", "no file matches"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := kafka.Topic(t, kafkatest.Partitions(3))
			_, errOut, code := run(t, append(tc.args, "--topic", topic, "--progress", "none")...)
			if code == 0 || code == 130 {
				t.Fatalf("exit %d, want an error\n%s", code, errOut)
			}
			for _, s := range tc.substr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr does not mention %q:\n%s", s, errOut)
				}
			}
			if n := topicRecordCount(t, topic); n != 0 {
				t.Errorf("%d records written, want none", n)
			}
		})
	}
}

type wrongTypeRow struct {
	Pickup  time.Time `parquet:"lpep_pickup_datetime,timestamp(microsecond)"`
	Dropoff time.Time `parquet:"lpep_dropoff_datetime,timestamp(microsecond)"`
	PU      string    `parquet:"PULocationID"`
	Dist    float64   `parquet:"trip_distance"`
	Fare    float64   `parquet:"fare_amount"`
	Tip     float64   `parquet:"tip_amount"`
	Total   float64   `parquet:"total_amount"`
}

type missingColumnRow struct {
	Pickup  time.Time `parquet:"lpep_pickup_datetime,timestamp(microsecond)"`
	Dropoff time.Time `parquet:"lpep_dropoff_datetime,timestamp(microsecond)"`
	PU      int32     `parquet:"PULocationID"`
	Fare    float64   `parquet:"fare_amount"`
	Tip     float64   `parquet:"tip_amount"`
	Total   float64   `parquet:"total_amount"`
}

func writeParquet[T any](t *testing.T, dir, name string, rows []T) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := parquet.WriteFile(p, rows); err != nil {
		t.Fatal(err)
	}
	return p
}

// testReplayKillResume SIGKILLs a paced replay of all four real files at random moments,
// resumes it each time with the same command plus --resume, interrupts it once with SIGINT
// (exit 130), lets the last resume finish, and checks that the topic holds every row exactly
// once and every marker exactly once per partition.
func testReplayKillResume(t *testing.T, bin, brokers string) {
	topic := kafkatest.UniqueName(t, "rides")
	t.Cleanup(func() { _, _ = replay.Cleanup(context.Background(), kafka.Brokers(t), []string{topic}, 0) })
	files := sampleParquetFiles(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	args := append([]string{"--topic", topic, "--brokers", brokers, "--rate", "30000", "--marker-every", "500",
		"--chunk-rows", "512", "--progress", "none"}, files...)
	start := func(resume bool) (*exec.Cmd, *bytes.Buffer) {
		a := args
		if resume {
			a = append([]string{"--resume"}, a...)
		}
		cmd := exec.Command(bin, a...)
		var e bytes.Buffer
		cmd.Stderr = &e
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &e
	}
	var counts []int64
	for i := range 5 {
		cmd, errOut := start(i > 0)
		// The sort of 256k rows takes about a second; the paced send about eight more.
		delay := time.Duration(500+rng.IntN(3000)) * time.Millisecond
		sig := syscall.SIGKILL
		if i == 3 {
			// Ctrl-C while it sends: wait until the topic grows.
			sig = syscall.SIGINT
			prev := counts[len(counts)-1]
			deadline := time.Now().Add(time.Minute)
			for topicRecordCount(t, topic) <= prev && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			delay = 0
		}
		time.Sleep(delay)
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		switch {
		case sig == syscall.SIGINT && code != 130:
			t.Fatalf("run %d: SIGINT gave exit %d (%v), want 130\n%s", i, code, err, errOut)
		case sig == syscall.SIGINT && !strings.Contains(errOut.String(), "replay interrupted"):
			t.Errorf("run %d: SIGINT: stderr does not say it was interrupted:\n%s", i, errOut)
		case sig == syscall.SIGKILL && code == 0:
			t.Logf("run %d finished before the kill", i)
		}
		n := topicRecordCount(t, topic)
		if sig == syscall.SIGINT {
			// Everything queued was acknowledged before the exit: nothing arrives later.
			time.Sleep(300 * time.Millisecond)
			if later := topicRecordCount(t, topic); later != n {
				t.Errorf("run %d: %d records arrived after the process exited on SIGINT", i, later-n)
			}
		}
		counts = append(counts, n)
		t.Logf("run %d: %v after %v, topic holds %d records", i, sig, delay, n)
	}
	cmd, errOut := start(true)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final resume: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut.String(), "resuming") && counts[len(counts)-1] > 0 {
		t.Errorf("final run did not log that it resumed:\n%s", errOut)
	}
	if counts[len(counts)-1] == 0 {
		t.Errorf("no kill landed after the first send (counts %v): the test did not exercise resume", counts)
	}
	checkReplayTopic(t, topic, replayCheck{files: files, markers: true, every: 500, partitions: 3})

	// Resuming a complete replay sends nothing; resuming with other settings is refused.
	before := topicRecordCount(t, topic)
	cmd, errOut = start(true)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("resume of a complete replay: %v\n%s", err, errOut)
	}
	if after := topicRecordCount(t, topic); after != before {
		t.Errorf("resume of a complete replay wrote %d records", after-before)
	}
	// (With other marker spacing the final marker's position differs. A complete topic
	// resumed in another order would pass: it ends with the final marker at the same
	// position, and there is nothing left to send.)
	other := exec.Command(bin, append(args, "--resume", "--marker-every", "400")...)
	out, err := other.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "does not continue this replay") {
		t.Errorf("resume with --marker-every 400: %v\n%s", err, out)
	}
	if after := topicRecordCount(t, topic); after != before {
		t.Errorf("a refused resume wrote %d records", after-before)
	}
}

// checkZoneLookups reads the zones topic through a goka view (what the processor does) and
// checks that every LocationID of the file is found in the partition goka looks in.
func checkZoneLookups(t *testing.T, topic string, partitions int, file string) {
	t.Helper()
	want, err := zones.Load(t.Context(), zones.Config{File: tlctest.Path(t, file)})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(readTopicFully(t, topic)); got != partitions {
		t.Fatalf("zones topic has %d partitions, want %d", got, partitions)
	}
	cfg := kafkatest.SaramaConfig()
	view, err := goka.NewView(kafka.Brokers(t), goka.Table(topic), new(codec.Bytes),
		goka.WithViewStorageBuilder(storage.MemoryBuilder()),
		goka.WithViewConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(cfg)),
		goka.WithViewTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(cfg, goka.NewTopicManagerConfig())))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-view.WaitRunning():
	case err := <-done:
		t.Fatalf("view stopped: %v", err)
	case <-ctx.Done():
		t.Fatal("view not running in time")
	}
	for _, z := range want {
		v, err := view.Get(codecs.ZoneKey(z.LocationID))
		if err != nil {
			t.Fatal(err)
		}
		if v == nil {
			t.Fatalf("goka view does not find zone %d", z.LocationID)
		}
		got, err := codecs.DecodeZone(v.([]byte))
		if err != nil || got != z {
			t.Fatalf("zone %d: view has %+v (%v), want %+v", z.LocationID, got, err, z)
		}
	}
}

// TestZonesToGokaView loads both zone files, from a file and from an HTTP server, into
// compacted topics with 1 and 3 partitions and looks every zone up through goka.
func TestZonesToGokaView(t *testing.T) {
	brokers := kafka.Brokers(t)
	legacy, err := os.ReadFile(tlctest.Path(t, "taxi_zone_lookup_legacy.csv"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Base(r.URL.Path) != "taxi+_zone_lookup.csv" {
			http.NotFound(w, r)
			return
		}
		w.Write(legacy)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		source, file string
		partitions   int
	}{
		{tlctest.Path(t, "taxi_zone_lookup.csv"), "taxi_zone_lookup.csv", 1},
		{srv.URL + "/misc/taxi+_zone_lookup.csv", "taxi_zone_lookup_legacy.csv", 3},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.partitions), func(t *testing.T) {
			topic := kafkatest.UniqueName(t, "zones")
			t.Cleanup(func() { _, _ = replay.Cleanup(context.Background(), brokers, []string{topic}, 0) })
			cfg := zones.Config{File: tc.source, Brokers: brokers, Topic: topic, Partitions: tc.partitions}
			sum, err := zones.Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Zones != 265 || sum.Partitions != tc.partitions || !sum.Created {
				t.Errorf("summary %+v", sum)
			}
			for p, n := range sum.PerPartition {
				if n == 0 {
					t.Errorf("partition %d got no zones", p)
				}
			}
			conf, err := kafka.Admin(t).DescribeConfig(saramaTopicResource(topic))
			if err != nil {
				t.Fatal(err)
			}
			compact := false
			for _, e := range conf {
				if e.Name == "cleanup.policy" && e.Value == "compact" {
					compact = true
				}
			}
			if !compact {
				t.Error("zones topic is not compacted")
			}
			checkZoneLookups(t, topic, tc.partitions, tc.file)
			// Loading again is idempotent for lookups; a plain (non-compacted) topic is refused.
			if _, err := zones.Run(t.Context(), cfg); err != nil {
				t.Fatalf("second load: %v", err)
			}
			plain := kafka.Topic(t)
			cfg.Topic = plain
			if _, err := zones.Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "cleanup.policy") {
				t.Errorf("non-compacted topic: got %v", err)
			}
			if n := topicRecordCount(t, plain); n != 0 {
				t.Errorf("%d zones written to a non-compacted topic", n)
			}
		})
	}
}
