package kafkalocal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

func TestSecureListenerConfigIsChecked(t *testing.T) {
	for _, tc := range []struct {
		sec  SecureListener
		want string
	}{
		{SecureListener{}, "needs SecureListener.Keystore"},
		{SecureListener{Protocol: "SASL_PLAINTEXT", Mechanisms: []string{"OAUTHBEARER"}}, `mechanism "OAUTHBEARER"`},
		{SecureListener{Protocol: "SASL_PLAINTEXT", Mechanisms: []string{"GSSAPI"}}, "GSSAPI needs SecureListener.Kerberos"},
		{SecureListener{Protocol: "TLS"}, `Protocol "TLS"`},
		{SecureListener{Protocol: "SASL_PLAINTEXT", Users: map[string]string{"alice": "a,b"}}, `SASL user "alice"`},
		{SecureListener{Protocol: "SASL_PLAINTEXT", ClientCAFile: "ca.pem"}, "needs an SSL protocol"},
	} {
		cfg := Config{Dir: t.TempDir(), Secure: &tc.sec}
		if err := cfg.applyDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.sec, err, tc.want)
		}
	}
}

// TestSecureListenerSASLSSLWithClientCertificates starts a node whose secure listener
// wants SASL over TLS and a client certificate, and checks each mechanism, a wrong
// password, a missing client certificate and an untrusted broker certificate.
func TestSecureListenerSASLSSLWithClientCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	dir := t.TempDir()
	pki, err := NewPKI(dir + "/pki")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := Start(ctx, Config{Dir: dir + "/kafka", HeapMB: 384, Secure: &SecureListener{
		Keystore: pki.BrokerKeystore, ClientCAFile: pki.CAFile,
		Users: map[string]string{"alice": "alice-pw-1", "bob": "bob-pw-2"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	secure := c.SecureBrokers()
	if len(secure) != 1 || secure[0] == c.Brokers()[0] {
		t.Fatalf("secure brokers %v, plaintext %v", secure, c.Brokers())
	}
	props, err := os.ReadFile(c.state.Nodes[0].propsFile())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(props), "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SECURE:SASL_SSL") {
		t.Errorf("server.properties:\n%s", props)
	}

	clientTLS := func(ca string, withCert bool) *tls.Config {
		pem, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if withCert {
			pair, err := tls.LoadX509KeyPair(pki.ClientCertFile, pki.ClientKeyFile)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return cfg
	}
	scramMech := func(algo scram.Algorithm, user, pw string) sasl.Mechanism {
		m, err := scram.Mechanism(algo, user, pw)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// metadata asks addr for the cluster metadata, which must advertise the listener asked.
	metadata := func(addr []string, tlsCfg *tls.Config, mech sasl.Mechanism) error {
		tr := &kafka.Transport{TLS: tlsCfg, SASL: mech, DialTimeout: 5 * time.Second}
		defer tr.CloseIdleConnections()
		cl := &kafka.Client{Addr: kafka.TCP(addr...), Transport: tr, Timeout: 10 * time.Second}
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{})
		if err == nil && (len(md.Brokers) != 1 || fmt.Sprintf("%s:%d", md.Brokers[0].Host, md.Brokers[0].Port) != addr[0]) {
			t.Errorf("metadata from %s advertises %+v", addr[0], md.Brokers)
		}
		return err
	}

	for name, mech := range map[string]sasl.Mechanism{
		"SCRAM-SHA-512": scramMech(scram.SHA512, "alice", "alice-pw-1"),
		"SCRAM-SHA-256": scramMech(scram.SHA256, "bob", "bob-pw-2"),
		"PLAIN":         plain.Mechanism{Username: "alice", Password: "alice-pw-1"},
	} {
		if err := metadata(secure, clientTLS(pki.CAFile, true), mech); err != nil {
			t.Errorf("%s with a client certificate: %v", name, err)
		}
	}
	start := time.Now()
	err = metadata(secure, clientTLS(pki.CAFile, true), scramMech(scram.SHA512, "alice", "wrong"))
	if !errors.Is(err, kafka.SASLAuthenticationFailed) {
		t.Errorf("wrong password: err = %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("wrong password took %s to fail", d)
	}
	if err := metadata(secure, clientTLS(pki.CAFile, true), plain.Mechanism{Username: "carol", Password: "x"}); !errors.Is(err, kafka.SASLAuthenticationFailed) {
		t.Errorf("unknown PLAIN user: err = %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if err := metadata(secure, clientTLS(pki.CAFile, false), scramMech(scram.SHA512, "alice", "alice-pw-1")); err == nil {
		t.Error("connected without the client certificate the listener requires")
	}
	var unknownCA x509.UnknownAuthorityError
	if err := metadata(secure, clientTLS(pki.OtherCAFile, true), scramMech(scram.SHA512, "alice", "alice-pw-1")); !errors.As(err, &unknownCA) {
		t.Errorf("broker certificate checked against an unrelated CA: err = %v, want x509.UnknownAuthorityError", err)
	}
	if err := metadata(c.Brokers(), nil, nil); err != nil {
		t.Errorf("the PLAINTEXT listener stopped working: %v", err)
	}
}
