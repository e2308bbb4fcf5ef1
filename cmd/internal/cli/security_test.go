package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"
	kafka "github.com/segmentio/kafka-go"
	"github.com/spf13/pflag"
	"github.com/xdg-go/scram"

	"github.com/taxi-stream/taxi-stream/integration/kafkalocal"
)

const secret = "s3cr3t-Passw0rd"

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// parse registers the security flags, parses args and validates.
func parse(t *testing.T, args ...string) (*Security, error) {
	t.Helper()
	var s Security
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	s.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &s, s.Validate()
}

func TestSecurityDefaultsToPlaintext(t *testing.T) {
	s, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sarama.NewConfig()
	s.ApplySarama(cfg)
	if cfg.Net.TLS.Enable || cfg.Net.SASL.Enable {
		t.Errorf("PLAINTEXT enabled TLS %v / SASL %v", cfg.Net.TLS.Enable, cfg.Net.SASL.Enable)
	}
	tlsCfg, mech, err := s.KafkaGo()
	if tlsCfg != nil || mech != nil || err != nil {
		t.Errorf("KafkaGo() = %v, %v, %v", tlsCfg, mech, err)
	}
}

func TestSecurityValidationNamesTheBadSetting(t *testing.T) {
	dir := t.TempDir()
	pki, err := kafkalocal.NewPKI(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	empty := writeFile(t, dir, "empty", "\n")
	notPEM := writeFile(t, dir, "not.pem", "hello")
	krb5 := writeFile(t, dir, "krb5.conf", "[libdefaults]\n  default_realm = EXAMPLE.COM\n[realms]\n  EXAMPLE.COM = {\n    kdc = 127.0.0.1:88\n  }\n")
	kt := keytab.New()
	if err := kt.AddEntry("etl", "EXAMPLE.COM", "pw", time.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		t.Fatal(err)
	}
	ktData, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ktFile := writeFile(t, dir, "etl.keytab", string(ktData))
	missing := filepath.Join(dir, "missing")
	scram512 := []string{"--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-512"}
	gss := []string{"--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "GSSAPI", "--kerberos-config", krb5}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--security-protocol", "TLS"}, `--security-protocol "TLS": want PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL`},
		{[]string{"--security-protocol", "SASL_SSL", "--sasl-mechanism", "OAUTHBEARER"}, `--sasl-mechanism "OAUTHBEARER"`},
		{[]string{"--security-protocol", "SASL_SSL"}, "--sasl-mechanism is required with --security-protocol SASL_SSL"},
		{[]string{"--sasl-mechanism", "PLAIN"}, "--sasl-mechanism is set but --security-protocol is PLAINTEXT"},
		{[]string{"--sasl-username", "alice"}, "--sasl-username is set but --security-protocol is PLAINTEXT"},
		{[]string{"--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN", "--sasl-username", "a", "--sasl-password", "p", "--tls-ca-file", pki.CAFile}, "--tls-ca-file is set but --security-protocol is SASL_PLAINTEXT"},
		{append(scram512, "--sasl-password", "x"), "--sasl-username is required with --sasl-mechanism SCRAM-SHA-512"},
		{append(scram512, "--sasl-username", "alice"), "--sasl-mechanism SCRAM-SHA-512 needs a password"},
		{append(scram512, "--sasl-username", "alice", "--sasl-password", "x", "--sasl-password-file", empty), "exclude each other"},
		{append(scram512, "--sasl-username", "alice", "--sasl-password-file", empty), "--sasl-password-file " + empty + " is empty"},
		{append(scram512, "--sasl-username", "alice", "--sasl-password-file", missing), "--sasl-password-file: open " + missing},
		{[]string{"--security-protocol", "SSL", "--tls-ca-file", missing}, "--tls-ca-file: open " + missing},
		{[]string{"--security-protocol", "SSL", "--tls-ca-file", notPEM}, "--tls-ca-file " + notPEM + ": no PEM certificate"},
		{[]string{"--security-protocol", "SSL", "--tls-cert-file", pki.ClientCertFile}, "--tls-cert-file needs --tls-key-file"},
		{[]string{"--security-protocol", "SSL", "--tls-key-file", pki.ClientKeyFile}, "--tls-key-file needs --tls-cert-file"},
		{[]string{"--security-protocol", "SSL", "--tls-cert-file", pki.ClientCertFile, "--tls-key-file", pki.CAFile}, "--tls-cert-file " + pki.ClientCertFile + " / --tls-key-file"},
		{append(gss, "--sasl-username", "etl", "--kerberos-keytab", ktFile), "--kerberos-realm is required"},
		{append(gss, "--sasl-username", "etl", "--kerberos-realm", "EXAMPLE.COM"), "exactly one of --kerberos-keytab, --kerberos-ccache or a password"},
		{append(gss, "--sasl-username", "etl", "--kerberos-realm", "EXAMPLE.COM", "--kerberos-keytab", ktFile, "--sasl-password", "x"), "exactly one of"},
		{append(gss, "--sasl-username", "etl", "--kerberos-realm", "EXAMPLE.COM", "--kerberos-keytab", notPEM), "--kerberos-keytab " + notPEM},
		{append(gss, "--sasl-username", "kafka-app", "--kerberos-realm", "EXAMPLE.COM", "--kerberos-keytab", ktFile), "holds no key for kafka-app@EXAMPLE.COM (--sasl-username@--kerberos-realm); it has etl@EXAMPLE.COM"},
		{append(gss, "--sasl-username", "etl", "--kerberos-realm", "OTHER.ORG", "--kerberos-keytab", ktFile), "no KDC for realm OTHER.ORG"},
		{append(gss, "--sasl-username", "etl", "--kerberos-realm", "EXAMPLE.COM", "--kerberos-ccache", missing), "--kerberos-ccache: stat " + missing},
		{[]string{"--security-protocol", "SASL_SSL", "--sasl-mechanism", "GSSAPI", "--sasl-username", "etl", "--kerberos-realm", "EXAMPLE.COM", "--kerberos-keytab", ktFile, "--kerberos-config", missing}, "--kerberos-config " + missing},
	} {
		_, err := parse(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v:\n  err  = %v\n  want %q", tc.args, err, tc.want)
		}
	}
}

func TestSecurityPasswordFile(t *testing.T) {
	pw := writeFile(t, t.TempDir(), "pw", secret+"\r\n")
	s, err := parse(t, "--security-protocol", "sasl_ssl", "--sasl-mechanism", "scram-sha-256", "--sasl-username", "alice", "--sasl-password-file", pw)
	if err != nil {
		t.Fatal(err)
	}
	if s.Password != secret || s.Protocol != ProtocolSASLSSL || s.Mechanism != MechanismSCRAMSHA256 {
		t.Fatalf("got protocol %s mechanism %s password of %d bytes", s.Protocol, s.Mechanism, len(s.Password))
	}
}

func TestSecuritySaramaAndKafkaGo(t *testing.T) {
	dir := t.TempDir()
	pki, err := kafkalocal.NewPKI(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	krb5 := writeFile(t, dir, "krb5.conf", "[realms]\n  EXAMPLE.COM = {\n    kdc = 127.0.0.1:88\n  }\n")
	tlsArgs := []string{"--tls-ca-file", pki.CAFile, "--tls-cert-file", pki.ClientCertFile, "--tls-key-file", pki.ClientKeyFile}
	for _, tc := range []struct {
		args      []string
		mechanism sarama.SASLMechanism // "" : no SASL
		tls       bool
		kafkaGo   string // kafka-go mechanism name, "" none
	}{
		{[]string{"--security-protocol", "SSL"}, "", true, ""},
		{append([]string{"--security-protocol", "SSL"}, tlsArgs...), "", true, ""},
		{[]string{"--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN", "--sasl-username", "a", "--sasl-password", secret}, sarama.SASLTypePlaintext, false, "PLAIN"},
		{append([]string{"--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-username", "a", "--sasl-password", secret}, tlsArgs...), sarama.SASLTypeSCRAMSHA256, true, "SCRAM-SHA-256"},
		{[]string{"--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "a", "--sasl-password", secret, "--tls-insecure-skip-verify"}, sarama.SASLTypeSCRAMSHA512, true, "SCRAM-SHA-512"},
		{[]string{"--security-protocol", "SASL_SSL", "--sasl-mechanism", "GSSAPI", "--sasl-username", "etl", "--sasl-password", secret, "--kerberos-realm", "EXAMPLE.COM", "--kerberos-config", krb5}, sarama.SASLTypeGSSAPI, true, "GSSAPI"},
	} {
		s, err := parse(t, tc.args...)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		cfg := sarama.NewConfig()
		s.ApplySarama(cfg)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%v: Sarama rejects the config: %v", tc.args, err)
		}
		if cfg.Net.TLS.Enable != tc.tls || (tc.tls && cfg.Net.TLS.Config == nil) {
			t.Errorf("%v: TLS %v", tc.args, cfg.Net.TLS.Enable)
		}
		if got := cfg.Net.SASL.Mechanism; cfg.Net.SASL.Enable != (tc.mechanism != "") || (tc.mechanism != "" && got != tc.mechanism) {
			t.Errorf("%v: SASL %v %s", tc.args, cfg.Net.SASL.Enable, got)
		}
		if tc.mechanism == sarama.SASLTypeGSSAPI {
			g := cfg.Net.SASL.GSSAPI
			if g.AuthType != sarama.KRB5_USER_AUTH || g.Username != "etl" || g.Realm != "EXAMPLE.COM" || g.ServiceName != "kafka" || g.KerberosConfigPath != krb5 {
				t.Errorf("GSSAPI config %+v", g)
			}
		}
		if len(s.CertFile) > 0 && len(cfg.Net.TLS.Config.Certificates) != 1 {
			t.Errorf("%v: the client certificate is not in the TLS config", tc.args)
		}
		tlsCfg, mech, err := s.KafkaGo()
		switch {
		case err != nil:
			t.Errorf("%v: kafka-go: %v", tc.args, err)
		case (tlsCfg != nil) != tc.tls:
			t.Errorf("%v: kafka-go TLS %v", tc.args, tlsCfg)
		case tc.kafkaGo == "" && mech != nil, tc.kafkaGo != "" && (mech == nil || mech.Name() != tc.kafkaGo):
			t.Errorf("%v: kafka-go mechanism %v, want %s", tc.args, mech, tc.kafkaGo)
		}
	}
}

// TestSCRAMClientTalksToAServer runs Sarama's SCRAM client adapter against a SCRAM
// server (xdg-go/scram's): a right password completes, a wrong one does not.
func TestSCRAMClientTalksToAServer(t *testing.T) {
	for _, hash := range []scram.HashGeneratorFcn{scram.SHA256, scram.SHA512} {
		stored, err := hash.NewClientUnprepped("alice", secret, "")
		if err != nil {
			t.Fatal(err)
		}
		creds := stored.GetStoredCredentials(scram.KeyFactors{Salt: "pepper-and-salt", Iters: 4096})
		server, err := hash.NewServer(func(user string) (scram.StoredCredentials, error) {
			if user != "alice" {
				return scram.StoredCredentials{}, fmt.Errorf("no user %s", user)
			}
			return creds, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, pw := range []string{secret, "wrong"} {
			c := &scramClient{hash: hash}
			if err := c.Begin("alice", pw, ""); err != nil {
				t.Fatal(err)
			}
			conv := server.NewConversation()
			msg, err := c.Step("")
			for err == nil && !c.Done() {
				var reply string
				if reply, err = conv.Step(msg); err != nil {
					break
				}
				msg, err = c.Step(reply)
			}
			ok := err == nil && c.Done() && conv.Valid()
			if ok != (pw == secret) {
				t.Errorf("password %q: authenticated = %v (err %v)", pw, ok, err)
			}
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	pwFile := writeFile(t, t.TempDir(), "pw", secret)
	s, err := parse(t, "--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "alice", "--sasl-password-file", pwFile)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	text := slog.New(slog.NewTextHandler(&out, nil))
	jsonl := slog.New(slog.NewJSONHandler(&out, nil))
	for _, l := range []*slog.Logger{text, jsonl} {
		l.Info("value", "security", *s)
		l.Info("pointer", "security", s)
		l.Info("any", slog.Any("security", s))
	}
	fmt.Fprintf(&out, "%v %+v %#v %s %v %+v\n", *s, *s, *s, s, s, s)
	fmt.Fprintln(&out, s.Explain(sarama.ErrSASLAuthenticationFailed))
	if strings.Contains(out.String(), secret) {
		t.Fatalf("the password was printed:\n%s", out.String())
	}
	for _, want := range []string{"SCRAM-SHA-512", "alice", "REDACTED", "protocol=SASL_SSL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	var rec map[string]any
	line := strings.Split(out.String(), "\n")[3] // the first JSON line
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if sec, _ := rec["security"].(map[string]any); sec["password"] != "REDACTED" || sec["user"] != "alice" {
		t.Errorf("JSON log: %s", line)
	}
}

func TestExplainNamesUserAndMechanism(t *testing.T) {
	s, err := parse(t, "--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "alice", "--sasl-password", secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, cause := range []error{
		fmt.Errorf("connect: %w", sarama.ErrSASLAuthenticationFailed),
		fmt.Errorf("zones: metadata: %w", kafka.SASLAuthenticationFailed),
	} {
		err := s.Explain(cause)
		if want := "kafka authentication failed for user alice (SCRAM-SHA-512 over SASL_SSL)"; !strings.Contains(err.Error(), want) {
			t.Errorf("Explain(%v) = %v, want %q", cause, err, want)
		}
	}
	if err := s.Explain(kafka.UnsupportedSASLMechanism); !strings.Contains(err.Error(), "do not accept --sasl-mechanism SCRAM-SHA-512") {
		t.Errorf("unsupported mechanism: %v", err)
	}
	other := fmt.Errorf("something else")
	if s.Explain(other) != other || s.Explain(nil) != nil {
		t.Error("Explain changed an unrelated error")
	}
}

// TestExplainSaysBrokerUnreachable: nothing listening on the brokers' port is
// explained as "broker unreachable", keeping the cause; other errors are untouched.
func TestExplainSaysBrokerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // now nothing listens there
	_, dialErr := net.Dial("tcp", addr)
	if dialErr == nil {
		t.Skip("the closed port accepted a connection")
	}
	var sec Security
	for _, in := range []error{dialErr, fmt.Errorf("connect to [%s]: %w: %w", addr, sarama.ErrOutOfBrokers, dialErr), sarama.ErrOutOfBrokers,
		fmt.Errorf("cleanup: delete topics: %w", kafka.BrokerNotAvailable)} {
		got := sec.Explain(in)
		if !errors.Is(got, ErrBrokerUnreachable) || !strings.HasPrefix(got.Error(), "broker unreachable") || !errors.Is(got, in) {
			t.Errorf("Explain(%v) = %v, want it to start with broker unreachable and wrap the cause", in, got)
		}
		if again := ExplainUnreachable(got); again != got {
			t.Errorf("explained twice: %v", again)
		}
	}
	other := errors.New("topic taxi-rides does not exist")
	if got := sec.Explain(other); got != other {
		t.Errorf("Explain(%v) = %v, want it unchanged", other, got)
	}
	auth := fmt.Errorf("%w: %w", sarama.ErrOutOfBrokers, sarama.ErrSASLAuthenticationFailed)
	if got := sec.Explain(auth); errors.Is(got, ErrBrokerUnreachable) || !strings.Contains(got.Error(), "authentication failed") {
		t.Errorf("an authentication failure became %v", got)
	}
}
