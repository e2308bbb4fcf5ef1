package hdfstest

import (
	"io"
	"log/slog"
	"os"
	"time"
)

// DefaultHadoopVersion is the Hadoop release whose jars are used when neither
// Options.HadoopVersion nor $HDFSTEST_HADOOP_VERSION says otherwise.
// github.com/colinmarc/hdfs/v2 is tested upstream against 2.10 and 3.3; 3.3.6
// also works with this harness.
const DefaultHadoopVersion = "3.4.2"

// Environment variables read by the harness.
const (
	// EnvHadoopVersion overrides DefaultHadoopVersion, e.g. "3.3.6".
	EnvHadoopVersion = "HDFSTEST_HADOOP_VERSION"
	// EnvJarCache names the directory holding the resolved jars (its lib/
	// subdirectory) for the selected version, instead of
	// $XDG_CACHE_HOME/taxi-stream/hdfs-<version>.
	EnvJarCache = "HDFSTEST_JAR_CACHE"
)

// Options configures Start. The zero value is ready to use.
type Options struct {
	// HadoopVersion is the org.apache.hadoop artifact version.
	// Default: $HDFSTEST_HADOOP_VERSION, else DefaultHadoopVersion.
	HadoopVersion string

	// CacheDir holds the resolved jars in CacheDir/lib, reused by later runs.
	// Default: $HDFSTEST_JAR_CACHE, else
	// os.UserCacheDir()/taxi-stream/hdfs-<HadoopVersion>.
	CacheDir string

	// PomFile is the Maven pom listing the jars.
	// Default: tools/hdfs/pom.xml under the module root, found by walking up
	// from the working directory to go.mod.
	PomFile string

	// HeapMB is the maximum heap of each JVM (-Xmx), in MiB. Default: 256.
	HeapMB int

	// StartTimeout bounds formatting, launching and waiting until the cluster
	// accepts writes. Resolving jars is bounded only by the context.
	// Default: 2 minutes.
	StartTimeout time.Duration

	// StopTimeout is how long Stop waits after SIGTERM before it sends
	// SIGKILL. Default: 15 seconds.
	StopTimeout time.Duration

	// Logger receives progress messages (jar resolution, ports, timings).
	// Default: discard.
	Logger *slog.Logger

	// KeepDirs keeps the working directory (configuration, metadata, blocks,
	// logs) after Stop, for debugging.
	KeepDirs bool

	// Kerberos, when set, makes the cluster secure: Kerberos on the NameNode
	// RPC, SASL data transfer protection on the DataNode, HTTPS-only web
	// servers (see Kerberos). Nil runs the plain cluster with simple
	// authentication. KerberosFromKDC fills it from a krb5test KDC.
	Kerberos *Kerberos
}

func (o Options) withDefaults() Options {
	if o.HadoopVersion == "" {
		o.HadoopVersion = os.Getenv(EnvHadoopVersion)
	}
	if o.HadoopVersion == "" {
		o.HadoopVersion = DefaultHadoopVersion
	}
	if o.HeapMB <= 0 {
		o.HeapMB = 256
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 2 * time.Minute
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Kerberos != nil {
		o.Kerberos = o.Kerberos.withDefaults()
	}
	return o
}
