package hdfstest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"

	"github.com/taxi-stream/taxi-stream/integration/krb5test"
	"github.com/taxi-stream/taxi-stream/producer/replay/source"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

const testRealm = "HDFSTEST.LOCAL"

// TestKerberosHDFS starts a real MIT KDC and, for each data transfer
// protection level, a Kerberized HDFS (Kerberos RPC, block access tokens,
// SASL data transfer, HTTPS only). It writes a real Parquet file as the
// superuser and reads it back through producer/replay/source, the code path
// of taxi-replay, logged in as taxi@REALM with a keytab: the bytes and the
// trips must equal the local file's. It also checks that the DataNode really
// demands SASL, and what a client without Kerberos is told.
func TestKerberosHDFS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a KDC and two JVMs per protection level")
	}
	began := time.Now()
	kdc := krb5test.Start(t, testRealm) // skips when krb5-kdc is not installed
	local := tlctest.Path(t, "green_tripdata_2024-01.parquet")
	want, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	wantTrips := tlctest.ReadAll(t, tlctest.OpenParquet(t, "green_tripdata_2024-01.parquet"))

	kdc.AddService(t, "taxi") // a user principal with a random key, for a keytab
	user := source.Kerberos{Principal: "taxi@" + testRealm, Keytab: kdc.Keytab(t, "taxi"), Config: kdc.Config}
	services := KerberosFromKDC(t, kdc, "")

	for _, level := range []string{ProtectionAuthentication, ProtectionIntegrity, ProtectionPrivacy} {
		t.Run(level, func(t *testing.T) {
			levelBegan := time.Now()
			k := *services
			k.DataTransferProtection = level
			c := StartTest(t, Options{Kerberos: &k})
			t.Logf("Kerberized HDFS (%s) ready in %v", level, time.Since(levelBegan).Round(time.Millisecond))

			// Write as the superuser (nn), with 1 MiB blocks: the 1.3 MB file
			// spans two blocks, so the read crosses a DataNode connection.
			admin, err := c.Client()
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			const remote = "/taxi/green_tripdata_2024-01.parquet"
			writeFile(t, admin, remote, bytes.NewReader(want))

			cfg := source.HDFSConfig{ConfDir: c.ConfDir(), Kerberos: user}
			client, err := cfg.NewClient("")
			if err != nil {
				t.Fatalf("source client as %s: %v", user.Principal, err)
			}
			defer client.Close()
			if got := client.User(); got != "taxi" {
				t.Errorf("client user %q, want taxi", got)
			}
			got, err := client.ReadFile(remote)
			if err != nil {
				t.Fatalf("read %s with protection %s: %v", remote, level, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, differ from the %d of %s (first difference at %d)",
					len(got), len(want), local, firstDiff(got, want))
			}

			// The replay's own path: resolve the URL, open as Parquet (ReadAt).
			r := source.NewResolver(cfg)
			defer r.Close()
			ins, err := r.Resolve(t.Context(), []string{c.URL(remote)})
			if err != nil {
				t.Fatal(err)
			}
			src, err := ins[0].Open()
			if err != nil {
				t.Fatal(err)
			}
			trips := tlctest.ReadAll(t, src)
			src.Close()
			if len(trips) != len(wantTrips) || trips[0] != wantTrips[0] || trips[len(trips)-1] != wantTrips[len(wantTrips)-1] {
				t.Errorf("read %d trips through the resolver, want %d equal to the local file's", len(trips), len(wantTrips))
			}

			// The DataNode demands the SASL handshake: a client that skips it
			// (no DataTransferProtection, as with an hdfs-site.xml that lacks
			// dfs.data.transfer.protection) authenticates to the NameNode but
			// cannot read a block.
			noSASL := noSASLClient(t, c)
			_, err = readWithin(t, 30*time.Second, func() ([]byte, error) { return noSASL.ReadFile(remote) })
			if err == nil {
				t.Errorf("a client without SASL data transfer read %s from a DataNode with protection %s", remote, level)
			} else {
				t.Logf("without SASL data transfer: %v", err)
			}

			if level == ProtectionAuthentication {
				testUnauthenticated(t, c, kdc, remote)
			}
		})
	}
	t.Logf("KDC and %d Kerberized clusters: %v", 3, time.Since(began).Round(time.Millisecond))
}

// testUnauthenticated checks what a replay without Kerberos credentials is
// told, and that it is told promptly.
func testUnauthenticated(t *testing.T, c *Cluster, kdc *krb5test.KDC, remote string) {
	t.Setenv("HADOOP_CONF_DIR", "")
	t.Setenv("HADOOP_HOME", "")
	t.Setenv("KRB5_CONFIG", kdc.Config)
	t.Setenv("KRB5CCNAME", filepath.Join(t.TempDir(), "no-ccache"))

	// The cluster's configuration says kerberos, no keytab or ticket cache:
	// our code refuses before dialling, naming the flag.
	r := source.NewResolver(source.HDFSConfig{ConfDir: c.ConfDir()})
	_, err := readWithin(t, 30*time.Second, func() ([]byte, error) {
		_, err := r.Resolve(t.Context(), []string{c.URL(remote)})
		return nil, err
	})
	r.Close()
	if err == nil || !strings.Contains(err.Error(), "run kinit first") {
		t.Errorf("kerberized conf, no credentials: got %v, want the ticket cache error", err)
	}
	t.Logf("kerberized conf, no credentials: %v", err)

	// No configuration, simple authentication as "taxi": the NameNode
	// refuses and the error says how.
	r = source.NewResolver(source.HDFSConfig{User: "taxi"})
	_, err = readWithin(t, 30*time.Second, func() ([]byte, error) {
		_, err := r.Resolve(t.Context(), []string{c.URL(remote)})
		return nil, err
	})
	r.Close()
	if err == nil || !strings.Contains(err.Error(), "SIMPLE authentication is not enabled") {
		t.Errorf("simple authentication: got %v, want the NameNode's refusal", err)
	}
	t.Logf("simple authentication: %v", err)
}

// noSASLClient is a Kerberos client of c without data transfer protection.
func noSASLClient(t *testing.T, c *Cluster) *hdfs.Client {
	t.Helper()
	client, err := hdfs.NewClient(hdfs.ClientOptions{
		Addresses:                    []string{c.Addr()},
		KerberosClient:               c.krb,
		KerberosServicePrincipleName: "nn/" + Host,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// readWithin runs f, failing the test if it has not returned after d: a
// security mismatch must give an error, never a hang.
func readWithin(t *testing.T, d time.Duration, f func() ([]byte, error)) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := f()
		done <- result{b, err}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	select {
	case r := <-done:
		return r.b, r.err
	case <-ctx.Done():
		t.Fatalf("no answer after %v", d)
		return nil, errors.New("unreachable")
	}
}
