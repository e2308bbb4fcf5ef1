package hdfstest

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/colinmarc/hdfs/v2/hadoopconf"
	"github.com/parquet-go/parquet-go"
)

// testBlockSize is the smallest block size the NameNode accepts by default
// (dfs.namenode.fs-limits.min-block-size): test files span several blocks, so
// reads cross block (and DataNode connection) boundaries.
const testBlockSize = 1 << 20

// TestCluster starts one cluster and checks what the replay producer relies
// on: writes and reads through the Go client, ReadAt on a real Parquet file,
// stat, listings, HADOOP_CONF_DIR, and a clean Stop.
func TestCluster(t *testing.T) {
	began := time.Now()
	c := StartTest(t, Options{})
	t.Logf("HDFS %s ready in %v (logs in %s)", c.Addr(), time.Since(began).Round(time.Millisecond), c.LogDir())

	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	// hdfs.Client.Close panics when called twice (v2.4.0: close of closed channel).
	closeClient := sync.OnceFunc(func() { client.Close() })
	defer closeClient()

	t.Run("WriteReadRoundTrip", func(t *testing.T) {
		want := randomBytes(t, 3*testBlockSize+12345)
		writeFile(t, client, "/roundtrip/random.bin", bytes.NewReader(want))
		got, err := client.ReadFile("/roundtrip/random.bin")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read back %d bytes, differ from the %d written (first difference at %d)",
				len(got), len(want), firstDiff(got, want))
		}
	})

	t.Run("ParquetReadAt", func(t *testing.T) {
		local := readSharedData(t, "green_tripdata_2024-01.parquet")
		const name = "/data/green/green_tripdata_2024-01.parquet"
		writeFile(t, client, name, bytes.NewReader(local))

		r, err := client.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Stat().Size() != int64(len(local)) {
			t.Fatalf("size in HDFS %d, local %d", r.Stat().Size(), len(local))
		}
		seed := time.Now().UnixNano()
		rng := rand.New(rand.NewPCG(uint64(seed), 0))
		t.Logf("random offsets from seed %d", seed)
		reads := []struct{ off, n int }{
			{0, 4},                     // leading magic "PAR1"
			{len(local) - 8, 8},        // footer length + magic
			{testBlockSize - 100, 200}, // across the first block boundary
			{0, len(local)},            // everything in one call
			{len(local) - testBlockSize, testBlockSize}, // a block's worth ending at EOF
		}
		for range 200 {
			off := rng.IntN(len(local))
			reads = append(reads, struct{ off, n int }{off, 1 + rng.IntN(min(256<<10, len(local)-off))})
		}
		for _, rd := range reads {
			buf := make([]byte, rd.n)
			n, err := r.ReadAt(buf, int64(rd.off))
			if err != nil && !(errors.Is(err, io.EOF) && rd.off+rd.n == len(local)) {
				t.Fatalf("ReadAt(%d bytes at %d): %v", rd.n, rd.off, err)
			}
			if n != rd.n || !bytes.Equal(buf, local[rd.off:rd.off+rd.n]) {
				t.Fatalf("ReadAt(%d bytes at %d): got %d bytes, differ from local file at %d",
					rd.n, rd.off, n, rd.off+firstDiff(buf[:n], local[rd.off:rd.off+rd.n]))
			}
		}
		// Past the end: io.EOF, nothing read.
		if n, err := r.ReadAt(make([]byte, 1), int64(len(local))); n != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("ReadAt at EOF: n=%d err=%v, want 0, io.EOF", n, err)
		}

		// The producer's access pattern: parquet-go over hdfs.FileReader.
		want, err := parquet.OpenFile(bytes.NewReader(local), int64(len(local)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parquet.OpenFile(r, r.Stat().Size())
		if err != nil {
			t.Fatalf("parquet.OpenFile over HDFS: %v", err)
		}
		if got.NumRows() != want.NumRows() || got.NumRows() == 0 {
			t.Errorf("NumRows over HDFS %d, local %d", got.NumRows(), want.NumRows())
		}
		if got.Schema().String() != want.Schema().String() {
			t.Errorf("schema over HDFS differs:\n%s\nlocal:\n%s", got.Schema(), want.Schema())
		}
	})

	t.Run("CopyFromLocal", func(t *testing.T) {
		src := sharedDataPath(t, "green_tripdata_2024-01.parquet")
		const dst = "/data/copied/green_tripdata_2024-01.parquet"
		if err := c.CopyFromLocal(t.Context(), src, dst); err != nil {
			t.Fatal(err)
		}
		local, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := client.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, local) {
			t.Fatalf("%s: %d bytes, differ from local %d bytes at %d", dst, len(got), len(local), firstDiff(got, local))
		}
	})

	t.Run("StatAndList", func(t *testing.T) {
		files := map[string]int{
			"/listing/green_tripdata_2024-01.parquet":  10,
			"/listing/green_tripdata_2024-02.parquet":  20,
			"/listing/yellow_tripdata_2024-01.parquet": 30,
			"/listing/README.txt":                      5,
		}
		for name, size := range files {
			writeFile(t, client, name, bytes.NewReader(bytes.Repeat([]byte{'x'}, size)))
		}
		if err := client.MkdirAll("/listing/sub", 0o755); err != nil {
			t.Fatal(err)
		}

		info, err := client.Stat("/listing/green_tripdata_2024-02.parquet")
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() != 20 || info.IsDir() || info.Name() != "green_tripdata_2024-02.parquet" {
			t.Errorf("stat: size %d dir %v name %q", info.Size(), info.IsDir(), info.Name())
		}
		if age := time.Since(info.ModTime()); age < 0 || age > time.Minute {
			t.Errorf("stat: mod time %v is not recent", info.ModTime())
		}
		if owner := info.(*hdfs.FileInfo).Owner(); owner != c.User() {
			t.Errorf("owner %q, want %q", owner, c.User())
		}
		if _, err := client.Stat("/listing/missing.parquet"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stat of a missing file: %v, want fs.ErrNotExist", err)
		}

		entries, err := client.ReadDir("/listing")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			suffix := ""
			if e.IsDir() {
				suffix = "/"
			}
			names = append(names, e.Name()+suffix)
		}
		wantNames := []string{"README.txt", "green_tripdata_2024-01.parquet", "green_tripdata_2024-02.parquet",
			"sub/", "yellow_tripdata_2024-01.parquet"}
		if !slices.Equal(names, wantNames) {
			t.Errorf("ReadDir: %v, want %v", names, wantNames)
		}

		matches, err := glob(client, "/listing/green_tripdata_*.parquet")
		if err != nil {
			t.Fatal(err)
		}
		wantMatches := []string{"/listing/green_tripdata_2024-01.parquet", "/listing/green_tripdata_2024-02.parquet"}
		if !slices.Equal(matches, wantMatches) {
			t.Errorf("glob: %v, want %v", matches, wantMatches)
		}
	})

	t.Run("HadoopConfDir", func(t *testing.T) {
		t.Setenv("HADOOP_CONF_DIR", c.ConfDir())
		t.Setenv("HADOOP_HOME", "")
		conf, err := hadoopconf.LoadFromEnvironment()
		if err != nil {
			t.Fatal(err)
		}
		if got := conf.Namenodes(); !slices.Equal(got, []string{c.Addr()}) {
			t.Errorf("Namenodes() from HADOOP_CONF_DIR = %v, want [%s]", got, c.Addr())
		}
		// hdfs.New("") takes the address from HADOOP_CONF_DIR alone.
		fromEnv, err := hdfs.New("")
		if err != nil {
			t.Fatal(err)
		}
		defer fromEnv.Close()
		if _, err := fromEnv.Stat("/"); err != nil {
			t.Errorf("stat / through a HADOOP_CONF_DIR client: %v", err)
		}
	})

	t.Run("Stop", func(t *testing.T) {
		closeClient()
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*process{c.namenode, c.datanode} {
			if !p.exited() {
				t.Errorf("%s still running after Stop", p.name)
			}
		}
		if _, err := os.Stat(c.layout.root); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("working dir %s not removed: %v", c.layout.root, err)
		}
		if conn, err := net.DialTimeout("tcp", c.Addr(), time.Second); err == nil {
			conn.Close()
			t.Errorf("namenode port %s still accepts connections after Stop", c.Addr())
		}
		if err := c.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}

// TestStartFailureShowsLog checks that a JVM that cannot start makes Start
// fail with the JVM's own message, not a timeout.
func TestStartFailureShowsLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM")
	}
	if _, err := javaBinary(Options{}.withDefaults().Logger); err != nil {
		t.Skip(err)
	}
	_, err := Start(t.Context(), Options{HeapMB: 1})
	if err == nil {
		t.Fatal("Start with a 1 MiB heap succeeded")
	}
	if !strings.Contains(err.Error(), "Too small maximum heap") {
		t.Errorf("error does not carry the JVM log tail:\n%v", err)
	}
}

// TestConfiguration checks the generated files through the parser the Go
// client uses: the NameNode address, and that nothing listens beyond loopback.
func TestConfiguration(t *testing.T) {
	l := newLayout(t.TempDir())
	l.rpcAddr, l.webAddr = "127.0.0.1:41000", "127.0.0.1:41001"
	if err := l.write(); err != nil {
		t.Fatal(err)
	}
	conf, err := hadoopconf.Load(l.conf)
	if err != nil {
		t.Fatal(err)
	}
	if got := conf.Namenodes(); !slices.Equal(got, []string{"127.0.0.1:41000"}) {
		t.Errorf("Namenodes() = %v", got)
	}
	if got := conf["fs.defaultFS"]; got != "hdfs://127.0.0.1:41000" {
		t.Errorf("fs.defaultFS = %q", got)
	}
	addresses := 0
	for key, value := range conf {
		if strings.HasSuffix(key, "address") {
			addresses++
			if host, _, err := net.SplitHostPort(value); err != nil || host != "127.0.0.1" {
				t.Errorf("%s = %q, want a 127.0.0.1 address", key, value)
			}
		}
	}
	if addresses < 5 {
		t.Errorf("only %d *address properties; the NameNode and DataNode have at least 5", addresses)
	}
	for _, app := range webapps {
		if info, err := os.Stat(filepath.Join(l.conf, "webapps", app)); err != nil || !info.IsDir() {
			t.Errorf("webapps/%s missing from the classpath dir: %v", app, err)
		}
	}
}

func TestRemoveStaleDirs(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Skip(err)
	}
	dirs := map[string]string{ // directory -> owner.pid content ("" = none)
		"dead":    strconv.Itoa(exited.Process.Pid),
		"alive":   strconv.Itoa(os.Getpid()),
		"noowner": "",
	}
	for name, owner := range dirs {
		dir := filepath.Join(os.TempDir(), tempDirPrefix+name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	removeStaleDirs(Options{}.withDefaults().Logger)
	for name, wantKept := range map[string]bool{"dead": false, "alive": true, "noowner": true} {
		_, err := os.Stat(filepath.Join(os.TempDir(), tempDirPrefix+name))
		if kept := err == nil; kept != wantKept {
			t.Errorf("%s: kept=%v, want %v", name, kept, wantKept)
		}
	}
}

func TestLastLines(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"", 3, ""},
		{"only", 1, "only"},
	}
	for _, tt := range tests {
		if got := lastLines(tt.in, tt.n); got != tt.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// BenchmarkStart measures a start with warm jar caches: format, two JVMs,
// readiness probe.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		c := StartTest(b, Options{})
		if err := c.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAt measures 256 KiB positional reads over loopback, the
// producer's access pattern for Parquet column chunks.
func BenchmarkReadAt(b *testing.B) {
	c := StartTest(b, Options{})
	client, err := c.Client()
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	const size, chunk = 8 * testBlockSize, 256 << 10
	writeFile(b, client, "/bench/data.bin", bytes.NewReader(randomBytes(b, size)))
	r, err := client.Open("/bench/data.bin")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	off := 0
	for b.Loop() {
		if _, err := r.ReadAt(buf, int64(off)); err != nil {
			b.Fatal(err)
		}
		off = (off + chunk) % size
	}
}

// writeFile creates name (and its parents) with testBlockSize blocks.
func writeFile(t testing.TB, client *hdfs.Client, name string, content io.Reader) {
	t.Helper()
	if err := client.MkdirAll(path.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := client.CreateFile(name, 1, testBlockSize, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, content); err != nil {
		w.Close()
		t.Fatalf("write %s: %v", name, err)
	}
	if err := CloseWriter(t.Context(), w); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}
}

// glob lists the files in pattern's directory whose names match its last
// element (path.Match syntax); the Go client has no glob of its own.
func glob(client *hdfs.Client, pattern string) ([]string, error) {
	dir, base := path.Split(pattern)
	entries, err := client.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var matches []string
	for _, e := range entries {
		ok, err := path.Match(base, e.Name())
		if err != nil {
			return nil, err
		}
		if ok && !e.IsDir() {
			matches = append(matches, path.Join(dir, e.Name()))
		}
	}
	return matches, nil
}

// sharedDataPath returns the path of a file of the shared data set, found as
// ../shared/data beside the module root. Missing data skips the test, or fails
// it on CI.
func sharedDataPath(t testing.TB, name string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "..", "shared", "data", name)
	_, err = os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) && os.Getenv("CI") == "" {
		t.Skipf("shared data %s not found", file)
	}
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func readSharedData(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(sharedDataPath(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// firstDiff returns the first index where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
