package integration

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/integration/childproc"
	"github.com/taxi-stream/taxi-stream/integration/hdfstest"
	"github.com/taxi-stream/taxi-stream/integration/kafkalocal"
	"github.com/taxi-stream/taxi-stream/integration/krb5test"
	"github.com/taxi-stream/taxi-stream/integration/testio"
	"github.com/taxi-stream/taxi-stream/producer/synth"
	"github.com/taxi-stream/taxi-stream/topology"
)

// saslUsers are the users of the secured test broker: each may log in with
// SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN.
var saslUsers = map[string]string{"alice": "alice-Secret-512x", "bob": "bob-Secret-256y", "carol": "carol-Secret-PLAINz"}

// secureEnv is a broker of a test's own with a SASL_SSL listener (certificates made
// here, SCRAM users created at format time) beside its PLAINTEXT one, and the
// programs built from this tree.
type secureEnv struct {
	dir                              string
	cluster                          *kafkalocal.Cluster
	pki                              *kafkalocal.PKI
	brokers                          string // the SASL_SSL listener
	replayBin, streamBin, resultsBin string
	zoneFile                         string
}

// newSecureEnv starts the broker (GSSAPI too when krb is set) while it builds the
// programs.
func newSecureEnv(t *testing.T, krb *kafkalocal.ListenerKerberos) *secureEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a broker and the programs")
	}
	t0 := time.Now()
	e := &secureEnv{dir: t.TempDir()}
	e.zoneFile = filepath.Join(sharedData(t), "taxi_zone_lookup.csv")
	bin := filepath.Join(e.dir, "bin")
	e.replayBin, e.streamBin, e.resultsBin = filepath.Join(bin, "taxi-replay"), filepath.Join(bin, "taxi-stream"), filepath.Join(bin, "taxi-results")
	built := make(chan error, 1)
	go func() { built <- buildPrograms(moduleRoot(t), bin, "taxi-replay", "taxi-stream", "taxi-results") }()
	pki, err := kafkalocal.NewPKI(filepath.Join(e.dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	e.pki = pki
	c, err := kafkalocal.Start(context.Background(), kafkalocal.Config{
		Dir: filepath.Join(e.dir, "kafka"), HeapMB: 512,
		Secure: &kafkalocal.SecureListener{Protocol: "SASL_SSL", Keystore: pki.BrokerKeystore, Users: saslUsers, Kerberos: krb},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if errors.Is(err, kafkalocal.ErrJavaMissing) && os.Getenv("KAFKA_BROKERS") != "" {
		t.Skip("needs a local broker with a SASL_SSL listener (Java); KAFKA_BROKERS is a plaintext cluster")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	e.cluster, e.brokers = c, strings.Join(c.SecureBrokers(), ",")
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	t.Logf("broker with a SASL_SSL listener and the programs ready in %s", time.Since(t0).Round(time.Millisecond))
	return e
}

// pwFile writes a password file.
func (e *secureEnv) pwFile(t *testing.T, name, pw string) string {
	t.Helper()
	p := filepath.Join(e.dir, name+".pw")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sasl returns the flags of a SASL_SSL connection as user with mech.
func (e *secureEnv) sasl(mech, user string, extra ...string) []string {
	return append([]string{"--brokers", e.brokers, "--security-protocol", "SASL_SSL", "--tls-ca-file", e.pki.CAFile,
		"--sasl-mechanism", mech, "--sasl-username", user}, extra...)
}

func (e *secureEnv) streamArgs(tp topology.Topics, state string) []string {
	return []string{"--rides-topic", tp.Rides, "--zones-topic", tp.Zones, "--windows-topic", tp.Windows,
		"--results-topic", tp.Results, "--late-topic", tp.Late, "--dead-topic", tp.Dead,
		"--app", tp.Rides + "-app", "--instance-id", "secure-1", "--state-dir", filepath.Join(e.dir, tp.Rides+"-"+state),
		"--http-addr", "127.0.0.1:0"}
}

// secureRun says how each program of runPipeline connects.
type secureRun struct {
	rides                 int      // generated rides to replay
	replay                []string // security flags of taxi-replay (zones and rides)
	streamEnv, resultsEnv []string
	stream, results       []string // security flags of taxi-stream and taxi-results

	// A real file instead of generated rides: local is read by the oracle, input
	// (e.g. its hdfs:// copy) by the replay, with replayExtra flags, into partitions.
	local, input string
	replayExtra  []string
	partitions   int
}

// runPipeline loads the zones and replays generated rides with taxi-replay, runs
// taxi-stream and taxi-results (read_committed, JSON lines) until every result of
// the batch oracle has arrived, stops them with SIGTERM and checks each result. It
// returns the programs, whose output the caller checks.
func (e *secureEnv) runPipeline(t *testing.T, tp topology.Topics, r secureRun) []*program {
	t.Helper()
	t0 := time.Now()
	rides, input := r.local, r.input
	if rides == "" {
		rides = filepath.Join(e.dir, tp.Rides+".parquet")
		cfg := synth.DefaultConfig(int64(r.rides))
		cfg.Seed = 11
		if _, err := synth.WriteFile(context.Background(), rides, cfg); err != nil {
			t.Fatal(err)
		}
		input = rides
	}
	want := oracle(t, readParquetRides(t, rides), readBoroughs(t, e.zoneFile))
	zones := startProgram(t, e.replayBin, nil, append([]string{"zones", "--file", e.zoneFile, "--topic", tp.Zones, "--log-level", "debug"}, r.replay...)...)
	if code := zones.wait(60 * time.Second); code != 0 {
		t.Fatalf("zones: exit %d\n%s", code, zones.out.String())
	}
	replay := startProgram(t, e.replayBin, nil, slices.Concat([]string{"replay", "--topic", tp.Rides,
		"--partitions", strconv.Itoa(cmp.Or(r.partitions, 2)), "--progress", "none", "--temp-dir", e.dir, "--log-level", "debug"},
		r.replay, r.replayExtra, []string{input})...)
	if code := replay.wait(3 * time.Minute); code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, replay.out.String())
	}
	stream := startProgram(t, e.streamBin, r.streamEnv, append(append(e.streamArgs(tp, "state"), "--log-level", "debug", "--log-format", "json"), r.stream...)...)
	results := startProgram(t, e.resultsBin, r.resultsEnv, append([]string{"--topic", tp.Results, "--format", "json"}, r.results...)...)

	// taxi-results prints one JSON line per (window, borough) as it is committed.
	var got map[string][]byte
	deadline := time.Now().Add(3 * time.Minute)
	for len(got) < len(want) && time.Now().Before(deadline) {
		select {
		case <-stream.done:
			t.Fatalf("taxi-stream exited: %s", tailLines(stream.out.String(), 30))
		case <-results.done:
			t.Fatalf("taxi-results exited: %s", tailLines(results.out.String(), 30))
		case <-time.After(200 * time.Millisecond):
		}
		got, _ = resultLines(results.out.String())
	}
	t.Logf("%d of %d results read %s after the replay started", len(got), len(want), time.Since(t0).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond) // a duplicate would show up now
	stream.stop(t)
	results.stop(t)
	got, lines := resultLines(results.out.String())
	if len(got) != len(want) || lines != len(want) {
		t.Errorf("read %d results (%d distinct), the oracle has %d; taxi-stream log ends:\n%s", lines, len(got), len(want), tailLines(stream.out.String(), 20))
	}
	for key, value := range got {
		c, ok := want[key]
		if !ok {
			t.Errorf("result %s is not in the oracle", key)
			continue
		}
		checkResultAgainstOracle(t, key, value, c)
	}
	return []*program{zones, replay, stream, results}
}

// failsFast runs a program that must stop within 10 s with a message saying want.
type failsFast struct {
	bin  string
	env  []string
	args []string
	want string
}

// checkFailsFast runs the programs at once and checks each.
func checkFailsFast(t *testing.T, runs []failsFast) []*program {
	t.Helper()
	var wg sync.WaitGroup
	var progs []*program
	for _, f := range runs {
		p := startProgram(t, f.bin, f.env, f.args...)
		progs = append(progs, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := p.wait(30 * time.Second)
			out := p.out.String()
			switch {
			case code <= 0:
				t.Errorf("%s: exit code %d, want a failure; output:\n%s", p.name, code, tailLines(out, 20))
			case !strings.Contains(out, f.want):
				t.Errorf("%s: output does not say %q:\n%s", p.name, f.want, tailLines(out, 20))
			case p.took > 10*time.Second:
				t.Errorf("%s: took %s to fail, want < 10s", p.name, p.took.Round(time.Millisecond))
			default:
				t.Logf("%s failed in %s: %s", p.name, p.took.Round(time.Millisecond), strings.TrimSpace(tailLines(out, 1)))
			}
		}()
	}
	wg.Wait()
	return progs
}

// checkNoSecrets fails when any program printed any of the passwords.
func checkNoSecrets(t *testing.T, progs []*program, passwords map[string]string) {
	t.Helper()
	for _, p := range progs {
		out := p.out.String()
		for user, pw := range passwords {
			if strings.Contains(out, pw) {
				t.Errorf("%s printed the password of %s", p.name, user)
			}
		}
	}
}

// buildPrograms builds the named commands of the module at root into dir.
func buildPrograms(root, dir string, names ...string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	build := exec.Command("go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// program is one run of a built command, its output (stdout and stderr) kept.
type program struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	took time.Duration
}

type syncBuffer = testio.Buffer

func startProgram(t *testing.T, bin string, env []string, args ...string) *program {
	t.Helper()
	p := &program{name: filepath.Base(bin) + " " + args[0], out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	waited, err := childproc.Start(p.cmd)
	if err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { <-waited; p.took = time.Since(start); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	return p
}

// wait waits for the program to exit and returns its exit code (-1: still running
// after d, then killed).
func (p *program) wait(d time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		return -1
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *program) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM; output:\n%s", p.name, code, tailLines(p.out.String(), 30))
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestSecureClusterEndToEnd runs the programs the way an operator secures them,
// on a broker of its own whose SASL_SSL listener (a CA of the test's own) takes
// SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, and GSSAPI when a Kerberos KDC can run
// here (Debian's krb5-kdc). See the subtests.
func TestSecureClusterEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and the programs")
	}
	t.Parallel() // see TestMain
	var (
		kdc *krb5test.KDC
		krb *kafkalocal.ListenerKerberos
	)
	if err := krb5test.Available(); err == nil {
		kdc = krb5test.Start(t, kerberosRealm)
		kdc.AddService(t, "kafka/127.0.0.1")
		kdc.AddUser(t, "taxi", kerberosPw)
		krb = &kafkalocal.ListenerKerberos{Principal: "kafka/127.0.0.1@" + kerberosRealm, Keytab: kdc.Keytab(t, "kafka/127.0.0.1"), Krb5Conf: kdc.Config}
	} else {
		t.Logf("GSSAPI is not tested: %v", err)
	}
	e := newSecureEnv(t, krb)
	t.Run("SCRAM_and_PLAIN", func(t *testing.T) { testSCRAMAndPLAIN(t, e) })
	t.Run("GSSAPI_with_a_real_KDC", func(t *testing.T) {
		if kdc == nil {
			t.Skip("no Kerberos KDC here (apt-get install krb5-kdc krb5-admin-server)")
		}
		testGSSAPI(t, e, kdc)
	})
}

// testSCRAMAndPLAIN: the replay producer, the processor and the results reader talk
// to the broker only over SASL_SSL (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN). The
// results must equal the batch oracle; wrong credentials and an untrusted broker
// certificate must stop each program within seconds with an error that names the
// user and mechanism; no password may appear in any output.
func testSCRAMAndPLAIN(t *testing.T, e *secureEnv) {
	t0 := time.Now()
	tp := testTopics(t)

	// Wrong credentials and an untrusted certificate: each program stops at once.
	wrongPw := e.pwFile(t, "wrong", "not-the-password")
	untrusted := func(args ...string) []string {
		return append(args, "--brokers", e.brokers, "--security-protocol", "SASL_SSL", "--tls-ca-file", e.pki.OtherCAFile,
			"--sasl-mechanism", "SCRAM-SHA-256", "--sasl-username", "bob", "--sasl-password-file", e.pwFile(t, "bob", saslUsers["bob"]))
	}
	outputs := checkFailsFast(t, []failsFast{
		{bin: e.replayBin, args: append([]string{"zones", "--file", e.zoneFile, "--topic", tp.Zones}, e.sasl("SCRAM-SHA-512", "alice", "--sasl-password-file", wrongPw)...),
			want: "kafka authentication failed for user alice (SCRAM-SHA-512 over SASL_SSL)"},
		{bin: e.streamBin, args: append(e.streamArgs(tp, "wrong-state"), e.sasl("SCRAM-SHA-512", "alice", "--sasl-password-file", wrongPw)...),
			want: "kafka authentication failed for user alice (SCRAM-SHA-512 over SASL_SSL)"},
		{bin: e.resultsBin, args: append([]string{"--topic", tp.Results}, e.sasl("PLAIN", "carol", "--sasl-password-file", wrongPw)...),
			want: "kafka authentication failed for user carol (PLAIN over SASL_SSL)"},
		{bin: e.resultsBin, args: untrusted("--topic", tp.Results), want: "TLS certificate is not trusted (check --tls-ca-file"},
		{bin: e.replayBin, args: untrusted("zones", "--file", e.zoneFile, "--topic", tp.Zones), want: "TLS certificate is not trusted (check --tls-ca-file"},
	})

	// The real thing: zones and rides in with SCRAM-SHA-512 (a password file), the
	// processor with SCRAM-SHA-512 (the password in the environment, debug logs),
	// the results reader with SCRAM-SHA-256.
	outputs = append(outputs, e.runPipeline(t, tp, secureRun{
		rides:     3000,
		replay:    e.sasl("SCRAM-SHA-512", "alice", "--sasl-password-file", e.pwFile(t, "alice", saslUsers["alice"])),
		streamEnv: []string{"TAXI_STREAM_SASL_PASSWORD=" + saslUsers["alice"]},
		stream:    e.sasl("SCRAM-SHA-512", "alice"),
		results:   e.sasl("SCRAM-SHA-256", "bob", "--sasl-password-file", e.pwFile(t, "bob", saslUsers["bob"])),
	})...)
	stream := outputs[len(outputs)-2]
	if !strings.Contains(stream.out.String(), `"password":"REDACTED"`) {
		t.Errorf("taxi-stream does not log its (redacted) security settings:\n%s", tailLines(stream.out.String(), 5))
	}

	// PLAIN: delete the topics with the clean-up command.
	cleanup := startProgram(t, e.replayBin, nil, append([]string{"cleanup", "--yes", "--rides", tp.Rides, "--zones", tp.Zones,
		"--results", tp.Results, "--late", tp.Late, "--dead", tp.Dead, "--windows", tp.Windows, "--windows-table", ""},
		e.sasl("PLAIN", "carol", "--sasl-password-file", e.pwFile(t, "carol", saslUsers["carol"]))...)...)
	outputs = append(outputs, cleanup)
	if code := cleanup.wait(30 * time.Second); code != 0 || !strings.Contains(cleanup.out.String(), tp.Rides+": deleted") {
		t.Errorf("cleanup over SASL_SSL with PLAIN: exit %d\n%s", code, cleanup.out.String())
	}

	// No secret in any output, though the programs log their security settings.
	checkNoSecrets(t, outputs, saslUsers)
	t.Logf("done in %s", time.Since(t0).Round(time.Millisecond))
}

// resultLines reads taxi-results' JSON lines, keyed <window start>/<borough>, and
// counts them.
func resultLines(out string) (map[string][]byte, int) {
	got, n := map[string][]byte{}, 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var r struct {
			Window  struct{ Start string } `json:"window"`
			Borough string                 `json:"borough"`
		}
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &r) != nil || r.Borough == "" {
			continue // a log line
		}
		key := fmt.Sprintf("%s/%s", r.Window.Start, r.Borough)
		got[key] = append([]byte(nil), line...)
		n++
	}
	return got, n
}

const kerberosRealm, kerberosPw = "TEST.LOCAL", "taxi-Kerberos-pw9"

// testGSSAPI is the original cluster end to end: every program talks GSSAPI to the
// broker's SASL_SSL listener; a real month lies in a Kerberized HDFS (SASL data transfer
// at "privacy"); the replay producer (kafka-go with our GSSAPI mechanism) reads it over
// hdfs:// and the processor logs in with a keytab, the results reader with a password;
// the results equal the batch oracle. Wrong passwords and the other Kerberos mistakes
// stop each program at once with the cause named.
func testGSSAPI(t *testing.T, e *secureEnv, kdc *krb5test.KDC) {
	tp := testTopics(t)
	gssapi := func(extra ...string) []string {
		return e.sasl("GSSAPI", "taxi", append([]string{"--kerberos-realm", kerberosRealm, "--kerberos-config", kdc.Config}, extra...)...)
	}
	outputs := checkFailsFast(t, []failsFast{
		{bin: e.resultsBin, env: []string{"TAXI_RESULTS_SASL_PASSWORD=wrong-password"}, args: append([]string{"--topic", tp.Results}, gssapi()...),
			want: "kafka authentication failed for user taxi (GSSAPI over SASL_SSL)"},
		{bin: e.replayBin, env: []string{"TAXI_REPLAY_SASL_PASSWORD=wrong-password"}, args: append([]string{"zones", "--file", e.zoneFile, "--topic", tp.Zones}, gssapi()...),
			want: "kafka authentication failed for user taxi (GSSAPI over SASL_SSL)"},
	})
	outputs = append(outputs, checkKerberosMistakes(t, e, kdc, tp)...)
	// The original cluster: a real month in a Kerberized HDFS (privacy: SASL data
	// transfer with AES), replayed with a keytab over hdfs:// into a 3-partition topic.
	t0 := time.Now()
	hdfs := hdfstest.StartTest(t, hdfstest.Options{Kerberos: hdfstest.KerberosFromKDC(t, kdc, hdfstest.ProtectionPrivacy)})
	local := filepath.Join(sharedData(t), "green_tripdata_2024-01.parquet")
	if err := hdfs.CopyFromLocal(t.Context(), local, "/tlc/green/green_tripdata_2024-01.parquet"); err != nil {
		t.Fatal(err)
	}
	t.Logf("Kerberized HDFS (%s) holding the month ready in %s", hdfs.DataTransferProtection(), time.Since(t0).Round(time.Millisecond))
	keytab := kdc.Keytab(t, "taxi")
	outputs = append(outputs, e.runPipeline(t, tp, secureRun{
		local: local, input: hdfs.URL("/tlc/green/green_tripdata_2024-01.parquet"), partitions: 3,
		replay: gssapi("--kerberos-keytab", keytab),
		replayExtra: []string{"--hadoop-conf-dir", hdfs.ConfDir(), "--hdfs-principal", "taxi@" + kerberosRealm,
			"--hdfs-keytab", keytab},
		stream:     gssapi("--kerberos-keytab", keytab),
		resultsEnv: []string{"TAXI_RESULTS_SASL_PASSWORD=" + kerberosPw},
		results:    gssapi(),
	})...)
	t.Logf("the Kerberized pipeline (HDFS -> SASL_SSL/GSSAPI Kafka -> processor -> results) took %s", time.Since(t0).Round(time.Millisecond))
	checkNoSecrets(t, outputs, map[string]string{"taxi": kerberosPw})
}

// checkKerberosMistakes: the Kerberos mistakes a user meets make every program fail
// fast with the cause named: a wrong service name, an unknown user, a KDC that does not
// answer, an expired ticket cache, a clock skew beyond the KDC's limit (a KDC an hour
// ahead, under libfaketime).
func checkKerberosMistakes(t *testing.T, e *secureEnv, kdc *krb5test.KDC, tp topology.Topics) []*program {
	keytab := kdc.Keytab(t, "taxi")
	with := func(user string, extra ...string) []string {
		return e.sasl("GSSAPI", user, append([]string{"--kerberos-realm", kerberosRealm}, extra...)...)
	}
	// A krb5.conf whose KDC address nothing listens on.
	conf, err := os.ReadFile(kdc.Config)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	deadConf := filepath.Join(e.dir, "dead-kdc-krb5.conf")
	if err := os.WriteFile(deadConf, regexp.MustCompile(`kdc = 127\.0\.0\.1:\d+`).ReplaceAll(conf, []byte("kdc = "+dead)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A ticket cache whose ticket has expired (kinit: Debian's krb5-user, which make
	// browser installs).
	ccache := ""
	if _, err := exec.LookPath("kinit"); err != nil && os.Getenv("CI") == "" {
		t.Logf("the expired ticket cache is not tested: %v", err)
	} else {
		ccache = expiredCCache(t, e, kdc, keytab)
	}

	const service = "the KDC does not know the brokers' service principal"
	const unknown = "the KDC does not know this user"
	const noKDC = "the KDC does not answer"
	const expired = "the ticket cache holds no valid ticket"
	wrongService := with("taxi", "--kerberos-config", kdc.Config, "--kerberos-keytab", keytab, "--kerberos-service-name", "kafka-typo")
	nobody := with("nobody", "--kerberos-config", kdc.Config)
	noAnswer := with("taxi", "--kerberos-config", deadConf, "--kerberos-keytab", keytab)
	stale := with("taxi", "--kerberos-config", kdc.Config, "--kerberos-ccache", ccache)
	zones := []string{"zones", "--file", e.zoneFile, "--topic", tp.Zones}
	results := []string{"--topic", tp.Results}
	stream := e.streamArgs(tp, "krb-mistakes")
	// A KDC whose clock is an hour ahead of this machine's: what a client with a wrong
	// clock meets (libfaketime; make browser installs it).
	var skewed []string
	if _, err := os.Stat("/usr/bin/faketime"); err != nil && os.Getenv("CI") == "" {
		t.Logf("clock skew is not tested: %v", err)
	} else {
		ahead := krb5test.StartWith(t, "SKEW.LOCAL", krb5test.Options{ClockOffset: time.Hour})
		ahead.AddUser(t, "taxi", kerberosPw)
		skewed = e.sasl("GSSAPI", "taxi", "--kerberos-realm", "SKEW.LOCAL", "--kerberos-config", ahead.Config)
	}
	const skew = "this machine's clock and the KDC's differ"

	runs := []failsFast{
		{bin: e.replayBin, args: slices.Concat(zones, wrongService), want: service},
		{bin: e.streamBin, args: slices.Concat(stream, wrongService), want: service},
		{bin: e.resultsBin, args: slices.Concat(results, wrongService), want: service},
		{bin: e.replayBin, env: []string{"TAXI_REPLAY_SASL_PASSWORD=x"}, args: slices.Concat(zones, nobody), want: unknown},
		{bin: e.resultsBin, env: []string{"TAXI_RESULTS_SASL_PASSWORD=x"}, args: slices.Concat(results, nobody), want: unknown},
		{bin: e.replayBin, args: slices.Concat(zones, noAnswer), want: noKDC},
		{bin: e.streamBin, args: slices.Concat(stream, noAnswer), want: noKDC},
		{bin: e.resultsBin, args: slices.Concat(results, noAnswer), want: noKDC},
	}
	if skewed != nil {
		pw := "_SASL_PASSWORD=" + kerberosPw
		runs = append(runs, failsFast{bin: e.replayBin, env: []string{"TAXI_REPLAY" + pw}, args: slices.Concat(zones, skewed), want: skew},
			failsFast{bin: e.streamBin, env: []string{"TAXI_STREAM" + pw}, args: slices.Concat(stream, skewed), want: skew},
			failsFast{bin: e.resultsBin, env: []string{"TAXI_RESULTS" + pw}, args: slices.Concat(results, skewed), want: skew})
	}
	if ccache != "" {
		runs = append(runs, failsFast{bin: e.replayBin, args: slices.Concat(zones, stale), want: expired},
			failsFast{bin: e.resultsBin, args: slices.Concat(results, stale), want: expired})
	}
	return checkFailsFast(t, runs)
}

// expiredCCache makes a ticket cache for taxi whose 2 s ticket has expired.
func expiredCCache(t *testing.T, e *secureEnv, kdc *krb5test.KDC, keytab string) string {
	ccache := filepath.Join(e.dir, "expired.ccache")
	kinit := exec.Command("kinit", "-k", "-t", keytab, "-l", "2s", "-c", ccache, "taxi@"+kerberosRealm)
	kinit.Env = append(os.Environ(), "KRB5_CONFIG="+kdc.Config)
	if out, err := kinit.CombinedOutput(); err != nil {
		t.Fatalf("kinit: %v\n%s", err, out)
	}
	deadline := time.Now().Add(time.Minute)
	for { // klist -s: exit 0 while the cache holds a valid ticket
		klist := exec.Command("klist", "-s", "-c", ccache)
		if klist.Run() != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the 2 s ticket did not expire")
		}
		time.Sleep(200 * time.Millisecond)
	}

	return ccache
}
