package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
)

// TestMissingInputTopicFailsNamingIt: taxi-stream started before its rides topic
// exists waits --topic-wait, then exits 1 with a message that names the topic
// (Kafka Streams: MissingSourceTopicException); it does not wait forever.
func TestMissingInputTopicFailsNamingIt(t *testing.T) {
	dir := t.TempDir()
	if err := buildPrograms(moduleRoot(t), dir, "taxi-stream"); err != nil {
		t.Fatal(err)
	}
	missing := kafkatest.UniqueName(t, "") + "-no-such-rides"
	start := time.Now()
	p := startProgram(t, filepath.Join(dir, "taxi-stream"), nil, "--brokers", strings.Join(kafka.Brokers(t), ","),
		"--rides-topic", missing, "--topic-wait", "3s", "--http-addr", "", "--state-dir", t.TempDir(), "--instance-id", "m1")
	// The wait is 3 s; the bound only guards against waiting forever on a loaded machine.
	code := p.wait(2 * time.Minute)
	out := p.out.String()
	if code != 1 {
		t.Fatalf("exit code %d, want 1; output:\n%s", code, tailLines(out, 20))
	}
	if !strings.Contains(out, "taxi-stream: ") || !strings.Contains(out, "the input topic "+missing+" does not exist") || !strings.Contains(out, "--topic-wait") {
		t.Errorf("the error does not name the missing topic and the flag; output:\n%s", tailLines(out, 20))
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("exited after %s, before --topic-wait 3s", took)
	}
}

// TestDemoOnABrokerLeavesNoTopics: taxi-demo --brokers creates its run's topics on
// the cluster and deletes every one of them at the end (the app's internal topics
// included); nothing of the run is left behind.
func TestDemoOnABrokerLeavesNoTopics(t *testing.T) {
	dir := t.TempDir()
	if err := buildPrograms(moduleRoot(t), dir, "taxi-demo"); err != nil {
		t.Fatal(err)
	}
	admin := kafka.Admin(t)
	before, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	p := startProgram(t, filepath.Join(dir, "taxi-demo"), nil, "--brokers", strings.Join(kafka.Brokers(t), ","),
		"--synthetic", "20000", "--format", "json", "--dashboard-addr", "", "--http-addr", "127.0.0.1:0")
	if code := p.wait(10 * time.Minute); code != 0 {
		t.Fatalf("taxi-demo exited %d:\n%s", code, tailLines(p.out.String(), 30))
	}
	out := p.out.String()
	if !strings.Contains(out, "deleted this run's topics") {
		t.Errorf("taxi-demo did not report deleting its topics:\n%s", tailLines(out, 10))
	}
	// A deletion the controller has committed reaches the brokers' metadata a moment
	// later (KRaft publishes it asynchronously), so the listing is polled.
	eventually(t, time.Minute, "every topic of the demo run deleted", func() string {
		after, err := admin.ListTopics()
		if err != nil {
			return err.Error()
		}
		var left []string
		for name := range after {
			if _, ok := before[name]; !ok && (strings.HasPrefix(name, "demo-") || strings.HasPrefix(name, "taxi-demo-")) {
				left = append(left, name)
			}
		}
		if len(left) > 0 {
			return "left behind: " + strings.Join(left, ", ")
		}
		return ""
	})
}
