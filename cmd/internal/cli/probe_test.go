package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"
)

// serve accepts connections on ln until the test ends, handling each with handle.
func serve(t *testing.T, ln net.Listener, handle func(net.Conn)) string {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				handle(conn)
			}()
		}
	}()
	return ln.Addr().String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// plaintextKafka is a listener that behaves like a Kafka PLAINTEXT listener: it
// answers ApiVersions with a v0 response and, like Kafka, closes a connection
// whose request size is absurd (a TLS ClientHello read as a size).
func plaintextKafka(t *testing.T) string {
	return serve(t, listen(t), func(conn net.Conn) {
		for {
			var size [4]byte
			if _, err := io.ReadFull(conn, size[:]); err != nil {
				return
			}
			n := binary.BigEndian.Uint32(size[:])
			if n > 100<<20 { // Kafka's socket.request.max.bytes
				return
			}
			req := make([]byte, n)
			if _, err := io.ReadFull(conn, req); err != nil {
				return
			}
			// Response: correlation id, error code 0, one API: ApiVersions 0..4.
			resp := binary.BigEndian.AppendUint32(make([]byte, 4), binary.BigEndian.Uint32(req[4:8]))
			resp = binary.BigEndian.AppendUint16(resp, 0)
			resp = binary.BigEndian.AppendUint32(resp, 1)
			resp = binary.BigEndian.AppendUint16(resp, apiVersionsKey)
			resp = binary.BigEndian.AppendUint16(resp, 0)
			resp = binary.BigEndian.AppendUint16(resp, 4)
			binary.BigEndian.PutUint32(resp, uint32(len(resp)-4))
			if _, err := conn.Write(resp); err != nil {
				return
			}
		}
	})
}

// selfSigned is a certificate for 127.0.0.1 made for the test.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "probe-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsListener is a TLS server with cfg's settings (and a self-signed certificate)
// that completes handshakes and then closes the connection, as a Kafka SSL
// listener does with a request it cannot decrypt.
func tlsListener(t *testing.T, cfg *tls.Config) string {
	cfg.Certificates = []tls.Certificate{selfSigned(t)}
	return serve(t, tls.NewListener(listen(t), cfg), func(conn net.Conn) {
		_ = conn.(*tls.Conn).Handshake()
		_, _ = io.Copy(io.Discard, conn)
	})
}

// closedPort is an address where nothing listens.
func closedPort(t *testing.T) string {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestApiVersionsRequest(t *testing.T) {
	got := apiVersionsRequest(7, "ab")
	want := []byte{0, 0, 0, 12, 0, 18, 0, 0, 0, 0, 0, 7, 0, 2, 'a', 'b'}
	if string(got) != string(want) {
		t.Errorf("apiVersionsRequest = % x, want % x", got, want)
	}
}

// TestProbesTellTheProtocols: each probe says yes to its own protocol and no to
// the other, to a silent server and to a closed port.
func TestProbesTellTheProtocols(t *testing.T) {
	plain := plaintextKafka(t)
	tlsAddr := tlsListener(t, &tls.Config{MinVersion: tls.VersionTLS12})
	// A TLS 1.2 server that wants a client certificate fails the probe's handshake
	// with an alert: still TLS.
	wantsCert := tlsListener(t, &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, ClientAuth: tls.RequireAnyClientCert})
	// A server that closes at once, as a broker going away does.
	closes := serve(t, listen(t), func(net.Conn) {})
	closed := closedPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name           string
		addr           string
		tls, plaintext bool
	}{
		{"plaintext Kafka", plain, false, true},
		{"TLS", tlsAddr, true, false},
		{"TLS wanting a client certificate", wantsCert, true, false},
		{"closes at once", closes, false, false},
		{"nothing listens", closed, false, false},
	} {
		gotTLS, tlsErr := speaksTLS(ctx, tc.addr)
		gotPlain, plainErr := speaksPlaintextKafka(ctx, tc.addr)
		if gotTLS != tc.tls || gotPlain != tc.plaintext {
			t.Errorf("%s: speaksTLS = %v (%v), speaksPlaintextKafka = %v (%v); want %v, %v",
				tc.name, gotTLS, tlsErr, gotPlain, plainErr, tc.tls, tc.plaintext)
		}
		if (tlsErr == nil) != gotTLS || (plainErr == nil) != gotPlain {
			t.Errorf("%s: a no comes without its reason or a yes with an error: %v, %v", tc.name, tlsErr, plainErr)
		}
	}
	// probeMismatch goes on to the next broker when one does not answer.
	if got := probeMismatch(ctx, []string{closed, closes, tlsAddr}, false); got != tlsAddr {
		t.Errorf("probeMismatch(plaintext client) = %q, want %s", got, tlsAddr)
	}
	if got := probeMismatch(ctx, []string{closed, plain}, true); got != plain {
		t.Errorf("probeMismatch(TLS client) = %q, want %s", got, plain)
	}
	if got := probeMismatch(ctx, []string{plain}, false); got != "" {
		t.Errorf("probeMismatch(plaintext client, plaintext listener) = %q, want none", got)
	}
}

// TestProbeGivesUp: a listener that never answers holds the probe up for the
// context's time at most.
func TestProbeGivesUp(t *testing.T) {
	silent := serve(t, listen(t), func(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if ok, err := speaksTLS(ctx, silent); ok || err == nil {
		t.Errorf("speaksTLS(silent) = %v, %v", ok, err)
	}
	if ok, err := speaksPlaintextKafka(ctx, silent); ok || err == nil {
		t.Errorf("speaksPlaintextKafka(silent) = %v, %v", ok, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the probes took %s", took)
	}
}

// TestExplainProtocolMismatch: the errors the Kafka clients return on a listener
// of the other protocol become hints at --security-protocol, when the probe
// confirms the mismatch; otherwise they stay what they were.
func TestExplainProtocolMismatch(t *testing.T) {
	plain := plaintextKafka(t)
	tlsAddr := tlsListener(t, &tls.Config{MinVersion: tls.VersionTLS12})
	closed := closedPort(t)
	tlsClient, err := parse(t, "--security-protocol", "SSL")
	if err != nil {
		t.Fatal(err)
	}
	plainClient, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	saramaEOF := fmt.Errorf("connect to kafka [%s]: %w", plain, sarama.Wrap(sarama.ErrOutOfBrokers, io.EOF))
	saramaUnexpected := fmt.Errorf("connect to kafka [%s]: %w", tlsAddr, sarama.Wrap(sarama.ErrOutOfBrokers, io.ErrUnexpectedEOF))
	kafkaGoEOF := fmt.Errorf("zones: metadata of topic taxi-zones: kafka.(*Client).Metadata: %w", io.EOF)
	kafkaGoTLS := fmt.Errorf("zones: metadata of topic taxi-zones: kafka.(*Client).Metadata: %w", fmt.Errorf("%w: broker appears to be expecting TLS", io.ErrUnexpectedEOF))
	notAvailable := fmt.Errorf("cleanup: delete topics: %w", kafka.BrokerNotAvailable)
	const noTLS = "the brokers do not speak TLS on this port ("
	const wantsTLS = "the broker appears to be expecting TLS on this port ("
	for _, tc := range []struct {
		name    string
		client  *Security
		brokers []string
		err     error
		want    string // "": unchanged
		down    bool   // want ErrBrokerUnreachable
	}{
		{"TLS client, plaintext listener, Sarama", tlsClient, []string{plain}, saramaEOF, noTLS + plain + " answers plaintext Kafka requests; check --security-protocol: PLAINTEXT or SASL_PLAINTEXT, not SSL", false},
		{"TLS client, plaintext listener, kafka-go", tlsClient, []string{plain}, kafkaGoEOF, noTLS + plain, false},
		{"TLS client, plaintext listener, kafka-go cleanup", tlsClient, []string{plain}, notAvailable, noTLS + plain, false},
		{"plaintext client, TLS listener, Sarama", plainClient, []string{tlsAddr}, saramaUnexpected, wantsTLS + tlsAddr + " answers a TLS handshake; check --security-protocol: SSL or SASL_SSL, not PLAINTEXT", false},
		{"plaintext client, TLS listener, kafka-go cleanup", plainClient, []string{tlsAddr}, notAvailable, wantsTLS + tlsAddr, false},
		// kafka-go says it itself: no probe needed, no broker named.
		{"plaintext client, TLS listener, kafka-go", plainClient, nil, kafkaGoTLS, wantsTLS + "check --security-protocol: SSL or SASL_SSL, not PLAINTEXT; and --brokers): zones", false},
		// No mismatch: the errors stay as they were.
		{"TLS client, TLS listener", tlsClient, []string{tlsAddr}, saramaEOF, "", true},
		{"plaintext client, plaintext listener", plainClient, []string{plain}, saramaUnexpected, "", true},
		{"plaintext client, plaintext listener, plain EOF", plainClient, []string{plain}, kafkaGoEOF, "", false},
		{"nothing listens", tlsClient, []string{closed}, saramaEOF, "", true},
		{"no brokers known", plainClient, nil, saramaUnexpected, "", true},
	} {
		s := *tc.client
		s.Brokers = tc.brokers
		got := s.Explain(tc.err)
		switch {
		case !errors.Is(got, tc.err):
			t.Errorf("%s: Explain = %v, which does not wrap the cause", tc.name, got)
		case errors.Is(got, ErrBrokerUnreachable) != tc.down:
			t.Errorf("%s: Explain = %v; want broker unreachable %v", tc.name, got, tc.down)
		case tc.want == "" && !tc.down && got != tc.err:
			t.Errorf("%s: Explain = %v, want it unchanged", tc.name, got)
		case tc.want == "" && strings.Contains(got.Error(), "TLS on this port"):
			t.Errorf("%s: Explain = %v, want no protocol hint", tc.name, got)
		case tc.want != "" && !strings.HasPrefix(got.Error(), tc.want):
			t.Errorf("%s:\n  Explain = %v\n  want      %s...", tc.name, got, tc.want)
		}
	}
}

// TestExplainKeepsItsOtherHints: an error Explain already explains is not
// probed, even when it also carries an EOF.
func TestExplainKeepsItsOtherHints(t *testing.T) {
	plain := plaintextKafka(t)
	s, err := parse(t, "--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN", "--sasl-username", "carol", "--sasl-password", secret)
	if err != nil {
		t.Fatal(err)
	}
	s.Brokers = []string{plain}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.Join(sarama.ErrSASLAuthenticationFailed, io.EOF), "kafka authentication failed for user carol (PLAIN over SASL_SSL)"},
		{errors.Join(x509.UnknownAuthorityError{}, io.EOF), "the brokers' TLS certificate is not trusted"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "the brokers do not speak TLS on this port (check --security-protocol and --brokers)"},
	} {
		if got := s.Explain(tc.err); !strings.HasPrefix(got.Error(), tc.want) {
			t.Errorf("Explain(%v) = %v, want %q", tc.err, got, tc.want)
		}
	}
}
