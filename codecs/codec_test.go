package codecs_test

import (
	"strings"
	"testing"

	"github.com/taxi-stream/taxi-stream/codecs"
)

func TestGokaAdapter(t *testing.T) {
	c := codecs.Goka[codecs.Zone](codecs.ZoneCodec{})
	z := codecs.Zone{LocationID: 1, Borough: "EWR", Zone: "Newark Airport", ServiceZone: "EWR"}
	byValue, err := c.Encode(z)
	if err != nil {
		t.Fatal(err)
	}
	byPointer, err := c.Encode(&z)
	if err != nil || string(byPointer) != string(byValue) {
		t.Fatalf("Encode(&z) = %s, %v; want %s", byPointer, err, byValue)
	}
	for _, bad := range []any{nil, "zone", 1, (*codecs.Zone)(nil), codecs.Trip{}} {
		if _, err := c.Encode(bad); err == nil || !strings.Contains(err.Error(), "codecs.Zone") {
			t.Errorf("Encode(%#v) error = %v, want a type error naming codecs.Zone", bad, err)
		}
	}
	v, err := c.Decode(byValue)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := codecs.As[codecs.Zone](v)
	if !ok || got != z {
		t.Fatalf("As[Zone](%#v) = %+v, %v", v, got, ok)
	}
	if _, ok := codecs.As[codecs.Zone](nil); ok {
		t.Error("As[Zone](nil) reported ok")
	}
	if _, err := c.Decode([]byte("{")); err == nil {
		t.Error("Decode of broken JSON succeeded")
	}
}

func TestTripCodec(t *testing.T) {
	c := codecs.Goka[codecs.Trip](codecs.TripCodec{})
	tr := codecs.Trip{Layout: codecs.GreenLayoutB, PULocationID: codecs.Int(7), FareAmount: codecs.Float(1.5)}
	b, err := c.Encode(tr)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(codecs.Trip)
	if got != tr {
		t.Fatalf("round trip %s: %+v, want %+v", b, got, tr)
	}
}

func TestJSONCodecGeneric(t *testing.T) {
	type state struct {
		Sum   int64 `json:"sum"`
		Count int   `json:"count"`
	}
	c := codecs.Goka[state](codecs.JSONCodec[state]{})
	b, err := c.Encode(state{Sum: 12345, Count: 3})
	if err != nil || string(b) != `{"sum":12345,"count":3}` {
		t.Fatalf("Encode = %s, %v", b, err)
	}
	v, err := c.Decode(b)
	if err != nil || v.(state) != (state{12345, 3}) {
		t.Fatalf("Decode = %#v, %v", v, err)
	}
}
