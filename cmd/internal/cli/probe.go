package cli

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

// A client that speaks the wrong protocol to a listener learns nothing from the
// failure itself: a Kafka PLAINTEXT listener reads a TLS ClientHello as an absurd
// request size and closes the connection (the TLS client sees EOF), and a TLS
// listener answers a plaintext request with a TLS alert and closes (the plaintext
// client sees unexpected EOF). Both look like a broker that went away. So when a
// connection error is one of these, Explain asks the listener itself, once, in the
// other protocol; see probeMismatch.

// probeTimeout bounds a whole probe (every broker): it only runs after a failure,
// and must not hold up the exit for long when a broker does not answer at all.
const probeTimeout = 5 * time.Second

// probeClientID names the probe's ApiVersions request in the broker's request log.
const probeClientID = "taxi-stream-probe"

// apiVersionsKey is Kafka's ApiVersions API key. Version 0 of its request has no
// body, and every broker answers it, before any SASL handshake and even when it
// no longer supports the version (with UNSUPPORTED_VERSION in a v0 response).
const apiVersionsKey = 18

// maxProbeResponse is the largest ApiVersions response the probe accepts (a few
// hundred bytes in practice); anything larger is not a Kafka answer.
const maxProbeResponse = 1 << 20

// mayBeMismatch reports whether err is what a protocol mismatch looks like from
// the client: the connection closed or reset, or kafka-go's BROKER_NOT_AVAILABLE,
// which its client returns (without the cause) when no connection could be made.
func mayBeMismatch(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, kafka.BrokerNotAvailable)
}

// probeMismatch asks the brokers in turn, within probeTimeout, whether they speak
// the other protocol than the client: a TLS handshake when the client is
// plaintext (clientTLS false), a plaintext ApiVersions request when it uses TLS.
// It returns the first broker that does, or "" when none does (or none answered:
// the failure was something else).
func probeMismatch(ctx context.Context, brokers []string, clientTLS bool) string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	for _, b := range brokers {
		if ctx.Err() != nil {
			break
		}
		var other bool
		if clientTLS {
			other, _ = speaksPlaintextKafka(ctx, b)
		} else {
			other, _ = speaksTLS(ctx, b)
		}
		if other {
			return b
		}
	}
	return ""
}

// speaksTLS reports whether a TLS server listens at addr: the handshake completes,
// or the server answers it with a TLS alert (e.g. it wants a client certificate).
// The certificate is not verified: the probe sends nothing and only asks which
// protocol the port speaks. The error says why the answer is no.
func speaksTLS(ctx context.Context, addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("probe %s: %w", addr, err)
	}
	d := tls.Dialer{Config: &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: true, // #nosec G402 -- a probe of the protocol only; nothing is sent over it
		MinVersion:         tls.VersionTLS12,
	}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		_ = conn.Close()
		return true, nil
	}
	// crypto/tls reports an alert the server sent as a *net.OpError with Op
	// "remote error": only a TLS server sends one.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return true, nil
	}
	return false, fmt.Errorf("TLS probe of %s: %w", addr, err)
}

// speaksPlaintextKafka reports whether a plaintext Kafka listener is at addr: it
// answers an ApiVersions v0 request with a response that carries the request's
// correlation id. The error says why the answer is no.
func speaksPlaintextKafka(ctx context.Context, addr string) (bool, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, fmt.Errorf("plaintext probe of %s: %w", addr, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	const correlationID = 0x7a78 // any value; the answer must echo it
	if _, err := conn.Write(apiVersionsRequest(correlationID, probeClientID)); err != nil {
		return false, fmt.Errorf("plaintext probe of %s: send ApiVersions: %w", addr, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return false, fmt.Errorf("plaintext probe of %s: read the response size: %w", addr, err)
	}
	// A response holds at least the correlation id (4 bytes) and an error code (2).
	n := binary.BigEndian.Uint32(size[:])
	if n < 6 || n > maxProbeResponse {
		return false, fmt.Errorf("plaintext probe of %s: %#08x is not the size of a Kafka response", addr, n)
	}
	resp := make([]byte, n)
	if _, err := io.ReadFull(conn, resp); err != nil {
		return false, fmt.Errorf("plaintext probe of %s: read the response: %w", addr, err)
	}
	if got := binary.BigEndian.Uint32(resp); got != correlationID {
		return false, fmt.Errorf("plaintext probe of %s: response to correlation id %d, want %d", addr, got, correlationID)
	}
	return true, nil
}

// apiVersionsRequest encodes an ApiVersions v0 request: size, api key, api
// version, correlation id, client id (int16 length + bytes) and no body.
func apiVersionsRequest(correlationID int32, clientID string) []byte {
	b := make([]byte, 4, 4+2+2+4+2+len(clientID))
	b = binary.BigEndian.AppendUint16(b, apiVersionsKey)
	b = binary.BigEndian.AppendUint16(b, 0) // version 0
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}
