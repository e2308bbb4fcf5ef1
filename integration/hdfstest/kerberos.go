package hdfstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// Data transfer protection levels (dfs.data.transfer.protection): what the
// SASL handshake between a client and the DataNode negotiates.
const (
	// ProtectionAuthentication authenticates the client with its block access
	// token (DIGEST-MD5); the data travels in the clear.
	ProtectionAuthentication = "authentication"
	// ProtectionIntegrity adds a MAC to every SASL-wrapped packet.
	ProtectionIntegrity = "integrity"
	// ProtectionPrivacy encrypts the data. The harness also sets
	// dfs.encrypt.data.transfer.cipher.suites=AES/CTR/NoPadding, so after the
	// DIGEST-MD5 handshake the stream is AES-CTR (what production clusters
	// use), not DIGEST-MD5's own RC4 wrapping.
	ProtectionPrivacy = "privacy"
)

// Kerberos makes Start run a secure cluster: Kerberos authentication and
// service-level authorization on the NameNode RPC, block access tokens, SASL
// on the DataNode's data transfer port and HTTPS-only web servers. Hadoop
// allows a secure DataNode on unprivileged ports only with SASL data transfer
// protection plus dfs.http.policy=HTTPS_ONLY, so the harness writes
// ssl-server.xml and ssl-client.xml and makes a PKCS#12 keystore (keytool,
// shipped with every JDK) for 127.0.0.1.
//
// Principals must name the host 127.0.0.1 literally (nn/127.0.0.1@REALM), not
// _HOST: Hadoop would substitute _HOST with the reverse-DNS name of the bound
// address ("localhost"), which is not what the keytab holds. The KDC's
// krb5.conf must not canonicalize host names (krb5test's does not).
//
// KerberosFromKDC fills it from a krb5test.KDC.
type Kerberos struct {
	// Krb5Conf is the krb5.conf naming the KDC: java.security.krb5.conf of
	// both JVMs, and the configuration of Cluster.Client's Kerberos login.
	Krb5Conf string
	// Realm is the default realm of Krb5Conf (the realm of the principals).
	Realm string
	// NameNode logs in the NameNode (dfs.namenode.kerberos.principal). Its
	// short name (auth_to_local: the first component) is the HDFS superuser,
	// and Cluster.Client logs in with it.
	NameNode Service
	// DataNode logs in the DataNode (dfs.datanode.kerberos.principal).
	DataNode Service
	// HTTP is the SPNEGO principal of both web servers
	// (dfs.web.authentication.kerberos.principal); its primary must be HTTP.
	HTTP Service
	// DataTransferProtection is dfs.data.transfer.protection:
	// ProtectionAuthentication (default), ProtectionIntegrity or
	// ProtectionPrivacy.
	DataTransferProtection string
}

// Service is a service principal and the keytab holding its key.
type Service struct {
	Principal string // primary/127.0.0.1@REALM
	Keytab    string
}

func (k *Kerberos) withDefaults() *Kerberos {
	c := *k
	if c.DataTransferProtection == "" {
		c.DataTransferProtection = ProtectionAuthentication
	}
	return &c
}

func (k *Kerberos) validate() error {
	switch k.DataTransferProtection {
	case ProtectionAuthentication, ProtectionIntegrity, ProtectionPrivacy:
	default:
		return fmt.Errorf("hdfstest: Kerberos.DataTransferProtection %q: want %s, %s or %s",
			k.DataTransferProtection, ProtectionAuthentication, ProtectionIntegrity, ProtectionPrivacy)
	}
	if k.Krb5Conf == "" || k.Realm == "" {
		return errors.New("hdfstest: Kerberos needs Krb5Conf and Realm")
	}
	for _, s := range []struct {
		role string
		svc  Service
	}{{"NameNode", k.NameNode}, {"DataNode", k.DataNode}, {"HTTP", k.HTTP}} {
		if s.svc.Principal == "" || s.svc.Keytab == "" {
			return fmt.Errorf("hdfstest: Kerberos.%s needs Principal and Keytab", s.role)
		}
		if strings.Contains(s.svc.Principal, "_HOST") {
			return fmt.Errorf("hdfstest: Kerberos.%s principal %q: name the host (127.0.0.1), not _HOST", s.role, s.svc.Principal)
		}
		if !strings.HasSuffix(s.svc.Principal, "@"+k.Realm) {
			return fmt.Errorf("hdfstest: Kerberos.%s principal %q is not in realm %s", s.role, s.svc.Principal, k.Realm)
		}
	}
	if !strings.HasPrefix(k.HTTP.Principal, "HTTP/") {
		return fmt.Errorf("hdfstest: Kerberos.HTTP principal %q: SPNEGO needs HTTP/host@REALM", k.HTTP.Principal)
	}
	return nil
}

// shortName is what Hadoop's DEFAULT auth_to_local rule makes of a principal
// of the default realm: its first component.
func shortName(principal string) string {
	name, _, _ := strings.Cut(principal, "@")
	name, _, _ = strings.Cut(name, "/")
	return name
}

// krbSite returns the core-site.xml and hdfs-site.xml properties of a secure
// cluster. They are added to (or replace) the plain ones.
func (l layout) krbSite() (core, hdfsProps []property) {
	k := l.krb
	core = []property{
		{"hadoop.security.authentication", "kerberos"},
		// Service-level authorization: the NameNode checks that the peer of
		// the DataNode protocol is dfs.datanode.kerberos.principal. No
		// hadoop-policy.xml: every other ACL defaults to "*".
		{"hadoop.security.authorization", "true"},
		// RPC stays at "authentication" (the default); the data transfer
		// protection is the setting under test.
		{"hadoop.rpc.protection", "authentication"},
		// The web servers' own authentication filter: SPNEGO with the HTTP
		// principal (the default, HTTP/_HOST@LOCALHOST, names neither the
		// realm nor a host the keytab holds).
		{"hadoop.http.authentication.type", "kerberos"},
		{"hadoop.http.authentication.simple.anonymous.allowed", "false"},
		{"hadoop.http.authentication.kerberos.principal", k.HTTP.Principal},
		{"hadoop.http.authentication.kerberos.keytab", k.HTTP.Keytab},
		{"hadoop.http.authentication.signature.secret.file", l.httpSecret},
	}
	hdfsProps = []property{
		// A secure NameNode refuses to start without block access tokens
		// ("Security is enabled but block access tokens ... aren't enabled"):
		// they are what a client presents to the DataNode, which never sees
		// the client's Kerberos ticket.
		{"dfs.block.access.token.enable", "true"},
		{"dfs.namenode.kerberos.principal", k.NameNode.Principal},
		{"dfs.namenode.keytab.file", k.NameNode.Keytab},
		{"dfs.datanode.kerberos.principal", k.DataNode.Principal},
		{"dfs.datanode.keytab.file", k.DataNode.Keytab},
		{"dfs.web.authentication.kerberos.principal", k.HTTP.Principal},
		{"dfs.web.authentication.kerberos.keytab", k.HTTP.Keytab},
		{"dfs.namenode.kerberos.internal.spnego.principal", k.HTTP.Principal},
		{"dfs.datanode.kerberos.internal.spnego.principal", k.HTTP.Principal},
		// Without privileged ports (and root with jsvc), a secure DataNode
		// starts only with SASL data transfer protection and HTTPS_ONLY
		// (DataNode.checkSecureConfig).
		{"dfs.data.transfer.protection", k.DataTransferProtection},
		{"dfs.http.policy", "HTTPS_ONLY"},
		{"dfs.namenode.https-address", l.webAddr},
		{"dfs.namenode.http-address", "127.0.0.1:0"},
		{"dfs.client.https.need-auth", "false"},
		// The DataNode's host name would otherwise come from a reverse lookup
		// of the first interface; keep every name 127.0.0.1.
		{"dfs.datanode.hostname", "127.0.0.1"},
	}
	if k.DataTransferProtection == ProtectionPrivacy {
		// Negotiate AES-CTR after the SASL handshake, as production clusters
		// do. Without it DIGEST-MD5 itself wraps every packet (RC4 with the
		// Go client), which colinmarc/hdfs v2.4.0 cannot read: the same
		// frame-boundary bug as at the integrity level (docs/security.md).
		hdfsProps = append(hdfsProps,
			property{"dfs.encrypt.data.transfer.cipher.suites", "AES/CTR/NoPadding"})
	}
	return core, hdfsProps
}

// sslServerSite is ssl-server.xml (dfs.https.server.keystore.resource): the
// keystore of both HTTPS servers. No trust store: the servers do not ask for
// client certificates (dfs.client.https.need-auth=false).
func (l layout) sslServerSite() []property {
	return []property{
		{"ssl.server.keystore.location", l.keystore},
		{"ssl.server.keystore.type", "pkcs12"},
		{"ssl.server.keystore.password", l.storePass},
		{"ssl.server.keystore.keypassword", l.storePass},
	}
}

// sslClientSite is ssl-client.xml (dfs.client.https.keystore.resource), read
// by the JVMs when they connect to an HTTPS peer. The keystore serves as the
// trust store: the JDK trusts the certificate of a key entry, and the
// self-signed certificate is the only one to trust.
func (l layout) sslClientSite() []property {
	return []property{
		{"ssl.client.truststore.location", l.keystore},
		{"ssl.client.truststore.type", "pkcs12"},
		{"ssl.client.truststore.password", l.storePass},
	}
}

// writeKerberos writes the files only a secure cluster has: ssl-server.xml,
// ssl-client.xml and the HTTP signature secret. The keystore is shared (see
// cachedKeystore).
func (l layout) writeKerberos() error {
	if err := writeSite(filepath.Join(l.conf, "ssl-server.xml"), l.sslServerSite()); err != nil {
		return err
	}
	if err := writeSite(filepath.Join(l.conf, "ssl-client.xml"), l.sslClientSite()); err != nil {
		return err
	}
	if err := os.WriteFile(l.httpSecret, []byte(randomHex(16)), 0o600); err != nil {
		return fmt.Errorf("hdfstest: %w", err)
	}
	return nil
}

// Files of the keystore in the jar cache.
const (
	keystoreFile   = "keystore.p12"
	keystorePass   = "keystore.pass"
	keystoreMarker = "keystore.complete"
)

// cachedKeystore returns the PKCS#12 keystore of the HTTPS servers and its
// password, making it with keytool the first time. keytool is a JVM start
// (1 s idle, 3-4 s on a loaded 2-core machine), and the key and its
// self-signed certificate for 127.0.0.1 can serve every cluster: like the
// formatted name directory, it is made once per jar cache.
func cachedKeystore(ctx context.Context, java string, jars jarSet) (path, pass string, err error) {
	path = filepath.Join(jars.cacheDir, keystoreFile)
	passPath := filepath.Join(jars.cacheDir, keystorePass)
	marker := filepath.Join(jars.cacheDir, keystoreMarker)
	read := func() (string, bool) {
		b, err := os.ReadFile(passPath)
		return string(b), err == nil && len(b) > 0 && cacheComplete(marker, keystoreKey)
	}
	if pass, ok := read(); ok {
		return path, pass, nil
	}
	unlock, err := lockFile(filepath.Join(jars.cacheDir, ".lock"))
	if err != nil {
		return "", "", fmt.Errorf("hdfstest: lock jar cache %s: %w", jars.cacheDir, err)
	}
	defer unlock()
	if pass, ok := read(); ok {
		return path, pass, nil
	}
	keytool, err := keytoolBinary(java)
	if err != nil {
		return "", "", err
	}
	for _, f := range []string{marker, path, passPath} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", "", fmt.Errorf("hdfstest: %w", err)
		}
	}
	pass = randomHex(12)
	if err := makeKeystore(ctx, keytool, path, pass); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(passPath, []byte(pass), 0o600); err != nil {
		return "", "", fmt.Errorf("hdfstest: %w", err)
	}
	if err := os.WriteFile(marker, []byte(keystoreKey), 0o644); err != nil {
		return "", "", fmt.Errorf("hdfstest: %w", err)
	}
	return path, pass, nil
}

// keystoreKey is the marker content; change it when makeKeystore changes.
const keystoreKey = "keytool EC secp256r1 CN=127.0.0.1 SAN=ip:127.0.0.1,dns:localhost validity=3650\n"

// makeKeystore creates a PKCS#12 keystore holding a self-signed EC key and
// certificate for 127.0.0.1 (and localhost), valid for ten years (it is
// cached; nothing but the test JVMs trusts it).
func makeKeystore(ctx context.Context, keytool, path, pass string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, keytool,
		// The same start-up flags as the Hadoop JVMs: C1 only, serial GC.
		"-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-J-Xshare:auto",
		"-genkeypair", "-noprompt",
		"-alias", "hdfstest",
		"-keyalg", "EC", "-groupname", "secp256r1",
		"-dname", "CN=127.0.0.1",
		"-ext", "SAN=ip:127.0.0.1,dns:localhost",
		"-validity", "3650",
		"-storetype", "PKCS12",
		"-keystore", path,
		"-storepass", pass, "-keypass", pass)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hdfstest: keytool -genkeypair %s: %w\n%s", path, err, out)
	}
	return nil
}

// keytoolBinary returns the keytool of the JDK that runs java, else keytool
// from PATH.
func keytoolBinary(java string) (string, error) {
	if real, err := filepath.EvalSymlinks(java); err == nil {
		kt := filepath.Join(filepath.Dir(real), "keytool")
		if _, err := os.Stat(kt); err == nil {
			return kt, nil
		}
	}
	kt, err := exec.LookPath("keytool")
	if err != nil {
		return "", fmt.Errorf("%w: keytool (JDK 17) is needed for the HTTPS keystore of a Kerberized HDFS: %v", ErrMissingTool, err)
	}
	return kt, nil
}

// krbJVMArgs are the extra JVM flags of a secure cluster: the KDC's
// krb5.conf for the keytab logins (and its default realm for auth_to_local).
func krbJVMArgs(k *Kerberos) []string {
	return []string{"-Djava.security.krb5.conf=" + k.Krb5Conf}
}

// kerberosLogin logs in as the NameNode principal with its keytab: the HDFS
// superuser, whom Cluster.Client connects as.
func kerberosLogin(k *Kerberos) (*krbclient.Client, error) {
	cfg, err := krbconfig.Load(k.Krb5Conf)
	if err != nil {
		return nil, fmt.Errorf("hdfstest: krb5.conf %s: %w", k.Krb5Conf, err)
	}
	kt, err := keytab.Load(k.NameNode.Keytab)
	if err != nil {
		return nil, fmt.Errorf("hdfstest: keytab %s: %w", k.NameNode.Keytab, err)
	}
	name, realm, _ := strings.Cut(k.NameNode.Principal, "@")
	cl := krbclient.NewWithKeytab(name, realm, kt, cfg, krbclient.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		return nil, fmt.Errorf("hdfstest: kerberos login as %s: %w", k.NameNode.Principal, err)
	}
	return cl, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}
