package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/IBM/sarama"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/krberror"
	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	kscram "github.com/segmentio/kafka-go/sasl/scram"
	"github.com/spf13/pflag"
	"github.com/xdg-go/scram"
)

// Kafka's security.protocol values.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// Kafka's sasl.mechanism values.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
	MechanismGSSAPI      = "GSSAPI"
)

var (
	protocols  = []string{ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL}
	mechanisms = []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512, MechanismGSSAPI}
)

// Security is how a program connects to Kafka: Kafka's security.protocol, sasl.*
// and ssl.* client settings as flags. Register adds the flags, Validate checks them
// and reads the files, Sarama and KafkaGo turn them into client settings.
//
// The password never appears in String, LogValue or any error.
type Security struct {
	Protocol  string // --security-protocol
	Mechanism string // --sasl-mechanism
	Username  string // --sasl-username (GSSAPI: the principal's name without the realm)
	// Password is never logged. Prefer PasswordFile: a command line is visible to every
	// user of the machine (ps).
	Password     string
	PasswordFile string

	CAFile             string // --tls-ca-file: PEM CA bundle (default: the system roots)
	CertFile           string // --tls-cert-file: client certificate (mutual TLS)
	KeyFile            string // --tls-key-file: its private key
	ServerName         string // --tls-server-name: expected in the broker certificates (default: the host dialled)
	InsecureSkipVerify bool   // --tls-insecure-skip-verify

	Kerberos Kerberos

	// Brokers are the bootstrap brokers (--brokers, which each program registers
	// itself). Explain probes them when a connection failed in a way a protocol
	// mismatch would (see probeMismatch); Setup sets them.
	Brokers []string

	tls *tls.Config // built by Validate
}

// Kerberos configures SASL GSSAPI. The login is a keytab, the password, or a ticket cache.
type Kerberos struct {
	ServiceName     string // --kerberos-service-name: the brokers' principal name (sasl.kerberos.service.name). Default kafka.
	Realm           string // --kerberos-realm
	Keytab          string // --kerberos-keytab
	CCache          string // --kerberos-ccache: ticket cache (kinit) instead of a keytab
	Config          string // --kerberos-config: krb5.conf. Default $KRB5_CONFIG, else /etc/krb5.conf.
	DisablePAFXFAST bool   // --kerberos-disable-pa-fx-fast (Active Directory)
}

// Register adds the security flags to flags.
func (s *Security) Register(f *pflag.FlagSet) {
	f.StringVar(&s.Protocol, "security-protocol", ProtocolPlaintext, "how to talk to the brokers: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (Kafka security.protocol)")
	f.StringVar(&s.Mechanism, "sasl-mechanism", "", "SASL mechanism, required with SASL_*: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or GSSAPI (Kafka sasl.mechanism; default: none)")
	f.StringVar(&s.Username, "sasl-username", "", "SASL user name; GSSAPI: the principal without @REALM (default: none)")
	f.StringVar(&s.Password, "sasl-password", "", "SASL password (default: none); prefer --sasl-password-file or the environment variable: a command line is visible in ps")
	f.StringVar(&s.PasswordFile, "sasl-password-file", "", "file holding the SASL password, a trailing newline is ignored (default: none)")
	f.StringVar(&s.CAFile, "tls-ca-file", "", "PEM file of the CAs that sign the brokers' certificates (default: the system's roots; Kafka ssl.truststore.*)")
	f.StringVar(&s.CertFile, "tls-cert-file", "", "PEM client certificate for mutual TLS (Kafka ssl.keystore.*; default: none)")
	f.StringVar(&s.KeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file (default: none)")
	f.StringVar(&s.ServerName, "tls-server-name", "", "name expected in the brokers' certificates (default: the host dialled)")
	f.BoolVar(&s.InsecureSkipVerify, "tls-insecure-skip-verify", false, "do not verify the brokers' certificates; for tests only, anyone on the path can then read the traffic (default false)")
	k := &s.Kerberos
	f.StringVar(&k.ServiceName, "kerberos-service-name", "kafka", "GSSAPI: the brokers' Kerberos service name (Kafka sasl.kerberos.service.name)")
	f.StringVar(&k.Realm, "kerberos-realm", "", "GSSAPI: Kerberos realm of --sasl-username (default: none)")
	f.StringVar(&k.Keytab, "kerberos-keytab", "", "GSSAPI: keytab holding the key of <--sasl-username>@<--kerberos-realm> (default: none)")
	f.StringVar(&k.CCache, "kerberos-ccache", "", "GSSAPI: ticket cache (after kinit) instead of a keytab or a password (default: none)")
	f.StringVar(&k.Config, "kerberos-config", "", "krb5.conf of GSSAPI and of taxi-replay's Kerberized hdfs:// inputs (default $KRB5_CONFIG, else /etc/krb5.conf)")
	f.BoolVar(&k.DisablePAFXFAST, "kerberos-disable-pa-fx-fast", false, "GSSAPI: do not send PA-FX-FAST, as some Active Directory KDCs want (default false)")
}

// SASL reports whether the protocol authenticates with SASL.
func (s Security) SASL() bool {
	return s.Protocol == ProtocolSASLPlaintext || s.Protocol == ProtocolSASLSSL
}

// TLS reports whether the protocol encrypts with TLS.
func (s Security) TLS() bool { return s.Protocol == ProtocolSSL || s.Protocol == ProtocolSASLSSL }

// Validate normalises the names, reads the password file, loads the certificates and
// checks the Kerberos files. Every error names the flag to fix and is a usage error.
func (s *Security) Validate() error { return Usage(s.validate()) }

func (s *Security) validate() error {
	s.Protocol = strings.ToUpper(strings.TrimSpace(s.Protocol))
	if s.Protocol == "" {
		s.Protocol = ProtocolPlaintext
	}
	if !slices.Contains(protocols, s.Protocol) {
		return fmt.Errorf("--security-protocol %q: want %s", s.Protocol, strings.Join(protocols, ", "))
	}
	s.Mechanism = strings.ToUpper(strings.TrimSpace(s.Mechanism))
	if s.Mechanism != "" && !slices.Contains(mechanisms, s.Mechanism) {
		return fmt.Errorf("--sasl-mechanism %q: want %s", s.Mechanism, strings.Join(mechanisms, ", "))
	}
	if !s.SASL() {
		// A SASL setting without a SASL protocol would silently connect unauthenticated.
		for flag, set := range map[string]bool{
			"--sasl-mechanism": s.Mechanism != "", "--sasl-username": s.Username != "",
			"--sasl-password": s.Password != "", "--sasl-password-file": s.PasswordFile != "",
		} {
			if set {
				return fmt.Errorf("%s is set but --security-protocol is %s: use SASL_SSL (or SASL_PLAINTEXT)", flag, s.Protocol)
			}
		}
	}
	if !s.TLS() {
		for flag, set := range map[string]bool{
			"--tls-ca-file": s.CAFile != "", "--tls-cert-file": s.CertFile != "", "--tls-key-file": s.KeyFile != "",
			"--tls-server-name": s.ServerName != "", "--tls-insecure-skip-verify": s.InsecureSkipVerify,
		} {
			if set {
				return fmt.Errorf("%s is set but --security-protocol is %s: use SSL or SASL_SSL", flag, s.Protocol)
			}
		}
	}
	if s.SASL() {
		if err := s.validateSASL(); err != nil {
			return err
		}
	}
	if s.TLS() {
		cfg, err := s.loadTLS()
		if err != nil {
			return err
		}
		s.tls = cfg
	}
	return nil
}

func (s *Security) validateSASL() error {
	if s.Mechanism == "" {
		return fmt.Errorf("--sasl-mechanism is required with --security-protocol %s: %s", s.Protocol, strings.Join(mechanisms, ", "))
	}
	if s.Password != "" && s.PasswordFile != "" {
		return errors.New("--sasl-password and --sasl-password-file exclude each other")
	}
	if s.PasswordFile != "" {
		pw, err := readPasswordFile(s.PasswordFile)
		if err != nil {
			return err
		}
		s.Password = pw
	}
	if s.Username == "" {
		return fmt.Errorf("--sasl-username is required with --sasl-mechanism %s", s.Mechanism)
	}
	if s.Mechanism == MechanismGSSAPI {
		return s.validateKerberos()
	}
	if s.Password == "" {
		return fmt.Errorf("--sasl-mechanism %s needs a password: --sasl-password-file or --sasl-password", s.Mechanism)
	}
	return nil
}

func readPasswordFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--sasl-password-file: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("--sasl-password-file %s is empty", path)
	}
	return pw, nil
}

func (s *Security) validateKerberos() error {
	k := &s.Kerberos
	if k.ServiceName == "" {
		k.ServiceName = "kafka"
	}
	if k.Realm == "" {
		return errors.New("--kerberos-realm is required with --sasl-mechanism GSSAPI")
	}
	logins := 0
	for _, set := range []bool{k.Keytab != "", k.CCache != "", s.Password != ""} {
		if set {
			logins++
		}
	}
	if logins != 1 {
		return errors.New("--sasl-mechanism GSSAPI logs in with exactly one of --kerberos-keytab, --kerberos-ccache or a password (--sasl-password-file)")
	}
	if k.Config == "" {
		k.Config = os.Getenv("KRB5_CONFIG")
	}
	if k.Config == "" {
		k.Config = "/etc/krb5.conf"
	}
	conf, err := krbconfig.Load(k.Config)
	if err != nil {
		return fmt.Errorf("--kerberos-config %s: %w", k.Config, err)
	}
	if _, _, err := conf.GetKDCs(k.Realm, true); err != nil {
		return fmt.Errorf("--kerberos-config %s: no KDC for realm %s (--kerberos-realm): %w", k.Config, k.Realm, err)
	}
	if k.Keytab != "" {
		kt, err := keytab.Load(k.Keytab)
		if err != nil {
			return fmt.Errorf("--kerberos-keytab %s: %w", k.Keytab, err)
		}
		var have []string
		for _, e := range kt.Entries {
			p := strings.Join(e.Principal.Components, "/") + "@" + e.Principal.Realm
			if p == s.Username+"@"+k.Realm {
				return nil
			}
			if !slices.Contains(have, p) {
				have = append(have, p)
			}
		}
		return fmt.Errorf("--kerberos-keytab %s holds no key for %s@%s (--sasl-username@--kerberos-realm); it has %s",
			k.Keytab, s.Username, k.Realm, strings.Join(have, ", "))
	}
	if k.CCache != "" {
		if _, err := os.Stat(k.CCache); err != nil {
			return fmt.Errorf("--kerberos-ccache: %w (run kinit first)", err)
		}
	}
	return nil
}

func (s *Security) loadTLS() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName, InsecureSkipVerify: s.InsecureSkipVerify} // #nosec G402 -- only on request, documented as testing only
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca-file %s: no PEM certificate in it", s.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case s.CertFile != "" && s.KeyFile == "":
		return nil, errors.New("--tls-cert-file needs --tls-key-file")
	case s.KeyFile != "" && s.CertFile == "":
		return nil, errors.New("--tls-key-file needs --tls-cert-file")
	case s.CertFile != "":
		pair, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert-file %s / --tls-key-file %s: %w", s.CertFile, s.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// TLSConfig is the client TLS configuration (nil without TLS). Call Validate first.
func (s *Security) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

// ApplySarama sets cfg's Net.TLS and Net.SASL. Call Validate first.
func (s *Security) ApplySarama(cfg *sarama.Config) {
	if s.TLS() {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = s.TLSConfig()
	}
	if !s.SASL() {
		return
	}
	n := &cfg.Net.SASL
	n.Enable = true
	n.Handshake = true
	n.Version = sarama.SASLHandshakeV1
	n.Mechanism = sarama.SASLMechanism(s.Mechanism)
	switch s.Mechanism {
	case MechanismPlain:
		n.User, n.Password = s.Username, s.Password
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		n.User, n.Password = s.Username, s.Password
		hash := scram.SHA256
		if s.Mechanism == MechanismSCRAMSHA512 {
			hash = scram.SHA512
		}
		n.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: hash} }
	case MechanismGSSAPI:
		k := s.Kerberos
		g := sarama.GSSAPIConfig{
			ServiceName: k.ServiceName, Realm: k.Realm, Username: s.Username,
			KerberosConfigPath: k.Config, DisablePAFXFAST: k.DisablePAFXFAST,
		}
		switch {
		case k.Keytab != "":
			g.AuthType, g.KeyTabPath = sarama.KRB5_KEYTAB_AUTH, k.Keytab
		case k.CCache != "":
			g.AuthType, g.CCachePath = sarama.KRB5_CCACHE_AUTH, k.CCache
		default:
			g.AuthType, g.Password = sarama.KRB5_USER_AUTH, s.Password
		}
		n.GSSAPI = g
	}
}

// Sarama wraps a config constructor so that every config it returns carries the
// security settings (pipeline.Options.Sarama, results.FollowConfig.Sarama).
func (s *Security) Sarama(base func() *sarama.Config) func() *sarama.Config {
	return func() *sarama.Config {
		cfg := base()
		s.ApplySarama(cfg)
		return cfg
	}
}

// KafkaGo returns the TLS config and SASL mechanism of a kafka-go Transport (nil
// when unused). Call Validate first.
func (s *Security) KafkaGo() (*tls.Config, sasl.Mechanism, error) {
	tlsCfg := s.TLSConfig()
	if !s.SASL() {
		return tlsCfg, nil, nil
	}
	switch s.Mechanism {
	case MechanismPlain:
		return tlsCfg, plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		algo := kscram.SHA256
		if s.Mechanism == MechanismSCRAMSHA512 {
			algo = kscram.SHA512
		}
		m, err := kscram.Mechanism(algo, s.Username, s.Password)
		if err != nil {
			return nil, nil, fmt.Errorf("--sasl-username/--sasl-password: %w", err)
		}
		return tlsCfg, m, nil
	case MechanismGSSAPI:
		// kafka-go has no Kerberos mechanism: gssapiMechanism is ours, on gokrb5 like
		// Sarama's.
		login, err := s.gssapiLogin()
		if err != nil {
			return nil, nil, err
		}
		return tlsCfg, gssapiMechanism{service: s.Kerberos.ServiceName, login: login}, nil
	}
	return nil, nil, fmt.Errorf("--sasl-mechanism %q is not supported", s.Mechanism)
}

// String describes the settings without the password.
func (s Security) String() string {
	var b strings.Builder
	b.WriteString(s.Protocol)
	if s.SASL() {
		fmt.Fprintf(&b, " %s user=%s", s.Mechanism, s.Username)
		if s.Password != "" {
			b.WriteString(" password=REDACTED")
		}
		if s.Mechanism == MechanismGSSAPI {
			fmt.Fprintf(&b, " realm=%s service=%s", s.Kerberos.Realm, s.Kerberos.ServiceName)
		}
	}
	if s.TLS() {
		if s.CAFile != "" {
			fmt.Fprintf(&b, " ca=%s", s.CAFile)
		}
		if s.CertFile != "" {
			fmt.Fprintf(&b, " cert=%s", s.CertFile)
		}
		if s.InsecureSkipVerify {
			b.WriteString(" insecure-skip-verify")
		}
	}
	return b.String()
}

// LogValue implements slog.LogValuer: the settings without the password.
func (s Security) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("protocol", s.Protocol)}
	if s.SASL() {
		attrs = append(attrs, slog.String("mechanism", s.Mechanism), slog.String("user", s.Username))
		if s.Password != "" {
			attrs = append(attrs, slog.String("password", "REDACTED"))
		}
		if s.Mechanism == MechanismGSSAPI {
			attrs = append(attrs, slog.String("realm", s.Kerberos.Realm), slog.String("service", s.Kerberos.ServiceName))
			if s.Kerberos.Keytab != "" {
				attrs = append(attrs, slog.String("keytab", s.Kerberos.Keytab))
			}
		}
	}
	if s.TLS() {
		attrs = append(attrs, slog.Bool("tls", true))
		if s.CAFile != "" {
			attrs = append(attrs, slog.String("ca", s.CAFile))
		}
		if s.CertFile != "" {
			attrs = append(attrs, slog.String("cert", s.CertFile))
		}
		if s.InsecureSkipVerify {
			attrs = append(attrs, slog.Bool("insecure_skip_verify", true))
		}
	}
	return slog.GroupValue(attrs...)
}

// Format makes fmt's %v, %+v and %#v print String, never the fields.
func (s Security) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// Explain turns a failure to connect into an error that says what to fix: failed
// authentication names the user and mechanism, a failed TLS handshake points at
// the TLS flags, a TLS client on a plaintext listener or a plaintext client on a
// TLS listener points at --security-protocol, brokers that cannot be reached at
// --brokers. Other errors are returned as they are.
//
// A closed connection (EOF) is ambiguous; Explain then probes s.Brokers for a
// protocol mismatch, which takes up to probeTimeout.
func (s *Security) Explain(err error) error {
	if err == nil {
		return nil
	}
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		recordHdr  tls.RecordHeaderError
		verifyErr  *tls.CertificateVerificationError
		netOpError *net.OpError
		krbErr     krberror.Krberror
	)
	switch {
	case isAuthFailure(err):
		return fmt.Errorf("kafka authentication failed for user %s (%s over %s): check --sasl-username and the password: %w",
			s.Username, s.Mechanism, s.Protocol, err)
	case s.Mechanism == MechanismGSSAPI && kerberosHint(err) != "":
		return fmt.Errorf("kafka authentication failed for user %s (GSSAPI over %s): %s: %w",
			s.Username, s.Protocol, kerberosHint(err), err)
	case s.Mechanism == MechanismGSSAPI && errors.As(err, &krbErr):
		return fmt.Errorf("kafka authentication failed for user %s (GSSAPI over %s): the Kerberos login or service ticket failed for %s@%s "+
			"(check the keytab or password, --kerberos-realm, --kerberos-service-name, --kerberos-config): %w",
			s.Username, s.Protocol, s.Username, s.Kerberos.Realm, err)
	case errors.Is(err, sarama.ErrUnsupportedSASLMechanism) || errors.Is(err, kafka.UnsupportedSASLMechanism):
		return fmt.Errorf("the brokers do not accept --sasl-mechanism %s on this listener: %w", s.Mechanism, err)
	case errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verifyErr):
		return fmt.Errorf("the brokers' TLS certificate is not trusted (check --tls-ca-file, --tls-server-name): %w", err)
	case errors.As(err, &recordHdr):
		return fmt.Errorf("the brokers do not speak TLS on this port (check --security-protocol and --brokers): %w", err)
	case s.TLS() && errors.As(err, &netOpError) && strings.Contains(err.Error(), "tls:"):
		return fmt.Errorf("TLS handshake with the brokers failed (check --tls-* and whether the listener wants a client certificate): %w", err)
	case !s.TLS() && strings.Contains(err.Error(), kafkaGoExpectsTLS):
		// kafka-go recognised the TLS alert itself; no need to ask the broker.
		return s.mismatch("", err)
	case mayBeMismatch(err):
		// Explain has no context: it runs once, after the failure, and
		// probeMismatch bounds itself.
		if b := probeMismatch(context.Background(), s.Brokers, s.TLS()); b != "" {
			return s.mismatch(b, err)
		}
	}
	return ExplainUnreachable(err)
}

// kafkaGoExpectsTLS is how kafka-go (taxi-replay's client) says that a plaintext
// connection got a TLS alert back. It only puts it in the message, so Explain
// looks for the text.
const kafkaGoExpectsTLS = "broker appears to be expecting TLS"

// mismatch explains err as the client speaking the other protocol than the
// listener: broker is the one a probe found doing so ("" when it is known
// otherwise).
func (s *Security) mismatch(broker string, err error) error {
	if s.TLS() {
		answered := ""
		if broker != "" {
			answered = broker + " answers plaintext Kafka requests; "
		}
		return fmt.Errorf("the brokers do not speak TLS on this port (%scheck --security-protocol: PLAINTEXT or SASL_PLAINTEXT, not %s; and --brokers): %w",
			answered, s.Protocol, err)
	}
	answered := ""
	if broker != "" {
		answered = broker + " answers a TLS handshake; "
	}
	return fmt.Errorf("the broker appears to be expecting TLS on this port (%scheck --security-protocol: SSL or SASL_SSL, not %s; and --brokers): %w",
		answered, s.Protocol, err)
}

// ErrBrokerUnreachable is wrapped by ExplainUnreachable's (and Explain's) error when
// no broker could be reached.
var ErrBrokerUnreachable = errors.New("broker unreachable")

// ExplainUnreachable wraps err in ErrBrokerUnreachable when it says that no broker
// could be reached (nothing listens, unknown host, network unreachable, Sarama out
// of brokers, kafka-go's BROKER_NOT_AVAILABLE); other errors are returned as they are. Explain calls it after ruling
// out authentication and TLS failures.
func ExplainUnreachable(err error) error {
	if err == nil || errors.Is(err, ErrBrokerUnreachable) || !unreachable(err) {
		return err
	}
	return fmt.Errorf("%w (check --brokers and that Kafka is running): %w", ErrBrokerUnreachable, err)
}

func unreachable(err error) bool {
	var (
		op  *net.OpError
		dns *net.DNSError
	)
	switch {
	case errors.As(err, &op) && op.Op == "dial", errors.As(err, &dns):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return true
	}
	return errors.Is(err, sarama.ErrOutOfBrokers) || errors.Is(err, kafka.BrokerNotAvailable)
}

// isAuthFailure reports whether err is Kafka's SASL_AUTHENTICATION_FAILED, as
// Sarama or kafka-go report it, or a GSSAPI login failure.
// kerberosHint names the cause of a Kerberos failure a user can fix, from the error
// texts of gokrb5 (which both Kafka clients use) and the KDC's error codes; "" when the
// error is none of these.
func kerberosHint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "KDC_ERR_S_PRINCIPAL_UNKNOWN"):
		return "the KDC does not know the brokers' service principal <service>/<broker host> " +
			"(check --kerberos-service-name, the brokers' sasl.kerberos.service.name, and that --brokers names the hosts of their principals)"
	case strings.Contains(msg, "KDC_ERR_C_PRINCIPAL_UNKNOWN"):
		return "the KDC does not know this user (check --sasl-username and --kerberos-realm)"
	case strings.Contains(msg, "KRB_AP_ERR_SKEW"), strings.Contains(msg, "clock skew with KDC too large"):
		return "this machine's clock and the KDC's differ by more than Kerberos allows (clockskew, 5 minutes by default): synchronise the clock (NTP)"
	case strings.Contains(msg, "no valid existing session"), strings.Contains(msg, "KRB_AP_ERR_TKT_EXPIRED"):
		return "the ticket cache holds no valid ticket (expired?): run kinit again, or log in with --kerberos-keytab"
	case strings.Contains(msg, "Networking_Error") && (strings.Contains(msg, "KDC") || strings.Contains(msg, "AS_REQ") || strings.Contains(msg, "TGS_REQ")):
		return "the KDC does not answer (check the kdc entries of --kerberos-config for the realm, and that the KDC is up)"
	}
	return ""
}

func isAuthFailure(err error) bool {
	return errors.Is(err, sarama.ErrSASLAuthenticationFailed) || errors.Is(err, kafka.SASLAuthenticationFailed)
}

// scramClient is Sarama's SCRAMClient on github.com/xdg-go/scram (as in Sarama's
// own examples).
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }

func (c *scramClient) Done() bool { return c.conv.Done() }
