package deploy

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/integration/kafkalocal"
)

// imageOnlyEnv are KAFKA_* variables the apache/kafka image reads for the JVM, not
// broker properties.
var imageOnlyEnv = []string{"KAFKA_VERSION", "KAFKA_HEAP_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS",
	"KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS",
	"KAFKA_TOOLS_LOG4J_LOGLEVEL", "KAFKA_JMX_HOSTNAME", "KAFKA_JMX_PORT"}

// harnessProps are the properties the local harness sets itself: the node's identity,
// listeners and directories, which differ outside the compose network.
var harnessProps = []string{"node.id", "process.roles", "listeners", "advertised.listeners",
	"listener.security.protocol.map", "controller.listener.names", "inter.broker.listener.name",
	"controller.quorum.voters", "log.dirs"}

// brokerProps maps the broker service's environment to server properties the way the
// apache/kafka image does (KAFKA_FOO_BAR -> foo.bar, __ -> _, ___ -> -), leaving out
// what the local harness owns.
func brokerProps(env map[string]string) map[string]string {
	props := map[string]string{}
	for k, v := range env {
		name, ok := strings.CutPrefix(k, "KAFKA_")
		if !ok || slices.Contains(imageOnlyEnv, k) {
			continue
		}
		name = strings.ToLower(name)
		name = strings.ReplaceAll(name, "___", "\x00")
		name = strings.ReplaceAll(name, "__", "\x01")
		name = strings.ReplaceAll(name, "_", ".")
		name = strings.ReplaceAll(strings.ReplaceAll(name, "\x00", "-"), "\x01", "_")
		if !slices.Contains(harnessProps, name) {
			props[name] = v
		}
	}
	return props
}

func TestBrokerProps(t *testing.T) {
	got := brokerProps(map[string]string{"KAFKA_LOG_CLEANER_BACKOFF_MS": "1000", "KAFKA_NODE_ID": "1",
		"KAFKA_HEAP_OPTS": "-Xmx1G", "KAFKA_LISTENER_NAME_EXTERNAL_SSL___CLIENT__AUTH": "none", "CLUSTER_ID": "x"})
	want := map[string]string{"log.cleaner.backoff.ms": "1000", "listener.name.external.ssl-client_auth": "none"}
	if !maps.Equal(got, want) {
		t.Errorf("brokerProps = %v, want %v", got, want)
	}
}

// TestIntegrationServiceOnLocalBroker runs the compose integration service's command
// without Docker: `go test ...` from docker-compose.yml, with KAFKA_BROKERS pointing at a
// real local broker of the same Kafka release, configured with the compose kafka service's
// settings (the listeners are the harness's). So the compose broker's configuration is
// shown to carry the exactly-once pipeline, and the suite to run against an external
// cluster, as it does in the container.
//
// By default only the end-to-end pipeline test runs (a few seconds);
// TAXI_STREAM_COMPOSE_SUITE=full runs the service's command as it is (the whole suite).
func TestIntegrationServiceOnLocalBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker")
	}
	// Set in the compose service itself, and in the run below, whose suite holds this
	// test again: the suite already runs against an external cluster there.
	if os.Getenv("KAFKA_BROKERS") != "" {
		t.Skip("KAFKA_BROKERS is set: the suite runs against that cluster already")
	}
	st := loadStack(t)
	svc, ok := st.services["integration"]
	if !ok || len(svc.argv) < 3 || svc.argv[0] != "go" || svc.argv[1] != "test" {
		t.Fatal("no integration service running go test (TestComposeStack says more)")
	}
	broker := st.broker(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	props := brokerProps(broker.env)
	started := time.Now()
	c, err := kafkalocal.Start(ctx, kafkalocal.Config{Dir: t.TempDir(), Props: props})
	if err != nil {
		t.Fatalf("start a local broker with the compose settings %v: %v", props, err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	t.Logf("local Kafka %s at %s with the compose broker's settings (%d properties), started in %s",
		kafkalocal.KafkaVersion, strings.Join(c.Brokers(), ","), len(props), time.Since(started).Round(time.Millisecond))

	args := slices.Clone(svc.argv[1:])
	full := os.Getenv("TAXI_STREAM_COMPOSE_SUITE") == "full"
	if !full {
		// The service's flags, one test of the main integration package (instead of the
		// service's own -run: the stack's check needs the stack's results).
		var kept []string
		for i := 0; i < len(args); i++ {
			switch a := args[i]; {
			case a == "-run":
				i++
			case strings.HasPrefix(a, "-run="):
			case a == "./integration/...":
				kept = append(kept, "./integration")
			default:
				kept = append(kept, a)
			}
		}
		args = append(kept[:1], append([]string{"-v", "-run", "^TestPipelineSmallInput$"}, kept[1:]...)...)
	}
	cmd := exec.CommandContext(ctx, goTool(t), args...)
	cmd.Dir = st.root
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KAFKA_BROKERS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range svc.env {
		if k == "KAFKA_BROKERS" {
			v = strings.Join(c.Brokers(), ",")
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if !slices.ContainsFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, "KAFKA_BROKERS=") }) {
		t.Fatal("the integration service sets no KAFKA_BROKERS")
	}
	started = time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(started).Round(time.Second)
	if err != nil {
		t.Fatalf("go %s with KAFKA_BROKERS=%s: %v after %s\n%s", strings.Join(args, " "), strings.Join(c.Brokers(), ","), err, took, out)
	}
	if !full && !strings.Contains(string(out), "--- PASS: TestPipelineSmallInput") {
		t.Fatalf("go %s ran no TestPipelineSmallInput:\n%s", strings.Join(args, " "), out)
	}
	if strings.Contains(string(out), "kafkatest: local Kafka") {
		t.Errorf("the suite started its own broker instead of using KAFKA_BROKERS:\n%s", out)
	}
	t.Logf("go %s: passed in %s", strings.Join(args, " "), took)
}
