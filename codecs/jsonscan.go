package codecs

import "encoding/binary"

// A minimal scanner for the flat JSON objects of ride messages. It validates the full JSON
// grammar of what it reads (nested values of unknown fields are skipped but still checked), does
// not allocate, and hands out sub-slices of the input. encoding/json would need reflection and a
// map or struct allocation per message, and every JSON number passes through float64 there,
// which loses the exact decimal text that cents are computed from.

// maxDepth bounds the nesting of skipped values so that hostile input cannot blow the stack.
const maxDepth = 64

type scanner struct {
	data    []byte
	pos     int
	tooDeep bool // a value was nested deeper than maxDepth (then skipValue fails)
}

func isSpace(c byte) bool { return c <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\r') }

func (s *scanner) skipSpace() {
	// Our producer writes no spaces: one comparison in the common case.
	if s.pos < len(s.data) && s.data[s.pos] > ' ' {
		return
	}
	for s.pos < len(s.data) && isSpace(s.data[s.pos]) {
		s.pos++
	}
}

// peek returns the next non-space byte (0 at the end) without consuming it.
func (s *scanner) peek() byte {
	s.skipSpace()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// consume consumes c (after spaces) and reports whether it was there.
func (s *scanner) consume(c byte) bool {
	if s.peek() == c {
		s.pos++
		return true
	}
	return false
}

// stringSpecial marks the bytes that end the fast path of readString: the closing quote, a
// backslash and control characters (invalid inside JSON strings).
var stringSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// hasSpecial8 reports whether any of the 8 bytes in x is '"', '\\' or below 0x20, with the
// classic "has zero byte" bit trick: (v - 0x01..) & ^v & 0x80.. is non-zero iff a byte of v is 0
// (and for "below n": (v - n..) & ^v & 0x80.. iff a byte is < n, for n <= 0x80).
func hasSpecial8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return ((q-ones)&^q|(b-ones)&^b|(x-ones*0x20)&^x)&highs != 0
}

// readString reads a JSON string at pos (which must be '"'), returning its raw contents (between
// the quotes, escapes not decoded) and whether it contains escapes. The common case, a short
// string without escapes, is one table lookup per byte.
func (s *scanner) readString() (raw []byte, escaped, ok bool) {
	data := s.data
	if s.pos >= len(data) || data[s.pos] != '"' {
		return nil, false, false
	}
	start := s.pos + 1
	i := start
	for {
		// Eight bytes at a time while none of them is special (SWAR), then byte by byte.
		for i+8 <= len(data) && !hasSpecial8(binary.LittleEndian.Uint64(data[i:])) {
			i += 8
		}
		for i < len(data) && !stringSpecial[data[i]] {
			i++
		}
		if i >= len(data) {
			return nil, false, false
		}
		switch c := data[i]; {
		case c == '"':
			s.pos = i + 1
			return data[start:i], escaped, true
		case c == '\\':
			escaped = true
			i++
			if i >= len(data) {
				return nil, false, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 > len(data) {
					return nil, false, false
				}
				for _, h := range data[i+1 : i+5] {
					if unhex(h) < 0 {
						return nil, false, false
					}
				}
				i += 5
			default:
				return nil, false, false
			}
		default: // control character
			return nil, false, false
		}
	}
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unescapeASCII decodes the escapes of a raw string into buf if the result is pure ASCII and
// fits; otherwise it returns nil (such a key cannot be one of our column names).
func unescapeASCII(raw []byte, buf []byte) []byte {
	out := buf[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c >= 0x80 {
			return nil
		}
		if c == '\\' {
			i++
			switch raw[i] {
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'u':
				v := unhex(raw[i+1])<<12 | unhex(raw[i+2])<<8 | unhex(raw[i+3])<<4 | unhex(raw[i+4])
				if v >= 0x80 {
					return nil
				}
				c = byte(v)
				i += 4
			default: // '"', '\\', '/'
				c = raw[i]
			}
		}
		if len(out) == cap(out) {
			return nil
		}
		out = append(out, c)
	}
	return out
}

// readNumber reads the longest run of number characters and returns it; the caller validates it
// with parseDecimal.
func (s *scanner) readNumber() []byte {
	start, i, data := s.pos, s.pos, s.data
	for i < len(data) && numberChar[data[i]] {
		i++
	}
	s.pos = i
	return data[start:i]
}

// numberChar marks the bytes that can occur in a JSON number.
var numberChar = func() (t [256]bool) {
	for _, c := range []byte("0123456789-+.eE") {
		t[c] = true
	}
	return t
}()

// readLiteral consumes lit (true, false, null) at pos.
func (s *scanner) readLiteral(lit string) bool {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return false
	}
	s.pos += len(lit)
	return true
}

// skipValue skips and validates one JSON value at pos (after spaces).
func (s *scanner) skipValue(depth int) bool {
	if depth > maxDepth {
		s.tooDeep = true
		return false
	}
	switch s.peek() {
	case '"':
		_, _, ok := s.readString()
		return ok
	case 'n':
		return s.readLiteral("null")
	case 't':
		return s.readLiteral("true")
	case 'f':
		return s.readLiteral("false")
	case '{':
		s.pos++
		if s.consume('}') {
			return true
		}
		for {
			if s.peek() != '"' {
				return false
			}
			if _, _, ok := s.readString(); !ok {
				return false
			}
			if !s.consume(':') || !s.skipValue(depth+1) {
				return false
			}
			if s.consume('}') {
				return true
			}
			if !s.consume(',') {
				return false
			}
		}
	case '[':
		s.pos++
		if s.consume(']') {
			return true
		}
		for {
			if !s.skipValue(depth + 1) {
				return false
			}
			if s.consume(']') {
				return true
			}
			if !s.consume(',') {
				return false
			}
		}
	default:
		return validNumber(s.readNumber())
	}
}

// validNumber reports whether b is exactly one JSON number. It is parseDecimal's grammar check
// without collecting digits, for the values of fields the caller does not need.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(b)
}

// valueKind classifies the value at pos for a known field.
type valueKind uint8

const (
	valueNumber valueKind = iota + 1
	valueNull
	valueString
	valueOther // true, false, object, array: valid JSON of the wrong type
)

// readFieldValue reads the value of a known field. For numbers it returns the number text
// (grammar-checked by the caller), for strings the raw contents; other kinds are skipped and
// validated. ok is false on a syntax error.
func (s *scanner) readFieldValue() (kind valueKind, text []byte, escaped bool, ok bool) {
	switch c := s.peek(); {
	case c == 'n':
		return valueNull, nil, false, s.readLiteral("null")
	case c == '"':
		raw, esc, ok := s.readString()
		return valueString, raw, esc, ok
	case c == '-' || (c >= '0' && c <= '9'):
		return valueNumber, s.readNumber(), false, true
	default:
		return valueOther, nil, false, s.skipValue(0)
	}
}

// objectScanner walks the members of one flat JSON object: the ride message. It is the one
// parser of ride messages; DecodeRideFacts (the processor's hot path) and DecodeTrip (the full
// row) are front ends that only decide what to do with each member. Use:
//
//	o := objectScanner{scanner: scanner{data: data}}
//	if err := o.open(); err != nil { ... }
//	for {
//		key, raw, ok := o.next()
//		if !ok {
//			break
//		}
//		// Read the value exactly once with o.value or o.skip; break when they report false.
//	}
//	if err := o.end(); err != nil { ... } // syntax errors, wherever they were
//
// Syntax errors are *InvalidRideError with ReasonNotJSON and the byte offset. It does not
// allocate except for an error. (The input is set in the literal, and names and errors are
// returned, not kept in o: the compiler's escape analysis would otherwise move o or the input to
// the heap.)
type objectScanner struct {
	scanner
	started bool
	failed  bool // a syntax error at failPos; next returns false once it is set
	failPos int
	keyBuf  [64]byte
}

// open starts at the object's opening brace. Its errors are about the whole message: empty,
// not an object, not JSON.
func (o *objectScanner) open() *InvalidRideError {
	switch o.peek() {
	case 0:
		return &InvalidRideError{Reason: ReasonEmpty}
	case '{':
		o.pos++
		return nil
	}
	if o.skipValue(0) && o.peek() == 0 {
		return &InvalidRideError{Reason: ReasonNotObject}
	}
	o.syntaxAt(o.pos)
	return o.end()
}

// next reads the separator before the next member (none before the first), its name and the
// colon, leaving the value to value or skip. It returns the name with escapes decoded (nil if
// an escape decodes to non-ASCII or the name is longer than keyBuf: no column name is either;
// valid until the next call) and as written (raw), and false at the closing brace and after a
// syntax error.
func (o *objectScanner) next() (key, raw []byte, ok bool) {
	if o.failed {
		return nil, nil, false
	}
	// peek is inlined; consume is not, and this runs once per member.
	c := o.peek()
	if c == '}' {
		o.pos++
		return nil, nil, false
	}
	if o.started {
		if c != ',' {
			o.syntaxAt(o.pos)
			return nil, nil, false
		}
		o.pos++
		c = o.peek()
	}
	o.started = true
	if c != '"' {
		o.syntaxAt(o.pos)
		return nil, nil, false
	}
	raw, escaped, ok := o.readString()
	if !ok {
		o.syntaxAt(o.pos)
		return nil, nil, false
	}
	if o.peek() != ':' {
		o.syntaxAt(o.pos)
		return nil, nil, false
	}
	o.pos++
	key = raw
	if escaped {
		key = unescapeASCII(raw, o.keyBuf[:])
	}
	o.skipSpace()
	return key, raw, true
}

// value reads the current member's value (see readFieldValue). Number text is not checked
// here: the caller parses it and reports bad text with badNumber. ok is false after a syntax
// error.
func (o *objectScanner) value() (kind valueKind, text []byte, escaped bool, ok bool) {
	if kind, text, escaped, ok = o.readFieldValue(); !ok {
		o.failed, o.failPos = true, o.pos // no earlier error: next returned true
	}
	return
}

// skip skips and validates the current member's value; false after a syntax error.
func (o *objectScanner) skip() bool {
	ok := o.skipValue(0)
	if !ok {
		o.failed, o.failPos = true, o.pos // no earlier error: next returned true
	}
	return ok
}

// badNumber reports that text, the number just returned by value, is not a JSON number.
func (o *objectScanner) badNumber(text []byte) { o.syntaxAt(o.pos - len(text)) }

func (o *objectScanner) syntaxAt(pos int) {
	if !o.failed {
		o.failed, o.failPos = true, pos
	}
}

// end checks that only spaces follow the object and returns the syntax error, if any.
func (o *objectScanner) end() *InvalidRideError {
	if !o.failed && o.peek() != 0 {
		o.syntaxAt(o.pos)
	}
	if o.failed {
		if o.tooDeep {
			// Valid JSON perhaps, but deeper than any ride: say so, not "not JSON".
			return &InvalidRideError{Reason: ReasonTooDeep, Offset: o.failPos}
		}
		return &InvalidRideError{Reason: ReasonNotJSON, Offset: o.failPos}
	}
	return nil
}
