package deploy

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// helpCommand is one (sub)command of a program as its --help describes it.
type helpCommand struct {
	path  []string
	text  string
	flags map[string]*helpFlag // by long name
	short map[string]string    // short name -> long name
	env   map[string]string    // environment variable -> the flag it sets
	named map[string]bool      // every $VARIABLE the help mentions
	subs  []string
}

// helpFlag is one flag line of a --help.
type helpFlag struct {
	name, typ, def, usage string
}

var (
	// pflag's flag lines: "  -h, --help   usage" and "      --app string   usage".
	flagLine = regexp.MustCompile(`^\s+(?:-([A-Za-z0-9]), )?--([A-Za-z0-9][\w.-]*)(?: ([A-Za-z][\w.\[\]]*))?(?:\s{2,}(.*))?$`)
	// the default pflag appends to the usage.
	defaultValue = regexp.MustCompile(`\(default ("(?:[^"\\]|\\.)*"|[^()]*)\)\s*$`)
	envVar       = regexp.MustCompile(`\$\{?([A-Z][A-Z0-9_]*[A-Z0-9])`)
)

// parseHelp reads cobra/pflag help output.
func parseHelp(cmdPath []string, text string) *helpCommand {
	c := &helpCommand{path: cmdPath, text: text, flags: map[string]*helpFlag{}, short: map[string]string{},
		env: map[string]string{}, named: map[string]bool{}}
	for _, m := range envVar.FindAllStringSubmatch(text, -1) {
		c.named[m[1]] = true
	}
	section := ""
	var last *helpFlag
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			last = nil
		case !strings.HasPrefix(line, " "):
			section, last = strings.TrimSuffix(strings.TrimSpace(line), ":"), nil
		case section == "Available Commands":
			c.subs = append(c.subs, strings.Fields(line)[0])
		case section == "Flags" || section == "Global Flags":
			m := flagLine.FindStringSubmatch(line)
			if m == nil {
				if last != nil { // a usage continued on the next line
					last.usage += " " + strings.TrimSpace(line)
				}
				continue
			}
			last = &helpFlag{name: m[2], typ: m[3], usage: m[4]}
			c.flags[m[2]] = last
			if m[1] != "" {
				c.short[m[1]] = m[2]
			}
		}
	}
	for _, f := range c.flags {
		if d := defaultValue.FindStringSubmatch(f.usage); d != nil {
			f.def = strings.Trim(d[1], `"`)
		}
		// cli.EnvName's rule: <PREFIX>_<FLAG>; the help names the variable.
		suffix := "_" + strings.ToUpper(strings.ReplaceAll(f.name, "-", "_"))
		for _, m := range envVar.FindAllStringSubmatch(f.usage, -1) {
			if strings.HasSuffix(m[1], suffix) {
				c.env[m[1]] = f.name
			}
		}
	}
	return c
}

// envPrefix guesses the prefix of the program's variables from the ones it lists.
func (c *helpCommand) envPrefix() string {
	for env, flag := range c.env {
		if p := strings.TrimSuffix(env, "_"+strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))); p != "KAFKA" {
			return p
		}
	}
	return ""
}

// program is a built binary and the help of each of its commands.
type program struct {
	bin  string
	cmds map[string]*helpCommand // by subcommand path joined with spaces ("" = root)
}

// readProgram runs bin --help, and <sub> --help for each subcommand, recursively.
func readProgram(t *testing.T, bin string) *program {
	t.Helper()
	p := &program{bin: bin, cmds: map[string]*helpCommand{}}
	var walk func(cmdPath []string)
	walk = func(cmdPath []string) {
		out, err := exec.Command(bin, append(slices.Clone(cmdPath), "--help")...).Output()
		if err != nil {
			t.Fatalf("%s %s --help: %v", filepath.Base(bin), strings.Join(cmdPath, " "), err)
		}
		c := parseHelp(cmdPath, string(out))
		p.cmds[strings.Join(cmdPath, " ")] = c
		for _, sub := range c.subs {
			if sub != "help" && sub != "completion" && len(cmdPath) < 3 {
				walk(append(slices.Clone(cmdPath), sub))
			}
		}
	}
	walk(nil)
	return p
}

// command finds the command that args run and returns it with the remaining arguments.
func (p *program) command(args []string) (*helpCommand, []string) {
	c := p.cmds[""]
	for len(args) > 0 && slices.Contains(c.subs, args[0]) {
		next, ok := p.cmds[strings.Join(append(slices.Clone(c.path), args[0]), " ")]
		if !ok {
			break
		}
		c, args = next, args[1:]
	}
	return c, args
}

// buildPrograms builds the programs as the Dockerfile's go build does (same packages,
// flags and CGO_ENABLED) into a temporary directory and returns them by name.
func buildPrograms(t *testing.T, root string, builds []goBuild) map[string]*program {
	t.Helper()
	dir := t.TempDir()
	out := map[string]*program{}
	for _, b := range builds {
		args := append([]string{"build"}, b.flags...)
		args = append(args, "-o", dir+string(filepath.Separator))
		args = append(args, b.pkgs...)
		cmd := exec.Command(goTool(t), args...)
		cmd.Dir = root
		cmd.Env = os.Environ()
		for k, v := range b.env {
			if k == "CGO_ENABLED" || k == "GOFLAGS" || k == "GOEXPERIMENT" {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s (as stage %s of the Dockerfile): %v\n%s", strings.Join(args, " "), b.stage.Name, err, msg)
		}
		for _, pkg := range b.pkgs {
			name := path.Base(pkg)
			out[name] = readProgram(t, filepath.Join(dir, name))
		}
	}
	return out
}

// checkStatic fails when an ELF binary needs a dynamic loader or shared libraries.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (%v): it would not run on a distroless/scratch/alpine image", filepath.Base(bin), p.Type)
		}
	}
}

// runtimeEnv are variables read by the Go runtime or libraries, not by our flags.
var runtimeEnv = []string{"GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GODEBUG", "GOTRACEBACK", "TZ", "HOME", "TMPDIR",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}

func TestComposeProgramsMatchBinaries(t *testing.T) {
	st := loadStack(t)
	programs := buildPrograms(t, st.root, st.builds)
	for name, p := range programs {
		checkStatic(t, p.bin)
		if len(p.cmds[""].flags) < 2 {
			t.Errorf("%s --help lists %d flags; the help format was not understood", name, len(p.cmds[""].flags))
		}
	}

	for _, name := range st.names() {
		s := st.services[name]
		if s.stage == nil || len(s.argv) == 0 {
			continue
		}
		if _, ok := findProgram(st.df.binaries(s.stage, st.builds), s.argv[0]); !ok {
			if !st.df.hasGo(s.stage) && st.df.script(st.root, s.stage, s.argv[0]) == "" {
				t.Errorf("service %s: runs %q, which image target %s does not hold", name, s.argv[0], s.stage.Name)
			}
			continue
		}
		prog, ok := programs[s.program()]
		if !ok {
			t.Errorf("service %s: runs %s, which the Dockerfile does not build", name, s.program())
			continue
		}
		cmd, rest := prog.command(s.args())
		label := strings.TrimSpace(s.program() + " " + strings.Join(cmd.path, " "))
		var missing []string
		given := map[string]bool{}
		for i := 0; i < len(rest); i++ {
			a := rest[i]
			var f *helpFlag
			switch {
			case a == "--":
				i = len(rest)
				continue
			case strings.HasPrefix(a, "--"):
				n, _, _ := strings.Cut(a[2:], "=")
				if f = cmd.flags[n]; f == nil {
					missing = append(missing, "--"+n)
					continue
				}
			case strings.HasPrefix(a, "-") && len(a) > 1:
				if f = cmd.flags[cmd.short[a[1:2]]]; f == nil {
					missing = append(missing, a[:2])
					continue
				}
			default:
				continue
			}
			given[f.name] = true
			if !strings.Contains(a, "=") && f.typ != "" && (strings.HasPrefix(a, "--") || len(a) == 2) {
				i++ // the flag's value
			}
		}
		// Each variable becomes --flag=value for the parse check below, unless the command
		// line sets the flag (which wins over the environment).
		var envFlags []string
		for _, k := range keys(s.env) {
			v := s.env[k]
			flag, ok := cmd.env[k]
			switch {
			case ok && !given[flag]:
				envFlags = append(envFlags, "--"+flag+"="+v)
			case ok, cmd.named[k], slices.Contains(runtimeEnv, k):
			default:
				guess := ""
				if p := cmd.envPrefix(); p != "" && strings.HasPrefix(k, p+"_") {
					guess = " (--" + strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, p+"_"), "_", "-")) + ")"
				}
				missing = append(missing, k+guess)
			}
		}
		if len(missing) > 0 {
			t.Errorf("service %s runs %s with settings the binary does not have: %s\n(%s --help lists: %s)",
				name, label, strings.Join(missing, ", "), label, strings.Join(keys(cmd.flags), " "))
			continue
		}
		// The binary's own flag parser accepts the arguments and values (--help stops
		// before anything runs).
		argv := append(append(slices.Clone(s.args()), envFlags...), "--help")
		var stderr bytes.Buffer
		run := exec.Command(prog.bin, argv...)
		run.Stderr = &stderr
		if err := run.Run(); err != nil {
			t.Errorf("service %s: %s %s: %v: %s", name, s.program(), strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
		}
	}

	t.Run("topics", func(t *testing.T) {
		// The producer writes, the init job creates and the processors read the same rides
		// topic; the zones loader and the reader use the processors' zones and results topics.
		value := func(s *service, flag string) string {
			if v, ok := s.setting(flag); ok {
				return v
			}
			c, _ := programs[s.program()].command(s.args())
			if f := c.flags[flag]; f != nil {
				return f.def
			}
			t.Errorf("service %s: %s has no --%s", s.name, s.program(), flag)
			return ""
		}
		processors := st.ours("taxi-stream")
		if len(processors) == 0 {
			t.Fatal("no processor")
		}
		want := map[string]string{}
		for _, f := range []string{"rides-topic", "zones-topic", "results-topic"} {
			want[f] = value(processors[0], f)
			for _, p := range processors[1:] {
				if v := value(p, f); v != want[f] {
					t.Errorf("service %s: --%s %s, but %s uses %s", p.name, f, v, processors[0].name, want[f])
				}
			}
		}
		for _, s := range st.ours("taxi-replay") {
			switch s.subcommand("zones", "cleanup", "replay") {
			case "zones":
				if v := value(s, "topic"); v != want["zones-topic"] {
					t.Errorf("service %s: loads zones into %s; the processors read %s", s.name, v, want["zones-topic"])
				}
			case "", "replay":
				if v := value(s, "topic"); v != want["rides-topic"] {
					t.Errorf("service %s: replays into %s; the processors read %s", s.name, v, want["rides-topic"])
				}
			}
		}
		for _, s := range st.ours("taxi-results") {
			if v := value(s, "topic"); v != want["results-topic"] {
				t.Errorf("service %s: reads %s; the processors write %s", s.name, v, want["results-topic"])
			}
		}
		created := st.topicCreators()
		if _, ok := created[want["rides-topic"]]; !ok {
			t.Errorf("no init job creates the rides topic %s (have %v)", want["rides-topic"], keys(created))
		}
	})
}

func TestParseHelp(t *testing.T) {
	c := parseHelp(nil, `Usage:
  x [flags]
  x [command]

Available Commands:
  help        Help about any command
  zones       Load zones

Flags:
      --brokers string   Kafka servers (default $KAFKA_BROKERS or localhost:9092) [$X_BROKERS] (default "localhost:9092")
      --from-now         start at the end [$X_FROM_NOW]
  -h, --help             help for x
      --window duration  window
                         over two lines [$X_WINDOW] (default 1h0m0s)
`)
	got := fmt.Sprintf("subs=%v flags=%v short=%v env=%v", c.subs, keys(c.flags), c.short, c.env)
	want := "subs=[help zones] flags=[brokers from-now help window] short=map[h:help] " +
		"env=map[KAFKA_BROKERS:brokers X_BROKERS:brokers X_FROM_NOW:from-now X_WINDOW:window]"
	if got != want {
		t.Errorf("parseHelp:\n got %s\nwant %s", got, want)
	}
	if f := c.flags["brokers"]; f.typ != "string" || f.def != "localhost:9092" {
		t.Errorf("brokers: type %q default %q", f.typ, f.def)
	}
	if f := c.flags["from-now"]; f.typ != "" {
		t.Errorf("from-now is a bool flag, parsed type %q", f.typ)
	}
	if f := c.flags["window"]; f.def != "1h0m0s" {
		t.Errorf("window default %q (usage %q)", f.def, f.usage)
	}
	if c.envPrefix() != "X" || !c.named["KAFKA_BROKERS"] {
		t.Errorf("envPrefix %q, named %v", c.envPrefix(), c.named)
	}
}
