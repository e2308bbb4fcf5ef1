package codecs

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// quotedKeys holds `"name":` for every column and name table, so that the encoder appends one
// precomputed string per key.
var quotedKeys = func() (k [3][NumColumns]string) {
	for i := range columnNames {
		for c, n := range columnNames[i] {
			k[i][c] = `"` + n + `":`
		}
	}
	return k
}()

// AppendTripJSON appends the ride message of t to dst (docs/design.md "Ride message"): the
// columns of t.Layout.Present in the flavor's column order, nulls as null, timestamps as integer
// epoch ms, TypeCode columns as integers (with ".0" if the source column was DOUBLE), TypeAmount
// columns as the shortest decimal that round-trips with ".0" kept for whole numbers. NaN and
// ±Inf amounts are written as null, like pandas does.
//
// Hot path of the producer: it does not allocate when dst has room (BenchmarkAppendTripJSON).
func AppendTripJSON(dst []byte, t *Trip) []byte {
	l := &t.Layout
	dst = append(dst, '{')
	first := true
	for _, c := range columnOrder[l.Flavor&1] {
		if !l.Present.Has(c) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, quotedKeys[l.nameIndex(c)][c]...)
		switch c.Type() {
		case TypeString:
			if !t.StoreAndFwdFlag.Valid {
				dst = append(dst, "null"...)
			} else {
				dst = appendJSONString(dst, t.StoreAndFwdFlag.V)
			}
		case TypeAmount:
			dst = appendFloat(dst, *t.FloatField(c))
		default:
			v := t.IntField(c)
			if !v.Valid {
				dst = append(dst, "null"...)
				break
			}
			dst = strconv.AppendInt(dst, v.V, 10)
			if l.Double.Has(c) {
				dst = append(dst, ".0"...)
			}
		}
	}
	return append(dst, '}')
}

func appendFloat(dst []byte, v NullFloat) []byte {
	if !v.Valid || math.IsNaN(v.V) || math.IsInf(v.V, 0) {
		return append(dst, "null"...)
	}
	if c, ok := exactCents(v.V); ok {
		return appendCents(dst, c, math.Signbit(v.V))
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, v.V, 'f', -1, 64)
	for _, b := range dst[start:] {
		if b == '.' {
			return dst
		}
	}
	return append(dst, ".0"...)
}

// exactCents reports whether v is c/100 for an integer c, with |v| < 1e13: TLC's money and
// distances nearly always are. Below 1e13 two doubles are less than 0.005 apart, so the
// decimal c/100 (with at most two fractional digits) is then the shortest text that reads
// back as v, the one strconv.AppendFloat(v, 'f', -1) writes, at a fraction of its cost
// (a third of the replay's JSON encoding).
func exactCents(v float64) (int64, bool) {
	if !(v > -1e13 && v < 1e13) {
		return 0, false
	}
	c := math.Round(v * 100)
	if c/100 != v {
		return 0, false
	}
	return int64(c), true
}

// appendCents appends c/100 as strconv.AppendFloat(c/100, 'f', -1) and appendFloat's ".0"
// would: no trailing fractional zero, at least one fractional digit, "-0.0" for negative
// zero.
func appendCents(dst []byte, c int64, negative bool) []byte {
	u := c
	if negative {
		dst = append(dst, '-')
		u = -c
	}
	dst = strconv.AppendInt(dst, u/100, 10)
	frac := u % 100
	switch {
	case frac == 0:
		return append(dst, '.', '0')
	case frac%10 == 0:
		return append(dst, '.', byte('0'+frac/10))
	}
	return append(dst, '.', byte('0'+frac/10), byte('0'+frac%10))
}

// appendJSONString appends s as a JSON string: ", \ and control characters escaped (\n, \r, \t
// short, others as \u00XX, like encoding/json), invalid
// UTF-8 replaced by U+FFFD written verbatim (encoding/json writes the escape \ufffd instead, which
// made the output change when a decoded message was encoded again), everything else verbatim.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, string(utf8.RuneError)...) // verbatim, so a decoded U+FFFD re-encodes the same
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// DecodeTrip parses a ride message (ours or the original pandas producer's) back into a Trip.
// The layout is rebuilt from the keys: the timestamp names give the flavor (green without them), each key marks its
// column present, and a TypeCode number written with a fraction or exponent ("1.0") marks the
// column DOUBLE. For a null TypeCode column the source type cannot be seen; it is taken as
// integer. So AppendTripJSON(DecodeTrip(b)) == b for every b that AppendTripJSON wrote.
// Unknown keys are an error (ReasonUnknownField), as are keys of both flavors.
//
// It is DecodeRideFacts' parser (objectScanner, the same number parsing) with a front end that
// keeps every column: for the replay's checks, tests and tools, not the processor's hot path.
func DecodeTrip(data []byte) (Trip, error) {
	var t Trip
	o := objectScanner{scanner: scanner{data: data}}
	if err := o.open(); err != nil {
		return Trip{}, err
	}
	flavorSet := false
	for {
		key, raw, ok := o.next()
		if !ok {
			break
		}
		kind, text, escapedVal, ok := o.value()
		if !ok {
			break
		}
		c, flavor, implies, known := LookupColumn(string(key))
		if !known {
			return Trip{}, &InvalidRideError{Field: string(raw), Reason: ReasonUnknownField}
		}
		if implies {
			if flavorSet && t.Layout.Flavor != flavor {
				return Trip{}, &InvalidRideError{Field: string(key), Reason: ReasonMixedFlavor}
			}
			flavorSet = true
			t.Layout.Flavor = flavor
		}
		if c == ColAirportFee {
			t.Layout.AirportFeeCapital = string(key) == "Airport_fee"
		}
		t.Layout.Present = t.Layout.Present.With(c)
		if err := t.setFromJSON(c, string(key), kind, text, escapedVal); err != nil {
			if err.Reason == ReasonNotJSON {
				o.badNumber(text)
				break
			}
			return Trip{}, err
		}
	}
	if err := o.end(); err != nil {
		return Trip{}, err
	}
	return t, nil
}

func (t *Trip) setFromJSON(c Column, name string, kind valueKind, text []byte, escaped bool) *InvalidRideError {
	bad := func(reason string) *InvalidRideError { return &InvalidRideError{Field: name, Reason: reason} }
	if kind == valueNumber && !validNumber(text) {
		return bad(ReasonNotJSON)
	}
	switch c.Type() {
	case TypeString:
		switch kind {
		case valueNull:
			t.StoreAndFwdFlag = NullString{}
		case valueString:
			v := string(text)
			if escaped {
				var err error
				if v, err = strconv.Unquote(`"` + v + `"`); err != nil {
					// Unquote rejects escapes JSON allows (\/, lone surrogates); these never occur
					// in TLC flags, report rather than guess.
					return bad(ReasonNotString)
				}
			}
			t.StoreAndFwdFlag = String(v)
		default:
			return bad(ReasonNotString)
		}
	case TypeAmount:
		switch kind {
		case valueNull:
			*t.FloatField(c) = NullFloat{}
		case valueNumber:
			v, err := strconv.ParseFloat(string(text), 64)
			if err != nil {
				return bad(ReasonOutOfRange)
			}
			*t.FloatField(c) = Float(v)
		default:
			return bad(ReasonNotNumber)
		}
	default: // TypeTimestamp, TypeCode
		switch kind {
		case valueNull:
			*t.IntField(c) = NullInt{}
		case valueNumber:
			v, err := integer(text) // the number parser of DecodeRideFacts
			switch {
			case err == ErrNotInteger:
				return bad(ReasonNotInteger)
			case err != nil:
				return bad(ReasonOutOfRange)
			}
			*t.IntField(c) = Int(v)
			if c.Type() == TypeCode && isFloatText(text) {
				t.Layout.Double = t.Layout.Double.With(c)
			}
		default:
			return bad(ReasonNotNumber)
		}
	}
	return nil
}

func isFloatText(text []byte) bool {
	for _, b := range text {
		if b == '.' || b == 'e' || b == 'E' {
			return true
		}
	}
	return false
}
