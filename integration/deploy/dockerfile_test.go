package deploy

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/mattn/go-shellwords"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// dockerfile is a parsed Dockerfile: its stages as BuildKit reads them.
type dockerfile struct {
	path     string
	stages   []instructions.Stage
	args     map[string]string // global ARG defaults (before the first FROM)
	warnings []string          // parser warnings and lint findings
}

// parseDockerfile reads the Dockerfile with BuildKit's parser (the one `docker build`
// uses) and its lint rules; a syntax error fails the test.
func parseDockerfile(t testing.TB, file string) *dockerfile {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	d := &dockerfile{path: file, args: map[string]string{}}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		d.warnings = append(d.warnings, fmt.Sprintf("line %d: %s", line, w.Short))
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, url, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		d.warnings = append(d.warnings, fmt.Sprintf("line %d: %s: %s (%s)", line, rule, msg, url))
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	d.stages = stages
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				d.args[kv.Key] = *kv.Value
			}
		}
	}
	return d
}

// stage returns the stage of that name (stage names are case-insensitive).
func (d *dockerfile) stage(name string) *instructions.Stage {
	for i := range d.stages {
		if d.stages[i].Name != "" && strings.EqualFold(d.stages[i].Name, name) {
			return &d.stages[i]
		}
	}
	return nil
}

// base returns the FROM of a stage with the global ARGs expanded.
func (d *dockerfile) base(s *instructions.Stage) string {
	lex := shell.NewLex('\\')
	env := make([]string, 0, len(d.args))
	for k, v := range d.args {
		env = append(env, k+"="+v)
	}
	out, _, err := lex.ProcessWord(s.BaseName, shell.EnvsFromSlice(env))
	if err != nil {
		return s.BaseName
	}
	return out
}

// chain returns a stage and the stages it is built on, the stage itself first.
func (d *dockerfile) chain(s *instructions.Stage) []*instructions.Stage {
	var out []*instructions.Stage
	for s != nil && len(out) <= len(d.stages) {
		out = append(out, s)
		s = d.stage(d.base(s))
	}
	return out
}

// image returns the external image a stage is ultimately built on.
func (d *dockerfile) image(s *instructions.Stage) string {
	c := d.chain(s)
	return d.base(c[len(c)-1])
}

// commands returns the commands of a stage and of the stages below it, oldest first.
func (d *dockerfile) commands(s *instructions.Stage) []instructions.Command {
	var out []instructions.Command
	c := d.chain(s)
	for i := len(c) - 1; i >= 0; i-- {
		out = append(out, c[i].Commands...)
	}
	return out
}

// process returns the ENTRYPOINT and CMD in force in a stage (an ENTRYPOINT resets the
// CMD inherited from below, as Docker does) and whether they are in exec form.
func (d *dockerfile) process(s *instructions.Stage) (entrypoint, cmd []string, exec bool) {
	exec = true
	form := func(c instructions.ShellDependantCmdLine) []string {
		if c.PrependShell {
			exec = false
			return []string{"/bin/sh", "-c", strings.Join(c.CmdLine, " ")}
		}
		return c.CmdLine
	}
	for _, c := range d.commands(s) {
		switch c := c.(type) {
		case *instructions.EntrypointCommand:
			entrypoint, cmd = form(c.ShellDependantCmdLine), nil
		case *instructions.CmdCommand:
			cmd = form(c.ShellDependantCmdLine)
		}
	}
	return entrypoint, cmd, exec
}

// env returns the ENV of a stage, inherited ones included.
func (d *dockerfile) env(s *instructions.Stage) map[string]string {
	out := map[string]string{}
	for _, c := range d.commands(s) {
		if e, ok := c.(*instructions.EnvCommand); ok {
			for _, kv := range e.Env {
				out[kv.Key] = kv.Value
			}
		}
	}
	return out
}

// user returns the USER in force in a stage ("" when the base image's).
func (d *dockerfile) user(s *instructions.Stage) string {
	u := ""
	for _, c := range d.commands(s) {
		if c, ok := c.(*instructions.UserCommand); ok {
			u = c.User
		}
	}
	return u
}

// workdir returns the WORKDIR in force in a stage.
func (d *dockerfile) workdir(s *instructions.Stage) string {
	w := "/"
	for _, c := range d.commands(s) {
		if c, ok := c.(*instructions.WorkdirCommand); ok {
			w = path.Join(w, c.Path)
		}
	}
	return w
}

// goBuild is a `go build` run by a RUN instruction.
type goBuild struct {
	stage *instructions.Stage
	env   map[string]string // inline assignments and the stage's ENV
	flags []string          // build flags other than -o
	out   string            // the -o argument
	pkgs  []string
}

// outputs maps each built file's path in the image to its package.
func (b goBuild) outputs() map[string]string {
	m := map[string]string{}
	for _, p := range b.pkgs {
		if strings.HasSuffix(b.out, "/") || len(b.pkgs) > 1 {
			m[path.Join(b.out, path.Base(p))] = p
		} else {
			m[b.out] = p
		}
	}
	return m
}

// goBuilds finds the `go build` commands of the Dockerfile.
func (d *dockerfile) goBuilds(t testing.TB) []goBuild {
	t.Helper()
	var out []goBuild
	for i := range d.stages {
		s := &d.stages[i]
		for _, c := range s.Commands {
			run, ok := c.(*instructions.RunCommand)
			if !ok {
				continue
			}
			for _, line := range run.CmdLine {
				for _, part := range strings.Split(line, "&&") {
					words, err := shellwords.Parse(part)
					if err != nil {
						t.Errorf("%s: RUN %q: %v", d.path, part, err)
						continue
					}
					env := d.env(s)
					for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
						k, v, _ := strings.Cut(words[0], "=")
						env[k], words = v, words[1:]
					}
					if len(words) < 2 || words[0] != "go" || words[1] != "build" {
						continue
					}
					b := goBuild{stage: s, env: env}
					for j := 2; j < len(words); j++ {
						w := words[j]
						switch {
						case w == "-o" && j+1 < len(words):
							b.out = words[j+1]
							j++
						case strings.HasPrefix(w, "-o="):
							b.out = strings.TrimPrefix(w, "-o=")
						case strings.HasPrefix(w, "-"):
							b.flags = append(b.flags, w)
						default:
							b.pkgs = append(b.pkgs, w)
						}
					}
					out = append(out, b)
				}
			}
		}
	}
	return out
}

// copied is a file a stage copies from another stage.
type copied struct {
	from, src, dst string
}

// copiesFrom lists the COPY --from of a stage and the stages below it.
func (d *dockerfile) copiesFrom(s *instructions.Stage) []copied {
	var out []copied
	for _, c := range d.commands(s) {
		cp, ok := c.(*instructions.CopyCommand)
		if !ok || cp.From == "" {
			continue
		}
		for _, src := range cp.SourcePaths {
			dst := cp.DestPath
			if strings.HasSuffix(dst, "/") {
				dst = path.Join(dst, path.Base(src))
			}
			out = append(out, copied{from: cp.From, src: src, dst: dst})
		}
	}
	return out
}

// binaries maps the programs a stage holds from `go build` outputs (by path in the image)
// to their packages.
func (d *dockerfile) binaries(s *instructions.Stage, builds []goBuild) map[string]string {
	out := map[string]string{}
	for _, b := range builds {
		if slices.Contains(d.chain(s), b.stage) {
			for file, pkg := range b.outputs() {
				out[file] = pkg // the build stage itself (integration stage holds /out)
			}
		}
	}
	for _, c := range d.copiesFrom(s) {
		from := d.stage(c.from)
		for _, b := range builds {
			if from == nil || !slices.Contains(d.chain(from), b.stage) {
				continue
			}
			for file, pkg := range b.outputs() {
				if path.Clean(c.src) == path.Clean(file) {
					out[c.dst] = pkg
				}
			}
		}
	}
	return out
}

// contextFile returns the file of the build context (a path relative to root) that a
// stage's COPY (not --from) puts at file in the image, or "" when none does: the scripts of
// tools/docker the Kafka and replay images run.
func (d *dockerfile) contextFile(root string, s *instructions.Stage, file string) string {
	found := ""
	for _, c := range d.commands(s) {
		cp, ok := c.(*instructions.CopyCommand)
		if !ok || cp.From != "" {
			continue
		}
		for _, src := range cp.SourcePaths {
			dst := cp.DestPath
			cand := ""
			switch {
			case strings.HasSuffix(src, "/"):
				if rest, ok := strings.CutPrefix(file, strings.TrimSuffix(dst, "/")+"/"); ok {
					cand = path.Join(src, rest)
				}
			case strings.HasSuffix(dst, "/") && path.Join(dst, path.Base(src)) == file, dst == file:
				cand = src
			}
			if cand == "" {
				continue
			}
			if st, err := os.Stat(filepath.Join(root, filepath.FromSlash(cand))); err == nil && !st.IsDir() {
				found = path.Clean(cand)
			}
		}
	}
	return found
}

// script returns the context file a stage runs as argv0 (a path, or a name in a bin
// directory), or "".
func (d *dockerfile) script(root string, s *instructions.Stage, argv0 string) string {
	if strings.Contains(argv0, "/") {
		return d.contextFile(root, s, argv0)
	}
	for _, dir := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		if f := d.contextFile(root, s, path.Join(dir, argv0)); f != "" {
			return f
		}
	}
	return ""
}

// hasGo reports whether a stage is built on the official Go image.
func (d *dockerfile) hasGo(s *instructions.Stage) bool {
	return imageName(d.image(s)) == "golang"
}

// imageName is an image reference without registry, library/ prefix and tag.
func imageName(ref string) string {
	if ref == "scratch" {
		return ref
	}
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarName(n)
}

// imageTag is the tag of an image reference ("" when it has none).
func imageTag(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	if t, ok := n.(reference.Tagged); ok {
		return t.Tag()
	}
	return ""
}

// smallRuntimes are the runtime bases accepted for the program images, and whether they
// have busybox (a shell and wget for healthchecks).
var smallRuntimes = map[string]bool{"alpine": true, "busybox": true, "scratch": false,
	"gcr.io/distroless/static": false, "gcr.io/distroless/static-debian12": false, "gcr.io/distroless/static-debian13": false}

// findProgram returns the path in the image of the program argv0 names, if the stage holds it.
func findProgram(bins map[string]string, argv0 string) (string, bool) {
	for file := range bins {
		if file == argv0 || (!strings.Contains(argv0, "/") && path.Base(file) == argv0 &&
			slices.Contains([]string{"/usr/local/bin", "/usr/bin", "/bin"}, path.Dir(file))) {
			return file, true
		}
	}
	return "", false
}

func TestDockerfile(t *testing.T) {
	root := moduleRoot(t)
	d := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	for _, w := range d.warnings {
		t.Errorf("Dockerfile %s", w)
	}
	builds := d.goBuilds(t)
	if len(builds) == 0 {
		t.Fatal("no RUN ... go build in the Dockerfile")
	}
	goVersion := goDirective(t, root)
	for _, s := range d.stages {
		ref := d.base(&s)
		if d.stage(ref) != nil {
			continue
		}
		if (ref != "scratch" && imageTag(ref) == "") || imageTag(ref) == "latest" {
			t.Errorf("stage %s: FROM %s: pin a tag", s.Name, ref)
		}
	}
	for _, b := range builds {
		name := b.stage.Name
		if !d.hasGo(b.stage) {
			t.Errorf("stage %s runs go build but is not built on golang (FROM %s)", name, d.image(b.stage))
		}
		// golang:1.26-bookworm builds a go.mod that says go 1.26.x.
		if tag := imageTag(d.image(b.stage)); !strings.HasPrefix(tag, goVersion) {
			t.Errorf("stage %s: FROM %s, but go.mod wants go %s", name, d.image(b.stage), goVersion)
		}
		if b.env["CGO_ENABLED"] != "0" {
			t.Errorf("stage %s: go build without CGO_ENABLED=0: the binaries would not be static", name)
		}
		if b.out == "" {
			t.Errorf("stage %s: go build without -o", name)
		}
		for _, p := range b.pkgs {
			if !strings.HasPrefix(p, "./cmd/") {
				t.Errorf("stage %s: go build %s: want the programs under ./cmd/", name, p)
			} else if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p), "main.go")); err != nil {
				t.Errorf("stage %s: go build %s: %v", name, p, err)
			}
		}
	}
	var programs []string
	for _, b := range builds {
		for _, pkg := range b.pkgs {
			programs = append(programs, path.Base(pkg))
		}
	}
	for i := range d.stages {
		s := &d.stages[i]
		for _, c := range d.copiesFrom(s) {
			from := d.stage(c.from)
			if from == nil {
				t.Errorf("stage %s: COPY --from=%s: no such stage", s.Name, c.from)
				continue
			}
			if _, ok := d.binaries(s, builds)[c.dst]; !ok && d.hasGo(from) {
				t.Errorf("stage %s: COPY --from=%s %s: not a file the go build of stage %s writes", s.Name, c.from, c.src, c.from)
			}
		}
		entrypoint, cmd, exec := d.process(s)
		argv := append(slices.Clone(entrypoint), cmd...)
		// A script of the build context (tools/docker): executable; a wrapper that runs
		// one of our programs (its next argument) is checked as that program's image.
		if len(argv) > 0 {
			if script := d.script(root, s, argv[0]); script != "" {
				if st, err := os.Stat(filepath.Join(root, script)); err != nil || st.Mode()&0o111 == 0 {
					t.Errorf("stage %s: runs %s, which is not an executable file", s.Name, script)
				}
				if len(argv) < 2 || !slices.Contains(programs, path.Base(argv[1])) {
					continue
				}
				argv = argv[1:]
			}
		}
		switch {
		case len(argv) == 0:
			continue
		case argv[0] == "go":
			if !d.hasGo(s) {
				t.Errorf("stage %s: runs go, but is not built on golang (FROM %s)", s.Name, d.image(s))
			}
			continue
		case !slices.Contains(programs, path.Base(argv[0])):
			t.Errorf("stage %s: runs %q, which is neither go nor a program the Dockerfile builds %v", s.Name, argv[0], programs)
			continue
		}
		// A program image: its binary, exec form (the program is PID 1 and gets SIGTERM),
		// a small base, not root.
		if _, ok := findProgram(d.binaries(s, builds), argv[0]); !ok {
			t.Errorf("stage %s: runs %q, which no COPY --from a go build stage puts there", s.Name, argv[0])
		}
		if !exec {
			t.Errorf("stage %s: ENTRYPOINT/CMD in shell form: the program would not be PID 1 and would miss SIGTERM", s.Name)
		}
		if _, ok := smallRuntimes[imageName(d.image(s))]; !ok {
			t.Errorf("stage %s: runs on %s; want a small runtime base (%v)", s.Name, d.image(s), keys(smallRuntimes))
		}
		if u := d.user(s); u == "" || u == "root" || u == "0" || strings.HasPrefix(u, "0:") {
			t.Errorf("stage %s: runs as root (USER %q)", s.Name, u)
		}
	}
}
