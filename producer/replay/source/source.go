// Package source turns the replay's input arguments (files, directories, globs and
// hdfs://namenode:port/path URLs, several at once) into a list of trip files, each opened
// as a tlc.Source on demand.
//
// Rules:
//   - a file is taken as it is; its name must end in .parquet, .csv or .csv.gz;
//   - a directory is walked recursively in lexical order and contributes every file with one of
//     those extensions; names starting with "." or "_" (Hadoop's _SUCCESS, hidden files) are
//     skipped, and a directory without any trip file is an error;
//   - a glob (*, ? or [ in the path) is expanded with path.Match rules, in lexical order; a
//     glob that matches nothing is an error, matched directories are walked, matched names
//     starting with "." or "_" and matched files without a trip file extension are skipped;
//   - hdfs://host:port/path reads through github.com/colinmarc/hdfs/v2 (globs and directories
//     too); hdfs:///path takes the NameNode from the Hadoop configuration ($HADOOP_CONF_DIR,
//     fs.defaultFS). See HDFSConfig for users and Kerberos.
//
// Two inputs with the same base name are an error: the base name is part of every message
// key (docs/design.md), which must identify a trip uniquely.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/colinmarc/hdfs/v2"

	"github.com/taxi-stream/taxi-stream/producer/order"
	"github.com/taxi-stream/taxi-stream/producer/tlc"
)

// Input is one trip file.
type Input struct {
	// Name is the file's base name, used in message keys and the ts-source header.
	Name string
	// Path is where the file is: a local path or an hdfs:// URL.
	Path string
	// Size is the file size in bytes.
	Size int64

	open func() (tlc.Source, error)
}

// Open opens the file as a tlc.Source (Parquet by footer and schema, CSV by header).
func (in Input) Open() (tlc.Source, error) { return in.open() }

// OrderInput returns the input for package order.
func (in Input) OrderInput() order.Input { return order.Input{Name: in.Path, Open: in.open} }

// IsTripFile reports whether a file name has a trip file extension (.parquet, .csv, .csv.gz).
func IsTripFile(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasSuffix(lower, ".parquet") || strings.HasSuffix(lower, ".csv") ||
		strings.HasSuffix(lower, ".csv.gz")
}

func isParquet(name string) bool { return strings.HasSuffix(strings.ToLower(name), ".parquet") }

func skipped(name string) bool { return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") }

func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }

// Resolver resolves input arguments. It keeps one HDFS client per NameNode address; Close
// closes them. It is not safe for concurrent use, but the Inputs it returns may be opened
// from any goroutine.
type Resolver struct {
	hdfsCfg HDFSConfig
	mu      sync.Mutex
	clients map[string]*hdfs.Client
}

// NewResolver returns a Resolver; HDFS clients are created only for hdfs:// inputs.
func NewResolver(cfg HDFSConfig) *Resolver {
	return &Resolver{hdfsCfg: cfg, clients: map[string]*hdfs.Client{}}
}

// Close closes the HDFS clients.
func (r *Resolver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for k, c := range r.clients {
		errs = append(errs, c.Close())
		delete(r.clients, k)
	}
	return errors.Join(errs...)
}

// Resolve expands args into trip files, in argument order (each directory and glob in lexical
// order). Errors name the argument.
func (r *Resolver) Resolve(ctx context.Context, args []string) ([]Input, error) {
	if len(args) == 0 {
		return nil, errors.New("no input files given")
	}
	var all []Input
	byName := map[string]string{}
	for _, arg := range args {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var (
			ins []Input
			err error
		)
		if strings.HasPrefix(strings.ToLower(arg), "hdfs://") {
			ins, err = r.resolveHDFS(arg)
		} else {
			ins, err = resolveLocal(arg)
		}
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			if prev, dup := byName[in.Name]; dup {
				if prev == in.Path {
					return nil, fmt.Errorf("input %s is given twice", in.Path)
				}
				return nil, fmt.Errorf("inputs %s and %s have the same base name %q: message keys would collide", prev, in.Path, in.Name)
			}
			byName[in.Name] = in.Path
		}
		all = append(all, ins...)
	}
	return all, nil
}

func resolveLocal(arg string) ([]Input, error) {
	var paths []string
	if hasMeta(arg) {
		matches, err := filepath.Glob(arg)
		if err != nil {
			return nil, fmt.Errorf("input %s: bad glob: %w", arg, err)
		}
		for _, m := range matches {
			if !skipped(filepath.Base(m)) {
				paths = append(paths, m)
			}
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("input %s: no file matches", arg)
		}
	} else {
		paths = []string{arg}
	}
	var out []Input
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", p, err)
		}
		if !st.IsDir() {
			if hasMeta(arg) && !IsTripFile(p) {
				continue // a glob like data/* skips non-trip files
			}
			in, err := localInput(p, st)
			if err != nil {
				return nil, err
			}
			out = append(out, in)
			continue
		}
		n := len(out)
		err = filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if fp != p && skipped(d.Name()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !IsTripFile(d.Name()) {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			in, err := localInput(fp, info)
			if err != nil {
				return err
			}
			out = append(out, in)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", p, err)
		}
		if len(out) == n {
			return nil, fmt.Errorf("input %s: directory holds no .parquet, .csv or .csv.gz file", p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("input %s: no .parquet, .csv or .csv.gz file matches", arg)
	}
	return out, nil
}

func localInput(p string, st fs.FileInfo) (Input, error) {
	if !IsTripFile(p) {
		return Input{}, fmt.Errorf("input %s: unknown file type, want .parquet, .csv or .csv.gz", p)
	}
	if !st.Mode().IsRegular() {
		return Input{}, fmt.Errorf("input %s: not a regular file", p)
	}
	return Input{
		Name: filepath.Base(p), Path: p, Size: st.Size(),
		open: func() (tlc.Source, error) { return tlc.OpenFile(p) },
	}, nil
}

// resolveHDFS expands an hdfs:// URL.
func (r *Resolver) resolveHDFS(arg string) ([]Input, error) {
	u, err := url.Parse(arg)
	if err != nil {
		return nil, fmt.Errorf("input %s: bad URL: %w", arg, err)
	}
	if u.Path == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("input %s: want hdfs://namenode:port/path", arg)
	}
	client, err := r.client(u.Host)
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", arg, err)
	}
	prefix := "hdfs://" + u.Host
	var paths []string
	if hasMeta(u.Path) {
		paths, err = globHDFS(client, u.Path)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", arg, err)
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("input %s: no file matches", arg)
		}
	} else {
		paths = []string{path.Clean(u.Path)}
	}
	var out []Input
	for _, p := range paths {
		st, err := client.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("input %s%s: %w", prefix, p, err)
		}
		if !st.IsDir() {
			if hasMeta(u.Path) && !IsTripFile(p) {
				continue
			}
			if !IsTripFile(p) {
				return nil, fmt.Errorf("input %s%s: unknown file type, want .parquet, .csv or .csv.gz", prefix, p)
			}
			out = append(out, hdfsInput(client, prefix, p, st.Size()))
			continue
		}
		n := len(out)
		err = client.Walk(p, func(fp string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if fp != p && skipped(path.Base(fp)) {
				if info.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if info.IsDir() || !IsTripFile(fp) {
				return nil
			}
			out = append(out, hdfsInput(client, prefix, fp, info.Size()))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("input %s%s: %w", prefix, p, err)
		}
		if len(out) == n {
			return nil, fmt.Errorf("input %s%s: directory holds no .parquet, .csv or .csv.gz file", prefix, p)
		}
		slices.SortFunc(out[n:], func(a, b Input) int { return strings.Compare(a.Path, b.Path) })
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("input %s: no .parquet, .csv or .csv.gz file matches", arg)
	}
	return out, nil
}

// globHDFS expands pattern (an absolute path) component by component with path.Match.
func globHDFS(client *hdfs.Client, pattern string) ([]string, error) {
	parts := strings.Split(strings.Trim(path.Clean(pattern), "/"), "/")
	cur := []string{"/"}
	for i, part := range parts {
		var next []string
		for _, dir := range cur {
			if !hasMeta(part) {
				p := path.Join(dir, part)
				if _, err := client.Stat(p); err == nil {
					next = append(next, p)
				} else if !errors.Is(err, os.ErrNotExist) {
					return nil, err
				}
				continue
			}
			if _, err := path.Match(part, ""); err != nil {
				return nil, fmt.Errorf("bad glob %q: %w", part, err)
			}
			entries, err := client.ReadDir(dir)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				return nil, err
			}
			for _, e := range entries {
				if i < len(parts)-1 && !e.IsDir() {
					continue
				}
				if ok, _ := path.Match(part, e.Name()); ok && !skipped(e.Name()) {
					next = append(next, path.Join(dir, e.Name()))
				}
			}
		}
		cur = next
	}
	slices.Sort(cur)
	return cur, nil
}

func hdfsInput(client *hdfs.Client, prefix, p string, size int64) Input {
	name := path.Base(p)
	return Input{
		Name: name, Path: prefix + p, Size: size,
		open: func() (tlc.Source, error) {
			f, err := client.Open(p)
			if err != nil {
				return nil, fmt.Errorf("tlc: %s%s: %w", prefix, p, err)
			}
			var src tlc.Source
			if isParquet(name) {
				src, err = tlc.OpenParquet(name, &lockedReaderAt{f: f}, f.Stat().Size())
			} else {
				src, err = tlc.OpenCSV(name, f)
			}
			if err != nil {
				f.Close()
				return nil, err
			}
			return &closingSource{Source: src, c: f}, nil
		},
	}
}

// lockedReaderAt serializes ReadAt: hdfs.FileReader implements it as Seek + Read.
type lockedReaderAt struct {
	mu sync.Mutex
	f  *hdfs.FileReader
}

func (l *lockedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.ReadAt(p, off)
}

type closingSource struct {
	tlc.Source
	c io.Closer
}

func (s *closingSource) Close() error { return errors.Join(s.Source.Close(), s.c.Close()) }
