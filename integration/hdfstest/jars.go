package hdfstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrMissingTool is wrapped by Start's error when java (or mvn, needed only
// while the jar cache is empty) is not installed.
var ErrMissingTool = errors.New("hdfstest: required tool not found")

// markerFile sits beside lib/ and records which pom and version lib/ was
// resolved from; lib/ is reused only when the marker matches.
const markerFile = "lib.complete"

// jarSet is a resolved Hadoop classpath.
type jarSet struct {
	version  string
	libDir   string
	cacheDir string
	key      string // marker content: Hadoop version and pom hash
}

// classpath returns the java -cp value with extra directories first.
func (j jarSet) classpath(extra ...string) string {
	return strings.Join(append(extra, filepath.Join(j.libDir, "*")), string(os.PathListSeparator))
}

// resolveJars returns the jar cache for opts, running Maven when the cache is
// missing or was made from another pom or version. Concurrent callers (test
// binaries of several packages) serialize on a lock file in the cache dir.
func resolveJars(ctx context.Context, opts Options) (jarSet, error) {
	pom, err := pomFile(opts.PomFile)
	if err != nil {
		return jarSet{}, err
	}
	pomBytes, err := os.ReadFile(pom)
	if err != nil {
		return jarSet{}, fmt.Errorf("hdfstest: read pom: %w", err)
	}
	cacheDir, err := cacheDir(opts)
	if err != nil {
		return jarSet{}, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return jarSet{}, fmt.Errorf("hdfstest: create jar cache: %w", err)
	}
	sum := sha256.Sum256(pomBytes)
	want := fmt.Sprintf("hadoop.version=%s\npom.sha256=%s\n", opts.HadoopVersion, hex.EncodeToString(sum[:]))
	jars := jarSet{
		version:  opts.HadoopVersion,
		libDir:   filepath.Join(cacheDir, "lib"),
		cacheDir: cacheDir,
		key:      want,
	}
	marker := filepath.Join(cacheDir, markerFile)
	if cacheComplete(marker, want) {
		return jars, nil
	}

	unlock, err := lockFile(filepath.Join(cacheDir, ".lock"))
	if err != nil {
		return jarSet{}, fmt.Errorf("hdfstest: lock jar cache %s: %w", cacheDir, err)
	}
	defer unlock()
	if cacheComplete(marker, want) { // another process resolved it meanwhile
		return jars, nil
	}

	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return jarSet{}, fmt.Errorf("%w: mvn is needed once to fetch the Hadoop %s jars into %s: %v",
			ErrMissingTool, opts.HadoopVersion, cacheDir, err)
	}
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return jarSet{}, fmt.Errorf("hdfstest: %w", err)
	}
	partial := filepath.Join(cacheDir, "lib.partial")
	if err := os.RemoveAll(partial); err != nil {
		return jarSet{}, fmt.Errorf("hdfstest: %w", err)
	}
	opts.Logger.Info("resolving Hadoop jars with Maven", "version", opts.HadoopVersion, "pom", pom, "dir", jars.libDir)
	began := time.Now()
	cmd := exec.CommandContext(ctx, mvn, "-q", "-B", "-f", pom,
		"-Dhadoop.version="+opts.HadoopVersion,
		"-DincludeScope=runtime",
		"-DoutputDirectory="+partial,
		"dependency:copy-dependencies")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return jarSet{}, fmt.Errorf("hdfstest: mvn dependency:copy-dependencies (pom %s, hadoop %s): %w\n%s",
			pom, opts.HadoopVersion, err, lastLines(out.String(), 40))
	}
	if n, err := countJars(partial); err != nil || n == 0 {
		return jarSet{}, fmt.Errorf("hdfstest: mvn copied no jars into %s (err %v)\n%s", partial, err, lastLines(out.String(), 40))
	}
	if err := os.RemoveAll(jars.libDir); err != nil {
		return jarSet{}, fmt.Errorf("hdfstest: %w", err)
	}
	if err := os.Rename(partial, jars.libDir); err != nil {
		return jarSet{}, fmt.Errorf("hdfstest: %w", err)
	}
	if err := os.WriteFile(marker, []byte(want), 0o644); err != nil {
		return jarSet{}, fmt.Errorf("hdfstest: write %s: %w", marker, err)
	}
	opts.Logger.Info("resolved Hadoop jars", "dir", jars.libDir, "took", time.Since(began).Round(time.Millisecond))
	return jars, nil
}

func cacheComplete(marker, want string) bool {
	got, err := os.ReadFile(marker)
	return err == nil && string(got) == want
}

func countJars(dir string) (int, error) {
	jars, err := filepath.Glob(filepath.Join(dir, "*.jar"))
	return len(jars), err
}

func cacheDir(opts Options) (string, error) {
	if opts.CacheDir != "" {
		return opts.CacheDir, nil
	}
	if dir := os.Getenv(EnvJarCache); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("hdfstest: no jar cache dir (set %s): %w", EnvJarCache, err)
	}
	return filepath.Join(base, "taxi-stream", "hdfs-"+opts.HadoopVersion), nil
}

// pomFile returns path, or tools/hdfs/pom.xml under the module root.
func pomFile(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "tools", "hdfs", "pom.xml"), nil
}

// moduleRoot walks up from the working directory to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("hdfstest: %w", err)
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("hdfstest: no go.mod above %s; set Options.PomFile", dir)
		}
		d = parent
	}
}

// javaBinary returns $JAVA_HOME/bin/java or java from PATH.
func javaBinary(log *slog.Logger) (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		java := filepath.Join(home, "bin", "java")
		if _, err := os.Stat(java); err == nil {
			return java, nil
		}
		log.Warn("JAVA_HOME has no bin/java; using PATH", "JAVA_HOME", home)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("%w: java (JDK 17) is needed to run the NameNode and DataNode: %v", ErrMissingTool, err)
	}
	return java, nil
}

// lastLines returns at most n trailing lines of s.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
