package codecs

import (
	"encoding/json"
	"fmt"

	"github.com/lovoo/goka"
)

// Codec encodes and decodes values of one type. It is the typed form of goka.Codec, so that
// callbacks get a T instead of asserting an interface value.
type Codec[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(data []byte) (T, error)
}

// Goka adapts a typed codec to goka.Codec. Encode accepts a T or a non-nil *T and rejects any
// other type with an error naming both types; Decode returns a T.
func Goka[T any](c Codec[T]) goka.Codec { return gokaCodec[T]{c: c} }

type gokaCodec[T any] struct{ c Codec[T] }

func (g gokaCodec[T]) Encode(value any) ([]byte, error) {
	switch v := value.(type) {
	case T:
		return g.c.Encode(v)
	case *T:
		if v != nil {
			return g.c.Encode(*v)
		}
	}
	var zero T
	return nil, fmt.Errorf("codec: cannot encode %T, want %T", value, zero)
}

func (g gokaCodec[T]) Decode(data []byte) (any, error) { return g.c.Decode(data) }

// As converts a value handed out by a goka callback (ctx.Value(), the msg argument) to T. It
// returns false for nil (no value yet) and for values of another type.
func As[T any](v any) (T, bool) {
	t, ok := v.(T)
	return t, ok
}

// JSONCodec encodes T with encoding/json. It suits small, rarely written values (zones, state
// snapshots); hot paths have hand-written codecs.
type JSONCodec[T any] struct{}

// Encode marshals v.
func (JSONCodec[T]) Encode(v T) ([]byte, error) { return json.Marshal(v) }

// Decode unmarshals data into a new T.
func (JSONCodec[T]) Decode(data []byte) (T, error) {
	var v T
	err := json.Unmarshal(data, &v)
	return v, err
}

// TripCodec is the Codec of ride messages as full Trips (AppendTripJSON / DecodeTrip).
type TripCodec struct{}

// Encode returns the ride message of t.
func (TripCodec) Encode(t Trip) ([]byte, error) { return AppendTripJSON(nil, &t), nil }

// Decode parses a ride message.
func (TripCodec) Decode(data []byte) (Trip, error) { return DecodeTrip(data) }

// Compile-time checks.
var (
	_ Codec[Zone] = ZoneCodec{}
	_ Codec[Trip] = TripCodec{}
	_ Codec[Zone] = JSONCodec[Zone]{}
)
