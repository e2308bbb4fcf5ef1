package deploy

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/taxi-stream/taxi-stream/integration/kafkalocal"
)

// stack is the compose project with, for each service, what its container runs.
type stack struct {
	root     string
	project  *types.Project
	df       *dockerfile
	builds   []goBuild
	services map[string]*service
}

// service is one compose service and the process its container runs.
type service struct {
	name    string
	cfg     types.ServiceConfig
	wrapper string              // a script of the build context that runs argv (tools/docker/taxi-data)
	stage   *instructions.Stage // the Dockerfile stage it is built from (nil: an external image)
	argv    []string            // entrypoint + command, after compose's overrides
	env     map[string]string   // the image's ENV with the service's environment on top
}

// program is the base name of what the container runs ("" for an image's default).
func (s *service) program() string {
	if len(s.argv) == 0 {
		return ""
	}
	return path.Base(s.argv[0])
}

// args are the program's arguments.
func (s *service) args() []string {
	if len(s.argv) == 0 {
		return nil
	}
	return s.argv[1:]
}

// subcommand returns the leading non-flag arguments that name one of subs.
func (s *service) subcommand(subs ...string) string {
	if a := s.args(); len(a) > 0 && slices.Contains(subs, a[0]) {
		return a[0]
	}
	return ""
}

// arg returns the value of --name on the command line.
func (s *service) arg(name string) (string, bool) {
	a := s.args()
	for i := 0; i < len(a); i++ {
		if a[i] == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a[i], "--"+name+"="); ok {
			return v, true
		}
		if a[i] == "--"+name {
			if i+1 < len(a) && !strings.HasPrefix(a[i+1], "--") {
				return a[i+1], true
			}
			return "true", true
		}
	}
	return "", false
}

// setting returns a program setting: the flag on the command line, else an environment
// variable named after it (<PREFIX>_<FLAG>, cli.EnvName's rule; the program's own prefix
// before the generic KAFKA_BROKERS). Which variables the binaries really read is checked
// against their --help in TestComposeProgramsMatchBinaries.
func (s *service) setting(flag string) (string, bool) {
	if v, ok := s.arg(flag); ok {
		return v, true
	}
	suffix := "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
	var names []string
	for k := range s.env {
		if strings.HasSuffix(k, suffix) {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool { // TAXI_* first
		return strings.HasPrefix(names[i], "TAXI_") && !strings.HasPrefix(names[j], "TAXI_")
	})
	if len(names) > 0 {
		return s.env[names[0]], true
	}
	return "", false
}

// healthy reports whether the service has a healthcheck that runs.
func (s *service) healthy() bool {
	h := s.cfg.HealthCheck
	return h != nil && !h.Disable && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// longRunning reports whether docker restarts the service whatever its exit status.
func (s *service) longRunning() bool {
	return s.cfg.Restart == types.RestartPolicyAlways || s.cfg.Restart == types.RestartPolicyUnlessStopped
}

// loadStack loads docker-compose.yml with compose-go (schema validation, interpolation
// with the file's defaults and no environment from the shell, every profile enabled)
// and the Dockerfile its services build.
func loadStack(t *testing.T) *stack {
	t.Helper()
	root := moduleRoot(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithProfiles([]string{"*"}))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	st := &stack{root: root, project: project, df: parseDockerfile(t, filepath.Join(root, "Dockerfile")), services: map[string]*service{}}
	st.builds = st.df.goBuilds(t)
	for name, cfg := range project.Services {
		s := &service{name: name, cfg: cfg, env: map[string]string{}}
		var entrypoint, cmd []string
		if b := cfg.Build; b != nil {
			if filepath.Clean(b.Context) != root || filepath.Base(b.Dockerfile) != "Dockerfile" {
				t.Errorf("service %s: builds %s in %s; want the module root's Dockerfile", name, b.Dockerfile, b.Context)
			}
			if b.Target == "" {
				s.stage = &st.df.stages[len(st.df.stages)-1]
			} else if s.stage = st.df.stage(b.Target); s.stage == nil {
				t.Errorf("service %s: build target %q is not a stage of the Dockerfile", name, b.Target)
			}
			if s.stage != nil {
				entrypoint, cmd, _ = st.df.process(s.stage)
				s.env = st.df.env(s.stage)
			}
		}
		if cfg.Entrypoint != nil {
			entrypoint, cmd = cfg.Entrypoint, nil // compose drops the image's CMD too
		}
		if cfg.Command != nil {
			cmd = cfg.Command
		}
		s.argv = append(slices.Clone(entrypoint), cmd...)
		// An entrypoint script that runs its arguments (tools/docker/taxi-data): the
		// service runs the program named after it.
		if s.stage != nil && len(s.argv) > 1 && st.df.script(root, s.stage, s.argv[0]) != "" {
			if _, ok := findProgram(st.df.binaries(s.stage, st.builds), s.argv[1]); ok {
				s.wrapper, s.argv = s.argv[0], s.argv[1:]
			}
		}
		for k, v := range cfg.Environment {
			if v != nil {
				s.env[k] = *v
			}
		}
		st.services[name] = s
	}
	return st
}

// ours returns the services that run one of the programs the Dockerfile builds.
func (st *stack) ours(program string) []*service {
	var out []*service
	for _, name := range st.names() {
		s := st.services[name]
		if s.stage == nil || s.program() != program {
			continue
		}
		if _, ok := findProgram(st.df.binaries(s.stage, st.builds), s.argv[0]); ok {
			out = append(out, s)
		}
	}
	return out
}

func (st *stack) names() []string { return keys(st.services) }

// broker returns the Kafka broker service: the apache/kafka image, or the Dockerfile's
// kafka target (the same entrypoint contract on kafkalocal's jars), run as it is.
func (st *stack) broker(t *testing.T) *service {
	t.Helper()
	var found []*service
	for _, name := range st.names() {
		s := st.services[name]
		kafkaImage := imageName(s.cfg.Image) == "apache/kafka" || (s.stage != nil && s.stage.Name == "kafka")
		if kafkaImage && s.cfg.Entrypoint == nil && s.cfg.Command == nil {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one Kafka broker service (image apache/kafka or target kafka, default command), found %d", len(found))
	}
	return found[0]
}

// listeners parses a Kafka listener list (NAME://host:port,...) into name -> host:port.
func listeners(t *testing.T, list string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range strings.Split(list, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(l), "://")
		if !ok {
			t.Errorf("listener %q is not NAME://host:port", l)
			continue
		}
		out[name] = addr
	}
	return out
}

// internalBrokers returns the addresses the broker advertises inside the compose network:
// advertised listeners whose host is the broker's service name or hostname.
func (st *stack) internalBrokers(t *testing.T) []string {
	t.Helper()
	b := st.broker(t)
	var out []string
	for _, addr := range listeners(t, b.env["KAFKA_ADVERTISED_LISTENERS"]) {
		host, _, err := net.SplitHostPort(addr)
		if err == nil && (host == b.name || host == b.cfg.Hostname) {
			out = append(out, addr)
		}
	}
	sort.Strings(out)
	return out
}

// dependsOn reports whether s depends on target, directly or through other services,
// with only the given conditions along the way.
func (st *stack) dependsOn(s *service, target string, conditions ...string) bool {
	seen := map[string]bool{}
	var walk func(name string) bool
	walk = func(name string) bool {
		if seen[name] {
			return false
		}
		seen[name] = true
		svc, ok := st.services[name]
		if !ok {
			return false
		}
		for dep, d := range svc.cfg.DependsOn {
			if !slices.Contains(conditions, d.Condition) {
				continue
			}
			if dep == target || walk(dep) {
				return true
			}
		}
		return false
	}
	return walk(s.name)
}

// dataMount returns the container path where a service mounts ../shared/data read-only.
func (st *stack) dataMount(t *testing.T, s *service) string {
	t.Helper()
	want := filepath.Clean(filepath.Join(st.root, "..", "shared", "data"))
	for _, v := range s.cfg.Volumes {
		if v.Type == types.VolumeTypeBind && filepath.Clean(v.Source) == want {
			if !v.ReadOnly {
				t.Errorf("service %s: mounts %s read-write; the shared data must be read-only", s.name, v.Source)
			}
			return v.Target
		}
	}
	t.Errorf("service %s: does not mount ../shared/data (%s)", s.name, want)
	return ""
}

// hostFile maps a path in a service's container under its data mount to the host file.
func (st *stack) hostFile(mount, file string) (string, bool) {
	rel, ok := strings.CutPrefix(path.Clean(file), path.Clean(mount)+"/")
	if !ok {
		return "", false
	}
	return filepath.Join(st.root, "..", "shared", "data", filepath.FromSlash(rel)), true
}

// checkDataFile fails when a data file a service reads is not in ../shared/data (only
// when the data is there at all, as tlctest.DataDir does).
func (st *stack) checkDataFile(t *testing.T, s *service, mount, file string) {
	t.Helper()
	host, ok := st.hostFile(mount, file)
	if !ok {
		t.Errorf("service %s: reads %s, which is not under its data mount %s", s.name, file, mount)
		return
	}
	if _, err := os.Stat(filepath.Join(st.root, "..", "shared", "data", "SOURCES.md")); err != nil {
		t.Logf("service %s: %s not checked: no ../shared/data here", s.name, file)
		return
	}
	if _, err := os.Stat(host); err != nil {
		t.Errorf("service %s: reads %s: %v", s.name, file, err)
	}
}

// topicCreators returns the services that create a topic with kafka-topics.sh, by topic,
// with the partition count they ask for.
func (st *stack) topicCreators() map[string][]struct {
	svc        *service
	partitions int
} {
	out := map[string][]struct {
		svc        *service
		partitions int
	}{}
	for _, name := range st.names() {
		s := st.services[name]
		if s.program() != "kafka-topics.sh" || !slices.Contains(s.args(), "--create") {
			continue
		}
		topic, _ := s.arg("topic")
		p, _ := s.arg("partitions")
		n, _ := strconv.Atoi(p)
		out[topic] = append(out[topic], struct {
			svc        *service
			partitions int
		}{s, n})
	}
	return out
}

func TestComposeStack(t *testing.T) {
	st := loadStack(t)
	broker := st.broker(t)
	internal := st.internalBrokers(t)
	processors := st.ours("taxi-stream")
	var zoneLoaders, producers []*service
	for _, s := range st.ours("taxi-replay") {
		switch s.subcommand("zones", "cleanup", "replay") {
		case "zones":
			zoneLoaders = append(zoneLoaders, s)
		case "", "replay":
			producers = append(producers, s)
		}
	}
	readers := st.ours("taxi-results")

	t.Run("services", func(t *testing.T) {
		for what, list := range map[string][]*service{
			"processor (taxi-stream)": processors, "zones loader (taxi-replay zones)": zoneLoaders,
			"replay producer (taxi-replay)": producers, "results reader (taxi-results)": readers,
		} {
			if len(list) == 0 {
				t.Errorf("no %s service", what)
			}
		}
		if _, ok := st.services["integration"]; !ok {
			t.Error("no integration service")
		}
		// Services that share an image tag must build it the same way, or each build
		// overwrites the other's image.
		byImage := map[string]*service{}
		for _, name := range st.names() {
			s := st.services[name]
			if s.cfg.Image == "" && s.cfg.Build == nil {
				t.Errorf("service %s: neither image nor build", name)
			}
			if s.cfg.Build == nil {
				continue
			}
			if o, ok := byImage[s.cfg.Image]; ok && o.cfg.Build.Target != s.cfg.Build.Target {
				t.Errorf("services %s and %s tag image %s from different targets (%s, %s)",
					o.name, name, s.cfg.Image, o.cfg.Build.Target, s.cfg.Build.Target)
			}
			byImage[s.cfg.Image] = s
		}
	})

	t.Run("kafka", func(t *testing.T) {
		// The image the tests' own broker runs (integration/kafkalocal), in KRaft mode.
		if tag := imageTag(broker.cfg.Image); tag != kafkalocal.KafkaVersion {
			t.Errorf("kafka: image %s; want version %s, the one integration/kafkalocal tests with", broker.cfg.Image, kafkalocal.KafkaVersion)
		}
		env := broker.env
		if _, ok := env["KAFKA_ZOOKEEPER_CONNECT"]; ok {
			t.Error("kafka: KAFKA_ZOOKEEPER_CONNECT is set; Kafka 4 runs KRaft only")
		}
		roles := strings.Split(env["KAFKA_PROCESS_ROLES"], ",")
		if !slices.Contains(roles, "broker") || !slices.Contains(roles, "controller") {
			t.Errorf("kafka: KAFKA_PROCESS_ROLES=%q; want broker,controller (a single KRaft node)", env["KAFKA_PROCESS_ROLES"])
		}
		ls := listeners(t, env["KAFKA_LISTENERS"])
		protocols := map[string]string{}
		for _, m := range strings.Split(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], ",") {
			name, proto, _ := strings.Cut(m, ":")
			protocols[name] = proto
		}
		for name := range ls {
			if protocols[name] == "" {
				t.Errorf("kafka: listener %s has no security protocol in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", name)
			}
		}
		controller := env["KAFKA_CONTROLLER_LISTENER_NAMES"]
		if _, ok := ls[controller]; !ok {
			t.Errorf("kafka: KAFKA_CONTROLLER_LISTENER_NAMES=%q is not one of KAFKA_LISTENERS %v", controller, keys(ls))
		}
		if l := env["KAFKA_INTER_BROKER_LISTENER_NAME"]; l != "" {
			if _, ok := ls[l]; !ok {
				t.Errorf("kafka: KAFKA_INTER_BROKER_LISTENER_NAME=%q is not one of KAFKA_LISTENERS", l)
			}
		}
		_, controllerPort, _ := net.SplitHostPort(ls[controller])
		wantVoter := env["KAFKA_NODE_ID"] + "@" + net.JoinHostPort(broker.cfg.Hostname, controllerPort)
		if voters := strings.Split(env["KAFKA_CONTROLLER_QUORUM_VOTERS"], ","); !slices.Contains(voters, wantVoter) {
			t.Errorf("kafka: KAFKA_CONTROLLER_QUORUM_VOTERS=%q; want it to hold this node, %s", env["KAFKA_CONTROLLER_QUORUM_VOTERS"], wantVoter)
		}
		for name, addr := range listeners(t, env["KAFKA_ADVERTISED_LISTENERS"]) {
			_, port, _ := net.SplitHostPort(addr)
			_, lport, _ := net.SplitHostPort(ls[name])
			if port != lport {
				t.Errorf("kafka: advertised listener %s=%s, but the broker listens on %q", name, addr, ls[name])
			}
		}
		if len(internal) == 0 {
			t.Errorf("kafka: no advertised listener on host %q, the address the other services reach", broker.cfg.Hostname)
		}
		// One node: the internal topics of groups and transactions must not ask for more
		// replicas (the defaults, 3, make every exactly-once commit fail).
		for _, k := range []string{"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR"} {
			if env[k] != "1" {
				t.Errorf("kafka: %s=%q; a single node needs 1", k, env[k])
			}
		}
		if !broker.healthy() {
			t.Error("kafka: no healthcheck; the others wait for service_healthy")
		}
	})

	t.Run("brokers", func(t *testing.T) {
		check := func(s *service, what, list string) {
			if list == "" {
				t.Errorf("service %s: no %s: it would try localhost:9092, which is not Kafka inside a container", s.name, what)
				return
			}
			for _, b := range strings.Split(list, ",") {
				if !slices.Contains(internal, strings.TrimSpace(b)) {
					t.Errorf("service %s: %s %s; the broker is reachable at %v", s.name, what, b, internal)
				}
			}
		}
		for _, name := range st.names() {
			s := st.services[name]
			switch {
			case s == broker:
			case s.program() == "kafka-topics.sh":
				v, _ := s.arg("bootstrap-server")
				check(s, "--bootstrap-server", v)
			case s.program() == "go":
				check(s, "KAFKA_BROKERS", s.env["KAFKA_BROKERS"])
			case s.stage != nil:
				v, ok := s.setting("brokers")
				if !ok {
					v = s.env["KAFKA_BROKERS"]
				}
				check(s, "brokers setting", v)
			}
		}
	})

	t.Run("depends_on", func(t *testing.T) {
		for _, name := range st.names() {
			s := st.services[name]
			for dep, d := range s.cfg.DependsOn {
				target, ok := st.services[dep]
				switch {
				case !ok:
					t.Errorf("service %s: depends on %s, which does not exist", name, dep)
					continue
				case d.Condition == types.ServiceConditionHealthy && !target.healthy():
					t.Errorf("service %s: waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				case d.Condition == types.ServiceConditionCompletedSuccessfully && target.longRunning():
					t.Errorf("service %s: waits for %s to complete, but %s runs for ever (restart: %s)", name, dep, dep, target.cfg.Restart)
				case d.Condition != types.ServiceConditionHealthy && d.Condition != types.ServiceConditionCompletedSuccessfully:
					t.Errorf("service %s: depends on %s with condition %s; want service_healthy or service_completed_successfully (started is not ready)", name, dep, d.Condition)
				}
				if target == broker && d.Condition != types.ServiceConditionHealthy {
					t.Errorf("service %s: must wait for %s to be healthy", name, dep)
				}
			}
			if s != broker && !st.dependsOn(s, broker.name, types.ServiceConditionHealthy, types.ServiceConditionCompletedSuccessfully) {
				t.Errorf("service %s: does not wait for the broker %s", name, broker.name)
			}
		}
		creators := map[string]bool{} // the services that create the input topics
		for _, list := range st.topicCreators() {
			for _, c := range list {
				creators[c.svc.name] = true
			}
		}
		done := types.ServiceConditionCompletedSuccessfully
		for _, p := range append(slices.Clone(processors), producers...) {
			for _, z := range zoneLoaders {
				if !st.dependsOn(p, z.name, done, types.ServiceConditionHealthy) {
					t.Errorf("service %s: starts before the zones are loaded by %s (rides would join no borough)", p.name, z.name)
				}
			}
		}
		for _, p := range processors {
			for c := range creators {
				if !st.dependsOn(p, c, done, types.ServiceConditionHealthy) {
					t.Errorf("service %s: does not wait for %s, which creates its input topic", p.name, c)
				}
			}
		}
		// The processors create the results topic: the reader waits until they are ready.
		for _, r := range readers {
			for _, p := range processors {
				if d, ok := r.cfg.DependsOn[p.name]; !ok || d.Condition != types.ServiceConditionHealthy {
					t.Errorf("service %s: does not wait for processor %s to be healthy", r.name, p.name)
				}
			}
		}
	})

	t.Run("healthchecks", func(t *testing.T) {
		probe := regexp.MustCompile(`https?://[^\s"']+`)
		for _, p := range processors {
			if !p.healthy() {
				t.Errorf("service %s: processor without a healthcheck", p.name)
				continue
			}
			addr, ok := p.setting("http-addr")
			if !ok {
				t.Errorf("service %s: no --http-addr / TAXI_STREAM_HTTP_ADDR: nothing serves the healthcheck", p.name)
				continue
			}
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Errorf("service %s: http-addr %q: %v", p.name, addr, err)
				continue
			}
			test := p.cfg.HealthCheck.Test
			u, err := url.Parse(probe.FindString(strings.Join(test, " ")))
			if err != nil || u.Host == "" {
				t.Errorf("service %s: healthcheck %q probes no URL", p.name, test)
				continue
			}
			if u.Port() != port || (u.Path != "/readyz" && u.Path != "/healthz") {
				t.Errorf("service %s: healthcheck probes %s; the processor serves /healthz and /readyz on port %s", p.name, u, port)
			}
			// The probe must exist in the image.
			tool := ""
			switch test[0] {
			case "CMD":
				tool = test[1]
			case "CMD-SHELL":
				tool = "sh"
			}
			base := imageName(st.df.image(p.stage))
			_, own := findProgram(st.df.binaries(p.stage, st.builds), tool)
			if !own && !(smallRuntimes[base] && slices.Contains([]string{"wget", "sh", "nc"}, tool)) {
				t.Errorf("service %s: healthcheck runs %q, which image %s (on %s) does not have", p.name, tool, p.cfg.Image, base)
			}
			for _, port := range p.cfg.Ports {
				if strconv.Itoa(int(port.Target)) != u.Port() {
					t.Errorf("service %s: publishes container port %d; HTTP is on %s", p.name, port.Target, u.Port())
				}
			}
		}
	})

	t.Run("processors", func(t *testing.T) {
		instances := 0
		ids := map[string]string{}
		apps := map[string]bool{}
		states := map[string]string{}
		stateDir := func(s *service) string { v, _ := s.setting("state-dir"); return v }
		for _, p := range processors {
			n := p.cfg.GetScale()
			instances += n
			app, _ := p.setting("app")
			apps[app] = true
			id, fixed := p.setting("instance-id")
			switch {
			case fixed && n > 1:
				t.Errorf("service %s: %d replicas share --instance-id %s, so they fence each other's transactions", p.name, n, id)
			case !fixed && p.cfg.Hostname != "" && n > 1:
				t.Errorf("service %s: %d replicas share hostname %s, the default --instance-id", p.name, n, p.cfg.Hostname)
			case !fixed && p.cfg.Hostname != "":
				id = "taxi-stream-" + p.cfg.Hostname
			case !fixed:
				id = "" // the container id: distinct per replica, but new on every re-creation
				t.Logf("service %s: --instance-id defaults to the container's hostname, which changes when the container is re-created", p.name)
			}
			if id != "" {
				if o, ok := ids[id]; ok {
					t.Errorf("services %s and %s: same instance id %s", o, p.name, id)
				}
				ids[id] = p.name
			}
			// A state volume belongs to one instance (LevelDB takes a lock on it).
			for _, v := range p.cfg.Volumes {
				if v.Target != stateDir(p) || v.Type != types.VolumeTypeVolume {
					continue
				}
				if n > 1 {
					t.Errorf("service %s: %d replicas share state volume %s", p.name, n, v.Source)
				}
				if o, ok := states[v.Source]; ok {
					t.Errorf("services %s and %s share state volume %s", o, p.name, v.Source)
				}
				states[v.Source] = p.name
			}
		}
		if instances < 3 {
			t.Errorf("%d processor instances; want 3", instances)
		}
		if len(apps) != 1 {
			t.Errorf("processors with different --app %v: they would not share the partitions", keys(apps))
		}
		for topic, creators := range st.topicCreators() {
			for _, c := range creators {
				if c.partitions < instances {
					t.Errorf("service %s: creates %s with %d partitions, fewer than the %d processors", c.svc.name, topic, c.partitions, instances)
				}
			}
		}
	})

	t.Run("data", func(t *testing.T) {
		for _, s := range producers {
			mount := st.dataMount(t, s)
			files := under(s.args(), mount)
			for _, f := range files {
				st.checkDataFile(t, s, mount, f)
			}
			if len(files) == 0 {
				t.Errorf("service %s: replays no file from %s", s.name, mount)
			}
		}
		for _, s := range zoneLoaders {
			mount := st.dataMount(t, s)
			if f, ok := s.arg("file"); !ok {
				t.Errorf("service %s: zones without --file", s.name)
			} else {
				st.checkDataFile(t, s, mount, f)
			}
		}
	})

	t.Run("integration", func(t *testing.T) {
		s, ok := st.services["integration"]
		if !ok || s.stage == nil {
			t.Fatal("no integration service built from the Dockerfile")
		}
		if !st.df.hasGo(s.stage) {
			t.Errorf("integration: target %s has no Go toolchain (FROM %s)", s.stage.Name, st.df.image(s.stage))
		}
		if len(s.argv) < 2 || s.argv[0] != "go" || s.argv[1] != "test" {
			t.Fatalf("integration: runs %q; want go test", s.argv)
		}
		var pkgs []string
		for _, a := range s.argv[2:] {
			if strings.HasPrefix(a, "./") {
				pkgs = append(pkgs, a)
			}
		}
		if !slices.Contains(pkgs, "./integration/...") && !slices.Contains(pkgs, "./integration/") {
			t.Errorf("integration: runs go test %v; want ./integration/ (the stack's check) or ./integration/...", pkgs)
		}
		out, err := exec.Command(goTool(t), append([]string{"list", "-C", st.root}, pkgs...)...).CombinedOutput()
		if err != nil || len(strings.Fields(string(out))) == 0 {
			t.Errorf("integration: go list %v: %v\n%s", pkgs, err, out)
		}
		if s.env["KAFKA_BROKERS"] == "" {
			t.Error("integration: KAFKA_BROKERS is not set; the suite would start its own broker (and need Java)")
		}
		// tlctest.DataDir looks for ../shared/data next to the module root.
		mount := st.dataMount(t, s)
		if want := path.Join(path.Dir(st.df.workdir(s.stage)), "shared", "data"); mount != want {
			t.Errorf("integration: data mounted at %s; the tests look in %s (beside WORKDIR %s)", mount, want, st.df.workdir(s.stage))
		}
	})
}

// under returns the arguments that are paths under dir.
func under(args []string, dir string) []string {
	var out []string
	for _, a := range args {
		if dir != "" && strings.HasPrefix(path.Clean(a), path.Clean(dir)+"/") {
			out = append(out, a)
		}
	}
	return out
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// goDirective returns the major.minor of go.mod's go line (1.26 for go 1.26.5).
func goDirective(t testing.TB, root string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "go "); ok {
			parts := strings.Split(v, ".")
			if len(parts) >= 2 {
				return parts[0] + "." + parts[1]
			}
			return v
		}
	}
	t.Fatal("go.mod has no go line")
	return ""
}

// goTool is the go command of the toolchain running the tests.
func goTool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH: %v", err)
	}
	return p
}

func keys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestDockerComposeConfig validates the file with Docker Compose itself when it is
// installed (`config` needs no engine). Our machines have the docker CLI without the
// compose plugin, so this is skipped here; loadStack's compose-go is the same loader.
func TestDockerComposeConfig(t *testing.T) {
	root := moduleRoot(t)
	var compose []string
	for _, c := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		// Compose v2 (the compose spec); v1 (docker-compose 1.x, Debian's) is left out.
		out, err := exec.Command(c[0], append(c[1:], "version", "--short")...).Output()
		if v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v"); err == nil && !strings.HasPrefix(v, "1.") {
			compose = c
			break
		}
	}
	if compose == nil {
		t.Skip("Docker Compose v2 is not installed (no `docker compose` plugin, no docker-compose 2.x)")
	}
	args := append(compose[1:], "--project-directory", root, "-f", filepath.Join(root, "docker-compose.yml"),
		"--profile", "test", "config", "--quiet")
	cmd := exec.Command(compose[0], args...)
	cmd.Env = append(os.Environ(), "REPLAY_FILE=", "REPLAY_SPEEDUP=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", compose[0], strings.Join(args, " "), err, out)
	}
}
