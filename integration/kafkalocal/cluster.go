// Package kafkalocal runs a real Apache Kafka (KRaft) cluster on this machine from
// jars resolved from Maven Central: one node for ordinary tests, three nodes
// (replication factor 3, min ISR 2) for fault tests.
//
// Every node is broker and controller at once, listens on loopback only, logs to a
// file in its directory, and is a child process of the caller (or, with Detach,
// of nobody, for the kafka-local CLI).
package kafkalocal

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/taxi-stream/taxi-stream/integration/childproc"
)

// Config describes a local cluster. The zero value (plus Dir) is a one-node cluster
// on free ports.
type Config struct {
	// Nodes is the number of nodes: 1 (default) or 3. With 3, internal topics and new
	// topics default to replication factor 3 and min.insync.replicas 2.
	Nodes int
	// Dir holds each node's config, data and log. Required. Reused by Start when it
	// already holds a formatted cluster of the same shape (a restart keeps the data).
	Dir string
	// CacheDir caches the Maven-resolved jars. Default: DefaultCacheDir().
	CacheDir string
	// Ports are the client (PLAINTEXT) ports, one per node. Empty: free ports are
	// chosen. A port that is taken makes Start fail at once, naming the port.
	Ports []int
	// HeapMB is each node's JVM heap. Default 768.
	HeapMB int
	// Props override or extend the generated server.properties of every node.
	Props map[string]string
	// StartTimeout bounds the wait for every node to report "Kafka Server started".
	// Default 3m: a guard, not an expectation (a node starts in 5-15 s on an idle
	// 2-core machine; a restart at load 26 took over 90 s).
	StartTimeout time.Duration
	// Detach starts the JVMs in their own session so that they outlive the caller
	// (used by the kafka-local CLI). Without it they die with the caller.
	Detach bool
	// Logger receives progress messages. Default: discard.
	Logger *slog.Logger
	// Secure adds a second client listener to every node, beside the PLAINTEXT one
	// (which the brokers and controllers keep for themselves): SASL_SSL, SSL or
	// SASL_PLAINTEXT, on a free port (Cluster.SecureBrokers).
	Secure *SecureListener
}

// SecureListener configures the secured client listener (Kafka's listener named
// SECURE). Its users are created when the storage is formatted: reusing a cluster
// directory keeps the users it was formatted with.
type SecureListener struct {
	// Protocol is SASL_SSL (default), SSL or SASL_PLAINTEXT.
	Protocol string
	// Keystore is a PEM file with the broker's unencrypted PKCS#8 private key and its
	// certificate chain (PKI.BrokerKeystore; ssl.keystore.type=PEM). Required with SSL
	// and SASL_SSL.
	Keystore string
	// ClientCAFile, when set, makes the listener require a client certificate signed
	// by one of its CAs (ssl.client.auth=required, ssl.truststore.type=PEM).
	ClientCAFile string
	// Mechanisms are the SASL mechanisms enabled: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512,
	// and GSSAPI with Kerberos. Default: the first three, plus GSSAPI with Kerberos.
	Mechanisms []string
	// Kerberos, when set, enables GSSAPI: the brokers log in with this keytab.
	Kerberos *ListenerKerberos
	// Users maps SASL user names to passwords: SCRAM credentials for each enabled SCRAM
	// mechanism (written at format time, KIP-900) and PLAIN users of the listener's JAAS
	// configuration. Names and passwords may not hold '"', ',', '[', ']', '=' or '\'.
	Users map[string]string
}

// ListenerKerberos is the brokers' Kerberos identity for SASL GSSAPI.
type ListenerKerberos struct {
	// Principal is the brokers' principal: <service>/<host>@REALM, where clients
	// dial <host> (127.0.0.1) and ask for <service> (sasl.kerberos.service.name).
	Principal string
	Keytab    string // keytab holding the principal's key
	Krb5Conf  string // krb5.conf naming the realm's KDC (java.security.krb5.conf)
}

func (s *SecureListener) applyDefaults() error {
	if s.Protocol == "" {
		s.Protocol = "SASL_SSL"
	}
	switch s.Protocol {
	case "SASL_SSL", "SSL":
		if s.Keystore == "" {
			return fmt.Errorf("kafkalocal: a %s listener needs SecureListener.Keystore", s.Protocol)
		}
	case "SASL_PLAINTEXT":
		if s.ClientCAFile != "" {
			return errors.New("kafkalocal: SecureListener.ClientCAFile needs an SSL protocol")
		}
	default:
		return fmt.Errorf("kafkalocal: SecureListener.Protocol %q: want SASL_SSL, SSL or SASL_PLAINTEXT", s.Protocol)
	}
	if len(s.Mechanisms) == 0 {
		s.Mechanisms = []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"}
		if s.Kerberos != nil {
			s.Mechanisms = append(s.Mechanisms, "GSSAPI")
		}
	}
	for _, m := range s.Mechanisms {
		switch m {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		case "GSSAPI":
			if k := s.Kerberos; k == nil || k.Principal == "" || k.Keytab == "" || k.Krb5Conf == "" {
				return errors.New("kafkalocal: GSSAPI needs SecureListener.Kerberos with Principal, Keytab and Krb5Conf")
			}
		default:
			return fmt.Errorf("kafkalocal: SASL mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or GSSAPI", m)
		}
	}
	for name, pw := range s.Users {
		if name == "" || pw == "" || strings.ContainsAny(name+pw, `\",[]=`) {
			return fmt.Errorf("kafkalocal: SASL user %q: empty, or a name or password with one of \\ \" , [ ] =", name)
		}
	}
	return nil
}

func (s *SecureListener) sasl() bool { return strings.HasPrefix(s.Protocol, "SASL_") }

func (c *Config) applyDefaults() error {
	if c.Dir == "" {
		return errors.New("kafkalocal: Config.Dir is required")
	}
	// The nodes run in their own directories: a relative path would not resolve there.
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return fmt.Errorf("kafkalocal: Config.Dir %s: %w", c.Dir, err)
	}
	c.Dir = abs
	if c.Nodes == 0 {
		c.Nodes = 1
	}
	if c.Nodes != 1 && c.Nodes != 3 {
		return fmt.Errorf("kafkalocal: Nodes must be 1 or 3, not %d", c.Nodes)
	}
	if len(c.Ports) != 0 && len(c.Ports) != c.Nodes {
		return fmt.Errorf("kafkalocal: %d ports given for %d nodes", len(c.Ports), c.Nodes)
	}
	if c.CacheDir == "" {
		c.CacheDir = DefaultCacheDir()
	}
	if c.HeapMB == 0 {
		c.HeapMB = 768
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 3 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Secure != nil {
		sec := *c.Secure // the caller's value stays as it was
		c.Secure = &sec
		return c.Secure.applyDefaults()
	}
	return nil
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg   Config
	java  string
	lib   string
	state clusterState

	mu    sync.Mutex
	procs map[int]*proc // node id -> running JVM (absent when stopped)
}

// proc is one running JVM.
type proc struct {
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the process has exited
	logOffset int64         // size of the log when this run started
}

// clusterState is what the cluster directory remembers between runs (cluster.json).
type clusterState struct {
	ClusterID string      `json:"cluster_id"`
	Nodes     []nodeState `json:"nodes"`
}

type nodeState struct {
	ID             int    `json:"id"`
	Port           int    `json:"port"`
	ControllerPort int    `json:"controller_port"`
	SecurePort     int    `json:"secure_port,omitempty"`
	PID            int    `json:"pid,omitempty"`
	Dir            string `json:"dir"`
}

func (n nodeState) logFile() string   { return filepath.Join(n.Dir, "broker.log") }
func (n nodeState) propsFile() string { return filepath.Join(n.Dir, "server.properties") }
func (n nodeState) dataDir() string   { return filepath.Join(n.Dir, "data") }

// Start resolves the jars, formats storage (first time only), starts every node and
// waits until each reports that it has started. On failure it stops what it started
// and returns an error with the failing node's log tail.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	java, err := FindJava(ctx)
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("resolving Kafka jars", "version", KafkaVersion, "cache", cfg.CacheDir)
	lib, err := ResolveJars(ctx, cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, java: java, lib: lib, procs: map[int]*proc{}}
	if err := c.prepare(ctx); err != nil {
		return nil, err
	}
	for _, n := range c.state.Nodes {
		if err := c.startNode(n.ID); err != nil {
			c.Stop(context.Background())
			return nil, err
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	for _, n := range c.state.Nodes {
		if err := c.waitStarted(waitCtx, n.ID); err != nil {
			c.Stop(context.Background())
			return nil, err
		}
	}
	if err := c.saveState(); err != nil {
		c.Stop(context.Background())
		return nil, err
	}
	cfg.Logger.Info("kafka cluster ready", "brokers", strings.Join(c.Brokers(), ","))
	return c, nil
}

// prepare loads cluster.json or creates a new cluster layout and formats storage.
func (c *Cluster) prepare(ctx context.Context) error {
	if err := os.MkdirAll(c.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("create cluster dir %s: %w", c.cfg.Dir, err)
	}
	statePath := filepath.Join(c.cfg.Dir, "cluster.json")
	if data, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(data, &c.state); err != nil {
			return fmt.Errorf("read %s: %w", statePath, err)
		}
		if len(c.state.Nodes) != c.cfg.Nodes {
			return fmt.Errorf("%s holds a %d-node cluster, %d nodes asked for: use another dir or remove it",
				c.cfg.Dir, len(c.state.Nodes), c.cfg.Nodes)
		}
		for _, n := range c.state.Nodes {
			if err := checkPortFree(n.Port); err != nil {
				return fmt.Errorf("node %d: %w (is the cluster in %s already running? stop it first)", n.ID, err, c.cfg.Dir)
			}
			if (c.cfg.Secure != nil) != (n.SecurePort != 0) {
				return fmt.Errorf("%s was formatted with a different secure listener setting: use another dir or remove it", c.cfg.Dir)
			}
		}
		return c.writeConfigs()
	}

	ports, err := c.choosePorts()
	if err != nil {
		return err
	}
	c.state.ClusterID = newClusterID()
	per := len(ports) / c.cfg.Nodes
	for i := 0; i < c.cfg.Nodes; i++ {
		n := nodeState{ID: i + 1, Port: ports[per*i], ControllerPort: ports[per*i+1],
			Dir: filepath.Join(c.cfg.Dir, fmt.Sprintf("node-%d", i+1))}
		if c.cfg.Secure != nil {
			n.SecurePort = ports[per*i+2]
		}
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			return fmt.Errorf("create node dir: %w", err)
		}
		c.state.Nodes = append(c.state.Nodes, n)
	}
	if err := c.writeConfigs(); err != nil {
		return err
	}
	for _, n := range c.state.Nodes {
		if err := c.format(ctx, n); err != nil {
			return err
		}
	}
	return c.saveState()
}

// choosePorts returns 2 ports per node: client, controller (3 with a secure listener:
// client, controller, secure). Configured client ports are checked to be free; the
// rest are picked by the kernel.
func (c *Cluster) choosePorts() ([]int, error) {
	var ports []int
	var holds []net.Listener
	defer func() {
		for _, l := range holds {
			l.Close()
		}
	}()
	free := func() (int, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free loopback port: %w", err)
		}
		holds = append(holds, l) // hold until all are chosen so they differ
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	for i := 0; i < c.cfg.Nodes; i++ {
		var client int
		if len(c.cfg.Ports) > 0 {
			client = c.cfg.Ports[i]
			if err := checkPortFree(client); err != nil {
				return nil, err
			}
		} else {
			p, err := free()
			if err != nil {
				return nil, err
			}
			client = p
		}
		ctrl, err := free()
		if err != nil {
			return nil, err
		}
		ports = append(ports, client, ctrl)
		if c.cfg.Secure != nil {
			secure, err := free()
			if err != nil {
				return nil, err
			}
			ports = append(ports, secure)
		}
	}
	return ports, nil
}

// checkPortFree fails with a clear message when something listens on the port.
func checkPortFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on 127.0.0.1 is already in use: %w", port, err)
	}
	return l.Close()
}

// newClusterID returns a Kafka cluster id: a URL-safe base64 UUID without padding.
// Like Kafka's Uuid.randomUuid it never starts with '-': the storage tool's argument
// parser would read such an id as an option (seen once in CI: 1 in 64 ids).
func newClusterID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

func (c *Cluster) saveState() error {
	data, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(c.cfg.Dir, "cluster.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Properties returns the server.properties of node id (1-based) as a map.
func (c *Cluster) properties(n nodeState) map[string]string {
	rf, minISR := "1", "1"
	if len(c.state.Nodes) == 3 {
		rf, minISR = "3", "2"
	}
	var voters []string
	for _, v := range c.state.Nodes {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", v.ID, v.ControllerPort))
	}
	p := map[string]string{
		"process.roles":                    "broker,controller",
		"node.id":                          strconv.Itoa(n.ID),
		"controller.quorum.voters":         strings.Join(voters, ","),
		"listeners":                        fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", n.Port, n.ControllerPort),
		"advertised.listeners":             fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", n.Port),
		"inter.broker.listener.name":       "PLAINTEXT",
		"controller.listener.names":        "CONTROLLER",
		"listener.security.protocol.map":   "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs":                         n.dataDir(),
		"num.partitions":                   "1",
		"default.replication.factor":       rf,
		"min.insync.replicas":              minISR,
		"offsets.topic.replication.factor": rf,
		// Fewer internal partitions than the default 50: the first group or
		// transaction otherwise waits for 50 partitions to be created.
		"offsets.topic.num.partitions":                               "10",
		"transaction.state.log.replication.factor":                   rf,
		"transaction.state.log.min.isr":                              minISR,
		"transaction.state.log.num.partitions":                       "10",
		"share.coordinator.state.topic.replication.factor":           rf,
		"share.coordinator.state.topic.min.isr":                      minISR,
		"group.initial.rebalance.delay.ms":                           "0",
		"auto.create.topics.enable":                                  "false",
		"num.network.threads":                                        "2",
		"num.io.threads":                                             "4",
		"num.recovery.threads.per.data.dir":                          "1",
		"log.cleaner.threads":                                        "1",
		"log.cleaner.backoff.ms":                                     "1000",
		"transaction.remove.expired.transaction.cleanup.interval.ms": "60000",
	}
	if s := c.cfg.Secure; s != nil {
		p["listeners"] += fmt.Sprintf(",SECURE://127.0.0.1:%d", n.SecurePort)
		p["advertised.listeners"] += fmt.Sprintf(",SECURE://127.0.0.1:%d", n.SecurePort)
		p["listener.security.protocol.map"] += ",SECURE:" + s.Protocol
		if s.Keystore != "" {
			p["ssl.keystore.type"] = "PEM"
			p["ssl.keystore.location"] = s.Keystore
		}
		if s.ClientCAFile != "" {
			// Listener prefix: a SASL_SSL listener ignores the broker-wide setting (KIP-684).
			p["listener.name.secure.ssl.client.auth"] = "required"
			p["ssl.truststore.type"] = "PEM"
			p["ssl.truststore.location"] = s.ClientCAFile
		}
		if s.sasl() {
			p["sasl.enabled.mechanisms"] = strings.Join(s.Mechanisms, ",")
			for _, m := range s.Mechanisms {
				key := "listener.name.secure." + strings.ToLower(m) + ".sasl.jaas.config"
				if m == "GSSAPI" {
					k := s.Kerberos
					p["sasl.kerberos.service.name"] = strings.SplitN(k.Principal, "/", 2)[0]
					p[key] = fmt.Sprintf(`com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true keyTab="%s" principal="%s";`, k.Keytab, k.Principal)
				} else if m == "PLAIN" {
					var users strings.Builder
					for _, name := range slices.Sorted(maps.Keys(s.Users)) {
						fmt.Fprintf(&users, " user_%s=\"%s\"", name, s.Users[name])
					}
					p[key] = "org.apache.kafka.common.security.plain.PlainLoginModule required" + users.String() + ";"
				} else {
					p[key] = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
				}
			}
		}
	}
	maps.Copy(p, c.cfg.Props)
	return p
}

func (c *Cluster) writeConfigs() error {
	log4j := filepath.Join(c.cfg.Dir, "log4j2.yaml")
	if err := os.WriteFile(log4j, []byte(log4jConfig), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", log4j, err)
	}
	for _, n := range c.state.Nodes {
		props := c.properties(n)
		var b strings.Builder
		b.WriteString("# generated by kafkalocal\n")
		for _, k := range slices.Sorted(maps.Keys(props)) {
			fmt.Fprintf(&b, "%s=%s\n", k, props[k])
		}
		if err := os.WriteFile(n.propsFile(), []byte(b.String()), 0o600); err != nil { // may hold PLAIN passwords
			return fmt.Errorf("write %s: %w", n.propsFile(), err)
		}
	}
	return nil
}

// log4jConfig logs warnings and the one INFO line that says the server started.
const log4jConfig = `Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
      - name: kafka.server.BrokerServer
        level: INFO
`

func (c *Cluster) javaArgs(mainClass string, extra ...string) []string {
	args := []string{
		fmt.Sprintf("-Xms%dm", min(256, c.cfg.HeapMB)), fmt.Sprintf("-Xmx%dm", c.cfg.HeapMB),
		"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(c.cfg.Dir, "log4j2.yaml"),
	}
	if s := c.cfg.Secure; s != nil && s.Kerberos != nil {
		args = append(args, "-Djava.security.krb5.conf="+s.Kerberos.Krb5Conf)
	}
	args = append(args,
		"-cp", filepath.Join(c.lib, "*"),
		mainClass,
	)
	return append(args, extra...)
}

func (c *Cluster) format(ctx context.Context, n nodeState) error {
	args := c.javaArgs("kafka.tools.StorageTool", "format", "--cluster-id="+c.state.ClusterID, "--config="+n.propsFile())
	if s := c.cfg.Secure; s != nil && s.sasl() {
		// SCRAM credentials live in the cluster metadata; KRaft takes the first ones
		// from the bootstrap records written here (KIP-900).
		for _, m := range s.Mechanisms {
			if !strings.HasPrefix(m, "SCRAM-") {
				continue
			}
			for _, name := range slices.Sorted(maps.Keys(s.Users)) {
				args = append(args, fmt.Sprintf("--add-scram=%s=[name=%s,password=%s]", m, name, s.Users[name]))
			}
		}
	}
	out, err := exec.CommandContext(ctx, c.java, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("format storage of node %d: %w\n%s", n.ID, err, tail(out, 20))
	}
	return nil
}

func (c *Cluster) node(id int) (nodeState, error) {
	for _, n := range c.state.Nodes {
		if n.ID == id {
			return n, nil
		}
	}
	return nodeState{}, fmt.Errorf("kafkalocal: no node %d", id)
}

func (c *Cluster) startNode(id int) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.procs[id] != nil
	c.mu.Unlock()
	if running {
		return fmt.Errorf("kafkalocal: node %d is already running", id)
	}
	if err := checkPortFree(n.Port); err != nil {
		return fmt.Errorf("node %d: %w", id, err)
	}
	if n.SecurePort != 0 {
		if err := checkPortFree(n.SecurePort); err != nil {
			return fmt.Errorf("node %d: secure listener: %w", id, err)
		}
	}
	logf, err := os.OpenFile(n.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open broker log: %w", err)
	}
	defer logf.Close() // the child keeps its own descriptor
	offset, _ := logf.Seek(0, 2)
	fmt.Fprintf(logf, "==== kafkalocal: starting node %d at %s\n", id, time.Now().Format(time.RFC3339))
	cmd := exec.Command(c.java, c.javaArgs("kafka.Kafka", n.propsFile())...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = n.Dir
	if c.cfg.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		// Own process group (a terminal's Ctrl-C reaches only the caller, which then
		// stops the cluster cleanly), and killed if the caller dies.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	p := &proc{cmd: cmd, exited: make(chan struct{}), logOffset: offset}
	waited, err := childproc.Start(cmd)
	if err != nil {
		return fmt.Errorf("start node %d: %w", id, err)
	}
	go func() {
		<-waited
		close(p.exited)
	}()
	c.mu.Lock()
	c.procs[id] = p
	for i := range c.state.Nodes {
		if c.state.Nodes[i].ID == id {
			c.state.Nodes[i].PID = cmd.Process.Pid
		}
	}
	c.mu.Unlock()
	c.cfg.Logger.Debug("kafka node starting", "node", id, "port", n.Port, "pid", cmd.Process.Pid, "log", n.logFile())
	return nil
}

// startedLine is what kafka.server.KafkaRaftServer logs once the node serves clients.
var startedLine = []byte("Kafka Server started")

// waitStarted waits until node id's log (since its last start) says it has started.
// If the JVM exits first, or ctx ends, it fails with the log tail.
func (c *Cluster) waitStarted(ctx context.Context, id int) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	p := c.procs[id]
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("kafkalocal: node %d is not running", id)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if logSince(n.logFile(), p.logOffset, startedLine) {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("kafka node %d exited during start-up (%s); log %s ends:\n%s",
				id, p.cmd.ProcessState, n.logFile(), c.LogTail(id, 40))
		case <-ctx.Done():
			return fmt.Errorf("kafka node %d not started after waiting (%w); log %s ends:\n%s",
				id, ctx.Err(), n.logFile(), c.LogTail(id, 40))
		case <-tick.C:
		}
	}
}

func logSince(path string, offset int64, needle []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), needle) {
			return true
		}
	}
	return false
}

// LogTail returns the last n lines of node id's log.
func (c *Cluster) LogTail(id int, n int) string {
	node, err := c.node(id)
	if err != nil {
		return err.Error()
	}
	data, err := os.ReadFile(node.logFile())
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", node.logFile(), err)
	}
	return tail(data, n)
}

// Brokers returns the bootstrap addresses (host:port) of all nodes.
func (c *Cluster) Brokers() []string {
	var out []string
	for _, n := range c.state.Nodes {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", n.Port))
	}
	return out
}

// SecureBrokers returns the bootstrap addresses of the secure listener (nil
// without Config.Secure).
func (c *Cluster) SecureBrokers() []string {
	var out []string
	for _, n := range c.state.Nodes {
		if n.SecurePort != 0 {
			out = append(out, fmt.Sprintf("127.0.0.1:%d", n.SecurePort))
		}
	}
	return out
}

// Broker returns the address of node id.
func (c *Cluster) Broker(id int) string {
	n, err := c.node(id)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("127.0.0.1:%d", n.Port)
}

// NodeIDs lists the node ids (1-based).
func (c *Cluster) NodeIDs() []int {
	var ids []int
	for _, n := range c.state.Nodes {
		ids = append(ids, n.ID)
	}
	return ids
}

// PIDs lists the process ids of the nodes' JVMs (for CPU accounting).
func (c *Cluster) PIDs() []int {
	var out []int
	for _, n := range c.state.Nodes {
		if n.PID > 0 {
			out = append(out, n.PID)
		}
	}
	return out
}

// Dir is the cluster directory.
func (c *Cluster) Dir() string { return c.cfg.Dir }

// StopNode stops node id cleanly (SIGTERM: controlled shutdown), killing it if it
// has not exited within grace.
func (c *Cluster) StopNode(id int, grace time.Duration) error {
	return c.signalNode(id, syscall.SIGTERM, grace)
}

// KillNode kills node id at once (SIGKILL), like a machine failure.
func (c *Cluster) KillNode(id int) error {
	return c.signalNode(id, syscall.SIGKILL, 10*time.Second)
}

func (c *Cluster) signalNode(id int, sig syscall.Signal, grace time.Duration) error {
	c.mu.Lock()
	p := c.procs[id]
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(grace):
		c.cfg.Logger.Warn("kafka node did not stop in time, killing it", "node", id, "grace", grace)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	c.mu.Lock()
	delete(c.procs, id)
	c.mu.Unlock()
	return nil
}

// RestartNode starts a stopped node again and waits until it serves clients.
func (c *Cluster) RestartNode(ctx context.Context, id int) error {
	if err := c.startNode(id); err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	return c.waitStarted(waitCtx, id)
}

// Stop stops every node cleanly, in reverse order, within ctx (then kills).
func (c *Cluster) Stop(ctx context.Context) error {
	grace := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		grace = time.Until(dl)
	}
	ids := c.NodeIDs()
	slices.Reverse(ids)
	// Signal all first so that a multi-node cluster shuts down together instead of
	// each node waiting for a quorum that is already leaving.
	c.mu.Lock()
	for _, id := range ids {
		if p := c.procs[id]; p != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	c.mu.Unlock()
	for _, id := range ids {
		if err := c.signalNode(id, syscall.SIGTERM, grace); err != nil {
			return err
		}
	}
	return nil
}
