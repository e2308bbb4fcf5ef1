package hdfstest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/colinmarc/hdfs/v2/hadoopconf"

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
	// Only the configuration each client is given counts.
	t.Setenv("HADOOP_CONF_DIR", "")
	t.Setenv("HADOOP_HOME", "")
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

			// The DataNode demands the SASL handshake: a Kerberos client whose
			// Hadoop configuration lacks dfs.data.transfer.protection (here:
			// none at all, the NameNode principal given instead) gets past the
			// NameNode but not the DataNode, and our error says why.
			bare := source.HDFSConfig{Kerberos: user}
			bare.Kerberos.ServicePrincipal = "nn/" + ServiceHost + "@" + testRealm
			_, err = within(t, 30*time.Second, func() ([]byte, error) { return readAll(bare, c.Addr(), remote) })
			if err == nil || !strings.Contains(err.Error(), "requires SASL data transfer protection") {
				t.Errorf("client without data transfer protection: got %v, want the DataNode reset explained", err)
			}
			t.Logf("client without data transfer protection: %v", err)

			cfg := source.HDFSConfig{ConfDir: c.ConfDir(), Kerberos: user}
			got, err := within(t, time.Minute, func() ([]byte, error) { return readAll(cfg, "", remote) })
			if err != nil && level == ProtectionIntegrity && knownIntegrityBug(err) {
				t.Skipf("colinmarc/hdfs v2.4.0 cannot read with dfs.data.transfer.protection=integrity: %v "+
					"(digestMD5IntegrityConn.Read returns only the bytes of the new SASL frame when a read spans two, "+
					"so the stream desynchronizes; writes work). See docs/security.md, Kerberized HDFS.", err)
			}
			if err != nil {
				t.Fatalf("read %s as %s with protection %s: %v", remote, user.Principal, level, err)
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
			if !slices.Equal(trips, wantTrips) {
				t.Errorf("read %d trips through the resolver, want the %d of the local file", len(trips), len(wantTrips))
			}

			if level == ProtectionAuthentication {
				testUnauthenticated(t, c, kdc, remote)
				testHTTPS(t, c)
			}
		})
	}
	t.Logf("KDC and three Kerberized clusters: %v", time.Since(began).Round(time.Millisecond))
}

// testUnauthenticated checks what a replay without Kerberos credentials is
// told, and that it is told promptly.
func testUnauthenticated(t *testing.T, c *Cluster, kdc *krb5test.KDC, remote string) {
	t.Setenv("KRB5_CONFIG", kdc.Config)
	t.Setenv("KRB5CCNAME", filepath.Join(t.TempDir(), "no-ccache"))

	// The cluster's configuration says kerberos, no keytab or ticket cache:
	// our code refuses before dialling, naming the flag.
	r := source.NewResolver(source.HDFSConfig{ConfDir: c.ConfDir()})
	_, err := within(t, 30*time.Second, func() ([]byte, error) {
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
	_, err = within(t, 30*time.Second, func() ([]byte, error) {
		_, err := r.Resolve(t.Context(), []string{c.URL(remote)})
		return nil, err
	})
	r.Close()
	if err == nil || !strings.Contains(err.Error(), "refused simple authentication") {
		t.Errorf("simple authentication: got %v, want the NameNode's refusal", err)
	}
	t.Logf("simple authentication: %v", err)
}

// readAll reads an HDFS file with the client producer/replay/source makes for
// cfg and the NameNode address host ("" = from the configuration), as the user
// of cfg.
func readAll(cfg source.HDFSConfig, host, name string) ([]byte, error) {
	client, err := cfg.NewClient(host)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	if want := strings.Split(cfg.Kerberos.Principal, "@")[0]; client.User() != want {
		return nil, fmt.Errorf("client user %q, want %q", client.User(), want)
	}
	return client.ReadFile(name)
}

// knownIntegrityBug reports whether err is what colinmarc/hdfs v2.4.0 fails
// with when it reads at the integrity level: its SASL integrity conn loses
// bytes at frame boundaries, so a protobuf message or a checksum is cut.
func knownIntegrityBug(err error) bool {
	for _, s := range []string{"cannot parse invalid wire-format data", "HMAC Integrity Check failed", "invalid checksum", "invalid response from datanode"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// within runs f, failing the test if it has not returned after d: a
// security mismatch must give an error, never a hang.
func within(t *testing.T, d time.Duration, f func() ([]byte, error)) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	began := time.Now()
	go func() {
		b, err := f()
		done <- result{b, err}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	select {
	case r := <-done:
		if r.err != nil {
			t.Logf("(error after %v)", time.Since(began).Round(time.Millisecond))
		}
		return r.b, r.err
	case <-ctx.Done():
		t.Fatalf("no answer after %v", d)
		return nil, errors.New("unreachable")
	}
}

// testHTTPS checks that the NameNode's web server speaks TLS with the
// harness's certificate for 127.0.0.1 and asks for SPNEGO.
func testHTTPS(t *testing.T, c *Cluster) {
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			// Self-signed (the keystore holds no CA): check the name below.
			InsecureSkipVerify: true,
		}},
	}
	resp, err := client.Get("https://" + c.HTTPAddr() + "/jmx")
	if err != nil {
		t.Fatalf("HTTPS to the NameNode: %v", err)
	}
	resp.Body.Close()
	if certs := resp.TLS.PeerCertificates; len(certs) == 0 || len(certs[0].IPAddresses) == 0 || !certs[0].IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("NameNode certificate does not name 127.0.0.1: %+v", resp.TLS.PeerCertificates)
	}
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
		t.Errorf("GET /jmx without a ticket: %s, WWW-Authenticate %q; want 401 Negotiate (SPNEGO)", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestKerberosConfiguration checks the files of a secure cluster, without
// starting it, through the parser the Go client uses.
func TestKerberosConfiguration(t *testing.T) {
	l := newLayout(t.TempDir())
	l.rpcAddr, l.webAddr = "127.0.0.1:41000", "127.0.0.1:41001"
	svc := func(primary string) Service {
		return Service{Principal: primary + "/127.0.0.1@R.TEST", Keytab: "/k/" + primary + ".keytab"}
	}
	l.krb = (&Kerberos{Krb5Conf: "/k/krb5.conf", Realm: "R.TEST",
		NameNode: svc("nn"), DataNode: svc("dn"), HTTP: svc("HTTP"),
		DataTransferProtection: ProtectionPrivacy}).withDefaults()
	if err := l.krb.validate(); err != nil {
		t.Fatal(err)
	}
	l.keystore, l.storePass, l.httpSecret = "/k/keystore.p12", "secret", filepath.Join(l.root, "http-secret")
	if err := l.write(); err != nil {
		t.Fatal(err)
	}
	if err := l.writeKerberos(); err != nil {
		t.Fatal(err)
	}
	conf, err := hadoopconf.Load(l.conf)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"hadoop.security.authentication":          "kerberos",
		"hadoop.security.authorization":           "true",
		"dfs.block.access.token.enable":           "true",
		"dfs.http.policy":                         "HTTPS_ONLY",
		"dfs.data.transfer.protection":            "privacy",
		"dfs.encrypt.data.transfer.cipher.suites": "AES/CTR/NoPadding",
		"dfs.namenode.kerberos.principal":         "nn/127.0.0.1@R.TEST",
		"dfs.datanode.kerberos.principal":         "dn/127.0.0.1@R.TEST",
		"dfs.namenode.https-address":              l.webAddr,
		"dfs.datanode.hostname":                   "127.0.0.1",
		"dfs.replication":                         "1", // the plain settings stay
	} {
		if got := conf[key]; got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	for key, value := range conf {
		if strings.Contains(value, "_HOST") {
			t.Errorf("%s = %q: _HOST would become the reverse-DNS name of 127.0.0.1", key, value)
		}
		if strings.HasSuffix(key, "address") {
			if host, _, err := net.SplitHostPort(value); err != nil || host != "127.0.0.1" {
				t.Errorf("%s = %q, want a 127.0.0.1 address", key, value)
			}
		}
	}
	opts := hdfs.ClientOptionsFromConf(conf)
	if opts.DataTransferProtection != ProtectionPrivacy || opts.KerberosServicePrincipleName != "nn/127.0.0.1" || opts.KerberosClient == nil {
		t.Errorf("client options from the configuration: protection %q, SPN %q, kerberos %v",
			opts.DataTransferProtection, opts.KerberosServicePrincipleName, opts.KerberosClient != nil)
	}
	ssl, err := os.ReadFile(filepath.Join(l.conf, "ssl-server.xml"))
	if err != nil || !strings.Contains(string(ssl), "<value>/k/keystore.p12</value>") {
		t.Errorf("ssl-server.xml: %v\n%s", err, ssl)
	}

	bad := *l.krb
	bad.HTTP.Principal = "HTTP/_HOST@R.TEST"
	if err := bad.validate(); err == nil || !strings.Contains(err.Error(), "not _HOST") {
		t.Errorf("_HOST principal: got %v", err)
	}
	bad = *l.krb
	bad.DataTransferProtection = "secret"
	if err := bad.validate(); err == nil || !strings.Contains(err.Error(), "DataTransferProtection") {
		t.Errorf("bad protection: got %v", err)
	}
}

// TestKerberosClientOnASimpleCluster: the reverse mistake, Kerberos credentials given
// for a NameNode that does not use Kerberos: an error naming the cause within seconds,
// never a hang.
func TestKerberosClientOnASimpleCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a KDC and two JVMs")
	}
	t.Setenv("HADOOP_CONF_DIR", "")
	t.Setenv("HADOOP_HOME", "")
	kdc := krb5test.Start(t, testRealm) // skips when krb5-kdc is not installed
	kdc.AddService(t, "taxi")
	c := StartTest(t, Options{})
	const remote = "/taxi/simple.parquet"
	if err := c.CopyFromLocal(t.Context(), tlctest.Path(t, "green_tripdata_2024-01.parquet"), remote); err != nil {
		t.Fatal(err)
	}
	r := source.NewResolver(source.HDFSConfig{ConfDir: c.ConfDir(),
		Kerberos: source.Kerberos{Principal: "taxi@" + testRealm, Keytab: kdc.Keytab(t, "taxi"), Config: kdc.Config}})
	defer r.Close()
	began := time.Now()
	_, err := within(t, 30*time.Second, func() ([]byte, error) {
		_, err := r.Resolve(t.Context(), []string{c.URL(remote)})
		return nil, err
	})
	t.Logf("Kerberos credentials on a simple-auth NameNode, after %s: %v", time.Since(began).Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "says hadoop.security.authentication=simple") {
		t.Errorf("Kerberos credentials on a cluster without Kerberos: got %v, want the mismatch named", err)
	}
}
