package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"
)

// acceptorOffer is the wrap token a broker sends after the AP-REQ: its security-layer
// offer (RFC 4752 3.1: a bit mask and a maximum message size), sealed with key.
func acceptorOffer(t *testing.T, key types.EncryptionKey, payload []byte) []byte {
	t.Helper()
	wt := gssapi.WrapToken{Flags: 0x01, EC: 12, Payload: payload} // 0x01: sent by the acceptor
	if err := wt.SetCheckSum(key, keyusage.GSSAPI_ACCEPTOR_SEAL); err != nil {
		t.Fatal(err)
	}
	b, err := wt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The exchange after the AP-REQ: the broker's sealed offer is checked and answered
// with the client's wrap token of the same payload; the broker's empty answer ends it.
func TestGSSAPISessionAnswersTheSecurityLayerOffer(t *testing.T) {
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{7}, 32)}
	offer := []byte{0x01, 0x00, 0x10, 0x00} // no security layer, 1 MiB
	newSession := func() *gssapiSession {
		return &gssapiSession{client: krbclient.NewWithPassword("taxi", "TEST.LOCAL", "pw", krbconfig.New()), key: key}
	}

	s := newSession()
	done, answer, err := s.Next(context.Background(), acceptorOffer(t, key, offer))
	if err != nil || done {
		t.Fatalf("Next(offer) = %v, %v; want an answer, not done", done, err)
	}
	var wt gssapi.WrapToken
	if err := wt.Unmarshal(answer, false); err != nil {
		t.Fatalf("the answer is not an initiator wrap token: %v", err)
	}
	if ok, err := wt.Verify(key, keyusage.GSSAPI_INITIATOR_SEAL); !ok || !bytes.Equal(wt.Payload, offer) {
		t.Fatalf("the answer does not verify or carries %x (%v); want %x", wt.Payload, err, offer)
	}
	if done, resp, err := s.Next(context.Background(), nil); !done || resp != nil || err != nil {
		t.Fatalf("Next(empty) = %v, %x, %v; want done", done, resp, err)
	}

	// A token sealed with another key (not from the broker we got a ticket for) is refused.
	other := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{8}, 32)}
	if _, _, err := newSession().Next(context.Background(), acceptorOffer(t, other, offer)); err == nil {
		t.Fatal("an offer sealed with another key was accepted")
	}
	if _, _, err := newSession().Next(context.Background(), []byte("garbage")); err == nil {
		t.Fatal("garbage was accepted as a wrap token")
	}
}

func TestGSSAPIStartNeedsTheBrokerHost(t *testing.T) {
	m := gssapiMechanism{service: "kafka", login: func() (*krbclient.Client, error) {
		t.Fatal("logged in without a broker host")
		return nil, nil
	}}
	if _, _, err := m.Start(context.Background()); err == nil {
		t.Fatal("Start without sasl.Metadata succeeded")
	}
}

func TestASN1Length(t *testing.T) {
	for n, want := range map[int][]byte{0: {0}, 0x7f: {0x7f}, 0x80: {0x81, 0x80}, 0x1234: {0x82, 0x12, 0x34}} {
		if got := asn1Length(n); !bytes.Equal(got, want) {
			t.Errorf("asn1Length(%d) = %x, want %x", n, got, want)
		}
	}
}

// The Kerberos failures a user can fix are named; the texts are gokrb5's (both Kafka
// clients use it) with the KDC's error codes.
func TestKerberosHint(t *testing.T) {
	for msg, want := range map[string]string{
		"[Root cause: KDC_Error] KDC_Error: TGS Exchange Error: kerberos error response from KDC: KRB Error: (7) KDC_ERR_S_PRINCIPAL_UNKNOWN":          "service principal",
		"KDC_Error: AS Exchange Error: kerberos error response from KDC: KRB Error: (6) KDC_ERR_C_PRINCIPAL_UNKNOWN":                                   "does not know this user",
		"KDC_Error: AS Exchange Error: kerberos error response from KDC: KRB Error: (37) KRB_AP_ERR_SKEW Clock skew too great":                         "clock",
		"AS_REP is not valid or client password/keytab incorrect < KRBMessage_Handling_Error: clock skew with KDC too large. Greater than 300 seconds": "clock",
		"[Root cause: KRBMessage_Handling_Error] cannot login, no user credentials available and no valid existing session":                            "no valid ticket",
		"[Root cause: Networking_Error] Networking_Error: AS Exchange Error: failed sending AS_REQ to KDC: failed to communicate with KDC":             "does not answer",
		"kafka: client has run out of available brokers to talk to: EOF":                                                                               "",
	} {
		if got := kerberosHint(errors.New(msg)); (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("kerberosHint(%q) = %q, want one saying %q", msg, got, want)
		}
	}
}
