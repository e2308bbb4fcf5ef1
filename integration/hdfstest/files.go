package hdfstest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/colinmarc/hdfs/v2"
)

// CloseWriter closes w, retrying while the NameNode answers "replication in
// progress" (hdfs.ErrReplicating): the DataNode has acknowledged every packet
// but its block report has not reached the NameNode yet. The Java client
// retries the same way; colinmarc/hdfs leaves it to the caller. It gives up
// when ctx ends.
func CloseWriter(ctx context.Context, w *hdfs.FileWriter) error {
	backoff := 50 * time.Millisecond
	for {
		err := w.Close()
		if !hdfs.IsErrReplicating(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (still replicating: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// CopyFromLocal copies the local file src to the absolute HDFS path dst,
// creating dst's parent directories, with the cluster's default block size.
func (c *Cluster) CopyFromLocal(ctx context.Context, src, dst string) error {
	client, err := c.Client()
	if err != nil {
		return err
	}
	defer client.Close()
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("hdfstest: %w", err)
	}
	defer in.Close()
	if err := client.MkdirAll(path.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("hdfstest: mkdir %s: %w", path.Dir(dst), err)
	}
	w, err := client.Create(dst)
	if err != nil {
		return fmt.Errorf("hdfstest: %w", err)
	}
	if _, err := io.Copy(w, in); err != nil {
		w.Close()
		return fmt.Errorf("hdfstest: copy %s to %s: %w", src, dst, err)
	}
	if err := CloseWriter(ctx, w); err != nil {
		return fmt.Errorf("hdfstest: close %s: %w", dst, err)
	}
	return nil
}
