package kafkalocal

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
)

// KafkaVersion is the Apache Kafka release the embedded pom resolves.
const KafkaVersion = "4.1.1"

//go:embed pom.xml
var brokerPOM []byte

// completeMarker is written into the cache after a successful Maven run, so that a
// half-finished download is never taken for a complete classpath.
const completeMarker = ".complete"

// ErrJavaMissing is returned when no usable Java 17+ runtime is on the PATH.
var ErrJavaMissing = errors.New("java 17 or newer is required to run the Kafka broker")

// DefaultCacheDir is where jars are cached when no directory is configured:
// $TAXI_STREAM_CACHE, else the user cache dir (~/.cache/taxi-stream).
func DefaultCacheDir() string {
	if dir := os.Getenv("TAXI_STREAM_CACHE"); dir != "" {
		return dir
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "taxi-stream")
	}
	return filepath.Join(os.TempDir(), "taxi-stream-cache")
}

// ResolveJars makes sure the broker's classpath is in cacheDir and returns the
// directory holding the jars. The first call runs Maven (a few seconds with a warm
// ~/.m2, about a minute cold); later calls only check the marker file. Concurrent
// callers (several test binaries) serialise on a file lock.
func ResolveJars(ctx context.Context, cacheDir string) (string, error) {
	base := filepath.Join(cacheDir, "kafka-"+KafkaVersion)
	lib := filepath.Join(base, "lib")
	if _, err := os.Stat(filepath.Join(base, completeMarker)); err == nil {
		return lib, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("create jar cache %s: %w", base, err)
	}
	unlock, err := LockFile(filepath.Join(base, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process may have finished while we waited for the lock.
	if _, err := os.Stat(filepath.Join(base, completeMarker)); err == nil {
		return lib, nil
	}

	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return "", fmt.Errorf("resolving Kafka %s jars needs Maven (mvn) on the PATH: %w", KafkaVersion, err)
	}
	pom := filepath.Join(base, "pom.xml")
	if err := os.WriteFile(pom, brokerPOM, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", pom, err)
	}
	if err := os.RemoveAll(lib); err != nil {
		return "", fmt.Errorf("clear %s: %w", lib, err)
	}
	cmd := exec.CommandContext(ctx, mvn, "-q", "-B", "-f", pom,
		"dependency:copy-dependencies", "-DoutputDirectory="+lib)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("maven could not resolve Kafka %s from %s: %w\n%s", KafkaVersion, pom, err, tail(out.Bytes(), 30))
	}
	jars, _ := filepath.Glob(filepath.Join(lib, "kafka_2.13-*.jar"))
	if len(jars) == 0 {
		return "", fmt.Errorf("maven finished but %s holds no kafka_2.13 jar", lib)
	}
	if err := os.WriteFile(filepath.Join(base, completeMarker), []byte(KafkaVersion+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("mark jar cache complete: %w", err)
	}
	return lib, nil
}

// LockFile takes an exclusive lock (flock) on path, created if missing, for the
// processes that fill a cache under ~/.cache/taxi-stream at the same time (test
// binaries, make kafka-start, taxi-bench-peers). unlock releases it.
func LockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

var javaVersionRE = regexp.MustCompile(`version "(\d+)`)

// FindJava returns the java binary ($JAVA_HOME/bin/java first, then the PATH) after
// checking that it is Java 17 or newer, which Kafka 4 requires.
func FindJava(ctx context.Context) (string, error) {
	candidates := []string{}
	if home := os.Getenv("JAVA_HOME"); home != "" {
		candidates = append(candidates, filepath.Join(home, "bin", "java"))
	}
	if p, err := exec.LookPath("java"); err == nil {
		candidates = append(candidates, p)
	}
	if len(candidates) == 0 {
		return "", fmt.Errorf("%w: no java on the PATH and JAVA_HOME is not set (install a JDK, e.g. apt-get install openjdk-17-jre-headless)", ErrJavaMissing)
	}
	var problems []string
	for _, java := range candidates {
		out, err := exec.CommandContext(ctx, java, "-version").CombinedOutput()
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s -version: %v", java, err))
			continue
		}
		m := javaVersionRE.FindSubmatch(out)
		if m == nil {
			problems = append(problems, fmt.Sprintf("%s: cannot read version from %q", java, firstLine(out)))
			continue
		}
		major, _ := strconv.Atoi(string(m[1]))
		if major < 17 {
			problems = append(problems, fmt.Sprintf("%s is Java %d", java, major))
			continue
		}
		return java, nil
	}
	return "", fmt.Errorf("%w: %v", ErrJavaMissing, problems)
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	idx := len(b)
	for i := 0; i < n && idx > 0; i++ {
		j := bytes.LastIndexByte(b[:idx], '\n')
		if j < 0 {
			idx = 0
			break
		}
		idx = j
	}
	if idx > 0 {
		idx++
	}
	return string(b[idx:])
}
