package kafkalocal

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a throwaway certificate authority for tests, with a broker certificate for
// loopback (127.0.0.1, ::1, localhost) and a client certificate, all written as PEM
// files (keys unencrypted PKCS#8: what Kafka's ssl.keystore.type=PEM reads).
type PKI struct {
	CAFile string // the CA certificate: the clients' trust store (and the broker's, for client certificates)
	// BrokerKeystore holds the broker's PKCS#8 key followed by its certificate chain
	// (ssl.keystore.location with ssl.keystore.type=PEM).
	BrokerKeystore string
	BrokerCertFile string // the broker certificate alone
	ClientCertFile string // a client certificate (CN=taxi-stream-client) signed by the CA
	ClientKeyFile  string
	// OtherCAFile is a second CA that signed nothing here: trusting only it must fail.
	OtherCAFile string
}

// NewPKI generates the CA and certificates into dir (valid for a day).
func NewPKI(dir string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	p := &PKI{
		CAFile: filepath.Join(dir, "ca.pem"), BrokerKeystore: filepath.Join(dir, "broker-keystore.pem"),
		BrokerCertFile: filepath.Join(dir, "broker.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"), ClientKeyFile: filepath.Join(dir, "client-key.pem"),
		OtherCAFile: filepath.Join(dir, "other-ca.pem"),
	}
	ca, caKey, caDER, err := newCA("kafkalocal test CA")
	if err != nil {
		return nil, err
	}
	_, _, otherDER, err := newCA("kafkalocal unrelated CA")
	if err != nil {
		return nil, err
	}
	brokerDER, brokerKey, err := newLeaf(ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	clientDER, clientKey, err := newLeaf(ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "taxi-stream-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	files := []struct {
		path   string
		blocks []*pem.Block
	}{
		{p.CAFile, []*pem.Block{certBlock(caDER)}},
		{p.OtherCAFile, []*pem.Block{certBlock(otherDER)}},
		{p.BrokerCertFile, []*pem.Block{certBlock(brokerDER)}},
		{p.BrokerKeystore, []*pem.Block{brokerKey, certBlock(brokerDER), certBlock(caDER)}},
		{p.ClientCertFile, []*pem.Block{certBlock(clientDER)}},
		{p.ClientKeyFile, []*pem.Block{clientKey}},
	}
	for _, f := range files {
		var data []byte
		for _, b := range f.blocks {
			data = append(data, pem.EncodeToMemory(b)...)
		}
		if err := os.WriteFile(f.path, data, 0o600); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	return p, nil
}

func certBlock(der []byte) *pem.Block { return &pem.Block{Type: "CERTIFICATE", Bytes: der} }

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func newCA(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pki: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pki: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pki: %w", err)
	}
	return cert, key, der, nil
}

// newLeaf signs tmpl with the CA and returns the certificate and its PKCS#8 key block.
func newLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) ([]byte, *pem.Block, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	return der, &pem.Block{Type: "PRIVATE KEY", Bytes: pk}, nil
}
