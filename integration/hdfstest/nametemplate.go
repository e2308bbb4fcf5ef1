package hdfstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Formatting a NameNode costs a JVM start (1.3 s on an idle 2-core machine,
// 3 s on a busy one) and always yields the same kind of result: a name
// directory holding VERSION, an empty fsimage and seen_txid. The harness
// formats once per jar cache and copies that directory into each new cluster;
// the copy is exactly what `NameNode -format` would have written (the
// cluster and block pool IDs are the same across clusters, which nothing can
// observe since every cluster also gets a fresh, empty DataNode directory).
const (
	nameTemplateDir    = "name-template"
	nameTemplateMarker = "name-template.complete"
)

// nameTemplate returns the formatted name directory for jars, running
// `NameNode -format` into the jar cache the first time.
func (j jvm) nameTemplate(ctx context.Context, jars jarSet) (string, error) {
	dir := filepath.Join(jars.cacheDir, nameTemplateDir)
	marker := filepath.Join(jars.cacheDir, nameTemplateMarker)
	if cacheComplete(marker, jars.key) {
		return dir, nil
	}
	unlock, err := lockFile(filepath.Join(jars.cacheDir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("hdfstest: lock jar cache %s: %w", jars.cacheDir, err)
	}
	defer unlock()
	if cacheComplete(marker, jars.key) {
		return dir, nil
	}
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("hdfstest: %w", err)
	}
	partial := dir + ".partial"
	for _, d := range []string{partial, dir} {
		if err := os.RemoveAll(d); err != nil {
			return "", fmt.Errorf("hdfstest: %w", err)
		}
	}
	if err := j.run(ctx, "format.log", nameNodeClass,
		"-D", "dfs.namenode.name.dir="+fileURI(partial),
		"-format", "-force", "-nonInteractive"); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(partial, "current", "VERSION")); err != nil {
		return "", fmt.Errorf("hdfstest: NameNode -format wrote no VERSION into %s: %w", partial, err)
	}
	if err := os.Rename(partial, dir); err != nil {
		return "", fmt.Errorf("hdfstest: %w", err)
	}
	if err := os.WriteFile(marker, []byte(jars.key), 0o644); err != nil {
		return "", fmt.Errorf("hdfstest: write %s: %w", marker, err)
	}
	return dir, nil
}

// copyNameDir fills the cluster's (empty) name directory from the template.
func (l layout) copyNameDir(template string) error {
	if err := os.CopyFS(l.name, os.DirFS(template)); err != nil {
		return fmt.Errorf("hdfstest: copy formatted name dir %s to %s: %w", template, l.name, err)
	}
	return nil
}
