package hdfstest

import (
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// property is one <property> of a Hadoop *-site.xml file.
type property struct {
	Name  string `xml:"name"`
	Value string `xml:"value"`
}

type configuration struct {
	XMLName    xml.Name   `xml:"configuration"`
	Properties []property `xml:"property"`
}

// layout is the working directory of one cluster.
type layout struct {
	root    string // removed by Stop unless Options.KeepDirs
	conf    string // core-site.xml, hdfs-site.xml, log4j.properties, webapps/
	name    string // dfs.namenode.name.dir
	data    string // dfs.datanode.data.dir
	tmp     string // hadoop.tmp.dir
	logs    string // namenode.log, datanode.log, format.log
	rpcAddr string // NameNode RPC, 127.0.0.1:port
	webAddr string // NameNode HTTP (HTTPS with Kerberos), 127.0.0.1:port

	// Set for a secure cluster only (Options.Kerberos).
	krb        *Kerberos
	keystore   string // PKCS#12 keystore and trust store of the HTTPS servers
	storePass  string // its password
	httpSecret string // hadoop.http.authentication.signature.secret.file
}

func newLayout(root string) layout {
	return layout{
		root: root,
		conf: filepath.Join(root, "conf"),
		name: filepath.Join(root, "name"),
		data: filepath.Join(root, "data"),
		tmp:  filepath.Join(root, "tmp"),
		logs: filepath.Join(root, "logs"),
	}
}

// coreSite is core-site.xml: read by the JVMs and by hadoopconf.
func (l layout) coreSite() []property {
	props := []property{
		{"fs.defaultFS", "hdfs://" + l.rpcAddr},
		{"hadoop.tmp.dir", l.tmp},
		// The DataNode starts while the NameNode is still booting. Retry the
		// connection every 200 ms (default 1 s) and long enough (100 tries)
		// that the DataNode never falls back to its 5 s re-initialisation sleep.
		{"ipc.client.connect.retry.interval", "200"},
		{"ipc.client.connect.max.retries", "100"},
	}
	if l.krb != nil {
		core, _ := l.krbSite()
		props = merge(props, core)
	}
	return props
}

// hdfsSite is hdfs-site.xml. Every listener is bound to loopback; DataNode
// ports are 0 (the kernel picks them and the DataNode reports the bound ports
// when it registers), so only the two NameNode ports can collide.
func (l layout) hdfsSite() []property {
	props := []property{
		{"dfs.namenode.name.dir", fileURI(l.name)},
		{"dfs.datanode.data.dir", fileURI(l.data)},
		{"dfs.replication", "1"},
		{"dfs.namenode.rpc-address", l.rpcAddr},
		{"dfs.namenode.http-address", l.webAddr},
		{"dfs.namenode.https-address", "127.0.0.1:0"},
		{"dfs.namenode.secondary.http-address", "127.0.0.1:0"},
		{"dfs.namenode.secondary.https-address", "127.0.0.1:0"},
		{"dfs.namenode.backup.address", "127.0.0.1:0"},
		{"dfs.namenode.backup.http-address", "127.0.0.1:0"},
		{"dfs.datanode.address", "127.0.0.1:0"},
		{"dfs.datanode.http.address", "127.0.0.1:0"},
		{"dfs.datanode.https.address", "127.0.0.1:0"},
		{"dfs.datanode.ipc.address", "127.0.0.1:0"},
		{"dfs.namenode.datanode.registration.ip-hostname-check", "false"},
		// Leave safe mode as soon as the one DataNode has registered.
		{"dfs.namenode.safemode.extension", "0"},
		{"dfs.namenode.safemode.min.datanodes", "1"},
		// Heartbeat every second (default 3 s): deletions and capacity show
		// up sooner.
		{"dfs.heartbeat.interval", "1"},
	}
	if l.krb != nil {
		_, hdfs := l.krbSite()
		props = merge(props, hdfs)
	}
	return props
}

// merge returns props with each of extra replacing the property of the same
// name, or appended when there is none.
func merge(props, extra []property) []property {
	out := slices.Clone(props)
	for _, e := range extra {
		i := slices.IndexFunc(out, func(p property) bool { return p.Name == e.Name })
		if i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	return out
}

// log4jProperties sends everything at INFO to stderr, which the harness
// redirects to one log file per JVM.
const log4jProperties = `log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
`

// webapps are the HttpServer2 resource directories the NameNode and DataNode
// look up on the classpath. The Maven hadoop-hdfs jar leaves webapps/ out
// (it ships only in the Hadoop tarball), and without them startup fails with
// "java.io.FileNotFoundException: webapps/hdfs not found in CLASSPATH".
// Empty directories are enough: the web UI pages are missing, the servlets
// (JMX, WebHDFS) still work.
var webapps = []string{"hdfs", "datanode", "static"}

// write creates the directories and configuration files.
func (l layout) write() error {
	for _, dir := range []string{l.conf, l.name, l.data, l.tmp, l.logs} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("hdfstest: %w", err)
		}
	}
	for _, app := range webapps {
		if err := os.MkdirAll(filepath.Join(l.conf, "webapps", app), 0o755); err != nil {
			return fmt.Errorf("hdfstest: %w", err)
		}
	}
	if err := writeSite(filepath.Join(l.conf, "core-site.xml"), l.coreSite()); err != nil {
		return err
	}
	if err := writeSite(filepath.Join(l.conf, "hdfs-site.xml"), l.hdfsSite()); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.conf, "log4j.properties"), []byte(log4jProperties), 0o644); err != nil {
		return fmt.Errorf("hdfstest: %w", err)
	}
	return nil
}

func writeSite(path string, props []property) error {
	body, err := xml.MarshalIndent(configuration{Properties: props}, "", "  ")
	if err != nil {
		return fmt.Errorf("hdfstest: encode %s: %w", path, err)
	}
	body = append([]byte(xml.Header), append(body, '\n')...)
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return fmt.Errorf("hdfstest: %w", err)
	}
	return nil
}

func fileURI(path string) string { return "file://" + filepath.ToSlash(path) }

// freeLoopbackAddr returns 127.0.0.1:port for a port that was free a moment
// ago. Start retries with new ports when a JVM still fails to bind.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("hdfstest: pick a free port: %w", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}
