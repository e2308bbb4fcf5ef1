package hdfstest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"

	"github.com/taxi-stream/taxi-stream/integration/krb5test"
)

// StartTest starts a cluster for t and stops it in t.Cleanup.
//
// It skips t under -short, and when java (or mvn, on a cold jar cache) is
// missing, unless the CI environment variable is set: on CI a missing tool
// fails the test, so the HDFS tests cannot silently stop running. Any other
// start failure fails t with the JVM log tail. Progress is logged through
// t.Log unless opts.Logger is set.
func StartTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("hdfstest: skipping real HDFS (two JVMs, ~10 s) in -short mode")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	c, err := Start(context.Background(), opts)
	if errors.Is(err, ErrMissingTool) && os.Getenv("CI") == "" {
		t.Skipf("%v (the test fails instead when CI is set)", err)
	}
	if err != nil {
		t.Fatalf("start HDFS: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop HDFS: %v", err)
		}
	})
	return c
}

// tWriter sends slog output to t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// ServiceHost is the host in the service principals of KerberosFromKDC, the
// address every listener is bound to. The principals name it literally (no
// _HOST), so no principal depends on what 127.0.0.1 resolves to.
const ServiceHost = "127.0.0.1"

// KerberosFromKDC adds the cluster's service principals to kdc
// (nn/127.0.0.1, dn/127.0.0.1 and HTTP/127.0.0.1, random keys), writes
// their keytabs and returns the Options.Kerberos of a secure cluster with
// the given data transfer protection ("" = ProtectionAuthentication). Client
// principals (e.g. a user for the replay) are the test's to add. Call it once
// per KDC; for several clusters, copy the result and change
// DataTransferProtection.
func KerberosFromKDC(t testing.TB, kdc *krb5test.KDC, protection string) *Kerberos {
	t.Helper()
	k := &Kerberos{Krb5Conf: kdc.Config, Realm: kdc.Realm, DataTransferProtection: protection}
	for _, s := range []struct {
		svc     *Service
		primary string
	}{{&k.NameNode, "nn"}, {&k.DataNode, "dn"}, {&k.HTTP, "HTTP"}} {
		name := s.primary + "/" + ServiceHost
		kdc.AddService(t, name)
		*s.svc = Service{Principal: name + "@" + kdc.Realm, Keytab: kdc.Keytab(t, name)}
	}
	return k
}
