package cli

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jcmturner/gofork/encoding/asn1"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/segmentio/kafka-go/sasl"
)

// gssapiMechanism is Kafka's SASL GSSAPI mechanism (Kerberos V5 through GSS-API, RFC 4752)
// for kafka-go, which has none of its own. It is the exchange Sarama's
// GSSAPIKerberosAuth.AuthorizeV2 and Kafka's Java client perform, carried in SaslAuthenticate
// requests:
//
//  1. the client logs in (keytab, password or ticket cache), gets a service ticket for
//     <service>/<broker host> and sends a GSS-API initial context token holding a KRB5
//     AP-REQ (no mutual authentication asked, integrity and confidentiality flags set);
//  2. the broker answers with a wrap token (RFC 4121) carrying its security-layer offer,
//     sealed with the session key: the client checks it and answers with its own wrap
//     token of the same payload (Kafka uses no security layer);
//  3. the broker's empty answer ends the exchange.
type gssapiMechanism struct {
	service string                            // --kerberos-service-name
	login   func() (*krbclient.Client, error) // a new, not yet logged-in client
}

func (gssapiMechanism) Name() string { return MechanismGSSAPI }

func (m gssapiMechanism) Start(ctx context.Context) (sasl.StateMachine, []byte, error) {
	md := sasl.MetadataFromContext(ctx)
	if md == nil || md.Host == "" {
		return nil, nil, errors.New("gssapi: the broker's host name is unknown")
	}
	client, err := m.login()
	if err != nil {
		return nil, nil, err
	}
	if err := client.Login(); err != nil {
		client.Destroy()
		return nil, nil, fmt.Errorf("gssapi: kerberos login: %w", err)
	}
	spn := m.service + "/" + md.Host
	ticket, key, err := client.GetServiceTicket(spn)
	if err != nil {
		client.Destroy()
		return nil, nil, fmt.Errorf("gssapi: service ticket for %s: %w", spn, err)
	}
	token, err := initialToken(client, ticket, key)
	if err != nil {
		client.Destroy()
		return nil, nil, fmt.Errorf("gssapi: %w", err)
	}
	return &gssapiSession{client: client, key: key}, token, nil
}

// gssapiSession is one connection's exchange after the AP-REQ was sent.
type gssapiSession struct {
	client  *krbclient.Client
	key     types.EncryptionKey
	wrapped bool // the wrap token was answered
}

func (s *gssapiSession) Next(_ context.Context, challenge []byte) (bool, []byte, error) {
	if s.wrapped {
		s.client.Destroy()
		return true, nil, nil
	}
	var offer gssapi.WrapToken
	if err := offer.Unmarshal(challenge, true); err != nil {
		s.client.Destroy()
		return false, nil, fmt.Errorf("gssapi: the broker's wrap token: %w", err)
	}
	if ok, err := offer.Verify(s.key, keyusage.GSSAPI_ACCEPTOR_SEAL); !ok {
		s.client.Destroy()
		return false, nil, fmt.Errorf("gssapi: the broker's wrap token does not verify: %w", err)
	}
	answer, err := gssapi.NewInitiatorWrapToken(offer.Payload, s.key)
	if err != nil {
		s.client.Destroy()
		return false, nil, fmt.Errorf("gssapi: wrap token: %w", err)
	}
	b, err := answer.Marshal()
	if err != nil {
		s.client.Destroy()
		return false, nil, fmt.Errorf("gssapi: wrap token: %w", err)
	}
	s.wrapped = true
	return false, b, nil
}

// initialToken is the GSS-API initial context token (RFC 2743 3.1: tag 0x60, length, the
// KRB5 mechanism OID, then the mechanism's token) holding the KRB5 AP-REQ (RFC 1964 1.1:
// token id 0x0100, then the AP-REQ), whose authenticator checksum is the GSS-API one
// (RFC 4121 4.1.1) with the integrity and confidentiality flags.
func initialToken(client *krbclient.Client, ticket messages.Ticket, key types.EncryptionKey) ([]byte, error) {
	auth, err := types.NewAuthenticator(client.Credentials.Domain(), client.Credentials.CName())
	if err != nil {
		return nil, err
	}
	cksum := make([]byte, 24)
	binary.LittleEndian.PutUint32(cksum[:4], 16) // length of the (zero) channel binding
	binary.LittleEndian.PutUint32(cksum[20:], uint32(gssapi.ContextFlagInteg|gssapi.ContextFlagConf))
	auth.Cksum = types.Checksum{CksumType: chksumtype.GSSAPI, Checksum: cksum}
	apReq, err := messages.NewAPReq(ticket, key, auth)
	if err != nil {
		return nil, err
	}
	req, err := apReq.Marshal()
	if err != nil {
		return nil, err
	}
	oid, err := asn1.Marshal(gssapi.OIDKRB5.OID())
	if err != nil {
		return nil, err
	}
	inner := append(append(oid, 0x01, 0x00), req...) // token id KRB_AP_REQ
	return append(append([]byte{0x60}, asn1Length(len(inner))...), inner...), nil
}

// asn1Length is an ASN.1 DER length.
func asn1Length(n int) []byte {
	if n < 0x80 {
		return []byte{byte(n)}
	}
	var b []byte
	for v := n; v > 0; v >>= 8 {
		b = append([]byte{byte(v)}, b...)
	}
	return append([]byte{0x80 | byte(len(b))}, b...)
}

// gssapiLogin returns the Kerberos client constructor of the security settings: a
// keytab, a ticket cache or a password, as Validate checked them.
func (s *Security) gssapiLogin() (func() (*krbclient.Client, error), error) {
	k := s.Kerberos
	conf, err := krbconfig.Load(k.Config)
	if err != nil {
		return nil, fmt.Errorf("--kerberos-config %s: %w", k.Config, err)
	}
	opt := krbclient.DisablePAFXFAST(k.DisablePAFXFAST)
	switch {
	case k.Keytab != "":
		kt, err := keytab.Load(k.Keytab)
		if err != nil {
			return nil, fmt.Errorf("--kerberos-keytab %s: %w", k.Keytab, err)
		}
		return func() (*krbclient.Client, error) {
			return krbclient.NewWithKeytab(s.Username, k.Realm, kt, conf, opt), nil
		}, nil
	case k.CCache != "":
		return func() (*krbclient.Client, error) {
			cc, err := credentials.LoadCCache(k.CCache)
			if err != nil {
				return nil, fmt.Errorf("--kerberos-ccache %s: %w", k.CCache, err)
			}
			c, err := krbclient.NewFromCCache(cc, conf, opt)
			if err != nil {
				return nil, fmt.Errorf("--kerberos-ccache %s: %w", k.CCache, err)
			}
			return c, nil
		}, nil
	default:
		pw := s.Password
		return func() (*krbclient.Client, error) {
			return krbclient.NewWithPassword(s.Username, k.Realm, pw, conf, opt), nil
		}, nil
	}
}
